# warmpool — plain Makefile (isolate's is the model).
#   make                      build bin/sandboxd bin/poold bin/poolctl
#   make test                 install missing deps, unit, short fuzz and system tests (root)
#   make unit                 unit tests only
#   make fuzz                 every libFuzzer target for FUZZ_TIME seconds (tests/fuzz/README.md)
#   make run                  sandboxd + poold in the foreground on loopback
#   make bench                benchmark, table on stdout, JSON in bench/results.json
#   make install PREFIX=/usr/local DESTDIR=      (make uninstall with the same)
#   make install-systemd PREFIX=/usr/local DESTDIR=
#   make SANITIZE=address,undefined test
#   make V=1                  show the compile and link lines
#
# CFLAGS, CPPFLAGS, LDFLAGS and LDLIBS are the user's: they are added after
# the project's flags (so CFLAGS=-O0 changes the optimisation and keeps the
# include paths, warnings and hardening), never instead of them.

VERSION  := 0.1.0

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/warmpool
DOCDIR     ?= $(PREFIX)/share/doc/warmpool
# the daemons read /etc/warmpool/*.conf unless told otherwise (--config)
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d

CC       ?= cc
PYTHON   ?= /usr/bin/python3
ifdef SANITIZE
CFLAGS   ?= -O1 -g
else
CFLAGS   ?= -O2 -g
endif
CPPFLAGS ?=
LDFLAGS  ?=
LDLIBS   ?=

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN     := -Wall -Wextra -Werror=implicit-function-declaration -Wmissing-prototypes \
            -Wshadow -Wformat=2 -Wno-unused-parameter -Wno-format-truncation
HARDEN   := -fstack-protector-strong -fstack-clash-protection -fPIE
# _FORTIFY_SOURCE needs the optimiser (and fights ASan): only then
ifeq ($(filter -O0,$(CFLAGS))$(SANITIZE),)
HARDEN   += -D_FORTIFY_SOURCE=3
endif
LDHARDEN := -pie -Wl,-z,relro,-z,now
WP_CPPFLAGS := -D_GNU_SOURCE -DWARMPOOL_VERSION='"$(VERSION)"' -Ilib
WP_CFLAGS   := -std=gnu11 $(WARN) $(HARDEN)
WP_LDFLAGS  := $(LDHARDEN)

ifdef SANITIZE
# the system tests skip (loudly) what a sanitized build cannot show: linking
# against the installed library, the images' package lists, a timed burst
export WARMPOOL_SANITIZE := $(SANITIZE)
WP_CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
WP_LDFLAGS += -fsanitize=$(SANITIZE)
endif

# what every compile and link line uses: the project's flags, then the user's
FINAL_CFLAGS  = $(WP_CPPFLAGS) $(CPPFLAGS) $(WP_CFLAGS) $(CFLAGS)
FINAL_LDFLAGS = $(WP_LDFLAGS) $(LDFLAGS)

# Each program links what it uses (lib/ is an archive: only the objects a
# program needs are pulled in). Unit tests and fuzz targets link them all.
COMMON_LIBS   := -lev -ljansson -lhttp_parser -linih
# libssl: TLS listeners (lib/tls.c); libcrypto: base64 too; libm: ceil() in
# run.c, inlined by the optimiser but a call at -O0
SANDBOXD_LIBS := $(COMMON_LIBS) -lseccomp -lssl -lcrypto -lm
POOLD_LIBS    := $(COMMON_LIBS) -lcurl -lssl -lcrypto -lm
ALL_LIBS      := $(COMMON_LIBS) -lseccomp -lcurl -lssl -lcrypto -lm

