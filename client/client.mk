# client/client.mk — libwarmpool (shared and static) and poolctl, included by
# the top Makefile after its `all:` rule. The client stands alone: libcurl and
# jansson, never lib/ (so no -Ilib here).
#
#   make client            bin/poolctl, build/libwarmpool.so, build/libwarmpool.a
#   make client-examples   build/examples/run_submission (built by make test)
#   make install-client    header, libraries, pkg-config file and poolctl under
#                          $(DESTDIR)$(PREFIX) (LIBDIR, INCLUDEDIR overridable)
#   make uninstall-client  removes them (make uninstall does too)

CLIENT_VERSION := $(VERSION)
CLIENT_SONAME  := libwarmpool.so.0
LIBDIR         ?= $(PREFIX)/lib
# warmpool.pc links with an rpath to LIBDIR unless it is one the loader
# searches anyway: a program built with pkg-config runs without
# LD_LIBRARY_PATH wherever PREFIX is
CLIENT_SYSTEM_LIBDIRS := /lib /usr/lib /lib64 /usr/lib64 /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)
CLIENT_PC_RPATH = $(if $(filter $(LIBDIR),$(CLIENT_SYSTEM_LIBDIRS)),,-Wl,-rpath,$${libdir})
INCLUDEDIR     ?= $(PREFIX)/include

# The project's flags but -Ilib (and -fPIE: each rule says PIC or PIE), then
# the user's CPPFLAGS and CFLAGS, as in the top Makefile.
CLIENT_CFLAGS   = -D_GNU_SOURCE -DWP_VERSION='"$(CLIENT_VERSION)"' -Iclient $(CPPFLAGS) \
		  $(filter-out -fPIE,$(WP_CFLAGS)) $(CFLAGS)
CLIENT_SOFLAGS  = $(filter-out -pie,$(WP_LDFLAGS)) $(LDFLAGS)
CLIENT_LDLIBS  := -lcurl -ljansson -lm

CLIENT_LIB_SRC := client/warmpool.c client/results.c client/run_request.c
CLIENT_LIB_OBJ := $(CLIENT_LIB_SRC:%.c=build/pic/%.o)
POOLCTL_SRC    := $(wildcard client/poolctl*.c)
POOLCTL_OBJ    := $(POOLCTL_SRC:%.c=build/%.o)

.PHONY: client client-examples install-client uninstall-client

client: bin/poolctl build/libwarmpool.so build/libwarmpool.a

client-examples: build/examples/run_submission

# Library objects: position-independent for the .so and the .a alike, and
# every symbol hidden but the WP_PUBLIC ones.
# Headers: -MMD -MP, as in the top Makefile.
$(CLIENT_LIB_OBJ): build/pic/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CLIENT_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<

build/libwarmpool.so: $(CLIENT_LIB_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,$(CLIENT_SONAME) -Wl,--no-undefined $(CLIENT_SOFLAGS) -o $@ $^ $(CLIENT_LDLIBS) $(LDLIBS)
	@ln -sf libwarmpool.so build/$(CLIENT_SONAME)

build/libwarmpool.a: $(CLIENT_LIB_OBJ)
	@echo "  AR      $@"
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(POOLCTL_OBJ): build/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CLIENT_CFLAGS) -fPIE -MMD -MP -c -o $@ $<

# poolctl carries the library inside: nothing to find at run time.
bin/poolctl: $(POOLCTL_OBJ) build/libwarmpool.a
	@mkdir -p bin
	@echo "  LD      $@"
	$(Q)$(CC) $(FINAL_LDFLAGS) -o $@ $(filter-out $(FLAGS_STAMP),$^) $(CLIENT_LDLIBS) $(LDLIBS)

# The example links the shared library, as a backend would (and so proves
# that what it needs is exported); it finds it next door at run time.
build/examples/run_submission: client/examples/run_submission.c client/warmpool.h build/libwarmpool.so
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CLIENT_CFLAGS) -fPIE -MMD -MP $(FINAL_LDFLAGS) -o $@ $< -Lbuild -lwarmpool -Wl,-rpath,'$$ORIGIN/..' $(LDLIBS)

install-client: client
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0755 bin/poolctl $(DESTDIR)$(PREFIX)/bin/
	sed 's|"@VERSION@"|"$(CLIENT_VERSION)"|' client/warmpool.h > $(DESTDIR)$(INCLUDEDIR)/warmpool.h
	chmod 0644 $(DESTDIR)$(INCLUDEDIR)/warmpool.h
	install -m 0755 build/libwarmpool.so $(DESTDIR)$(LIBDIR)/libwarmpool.so.$(CLIENT_VERSION)
	ln -sf libwarmpool.so.$(CLIENT_VERSION) $(DESTDIR)$(LIBDIR)/$(CLIENT_SONAME)
	ln -sf $(CLIENT_SONAME) $(DESTDIR)$(LIBDIR)/libwarmpool.so
	install -m 0644 build/libwarmpool.a $(DESTDIR)$(LIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(CLIENT_VERSION)|g' -e 's|@RPATH@|$(CLIENT_PC_RPATH)|g' \
	    client/warmpool.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/warmpool.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/warmpool.pc
	@# installed for this host (no DESTDIR): the loader's cache learns the new library
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null 2>&1; then echo "  LDCONFIG"; ldconfig; fi

uninstall-client:
	rm -f $(DESTDIR)$(PREFIX)/bin/poolctl $(DESTDIR)$(INCLUDEDIR)/warmpool.h \
		$(DESTDIR)$(LIBDIR)/libwarmpool.so.$(CLIENT_VERSION) $(DESTDIR)$(LIBDIR)/$(CLIENT_SONAME) \
		$(DESTDIR)$(LIBDIR)/libwarmpool.so $(DESTDIR)$(LIBDIR)/libwarmpool.a $(DESTDIR)$(LIBDIR)/pkgconfig/warmpool.pc
