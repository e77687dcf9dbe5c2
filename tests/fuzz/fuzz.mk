# tests/fuzz/fuzz.mk — libFuzzer targets (tests/fuzz/README.md), included by
# the top Makefile. Built with clang (Debian: clang-14, libclang-rt-14-dev)
# under ASan and UBSan, into build/fuzz/ with objects of their own (never
# mixed with the daemons' objects).
#
#   make fuzz-build          build/fuzz/fuzz_<target>
#   make fuzz-short          every target for FUZZ_SHORT_TIME s (make test runs it)
#   make fuzz                every target for FUZZ_TIME s (default 300), new
#                            inputs kept in build/fuzz/corpus/<target>/
#   make fuzz FUZZ_TARGETS=multipart FUZZ_TIME=3600

FUZZ_CC         ?= clang-14
FUZZ_TIME       ?= 300
FUZZ_SHORT_TIME ?= 5
FUZZ_ALL        := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS    ?= $(FUZZ_ALL)

FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS    = -D_GNU_SOURCE -DWARMPOOL_VERSION='"$(VERSION)"' -Ilib -std=gnu11 -g -O1 $(WARN) \
		 -Wno-unknown-warning-option -Wno-missing-field-initializers $(FUZZ_SAN) -fsanitize=fuzzer-no-link
# the daemon whose modules (all but main.o) a target links, and sees the
# headers of; lib/ alone when not listed
FUZZ_DAEMON_json_body      := sandboxd
FUZZ_DAEMON_config         := sandboxd
FUZZ_DAEMON_sandboxd_conf  := sandboxd
FUZZ_DAEMON_init_msg       := sandboxd
FUZZ_DAEMON_poold_conf     := poold
# libFuzzer: a hang (-timeout) or more than -rss_limit_mb is a finding too
FUZZ_RUN_FLAGS := -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1

FUZZ_OBJ_lib      := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
FUZZ_OBJ_sandboxd := $(filter-out build/fuzz/obj/sandboxd/main.o,$(SANDBOXD_SRC:%.c=build/fuzz/obj/%.o))
FUZZ_OBJ_poold    := $(filter-out build/fuzz/obj/poold/main.o,$(POOLD_SRC:%.c=build/fuzz/obj/%.o))
FUZZ_BIN          := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
# made through pattern rules only: keep them (make deletes intermediates)
.SECONDARY: $(FUZZ_OBJ_lib) $(FUZZ_OBJ_sandboxd) $(FUZZ_OBJ_poold)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC/FUZZ $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $$(FUZZ_OBJ_$$(FUZZ_DAEMON_$$*)) $(FUZZ_OBJ_lib)
	@mkdir -p $(dir $@)
	@echo "  LD/FUZZ $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(if $(FUZZ_DAEMON_$*),-iquote $(FUZZ_DAEMON_$*)) -fsanitize=fuzzer -MMD -MP \
		-o $@ $< $(FUZZ_OBJ_$(FUZZ_DAEMON_$*)) $(FUZZ_OBJ_lib) $(ALL_LIBS)

fuzz-build: $(FUZZ_BIN)

# One run per target: the seeds first (tests/fuzz/corpus/<target>/, the
# regression inputs included), then mutations for the time given. New inputs
# go to build/fuzz/corpus/<target>/, crashes to build/fuzz/crash-<target>-*.
# The log of a failing target is printed; make stops at the first.
define fuzz_run
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus/$$t; \
		log=build/fuzz/fuzz_$$t.log; \
		dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
		printf '  FUZZ    %-16s %ss ' $$t $(1); \
		if build/fuzz/fuzz_$$t $(FUZZ_RUN_FLAGS) $$dict -max_total_time=$(1) \
			-artifact_prefix=build/fuzz/crash-$$t- \
			build/fuzz/corpus/$$t tests/fuzz/corpus/$$t > $$log 2>&1; then \
			grep -ho 'stat::number_of_executed_units: *[0-9]*' $$log | awk '{n += $$2} END {printf "%d runs\n", n}'; \
		else \
			echo FAILED; tail -n 60 $$log; \
			echo "fuzz_$$t found a bug: reproduce with build/fuzz/fuzz_$$t build/fuzz/crash-$$t-*" >&2; exit 1; \
		fi; \
	done
endef

fuzz-short: fuzz-build
	$(call fuzz_run,$(FUZZ_SHORT_TIME))

fuzz: fuzz-build
	$(call fuzz_run,$(FUZZ_TIME))