LIB_SRC      := $(wildcard lib/*.c)
SANDBOXD_SRC := $(wildcard sandboxd/*.c)
POOLD_SRC    := $(wildcard poold/*.c)
LIB_OBJ      := $(LIB_SRC:%.c=build/%.o)
SANDBOXD_OBJ := $(SANDBOXD_SRC:%.c=build/%.o)
POOLD_OBJ    := $(POOLD_SRC:%.c=build/%.o)
# the daemons' modules without main(): for unit tests and fuzz targets
SANDBOXD_MODS := $(filter-out build/sandboxd/main.o,$(SANDBOXD_OBJ))
POOLD_MODS    := $(filter-out build/poold/main.o,$(POOLD_OBJ))
COMMON_LIB   := build/lib/libwarmpool-common.a
UNIT_SRC     := $(wildcard tests/unit/test_*.c)
UNIT_BIN     := $(UNIT_SRC:tests/unit/%.c=build/tests/%)

BINS := bin/sandboxd
ifneq ($(POOLD_SRC),)
BINS += bin/poold
endif

.DEFAULT_GOAL := all
.PHONY: all test unit system fuzz fuzz-short fuzz-build run bench install install-systemd uninstall \
	clean deps format format-check FORCE

# Objects depend on the flags they were built with: `make SANITIZE=…` after a
# plain build rebuilds everything instead of testing the old binaries.
FLAGS_STAMP := build/.flags
$(FLAGS_STAMP): FORCE
	@mkdir -p build
	@echo '$(CC) $(FINAL_CFLAGS) $(FINAL_LDFLAGS) $(LDLIBS)' | cmp -s - $@ || \
		echo '$(CC) $(FINAL_CFLAGS) $(FINAL_LDFLAGS) $(LDLIBS)' > $@
all: $(BINS) sandboxd/runtimes/nodump.so

include client/client.mk
all: client
system: client-examples
install: install-client
uninstall: uninstall-client

# preloaded into the slots' interpreters (sandboxd/runtimes/nodump.c): plain
# flags, never the sanitizers (they would be loaded into python and node)
sandboxd/runtimes/nodump.so: sandboxd/runtimes/nodump.c
	@echo "  CC      $<"
	@$(CC) -O2 -Wall -Werror -shared -fPIC -o $@ $<

# Python's fork-server (sandboxd/runtimes/pyfork.py) as bytecode for the
# slots' interpreter, /usr/bin/python3 (python.conf runs it): a script is
# never read from a .pyc, and compiling pyfork.py was ~4 ms of each Python
# slot's ~34 ms of CPU. Its code objects name /opt/warmpool/pyfork.py, where
# the source sits in a slot. Made again whenever pyfork.py changes.
SLOT_PYTHON ?= /usr/bin/python3
all: sandboxd/runtimes/pyfork.pyc
sandboxd/runtimes/pyfork.pyc: sandboxd/runtimes/pyfork.py
	@echo "  PYC     $@"
	@if [ -x $(SLOT_PYTHON) ]; then \
		$(SLOT_PYTHON) -I -c 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2] + ".tmp", \
			dfile="/opt/warmpool/pyfork.py", doraise=True, \
			invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)' $< $@ && \
		chmod 0444 $@.tmp && mv -f $@.tmp $@; \
	else \
		rm -f $@; echo "  warning: no $(SLOT_PYTHON): no pyfork.pyc, Python slots run their test cases without the fork-server"; \
	fi

# the compile server of Java slots (sandboxd/runtimes/JavacServer.java, its
# JNI part javacserver.c), built with the host's JDK, the one the slots run
JAVA_HOME ?= /usr/lib/jvm/java-17-openjdk-amd64
ifneq ($(wildcard $(JAVA_HOME)/bin/javac),)
all: sandboxd/runtimes/javacserver.jar sandboxd/runtimes/libjavacserver.so sandboxd/runtimes/javacserver.jsa
INSTALL_JAVAC := javacserver.jar libjavacserver.so
endif
# The class archive of the compile server (java.conf's -XX:SharedArchiveFile):
# javac's classes as this JDK loads them, dumped by a javac run with the
# server's JVM flags; it cuts a compile server's start and warm-up CPU by a
# third. Made with no class path, so any -cp may use it; checked with
# -Xshare:on before it replaces the last one (a damaged archive crashes the
# JVM that maps it). A JDK update makes it stale: the JVM then ignores it,
# and `make` makes it again (it depends on the JDK's own archive).
JAVAC_CDS_FLAGS := -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData
sandboxd/runtimes/javacserver.jsa: sandboxd/runtimes/JavacServer.java $(wildcard $(JAVA_HOME)/lib/server/classes.jsa)
	@echo "  CDS     $@"
	@rm -rf build/javacserver-cds && mkdir -p build/javacserver-cds
	@if env -u CLASSPATH $(JAVA_HOME)/bin/java $(JAVAC_CDS_FLAGS) -XX:ArchiveClassesAtExit=build/javacserver-cds/a.jsa \
		-m jdk.compiler/com.sun.tools.javac.Main -proc:none -Xlint:all -d build/javacserver-cds $< >/dev/null 2>&1 && \
	    $(JAVA_HOME)/bin/java -Xshare:on $(JAVAC_CDS_FLAGS) -XX:SharedArchiveFile=build/javacserver-cds/a.jsa \
		-version >/dev/null 2>&1; then \
		chmod 0444 build/javacserver-cds/a.jsa && mv -f build/javacserver-cds/a.jsa $@; \
	else \
		rm -f $@; echo "  warning: this JDK made no usable class archive: Java slots start without it (slower)"; \
	fi
sandboxd/runtimes/javacserver.jar: sandboxd/runtimes/JavacServer.java
	@echo "  JAVAC   $<"
	@rm -rf build/javacserver && mkdir -p build/javacserver
	@$(JAVA_HOME)/bin/javac -Xlint:all -Werror -d build/javacserver $<
	@$(JAVA_HOME)/bin/jar --create --file $@ -C build/javacserver .
sandboxd/runtimes/libjavacserver.so: sandboxd/runtimes/javacserver.c
	@echo "  CC      $<"
	@$(CC) -O2 -Wall -Werror -shared -fPIC -I$(JAVA_HOME)/include -I$(JAVA_HOME)/include/linux -o $@ $<

# -MMD -MP: each object depends on the headers it includes (build/**/*.d)
build/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -MMD -MP -c -o $@ $<

