/* The ssh provider's discovery command and the parser of its answer
 * (contract in ssh.h). One command, one round trip per host: its output is
 * "key: value" lines, so a missing tool shows as a missing or empty line
 * rather than a shell error in the middle of the data. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/ssh/ssh.h"
#include "core/text.h"

const char ssh_discovery_command[] =
	"echo \"cpus: $(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)\"; "
	"echo \"mem_kib: $(awk '/^MemTotal:/{print $2}' /proc/meminfo)\"; "
	"echo \"hostname: $(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)\"; "
	"(. /etc/os-release 2>/dev/null; echo \"os: ${PRETTY_NAME:-unknown}\"); "
	"if command -v nvidia-smi >/dev/null 2>&1; then "
	"o=$(nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader 2>&1); r=$?; "
	"printf '%s\\n' \"$o\" | sed 's/^/gpu: /'; echo \"gpu_rc: $r\"; "
	"else echo 'gpu_rc: none'; fi";

static bool ssh_parse_ull(unsigned long long *out, const char *s, const char *suffix)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return false;
	*out = strtoull(s, &end, 10);
	return strcmp(end, suffix) == 0;
}

/* "0, NVIDIA A100-SXM4-80GB, 81920 MiB" */
static bool ssh_parse_gpu(struct ssh_gpu *g, const char *v)
{
	const char *name = strchr(v, ',');
	const char *last = strrchr(v, ',');
	unsigned long long idx;
	char num[32];
	if (!name || name == last || (size_t)(name - v) >= sizeof(num))
		return false;
	snprintf(num, sizeof(num), "%.*s", (int)(name - v), v);
	if (!ssh_parse_ull(&idx, num, ""))
		return false;
	name++;
	while (*name == ' ')
		name++;
	if (last <= name || (size_t)(last - name) >= sizeof(g->name))
		return false;
	snprintf(g->name, sizeof(g->name), "%.*s", (int)(last - name), name);
	last++;
	while (*last == ' ')
		last++;
	return ssh_parse_ull(&g->memory_mib, last, " MiB");
}

int ssh_discovery_parse(struct ssh_host_facts *out, const char *text, struct nova_err *err)
{
	const char *p = text;
	bool seen_cpus = false, seen_mem = false, seen_gpu_rc = false, gpu_failed = false;
	unsigned line_no = 0;
	memset(out, 0, sizeof(*out));
	while (*p) {
		size_t len = strcspn(p, "\n");
		char line[512];
		unsigned long long n;
		line_no++;
		snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
		p += len + (p[len] == '\n');
		char *colon = strstr(line, ": ");
		const char *v = colon ? colon + 2 : "";
		if (!line[0])
			continue;
		if (!colon && strcmp(line, "gpu:") != 0)
			return nova_err_set(err, NOVA_EFAILED, "",
					    "discovery output line %u is not \"key: value\": %.80s", line_no,
					    line);
		if (colon)
			*colon = '\0';
		else
			line[3] = '\0';
		if (strcmp(line, "cpus") == 0) {
			if (!ssh_parse_ull(&n, v, "") || n == 0 || n > 1000000)
				return nova_err_set(err, NOVA_EFAILED, "", "discovery: cannot read cpus \"%.40s\"", v);
			out->cpus = (unsigned)n;
			seen_cpus = true;
		} else if (strcmp(line, "mem_kib") == 0) {
			if (!ssh_parse_ull(&n, v, ""))
				return nova_err_set(err, NOVA_EFAILED, "", "discovery: cannot read memory \"%.40s\"", v);
			out->memory_mib = n / 1024;
			seen_mem = true;
		} else if (strcmp(line, "hostname") == 0) {
			snprintf(out->hostname, sizeof(out->hostname), "%s", v);
		} else if (strcmp(line, "os") == 0) {
			snprintf(out->os, sizeof(out->os), "%s", v);
		} else if (strcmp(line, "gpu") == 0) {
			/* Kept aside until gpu_rc says whether these are GPUs or
			 * nvidia-smi's complaint. */
			if (!*v)
				continue;
			/* Host output that may become a label and a reason:
			 * an excerpt (core/text.h). */
			if (!out->gpu_error[0])
				text_excerpt(out->gpu_error, sizeof(out->gpu_error), v, strlen(v), false);
			if (gpu_failed || out->n_gpus == SSH_MAX_GPUS)
				continue;
			if (!ssh_parse_gpu(&out->gpus[out->n_gpus], v))
				gpu_failed = true;
			else
				out->n_gpus++;
		} else if (strcmp(line, "gpu_rc") == 0) {
			seen_gpu_rc = true;
			if (strcmp(v, "0") == 0 && gpu_failed)
				return nova_err_set(err, NOVA_EFAILED, "",
						    "discovery: cannot read nvidia-smi's line \"%.80s\"",
						    out->gpu_error);
			if (strcmp(v, "0") == 0 || strcmp(v, "none") == 0) {
				out->gpu_error[0] = '\0';
			} else {
				out->n_gpus = 0;
				if (!out->gpu_error[0])
					snprintf(out->gpu_error, sizeof(out->gpu_error),
						 "nvidia-smi exited with status %s", v);
			}
		}
		/* Unknown keys are ignored: a newer command may say more. */
	}
	if (!seen_cpus || !seen_mem || !seen_gpu_rc)
		return nova_err_set(err, NOVA_EFAILED, "",
				    "discovery output is incomplete (no %s line): is the host Linux?",
				    !seen_cpus ? "cpus" : !seen_mem ? "mem_kib" : "gpu_rc");
	return 0;
}

static bool ssh_all_alpha(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalpha((unsigned char)*s))
			return false;
	return true;
}

void ssh_gpu_type(char *out, size_t len, const char *name, unsigned long long memory_mib)
{
	static const char *const vendor[] = {"NVIDIA", "Tesla", "GeForce", "Quadro", NULL};
	char buf[ADAPTER_NAME_MAX], model[ADAPTER_NAME_MAX] = "";
	char *save = NULL;
	snprintf(buf, sizeof(buf), "%s", name);
	for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		size_t i;
		for (i = 0; vendor[i] && strcmp(vendor[i], tok) != 0; i++)
			;
		if (vendor[i])
			continue;
		tok[strcspn(tok, "-")] = '\0';
		size_t used = strlen(model);
		snprintf(model + used, sizeof(model) - used, "%s", tok);
		/* "RTX" alone says little: take the number that follows. */
		if (!ssh_all_alpha(model))
			break;
	}
	snprintf(out, len, "%s-%lluG", model[0] ? model : "GPU", (memory_mib + 512) / 1024);
}
