/* Internals of nova-sidecar shared between its files (and its tests): how
 * engine ports are chosen, and when heartbeats go.
 *
 * An engine's port used to come from bind(port 0) on a probe socket that was
 * closed before the engine bound the port itself. The kernel hands out that
 * same ephemeral range (net.ipv4.ip_local_port_range) to every outgoing
 * connection and every other bind(0), so between the close and the engine's
 * bind the port could be taken, and the engine died. Engine ports now come
 * from a range outside the ephemeral one (20000 up to its start by default),
 * which the kernel never hands out by itself; a candidate must pass a bind
 * test and must not be a port this sidecar already gave a live engine. The
 * start is random so that two sidecars on one host (ssh slices) do not probe
 * the same ports in the same order. */
#ifndef NOVA_SIDECAR_SIDECAR_INT_H
#define NOVA_SIDECAR_SIDECAR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SIDECAR_PORTS_LOW 20000
/* A range narrower than this is not worth taking by default. */
#define SIDECAR_PORTS_MIN_SPAN 1024

/* The default engine port range, given the text of
 * /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999\n"; NULL when it
 * cannot be read: Linux's default is assumed). Returns true when the range
 * lies outside the ephemeral one, false for the fallback that overlaps it
 * (an ephemeral range too wide to leave SIDECAR_PORTS_MIN_SPAN ports on
 * either side). */
bool sidecar_ports_default(unsigned *lo_out, unsigned *hi_out, const char *ephemeral);

/* "LO-HI" (--engine-ports), 1024 <= LO <= HI <= 65535. */
int sidecar_ports_parse(unsigned *lo_out, unsigned *hi_out, const char *s, struct nova_err *err);

/* Nothing else is bound to port on any address (IPv4 and, where the host
 * has it, IPv6), a connection closed a moment ago (TIME_WAIT) included:
 * an engine that binds without SO_REUSEADDR could not have it either. */
bool sidecar_port_free(unsigned port);

/* Something accepts connections on 127.0.0.1:port (within 200 ms). Unlike a
 * failed bind test, never true for a port held only by closed connections
 * in TIME_WAIT. */
bool sidecar_port_listened(unsigned port);

/* A free port in [lo, hi] that is none of taken[0..n_taken), probing from
 * lo + rnd % span upwards and wrapping; 0 when there is none. */
unsigned sidecar_port_pick(unsigned lo, unsigned hi, const unsigned *taken, size_t n_taken,
			   uint32_t rnd);

/* --- heartbeat timing (sidecar/beat.c) ---
 *
 * After a beat the next comes one interval later, moved by up to a tenth of
 * the interval either way, drawn uniformly: sidecars started together (a
 * pool provisioned at once, a rack back from a power cut) would otherwise
 * beat in step for as long as they run, and novad would take its fleet's
 * beats in bursts. The failing path keeps its own base (one interval, then
 * two) with the same spread.
 *
 * Engine trouble (an engine exits unasked, a ready one stops answering its
 * health probe, one becomes ready) is reported at once rather than at the
 * next beat, which a big fleet's interval (20 s or more) puts far off: a dead
 * engine must leave the routing table now. An early beat comes at most once
 * per SIDECAR_EARLY_BEAT_GAP_MS; what happens meanwhile goes with it, so a
 * crash-looping engine, or all 64 of a node's, costs novad one extra beat a
 * second per node at most. 1 s: an engine's restart backoff starts at 1 s,
 * so its death and its return are each reported alone; a second is well
 * under the 3 intervals after which novad fails a silent node, and a
 * fleet-wide incident (every engine of 10,000 nodes dying at once) costs
 * one beat per node, what the fleet sends every interval anyway.
 * Rejected: no bound (64 engines crash-looping out of step, each death and
 * each return an event, could beat dozens of times a second), and a bound
 * per engine (it grows with the engines a node runs, not with the node). */
#define SIDECAR_EARLY_BEAT_GAP_MS 1000

/* A per-process random source: splitmix64, seeded from getrandom (else
 * the process id and both clocks). Not for secrets. */
void sidecar_rand_seed(uint64_t *state);
uint64_t sidecar_rand_next(uint64_t *state);

/* The wait before a beat: base_ms - interval_ms / 10 plus rnd modulo
 * 2 * (interval_ms / 10) + 1, so uniform within a tenth of the interval
 * either side of base_ms. base_ms >= interval_ms / 10. */
unsigned sidecar_beat_delay(unsigned base_ms, unsigned interval_ms, uint64_t rnd);

/* When an early beat asked for at now_ms goes, given the beat already
 * scheduled (next_ms) and the time of the last early beat (last_early_ms):
 * now, or SIDECAR_EARLY_BEAT_GAP_MS after the last early beat, whichever is
 * later, and never after next_ms (a beat due sooner takes the report). */
long long sidecar_beat_early_at(long long next_ms, long long now_ms, long long last_early_ms);

#endif
