/* Tokens read from answers as they pass (router.h: struct router_usage).
 *
 * A state machine over the bytes, fed from libcurl's write callback: it
 * keeps no copy of the answer, so a stream stays unbuffered and a large
 * answer costs nothing more. Rejected: parsing the answer with jansson
 * (a non-streamed answer would have to be kept whole, and each stream
 * event cut out and parsed: a copy and an allocation per token), and a
 * tail of the last bytes searched again with each read (the same result
 * with a copy per read; the positions in the patterns are that tail). */
#include <string.h>

#include "router/router.h"

static const char *const ru_keys[3] = {"\"prompt_tokens\"", "\"completion_tokens\"",
				       "\"choices\""};

void router_usage_init(struct router_usage *u)
{
	memset(u, 0, sizeof(*u));
	u->prompt_tokens = u->completion_tokens = -1;
}

static bool ru_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One byte through the key patterns (no key being read). */
static void ru_match(struct router_usage *u, char c)
{
	for (unsigned k = 0; k < 3; k++) {
		const char *pat = ru_keys[k];
		if (pat[u->pos[k]] == c) {
			if (!pat[++u->pos[k]]) {
				memset(u->pos, 0, sizeof(u->pos));
				u->key = (unsigned char)(k + 1);
				u->phase = 0;
				return;
			}
		} else {
			/* Every pattern opens with its only '"'. */
			u->pos[k] = c == '"' ? 1 : 0;
		}
	}
}

static void ru_byte(struct router_usage *u, char c)
{
	/* Lines and events (SSE): an event ends at an empty line. */
	if (c == '\n') {
		if (u->line_len == 0) {
			if (u->event_choice)
				u->choice_events++;
			u->event_choice = false;
		}
		u->line_len = 0;
	} else if (c != '\r') {
		u->line_len++;
	}
	while (u->key) {
		bool tokens = u->key != 3;
		switch (u->phase) {
		case 0: /* the ':' */
			if (ru_space(c))
				return;
			if (c == ':') {
				u->phase = 1;
				return;
			}
			break;
		case 1: /* the value */
			if (ru_space(c))
				return;
			if (tokens && c >= '0' && c <= '9') {
				u->num = c - '0';
				u->phase = 2;
				return;
			}
			if (!tokens && c == '[') {
				u->phase = 3;
				return;
			}
			break;
		case 2: /* the number's digits */
			if (c >= '0' && c <= '9') {
				if (u->num < 1000000000000LL)
					u->num = u->num * 10 + (c - '0');
				return;
			}
			if (u->key == 1)
				u->prompt_tokens = u->num;
			else
				u->completion_tokens = u->num;
			break;
		case 3: /* the array's first member */
			if (ru_space(c))
				return;
			if (c == '{')
				u->event_choice = true;
			break;
		}
		u->key = 0; /* done or not the shape: the byte goes to the patterns */
	}
	ru_match(u, c);
}

void router_usage_feed(struct router_usage *u, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		ru_byte(u, p[i]);
}

void router_usage_tokens(long long *prompt, long long *completion, const struct router_usage *u,
			 bool stream)
{
	long long number = u->key == 1 || u->key == 2 ? (u->phase == 2 ? u->num : -1) : -1;
	long long p = u->prompt_tokens, c = u->completion_tokens;
	/* A number the answer ended on (no byte after it). */
	if (number >= 0 && u->key == 1)
		p = number;
	else if (number >= 0 && u->key == 2)
		c = number;
	if (p >= 0 || c >= 0) {
		*prompt = p > 0 ? p : 0;
		*completion = c > 0 ? c : 0;
		return;
	}
	*prompt = 0;
	*completion = stream ? (long long)(u->choice_events + (u->event_choice ? 1 : 0)) : 0;
}
