# client/client.mk — libwarmpool (shared and static) and poolctl, included by
# the top Makefile after its `all:` rule. The client stands alone: libcurl and
# jansson, never lib/ (so -Ilib is filtered out of CFLAGS).
#
#   make client            bin/poolctl, build/libwarmpool.so, build/libwarmpool.a
#   make client-examples   build/examples/run_submission (built by make test)
#   make install-client    header, libraries, pkg-config file and poolctl under
#                          $(DESTDIR)$(PREFIX) (LIBDIR, INCLUDEDIR overridable)

CLIENT_VERSION := 0.1.0
CLIENT_SONAME  := libwarmpool.so.0
LIBDIR         ?= $(PREFIX)/lib
INCLUDEDIR     ?= $(PREFIX)/include

# recursive (=): CFLAGS and LDFLAGS may still grow after this file is read
CLIENT_CFLAGS   = $(filter-out -Ilib -fPIE,$(CFLAGS)) -Iclient
CLIENT_SOFLAGS  = $(filter-out -pie,$(LDFLAGS))
CLIENT_LDLIBS  := -lcurl -ljansson -lm

CLIENT_LIB_SRC := client/warmpool.c client/results.c client/run_request.c
CLIENT_LIB_OBJ := $(CLIENT_LIB_SRC:%.c=build/pic/%.o)
POOLCTL_SRC    := $(wildcard client/poolctl*.c)
POOLCTL_OBJ    := $(POOLCTL_SRC:%.c=build/%.o)
CLIENT_HDR     := client/warmpool.h client/wp_internal.h

.PHONY: client client-examples install-client

client: bin/poolctl build/libwarmpool.so build/libwarmpool.a

client-examples: build/examples/run_submission

# Library objects: position-independent for the .so and the .a alike, and
# every symbol hidden but the WP_PUBLIC ones.
$(CLIENT_LIB_OBJ): build/pic/%.o: %.c $(CLIENT_HDR) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CLIENT_CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

build/libwarmpool.so: $(CLIENT_LIB_OBJ)
	@echo "  LD      $@"
	@$(CC) -shared -Wl,-soname,$(CLIENT_SONAME) -Wl,--no-undefined $(CLIENT_SOFLAGS) -o $@ $^ $(CLIENT_LDLIBS)
	@ln -sf libwarmpool.so build/$(CLIENT_SONAME)

build/libwarmpool.a: $(CLIENT_LIB_OBJ)
	@echo "  AR      $@"
	@rm -f $@
	@$(AR) rcs $@ $^

$(POOLCTL_OBJ): build/%.o: %.c client/warmpool.h client/poolctl.h $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CLIENT_CFLAGS) -fPIE -c -o $@ $<

# poolctl carries the library inside: nothing to find at run time.
bin/poolctl: $(POOLCTL_OBJ) build/libwarmpool.a
	@mkdir -p bin
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(CLIENT_LDLIBS)

# The example links the shared library, as a backend would (and so proves
# that what it needs is exported); it finds it next door at run time.
build/examples/run_submission: client/examples/run_submission.c client/warmpool.h build/libwarmpool.so
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CLIENT_CFLAGS) -fPIE $(LDFLAGS) -o $@ $< -Lbuild -lwarmpool -Wl,-rpath,'$$ORIGIN/..'

install-client: client
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0755 bin/poolctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 client/warmpool.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 0755 build/libwarmpool.so $(DESTDIR)$(LIBDIR)/libwarmpool.so.$(CLIENT_VERSION)
	ln -sf libwarmpool.so.$(CLIENT_VERSION) $(DESTDIR)$(LIBDIR)/$(CLIENT_SONAME)
	ln -sf $(CLIENT_SONAME) $(DESTDIR)$(LIBDIR)/libwarmpool.so
	install -m 0644 build/libwarmpool.a $(DESTDIR)$(LIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(CLIENT_VERSION)|g' client/warmpool.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/warmpool.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/warmpool.pc
