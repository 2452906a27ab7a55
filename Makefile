# shop: build, run and test.  Logic lives in scripts/; this file only wires it.
# Targets: all deps up down status check check-layers check-unit check-asan
#          check-integration check-openapi check-hosts install clean fuzz bench soak backup restore

ifeq ($(origin CC),default)
CC = gcc
endif
PREFIX  ?= /usr/local
DESTDIR ?=
# Read when this file is parsed: a target that installs the packages first
# (deps) builds through a second make, which sees them (see up, check).
PKGS     = libmariadb json-c libjwt libsodium libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# NDEBUG is never defined: assert() guards programmer errors (a bad metric
# index, a route table larger than the metrics file holds) in every build,
# and lib/metrics.c refuses to compile with it.
CFLAGS_COMMON = -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -g -Ilib $(PKG_CFLAGS)
CFLAGS  ?= -O2
LIBS     = $(PKG_LIBS) -lfcgi -lcrypto -lm
ASAN     = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SERVICES = auth product order
LIB_SRC  = $(wildcard lib/*.c)
LIB_OBJ  = $(LIB_SRC:lib/%.c=build/lib/%.o)
ASAN_OBJ = $(LIB_SRC:lib/%.c=build/asan/lib/%.o)
TEST_SRC = $(wildcard tests/test_*.c)
TESTS    = $(TEST_SRC:tests/%.c=build/tests/%)
ASAN_TESTS = $(TEST_SRC:tests/%.c=build/asan/tests/%)
BINS     = $(SERVICES:%=build/%.fcgi) build/shop-pool build/shop-relay build/shop-consume
# events/: the broker connection, the consumer framework and the programs
# built on them (shop-relay, shop-consume), above lib/ (scripts/check-layers).
EVENTS_LIB = events/broker.c events/consume.c
EVENTS_H   = $(wildcard events/*.h)
AMQP_LIBS  = $(shell pkg-config --libs librabbitmq 2>/dev/null || echo -lrabbitmq)
# shop-consume's consumers and the service code each one runs.
CONSUME_SRC = events/shop-consume.c events/settle.c cgi/product/store.c \
              events/revocation.c events/notify.c events/mail.c events/replay.c

.PHONY: all deps up down status check check-layers check-unit check-asan check-integration \
        check-ha check-stack check-hosts check-monitoring check-openapi install clean fuzz bench \
        monitor soak backup restore
.SECONDARY:

all: $(BINS) build/galera-health build/smtp-sink $(TESTS)

deps:
	@scripts/deps

build/lib/%.o: lib/%.c lib/*.h | build/lib
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c -o $@ $<

build/asan/lib/%.o: lib/%.c lib/*.h | build/asan/lib
	$(CC) $(CFLAGS_COMMON) $(ASAN) -c -o $@ $<

build/libshop.a: $(LIB_OBJ)
	ar rcs $@ $^

build/asan/libshop.a: $(ASAN_OBJ)
	ar rcs $@ $^

# One FastCGI program per service: every .c in cgi/<service>/ plus lib/.
.SECONDEXPANSION:
build/%.fcgi: $$(wildcard cgi/$$*/*.c) $$(wildcard cgi/$$*/*.h) build/libshop.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -Icgi/$* -o $@ $(filter %.c,$^) build/libshop.a $(LIBS)

# The Galera node health endpoint HAProxy's DB listener checks.
build/galera-health: galera/health.c | build/lib
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -o $@ $< $(shell pkg-config --libs libmariadb)

# The local stack's mail relay (scripts/stack).
build/smtp-sink: scripts/smtp-sink.c | build/lib
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -o $@ $<

# Unit tests: tests/test_<module>.c links lib/ and, for tests of a service's
# store or handlers, that service's sources other than main.c; test_events_*
# the events/ library (broker, consume) and rabbitmq-c.
TEST_EXTRA = $(if $(filter test_auth_%,$*),$(filter-out %/main.c,$(wildcard cgi/auth/*.c)),) \
             $(if $(filter test_product_%,$*),$(filter-out %/main.c,$(wildcard cgi/product/*.c)),) \
             $(if $(filter test_order_%,$*),$(filter-out %/main.c,$(wildcard cgi/order/*.c)),) \
             $(if $(filter test_events_%,$*),-Ievents $(EVENTS_LIB),) \
             $(if $(filter test_mail,$*),events/mail.c,) \
             $(if $(filter test_revocation,$*),events/revocation.c,)
TEST_LIBS  = $(if $(filter test_events_%,$*),$(AMQP_LIBS),)

# The pool supervisor: runs one service's workers as that service's user.
build/shop-pool: pool/shop-pool.c build/libshop.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -o $@ $< build/libshop.a $(LIBS)

build/tests/%: tests/%.c tests/cunit_main.h tests/test_db_env.h build/libshop.a $(EVENTS_LIB) $(EVENTS_H) events/mail.c events/revocation.c | build/tests
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -Icgi -Ievents -o $@ $< $(TEST_EXTRA) build/libshop.a $(LIBS) $(TEST_LIBS) -lcunit

build/asan/tests/%: tests/%.c tests/cunit_main.h tests/test_db_env.h build/asan/libshop.a $(EVENTS_LIB) $(EVENTS_H) events/mail.c events/revocation.c | build/asan/tests
	$(CC) $(CFLAGS_COMMON) $(ASAN) -Icgi -Ievents -o $@ $< $(TEST_EXTRA) build/asan/libshop.a $(LIBS) $(TEST_LIBS) -lcunit

# The outbox relay (events/relay.c) and the consumers (events/shop-consume.c).
build/shop-relay: events/relay.c $(EVENTS_LIB) $(EVENTS_H) build/libshop.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -Ievents -o $@ $(filter %.c,$^) build/libshop.a $(LIBS) $(AMQP_LIBS)

build/shop-consume: $(CONSUME_SRC) $(EVENTS_LIB) $(EVENTS_H) cgi/product/store.h build/libshop.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -Ievents -Icgi/product -o $@ $(filter %.c,$^) build/libshop.a $(LIBS) $(AMQP_LIBS)

build/lib build/asan/lib build/tests build/asan/tests:
	mkdir -p $@

up: deps
	$(MAKE) all
	scripts/stack up

down:
	scripts/stack down

status:
	scripts/stack status

# mariabackup of the running stack (BACKUP=DIR names the directory) and the
# restore of one (docs/OPERATIONS.md, "Restoring from a backup").
backup: deps
	scripts/backup take $(BACKUP)

restore: deps
	@[ -n "$(BACKUP)" ] || { echo "usage: make restore BACKUP=<dir of make backup>" >&2; exit 2; }
	$(MAKE) all
	scripts/backup restore "$(BACKUP)"

check: deps
	$(MAKE) check-layers
	$(MAKE) all
	$(MAKE) check-unit
	$(MAKE) check-asan
	scripts/fuzz 10
	$(MAKE) check-monitoring
	$(MAKE) check-openapi
	$(MAKE) check-stack

# lib/ is a stack of layers: an include that goes up or sideways fails.
check-layers:
	scripts/check-layers

check-monitoring:
	scripts/check-monitoring

check-unit: $(TESTS)
	scripts/with-test-db scripts/run-unit $(TESTS)

check-asan: $(ASAN_TESTS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    scripts/with-test-db scripts/run-unit $(ASAN_TESTS)

# Redocly lints api/openapi.yaml (pinned npm tools, scripts/openapi).
check-openapi:
	scripts/openapi lint

# Every test's responses pass through Prism's validating proxy: a response
# that violates api/openapi.yaml fails the test.
check-integration: $(BINS)
	python3 tests/integration/run.py --prism

check-ha: $(BINS)
	python3 tests/integration/run.py --ha

# What make check runs: both of the above on one stack, the failure tests
# last (they break it on purpose), so the stack starts once, not twice.
check-stack: $(BINS)
	python3 tests/integration/run.py --prism --and-ha

# Not part of check: 10 minutes of mixed load with the edge fuzzer beside it
# (SHOP_SOAK_SECONDS, SHOP_SOAK_FUZZ), on a stack of its own.
soak: deps
	$(MAKE) all
	python3 tests/integration/run.py --soak

# The README's three-host deployment on three namespace hosts (root; CI runs
# it after `make check`; see README "Tests").
check-hosts: all
	scripts/check-hosts

install: all
	scripts/install "$(DESTDIR)" "$(PREFIX)"

fuzz:
	scripts/fuzz

monitor:
	scripts/monitor start

bench: deps
	$(MAKE) all
	bench/run

clean:
	rm -rf build
