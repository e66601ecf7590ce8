#include "core/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static nova_log_sink_fn log_sink;
static void *log_sink_ctx;
static enum nova_log_level log_level = NOVA_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void nova_log_set_sink(nova_log_sink_fn fn, void *ctx)
{
	pthread_mutex_lock(&log_lock);
	log_sink = fn;
	log_sink_ctx = ctx;
	pthread_mutex_unlock(&log_lock);
}

void nova_log_set_level(enum nova_log_level level)
{
	log_level = level;
}

enum nova_log_level nova_log_get_level(void)
{
	return log_level;
}

int nova_log_level_parse(enum nova_log_level *out, const char *name)
{
	for (int i = 0; i < 4; i++) {
		if (name && strcmp(name, level_names[i]) == 0) {
			*out = (enum nova_log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *nova_log_level_name(enum nova_log_level level)
{
	return (unsigned)level < 4 ? level_names[level] : "info";
}

/* A bounded line builder. A line longer than the buffer is cut inside a
 * value, never inside an escape, and stays valid JSON: two bytes are always
 * held back for the closing quote and brace, and a field that no longer fits
 * is dropped whole. */
struct log_buf {
	char data[4096];
	size_t len;
};

#define LOG_HOLD 2

static bool lb_put(struct log_buf *b, const char *s, size_t n)
{
	size_t room = sizeof(b->data) - 1 - b->len;
	if (n + LOG_HOLD > room)
		return false;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	return true;
}

static void lb_str(struct log_buf *b, const char *s)
{
	lb_put(b, s, strlen(s));
}

static void lb_escaped(struct log_buf *b, const char *s)
{
	char esc[8];
	bool ok = true;
	for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++) {
		switch (*p) {
		case '"': ok = lb_put(b, "\\\"", 2); break;
		case '\\': ok = lb_put(b, "\\\\", 2); break;
		case '\n': ok = lb_put(b, "\\n", 2); break;
		case '\r': ok = lb_put(b, "\\r", 2); break;
		case '\t': ok = lb_put(b, "\\t", 2); break;
		default:
			if (*p < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				ok = lb_put(b, esc, 6);
			} else {
				ok = lb_put(b, (const char *)p, 1);
			}
		}
	}
}

static void lb_field(struct log_buf *b, const char *key, const char *val)
{
	if (sizeof(b->data) - 1 - b->len < 64 + strlen(key))
		return;
	lb_str(b, ",\"");
	lb_escaped(b, key);
	if (val) {
		lb_str(b, "\":\"");
		lb_escaped(b, val);
		b->data[b->len++] = '"'; /* held back by lb_put */
	} else {
		lb_str(b, "\":null");
	}
}

static void lb_begin(struct log_buf *b, enum nova_log_level level, const char *component,
		     const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char when[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	b->len = 0;
	lb_str(b, "{\"ts\":\"");
	lb_str(b, when);
	lb_str(b, "\",\"level\":\"");
	lb_str(b, nova_log_level_name(level));
	lb_str(b, "\"");
	lb_field(b, "component", component ? component : "novad");
	lb_field(b, "msg", msg);
}

static _Thread_local const char *log_request_id;

void nova_log_request_set(const char *request_id)
{
	log_request_id = request_id && *request_id ? request_id : NULL;
}

const char *nova_log_request_get(void)
{
	return log_request_id;
}

static void lb_emit(struct log_buf *b, enum nova_log_level level)
{
	if (log_request_id)
		lb_field(b, "request_id", log_request_id);
	b->data[b->len++] = '}'; /* held back by lb_put */
	b->data[b->len] = '\0';
	pthread_mutex_lock(&log_lock);
	if (log_sink) {
		log_sink(log_sink_ctx, level, b->data);
	} else {
		fputs(b->data, stderr);
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&log_lock);
}

void nova_log(enum nova_log_level level, const char *component, const char *fmt, ...)
{
	struct log_buf b;
	char msg[2048];
	va_list ap;
	if (level < log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lb_begin(&b, level, component, msg);
	lb_emit(&b, level);
}

void nova_log_kv(enum nova_log_level level, const char *component, const char *msg, ...)
{
	struct log_buf b;
	va_list ap;
	const char *key;
	if (level < log_level)
		return;
	lb_begin(&b, level, component, msg);
	va_start(ap, msg);
	while ((key = va_arg(ap, const char *)) != NULL) {
		const char *val = va_arg(ap, const char *);
		lb_field(&b, key, val);
	}
	va_end(ap);
	lb_emit(&b, level);
}

void nova_log_redact_url(char *out, size_t out_len, const char *url)
{
	size_t o = 0;
	const char *scheme = strstr(url, "://");
	const char *p = url;
	if (out_len == 0)
		return;
#define PUT(c) do { if (o + 1 < out_len) out[o++] = (c); } while (0)
	if (scheme) {
		const char *auth = scheme + 3;
		const char *end = auth + strcspn(auth, "/?#");
		const char *at = NULL;
		for (const char *q = auth; q < end; q++)
			if (*q == '@')
				at = q;
		for (; p < auth; p++)
			PUT(*p);
		if (at) {
			const char *colon = memchr(auth, ':', (size_t)(at - auth));
			if (colon) {
				for (; p <= colon; p++)
					PUT(*p);
				PUT('*'); PUT('*'); PUT('*');
				p = at;
			}
		}
	}
	while (*p) {
		if (strncmp(p, "password=", 9) == 0 && (p == url || p[-1] == '?' || p[-1] == '&' || p[-1] == ' ')) {
			for (int i = 0; i < 9; i++)
				PUT(p[i]);
			PUT('*'); PUT('*'); PUT('*');
			p += 9;
			while (*p && *p != '&' && *p != ' ')
				p++;
			continue;
		}
		PUT(*p);
		p++;
	}
#undef PUT
	out[o] = '\0';
}