$(COMMON_LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

bin/sandboxd: $(SANDBOXD_OBJ) $(COMMON_LIB) $(FLAGS_STAMP)
	@mkdir -p bin
	@echo "  LD      $@"
	$(Q)$(CC) $(FINAL_LDFLAGS) -o $@ $(filter-out $(FLAGS_STAMP),$^) $(SANDBOXD_LIBS) $(LDLIBS)

bin/poold: $(POOLD_OBJ) $(COMMON_LIB) $(FLAGS_STAMP)
	@mkdir -p bin
	@echo "  LD      $@"
	$(Q)$(CC) $(FINAL_LDFLAGS) -o $@ $(filter-out $(FLAGS_STAMP),$^) $(POOLD_LIBS) $(LDLIBS)

# Unit tests link lib/ and the modules (every object but main.o) of one
# daemon: sandboxd's, or poold's for the tests named in POOLD_UNIT_TESTS
# (test_queue.c → queue). The test sees that daemon's headers with
# #include "x.h" (-iquote). Only the sources, objects and archive are given
# to the compiler: the headers the .d file adds to the prerequisites are not.
POOLD_UNIT_TESTS ?= queue lease pool aca_exec ops_sync
unit_daemon = $(if $(filter $(1),$(POOLD_UNIT_TESTS)),poold,sandboxd)
UNIT_MODS_sandboxd := $(SANDBOXD_MODS)
UNIT_MODS_poold    := $(POOLD_MODS)

.SECONDEXPANSION:
build/tests/test_%: tests/unit/test_%.c $$(UNIT_MODS_$$(call unit_daemon,$$*)) $(COMMON_LIB) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(FINAL_CFLAGS) -MMD -MP -iquote $(call unit_daemon,$*) $(FINAL_LDFLAGS) -o $@ \
		$(filter %.c %.o %.a,$^) $(ALL_LIBS) -lcmocka $(LDLIBS)

include tests/fuzz/fuzz.mk

deps:
	@deploy/deps.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

system: all build/bench/loadgen
	$(PYTHON) -m pytest -q -ra tests/system

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-short
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
	$(Q)$(CC) $(FINAL_CFLAGS) -MMD -MP $(FINAL_LDFLAGS) -o $@ $< -ljansson -lhttp_parser $(LDLIBS)

# What install puts where (uninstall removes the same list).
INSTALL_LANGS    := $(notdir $(wildcard config/languages/*.conf))
INSTALL_RUNTIMES = pykernel.py jskernel.js blocking-stdio.js nodump.so pyfork.py $(INSTALL_JAVAC)
INSTALL_DOCS     := $(notdir $(wildcard docs/*.md))
INSTALL_CONFS    := sandboxd.conf poold.conf

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/languages $(DESTDIR)$(DATADIR)/runtimes \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/warmpool
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(addprefix config/languages/,$(INSTALL_LANGS)) $(DESTDIR)$(DATADIR)/languages/
	install -m 0644 $(addprefix sandboxd/runtimes/,$(INSTALL_RUNTIMES)) $(DESTDIR)$(DATADIR)/runtimes/
	@# the class archive only when this JDK made one (see javacserver.jsa),
	@# pyfork's bytecode only when the build had the slots' python
	if [ -f sandboxd/runtimes/javacserver.jsa ]; then \
		install -m 0444 sandboxd/runtimes/javacserver.jsa $(DESTDIR)$(DATADIR)/runtimes/; fi
	if [ -f sandboxd/runtimes/pyfork.pyc ]; then \
		install -m 0444 sandboxd/runtimes/pyfork.pyc $(DESTDIR)$(DATADIR)/runtimes/; fi
	install -m 0644 $(addprefix docs/,$(INSTALL_DOCS)) $(DESTDIR)$(DOCDIR)/
	@# the configs: never over an existing one (it is the operator's); poold.conf holds token digests
	@set -e; for c in $(INSTALL_CONFS); do \
		dst=$(DESTDIR)$(SYSCONFDIR)/warmpool/$$c; \
		if [ -e "$$dst" ]; then echo "  kept    $$dst (exists)"; continue; fi; \
		sed 's|/usr/local/share/warmpool/|$(DATADIR)/|g' deploy/etc/$$c > "$$dst"; \
		chmod $$([ $$c = poold.conf ] && echo 0640 || echo 0644) "$$dst"; \
		echo "  CONF    $$dst"; \
	done

# systemd units (paths rewritten to BINDIR, SYSCONFDIR and DOCDIR), the
# sysusers entry for group warmpool, the listen_tcp drop-in as an example
install-systemd: install
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)/sandboxd.service.d $(DESTDIR)$(SYSUSERSDIR)
	for u in sandboxd poold; do \
		sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/warmpool/|$(SYSCONFDIR)/warmpool/|g' \
		    -e 's|/usr/local/share/doc/warmpool/|$(DOCDIR)/|g' \
		    deploy/systemd/$$u.service > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service; \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service; \
	done
	install -m 0644 deploy/systemd/sandboxd.service.d/listen-tcp.conf \
		$(DESTDIR)$(SYSTEMDUNITDIR)/sandboxd.service.d/listen-tcp.conf.example
	install -m 0644 deploy/systemd/warmpool.sysusers $(DESTDIR)$(SYSUSERSDIR)/warmpool.conf

# Removes what install and install-systemd put in place; a config is kept
# when it differs from the one install wrote (the operator changed it).
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(BINS)))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/languages/,$(INSTALL_LANGS))
	rm -f $(addprefix $(DESTDIR)$(DATADIR)/runtimes/,$(INSTALL_RUNTIMES) javacserver.jsa pyfork.pyc)
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(INSTALL_DOCS))
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/sandboxd.service $(DESTDIR)$(SYSTEMDUNITDIR)/poold.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/sandboxd.service.d/listen-tcp.conf.example \
		$(DESTDIR)$(SYSUSERSDIR)/warmpool.conf
	@set -e; for c in $(INSTALL_CONFS); do \
		dst=$(DESTDIR)$(SYSCONFDIR)/warmpool/$$c; \
		[ -e "$$dst" ] || continue; \
		if sed 's|/usr/local/share/warmpool/|$(DATADIR)/|g' deploy/etc/$$c | cmp -s - "$$dst"; then \
			rm -f "$$dst"; else echo "  kept    $$dst (changed)"; fi; \
	done
	-rmdir $(DESTDIR)$(DATADIR)/languages $(DESTDIR)$(DATADIR)/runtimes $(DESTDIR)$(DATADIR) \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/warmpool \
		$(DESTDIR)$(SYSTEMDUNITDIR)/sandboxd.service.d 2>/dev/null

FORMAT_FILES = lib/*.[ch] sandboxd/*.[ch] poold/*.[ch] client/*.[ch] client/examples/*.c tests/unit/*.c bench/*.c \
	tests/fuzz/*.[ch]
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
