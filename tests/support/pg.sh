# Sourced by tests/run.sh: one private PostgreSQL cluster for a test run.
# The cluster lives under /tmp (the postgres user must reach it even when the
# checkout is under a private home) and listens only on a unix socket.
pg_bindir() {
	if [ -n "${NOVA_PG_BINDIR:-}" ]; then echo "$NOVA_PG_BINDIR"; return; fi
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -n 1
}

pg_as() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_test_start() {
	bindir=$(pg_bindir)
	if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
		echo "postgresql server binaries not found (install postgresql)" >&2
		return 1
	fi
	PG_TEST_DIR=$(mktemp -d /tmp/nova-test-pg.XXXXXX)
	chmod 0755 "$PG_TEST_DIR"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_TEST_DIR"
	pg_as "$bindir/initdb" -D "$PG_TEST_DIR/data" -U nova --auth=trust -E UTF8 \
		--no-instructions >"$PG_TEST_DIR/initdb.log" 2>&1 || {
		cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
	pg_as "$bindir/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w \
		-o "-k $PG_TEST_DIR -c listen_addresses= -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null 2>&1 || { cat "$PG_TEST_DIR/server.log" >&2; return 1; }
	export NOVA_TEST_PGHOST="$PG_TEST_DIR"
	export PG_TEST_DIR PG_TEST_BINDIR="$bindir"
}

pg_test_stop() {
	[ -n "${PG_TEST_DIR:-}" ] || return 0
	pg_as "$PG_TEST_BINDIR/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate stop >/dev/null 2>&1
	rm -rf "$PG_TEST_DIR"
	PG_TEST_DIR=
}
