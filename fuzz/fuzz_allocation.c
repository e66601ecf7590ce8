/* libFuzzer target for the allocation-string parser: `make fuzz` builds it
 * with clang (-fsanitize=fuzzer,address,undefined) and runs it for a while
 * over the seed corpus in fuzz/corpus/allocation/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/lpu/lpu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct lpu_allocation a;
	struct nova_err err;
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int rc = lpu_allocation_parse(&a, s, NULL, 0, &err);
	/* Either parsed, or a positioned error: anything else is a bug. */
	if (rc != 0 && (rc != NOVA_EINVAL || strncmp(err.message, "at ", 3) != 0))
		abort();
	if (rc == 0 && (a.n_groups < 1 || a.n_groups > LPU_MAX_GROUPS))
		abort();
	free(s);
	return 0;
}
