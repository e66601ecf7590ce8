#include "sidecar/sidecar_int.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void sidecar_rand_seed(uint64_t *state)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		/* Early boot, before the pool is ready: what tells two
		 * sidecars started together apart is their process id; the
		 * clocks' nanoseconds add what they can. */
		struct timespec rt, mono;
		clock_gettime(CLOCK_REALTIME, &rt);
		clock_gettime(CLOCK_MONOTONIC, &mono);
		seed = ((uint64_t)getpid() << 32) ^ (uint64_t)rt.tv_sec * 1000000007u ^
		       (uint64_t)rt.tv_nsec ^ ((uint64_t)mono.tv_nsec << 20);
	}
	*state = seed;
}

uint64_t sidecar_rand_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

unsigned sidecar_beat_delay(unsigned base_ms, unsigned interval_ms, uint64_t rnd)
{
	/* Modulo a span of at most 120,001 (a 600 s interval): the bias of a
	 * 64-bit draw is below 1e-14. */
	unsigned tenth = interval_ms / 10;
	return base_ms - tenth + (unsigned)(rnd % (2 * (uint64_t)tenth + 1));
}

long long sidecar_beat_early_at(long long next_ms, long long now_ms, long long last_early_ms)
{
	long long at = last_early_ms + SIDECAR_EARLY_BEAT_GAP_MS;
	if (at < now_ms)
		at = now_ms;
	return at < next_ms ? at : next_ms;
}
