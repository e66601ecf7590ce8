# Nova — one non-recursive Makefile. Objects go to $(BUILD) (default build/).
# Every directory listed in LIB_DIRS contributes its *.c to libnova.a, except
# files named *_main.c, which are program entry points.

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
# Where a service's configuration lives (/etc/nova/novad.yaml), compiled
# into novad and nova-router as their default file. Not under PREFIX: an
# admin looks in /etc whichever prefix the programs came from.
SYSCONFDIR ?= /etc
CC      ?= cc
# `make V=1` shows the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS := libpq libcurl jansson libssh2 yaml-0.1 uuid libmicrohttpd libcrypto

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla
OPT  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -I. -I$(BUILD)/gen
CFLAGS   += -std=c17 $(OPT) $(WARN) -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CPPFLAGS += -DNOVA_VERSION='"$(VERSION)"' -DNOVA_SYSCONFDIR='"$(SYSCONFDIR)"'

LIB_DIRS := core events audit adapters adapters/fake adapters/lpu adapters/kubernetes adapters/ssh pools models deployments inventory autoscaler auth gateway sidecar router
LIB_SRCS := $(filter-out %_main.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o $(BUILD)/gen/assets.o
LIB      := $(BUILD)/libnova.a

CLI_SRCS := $(filter-out %_main.c,$(wildcard cli/*.c))
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)

BINS := $(BUILD)/novad $(BUILD)/novactl $(BUILD)/nova-mock-engine $(BUILD)/nova-sidecar $(BUILD)/nova-router
# Benchmark programs (bench/): built with everything, so they keep compiling;
# not part of libnova. `make bench` builds a release tree and runs them.
BENCH_BINS := $(BUILD)/bench/loadgen $(BUILD)/bench/bench_placement $(BUILD)/bench/watchers

TEST_SUPPORT_SRCS := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(wildcard tests/*/test_*.c)
TEST_BINS := $(TEST_SRCS:%.c=$(BUILD)/%)
# Test programs a shell test drives (tests/run.sh runs only test_*): they
# need what the shell test sets up first (real sshd hosts, say).
TEST_DRIVER_SRCS := $(wildcard tests/*/driver_*.c)
TEST_DRIVERS := $(TEST_DRIVER_SRCS:%.c=$(BUILD)/%)

SQL_FILES := $(sort $(wildcard sql/[0-9][0-9][0-9][0-9]_*.sql))
WEB_FILES := $(sort $(shell find web -type f 2>/dev/null))
HEADERS   := $(wildcard core/*.h events/*.h adapters/*.h adapters/*/*.h pools/*.h deployments/*.h \
             inventory/*.h autoscaler/*.h auth/*.h audit/*.h gateway/*.h cli/*.h models/*.h sidecar/*.h router/*.h)

.PHONY: all deps test asan run install deb check-headers check-layers clean tests fuzz fuzz-build bench
all: $(BINS) $(BENCH_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

# Migrations are compiled into novad, so an installed binary never depends on
# where the source tree was.
$(BUILD)/tools/embed_sql: tools/embed_sql.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c17 -O1 -Wall -Wextra -Werror $< -o $@
$(BUILD)/gen/migrations.c: $(BUILD)/tools/embed_sql $(SQL_FILES)
	@mkdir -p $(dir $@)
	$(Q)$(BUILD)/tools/embed_sql $(SQL_FILES) > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -Wno-missing-prototypes -c $< -o $@
# The web pages novad serves (core/assets.h), the same way.
$(BUILD)/tools/embed_files: tools/embed_files.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c17 -O1 -Wall -Wextra -Werror $< -o $@
$(BUILD)/gen/assets.c: $(BUILD)/tools/embed_files $(WEB_FILES)
	@mkdir -p $(dir $@)
	$(Q)$(BUILD)/tools/embed_files web $(WEB_FILES) > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/assets.o: $(BUILD)/gen/assets.c
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -Wno-missing-prototypes -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(BUILD)/novad: $(BUILD)/gateway/novad_main.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/nova-sidecar: $(BUILD)/sidecar/sidecar_main.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/nova-mock-engine: $(BUILD)/sidecar/mock_engine_main.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/nova-router: $(BUILD)/router/router_main.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/novactl: $(BUILD)/cli/novactl_main.o $(CLI_OBJS) $(LIB)
	@[ "$(V)" = 1 ] || echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The load generator needs nothing but libc: it is a client, not Nova.
$(BUILD)/bench/loadgen: $(BUILD)/bench/loadgen.o
	@[ "$(V)" = 1 ] || echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) $^ -lpthread -o $@
$(BUILD)/bench/watchers: $(BUILD)/bench/watchers.o
	@[ "$(V)" = 1 ] || echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) $^ -o $@
$(BUILD)/bench/bench_placement: $(BUILD)/bench/bench_placement.o $(LIB)
	@[ "$(V)" = 1 ] || echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT_OBJS) $(CLI_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  TEST    $@"
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $< $(TEST_SUPPORT_OBJS) $(CLI_OBJS) $(LIB) \
	  $(LDFLAGS) $(LDLIBS) -lcmocka -o $@

tests: $(BINS) $(TEST_BINS) $(TEST_DRIVERS)

# Keep the test support objects: they are intermediates of a pattern rule.
.SECONDARY: $(TEST_SUPPORT_OBJS)

# `make deps` installs missing Debian packages; quiet and fast when present.
deps:
	@sh tools/deps.sh

test: deps
	@$(MAKE) --no-print-directory tests
	@BUILD=$(BUILD) sh tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT='-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all' \
	  LDFLAGS='-fsanitize=address,undefined' tests
	@BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh

run: deps
	@$(MAKE) --no-print-directory all
	@sh tools/run.sh

# Benchmarks (docs/PERFORMANCE.md): a release build of its own (no -g, no
# sanitizers, asserts off) in $(BUILD)/bench, then every benchmark in one run;
# the table is printed and written to $(BUILD)/bench/results.json. Not a test:
# a missed target does not fail it.
bench: deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/bench OPT='-O2 -DNDEBUG' all
	@BENCH_BUILD=$(BUILD)/bench sh bench/run.sh

# libFuzzer (clang, Debian's clang package): each fuzz/fuzz_<target>.c
# against its own build of libnova in $(BUILD)/fuzz/lib, instrumented for
# coverage and under ASan and UBSan (every report fatal), then each target
# run for FUZZ_SECONDS over its seeds (fuzz/corpus/<target>/, copied into
# $(BUILD)/fuzz/corpus/<target>/, where what it finds accumulates); a crash
# stops `make fuzz` and leaves its input in $(BUILD)/fuzz/. `make test`
# builds none of this (docs/ARCHITECTURE.md, "Fuzzing").
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= allocation json heartbeat yaml metrics
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIB     := $(BUILD)/fuzz/lib/libnova.a

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzz/lib CC=$(FUZZ_CC) \
	  OPT='-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)' $(FUZZ_LIB)
	@for t in $(FUZZ_TARGETS); do \
	  echo "  FUZZ    $(BUILD)/fuzz/fuzz_$$t"; \
	  $(FUZZ_CC) $(CPPFLAGS) $(PKG_CFLAGS) -std=c17 $(WARN) -O1 -g -fno-omit-frame-pointer \
	    -fsanitize=fuzzer $(FUZZ_SAN) fuzz/fuzz_$$t.c $(FUZZ_LIB) $(LDLIBS) \
	    -o $(BUILD)/fuzz/fuzz_$$t || exit 1; \
	done

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$t && { cp -n fuzz/corpus/$$t/* $(BUILD)/fuzz/corpus/$$t/ || true; } && \
	  echo "== fuzz_$$t: $(FUZZ_SECONDS) s" && \
	  case $$t in allocation) max=64 ;; metrics) max=16384 ;; *) max=8192 ;; esac && \
	  $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=$$max -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/$$t- $(BUILD)/fuzz/corpus/$$t || exit 1; \
	done

# The layers and table owners of docs/ARCHITECTURE.md, checked against the
# sources (tools/check_layers.sh).
check-layers:
	@sh tools/check_layers.sh .

check-headers:
	@mkdir -p $(BUILD)/check-headers
	@for h in $(HEADERS); do \
	  echo "#include \"$$h\"" > $(BUILD)/check-headers/t.c; \
	  $(CC) $(CPPFLAGS) $(PKG_CFLAGS) -std=c17 $(WARN) -fsyntax-only $(BUILD)/check-headers/t.c || exit 1; \
	done; echo "headers ok"

# `make install` (PREFIX, DESTDIR, and the directories below): the
# programs, the example topology and model files (PREFIX/share/nova/etc,
# where novad looks for them beside its binary), man pages, systemd units
# for novad and nova-router (ExecStart names BINDIR), and
# SYSCONFDIR/nova/novad.yaml and nova-router.yaml, which the programs read
# when given no file: an admin's existing ones are never overwritten. The
# programs are built with this SYSCONFDIR compiled in: `make clean` first
# when changing it. `make deb` builds the Debian package from such a tree
# (dist/debian/mkdeb.sh).
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
MAN1 := man/novactl.1
MAN8 := man/novad.8 man/nova-sidecar.8 man/nova-router.8
UNITS := novad nova-router

install: $(BINS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/nova/etc/models/lpu \
	  $(DESTDIR)$(DATADIR)/nova/etc/prometheus \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/nova
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0644 etc/novad.yaml etc/nova-router.yaml etc/datacenter.yaml \
	  $(DESTDIR)$(DATADIR)/nova/etc/
	install -m 0644 etc/models/*.yaml $(DESTDIR)$(DATADIR)/nova/etc/models/
	install -m 0644 etc/models/lpu/*.yaml $(DESTDIR)$(DATADIR)/nova/etc/models/lpu/
	install -m 0644 etc/prometheus/*.yml $(DESTDIR)$(DATADIR)/nova/etc/prometheus/
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	for u in $(UNITS); do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    dist/systemd/$$u.service.in > $(DESTDIR)$(UNITDIR)/$$u.service.tmp && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service.tmp && \
	  mv $(DESTDIR)$(UNITDIR)/$$u.service.tmp $(DESTDIR)$(UNITDIR)/$$u.service || exit 1; \
	done
	for f in novad nova-router; do \
	  [ -e $(DESTDIR)$(SYSCONFDIR)/nova/$$f.yaml ] || \
	    install -m 0644 etc/$$f.yaml $(DESTDIR)$(SYSCONFDIR)/nova/$$f.yaml || exit 1; \
	done
	@if [ -z "$(DESTDIR)" ] && ! getent passwd nova >/dev/null; then \
	  echo "install: the units run as the system user nova, which does not exist yet:"; \
	  echo "  useradd --system --user-group --home-dir /var/lib/nova --shell /usr/sbin/nologin nova"; \
	  echo "  then: systemctl daemon-reload && systemctl enable --now novad"; \
	fi

# The Debian package, in $(BUILD)/: the tree `make install` stages with
# PREFIX=/usr, and the maintainer scripts of dist/debian/.
deb: $(BINS)
	@BUILD=$(BUILD) MAKE="$(MAKE)" sh dist/debian/mkdeb.sh

clean:
	rm -rf $(BUILD) build-asan

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)
