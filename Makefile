# warmpool — plain Makefile (isolate's is the model).
#   make                      build bin/sandboxd bin/poold bin/poolctl
#   make test                 install missing deps, unit + system tests (root)
#   make run                  sandboxd + poold in the foreground on loopback
#   make bench                benchmark, table on stdout, JSON in bench/results.json
#   make install PREFIX=/usr/local DESTDIR=
#   make SANITIZE=address,undefined test

PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
PYTHON   ?= /usr/bin/python3

PKGS     := libev jansson libseccomp libcurl
WARN     := -Wall -Wextra -Werror=implicit-function-declaration -Wmissing-prototypes \
            -Wshadow -Wformat=2 -Wno-unused-parameter -Wno-format-truncation
HARDEN   := -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fstack-clash-protection -fPIE
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -D_GNU_SOURCE $(WARN) -Ilib
LDHARDEN := -pie -Wl,-z,relro,-z,now
LDLIBS   := -lev -ljansson -lseccomp -lhttp_parser -linih -lcrypto -lcurl -lm

ifdef SANITIZE
# the system tests skip (loudly) what a sanitized build cannot show: linking
# against the installed library, the images' package lists, a timed burst
export WARMPOOL_SANITIZE := $(SANITIZE)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -O1
LDFLAGS  += -fsanitize=$(SANITIZE)
HARDEN   := $(filter-out -D_FORTIFY_SOURCE=3,$(HARDEN))
endif
CFLAGS   += $(HARDEN)
LDFLAGS  += $(LDHARDEN)

LIB_SRC      := $(wildcard lib/*.c)
SANDBOXD_SRC := $(wildcard sandboxd/*.c)
POOLD_SRC    := $(wildcard poold/*.c)
LIB_OBJ      := $(LIB_SRC:%.c=build/%.o)
SANDBOXD_OBJ := $(SANDBOXD_SRC:%.c=build/%.o)
POOLD_OBJ    := $(POOLD_SRC:%.c=build/%.o)
UNIT_SRC     := $(wildcard tests/unit/test_*.c)
UNIT_BIN     := $(UNIT_SRC:tests/unit/%.c=build/tests/%)

BINS := bin/sandboxd
ifneq ($(POOLD_SRC),)
BINS += bin/poold
endif

.DEFAULT_GOAL := all
.PHONY: all test unit system run bench install install-systemd clean deps format format-check FORCE

# Objects depend on the flags they were built with: `make SANITIZE=…` after a
# plain build rebuilds everything instead of testing the old binaries.
FLAGS_STAMP := build/.flags
$(FLAGS_STAMP): FORCE
	@mkdir -p build
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@
all: $(BINS) sandboxd/runtimes/nodump.so

include client/client.mk
all: client
system: client-examples
install: install-client

# preloaded into the slots' interpreters (sandboxd/runtimes/nodump.c): plain
# flags, never the sanitizers (they would be loaded into python and node)
sandboxd/runtimes/nodump.so: sandboxd/runtimes/nodump.c
	@echo "  CC      $<"
	@$(CC) -O2 -Wall -Werror -shared -fPIC -o $@ $<

build/%.o: %.c $(wildcard lib/*.h sandboxd/*.h poold/*.h) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

build/lib/libwarmpool-common.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(AR) rcs $@ $^

bin/sandboxd: $(SANDBOXD_OBJ) build/lib/libwarmpool-common.a $(FLAGS_STAMP)
	@mkdir -p bin
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $(filter-out $(FLAGS_STAMP),$^) $(LDLIBS)

bin/poold: $(POOLD_OBJ) build/lib/libwarmpool-common.a $(FLAGS_STAMP)
	@mkdir -p bin
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $(filter-out $(FLAGS_STAMP),$^) $(LDLIBS)

# Unit tests link every module but the daemons' main.c.
build/tests/test_%: tests/unit/test_%.c $(filter-out build/sandboxd/main.o,$(SANDBOXD_OBJ)) build/lib/libwarmpool-common.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -iquote sandboxd $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

deps:
	@deploy/deps.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

system: all build/bench/loadgen
	$(PYTHON) -m pytest -q -ra tests/system

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory system

run: deps
	@$(MAKE) --no-print-directory all
	@deploy/run.sh

bench: deps
	@$(MAKE) --no-print-directory all build/bench/loadgen
	$(PYTHON) bench/bench.py

# the bench's load generator (bench/loadgen.c); the system tests build it too
build/bench/loadgen: bench/loadgen.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -ljansson -lhttp_parser

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/warmpool/languages
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 config/languages/*.conf $(DESTDIR)$(PREFIX)/share/warmpool/languages/
	install -d $(DESTDIR)$(PREFIX)/share/warmpool/runtimes
	install -m 0644 sandboxd/runtimes/pykernel.py sandboxd/runtimes/jskernel.js sandboxd/runtimes/nodump.so $(DESTDIR)$(PREFIX)/share/warmpool/runtimes/

format:
	clang-format -i lib/*.[ch] sandboxd/*.[ch] poold/*.[ch] client/*.[ch] client/examples/*.c tests/unit/*.c bench/*.c

format-check:
	clang-format --dry-run -Werror lib/*.[ch] sandboxd/*.[ch] poold/*.[ch] client/*.[ch] client/examples/*.c tests/unit/*.c bench/*.c

clean:
	rm -rf build bin

# systemd units (paths rewritten to PREFIX), sysusers entry, docs
install-systemd: install
	install -d $(DESTDIR)/etc/systemd/system/sandboxd.service.d $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)$(PREFIX)/share/doc/warmpool
	for u in sandboxd poold; do sed 's|/usr/local/|$(PREFIX)/|g' deploy/systemd/$$u.service > $(DESTDIR)/etc/systemd/system/$$u.service; done
	install -m 0644 deploy/systemd/sandboxd.service.d/listen-tcp.conf $(DESTDIR)/etc/systemd/system/sandboxd.service.d/listen-tcp.conf.example
	install -m 0644 deploy/systemd/warmpool.sysusers $(DESTDIR)/usr/lib/sysusers.d/warmpool.conf
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/warmpool/
