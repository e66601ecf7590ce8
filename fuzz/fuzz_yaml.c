/* libFuzzer target: the YAML documents novad reads, chosen by the input's
 * first byte: an lpu datacenter topology (lpu_topology_parse), a
 * kubeconfig (kube_config_parse, inline: relative paths refused),
 * novad.yaml (cfg_load_file, through a file: it takes a path), and a model
 * file as novactl sends it (ydoc_to_json, then model_spec_parse). Errors
 * must say file:line:column. Seeds: fuzz/corpus/yaml/ (first byte 'T',
 * 'K', 'N' or 'M'). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/kubernetes/kube.h"
#include "adapters/lpu/lpu.h"
#include "core/config.h"
#include "core/ydoc.h"
#include "models/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_path[64];

static void fz_unlink(void)
{
	unlink(fz_path);
}

/* A refusal names where (name:line:column) or is one of the few
 * document-wide ones; never a crash, never an unbounded message. */
static void fz_check(int rc, const struct nova_err *err)
{
	if (rc == 0)
		return;
	if (rc != NOVA_EINVAL && rc != NOVA_ENOTFOUND && rc != NOVA_ETOOBIG && rc != NOVA_EUNAVAIL)
		goto bad;
	if (!err->message[0] || strchr(err->message, '\n'))
		goto bad;
	/* The error body is built with jansson, which takes UTF-8 only. */
	json_t *m = json_string(err->message), *f = json_string(err->field);
	bool utf8 = m && f;
	json_decref(m);
	json_decref(f);
	if (utf8)
		return;
bad:
	fprintf(stderr, "refusal %d field \"%s\" message \"%s\"\n", rc, err->field, err->message);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nova_err err;
	if (size < 1)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	nova_err_clear(&err);
	switch (data[0]) {
	case 'T': {
		struct lpu_topology *t = NULL;
		int rc = lpu_topology_parse(&t, "datacenter.yaml", text, len, &err);
		fz_check(rc, &err);
		if ((rc == 0) != (t != NULL))
			abort();
		lpu_topology_free(t);
		break;
	}
	case 'K': {
		struct kube_config *c = NULL;
		int rc = kube_config_parse(&c, "kubeconfig_inline", text, len, NULL, NULL, &err);
		fz_check(rc, &err);
		if ((rc == 0) != (c != NULL))
			abort();
		kube_config_free(c);
		break;
	}
	case 'N': {
		struct cfg c;
		if (!fz_path[0]) {
			snprintf(fz_path, sizeof(fz_path), "/tmp/nova-fuzz-novad-%d.yaml", (int)getpid());
			atexit(fz_unlink);
		}
		FILE *f = fopen(fz_path, "wb");
		if (!f)
			abort();
		if (len && fwrite(text, 1, len, f) != len)
			abort();
		fclose(f);
		cfg_defaults(&c);
		fz_check(cfg_load_file(&c, fz_path, &err), &err);
		break;
	}
	case 'M': {
		struct ydoc *d = NULL;
		json_t *j = NULL;
		int rc = ydoc_load_string(&d, "model.yaml", text, len, &err);
		fz_check(rc, &err);
		if (rc == 0 && ydoc_root(d)) {
			rc = ydoc_to_json(&j, d, ydoc_root(d), &err);
			fz_check(rc, &err);
			if (rc == 0) {
				struct model m;
				rc = model_spec_parse(&m, j, &err);
				fz_check(rc, &err);
				if (rc == 0)
					json_decref(m.spec);
			}
		}
		json_decref(j);
		ydoc_destroy(d);
		break;
	}
	default:
		break;
	}
	return 0;
}
