# attestfs — `make`, `make check`, `make demo`, `make bench`, `make soak`, `make install PREFIX=...`, `make V=1`.
PREFIX ?= /usr/local
CACHE ?= $(HOME)/.cache/attestfs
CC ?= cc
PKGS := fuse3 json-c libcurl
# libcurl's headers only: backends/rest.c loads it (LIBCURL) at the first
# REST call, so daemons of QEMU machines do not carry its 6 MiB
LINK_PKGS := fuse3 json-c
LIBCURL ?= libcurl.so.4
# only in attestfs-ocr, the child behind screen.txt: the daemon stays small
OCR_PKGS := tesseract lept
LIB_PKGS := json-c
# attestfs's own version: one definition, the VERSION file (--version, man page)
VERSION := $(shell cat VERSION)

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
BASE_CFLAGS := -std=gnu11 $(WARN) -I. -D_GNU_SOURCE -pthread \
	-DATTESTFS_VERSION='"$(VERSION)"' -DREST_LIBCURL='"$(LIBCURL)"'
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS := $(wildcard common/*.c) $(wildcard machine/*.c) $(wildcard backends/*.c)
FS_SRCS := $(wildcard fs/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,build/unit/%,$(UNIT_SRCS))

# the guest agent (machine/agent/): static x86_64 without a libc, embedded
# into the daemon as a C array, uploaded to each guest shell once per boot
AGENT_CC ?= gcc
AGENT_FLAGS := -std=gnu11 $(WARN) -DAGENT_NOLIBC -Os -static -nostdlib \
	-ffreestanding -fno-builtin -fno-stack-protector -fno-pie -no-pie \
	-fno-asynchronous-unwind-tables -fno-unwind-tables -ffunction-sections \
	-fdata-sections -Wl,--gc-sections -Wl,--build-id=none -Wl,-n \
	-Wl,-z,norelro -Wl,--no-warn-rwx-segments -s
AGENT_BLOB := build/agent/agent_blob.c
LIB_SRCS += $(AGENT_BLOB)
# the pty helper of jobs/<j>/ctl "tty" (machine/agent/pty.c), built the same way
PTY_BLOB := build/agent/pty_blob.c
LIB_SRCS += $(PTY_BLOB)

LIB_OBJS := $(patsubst %.c,build/obj/%.o,$(LIB_SRCS))
FS_OBJS := $(patsubst %.c,build/obj/%.o,$(FS_SRCS))
# fs/ but main() goes into the unit tests too (tests/unit/test_nodes.c checks
# the node table and its kinds' operations)
FS_UNIT_SRCS := $(filter-out fs/main.c,$(FS_SRCS))
SAN_LIB_OBJS := $(patsubst %.c,build/san/%.o,$(LIB_SRCS) $(FS_UNIT_SRCS))

# libFuzzer targets (tests/fuzz/): the library again, built by clang with
# coverage for the fuzzer, ASan and UBSan, in its own object directory
FUZZ_CC ?= clang
FUZZ_RUNS ?= 10000000
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -O1 -g
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB_OBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRCS) $(FS_UNIT_SRCS))

all: attestfs attestfs-ocr attestfs-run attestfs-shell build/bench-client build/guest-insns.so \
	build/man/attestfs.1 build/agent/attestfs-vsock-listen

attestfs: $(FS_OBJS) build/libattest.a
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -pthread -o $@ $^ $(PKG_LIBS)

attestfs-ocr: ocr/attestfs-ocr.c
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) $(shell pkg-config --cflags $(OCR_PKGS)) \
		-o $@ $< $(shell pkg-config --libs $(OCR_PKGS))

# the test wrapper: namespaces and processes only, no FUSE, no VMs
attestfs-run: run/attestfs-run.c build/obj/common/util.o
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $^

# a terminal in a guest through the mount's jobs: a client, no libraries
attestfs-shell: run/attestfs-shell.c
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $<

build/agent/attestfs-agent: machine/agent/agent.c
	@mkdir -p $(dir $@)
	@echo "  AGENT   $<"
	$(Q)$(AGENT_CC) $(AGENT_FLAGS) -o $@ $<

$(AGENT_BLOB): build/agent/attestfs-agent
	@echo "  GEN     $@"
	$(Q){ echo '#include "machine/shell.h"'; \
	  echo 'const unsigned char shell_agent_blob[] = {'; \
	  od -An -v -tu1 $< | sed 's/ *\([0-9][0-9]*\)/\1,/g'; \
	  echo '};'; \
	  echo 'const size_t shell_agent_blob_len = sizeof(shell_agent_blob);'; \
	} > $@.tmp && mv $@.tmp $@

# the version is compiled in (fs/main.c): a new one rebuilds it
build/obj/fs/main.o: VERSION

build/agent/attestfs-pty: machine/agent/pty.c machine/agent/nolibc.h
	@mkdir -p $(dir $@)
	@echo "  AGENT   $<"
	$(Q)$(AGENT_CC) $(AGENT_FLAGS) -o $@ $<

# the guest's vsock listener (machine/agent/vsock-listen.c): not embedded, the
# guest builders (tests/guest/build.sh) put it into the guests
build/agent/attestfs-vsock-listen: machine/agent/vsock-listen.c machine/agent/nolibc.h
	@mkdir -p $(dir $@)
	@echo "  AGENT   $<"
	$(Q)$(AGENT_CC) $(AGENT_FLAGS) -o $@ $<

build/unit/test_vsock: build/agent/attestfs-vsock-listen

$(PTY_BLOB): build/agent/attestfs-pty
	@echo "  GEN     $@"
	$(Q){ echo '#include "machine/jobs.h"'; \
	  echo 'const unsigned char job_pty_blob[] = {'; \
	  od -An -v -tu1 $< | sed 's/ *\([0-9][0-9]*\)/\1,/g'; \
	  echo '};'; \
	  echo 'const size_t job_pty_blob_len = sizeof(job_pty_blob);'; \
	} > $@.tmp && mv $@.tmp $@

build/libattest.a: $(LIB_OBJS)
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

build/obj/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

build/san/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  CC+SAN  $<"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) $(PKG_CFLAGS) -c -o $@ $<

build/unit/%: tests/unit/%.c $(SAN_LIB_OBJS) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC+SAN  $<"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) $(PKG_CFLAGS) -o $@ $< $(SAN_LIB_OBJS) \
		$(shell pkg-config --libs cmocka fuse3 $(LIB_PKGS)) -pthread

build/fuzz/obj/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  CLANG   $<"
	$(Q)$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
		$(PKG_CFLAGS) -c -o $@ $<

build/fuzz/libattest.a: $(FUZZ_LIB_OBJS)
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

build/fuzz/%: tests/fuzz/%.c build/fuzz/libattest.a $(wildcard tests/fuzz/*.h)
	@echo "  FUZZER  $<"
	$(Q)$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer $(PKG_CFLAGS) \
		-o $@ $< build/fuzz/libattest.a $(shell pkg-config --libs $(LIB_PKGS)) -pthread

build/bench-client: tests/bench/client.c build/libattest.a tests/unit/harness.h \
		tests/bench/stats.h tests/bench/fstx.h
	@mkdir -p build
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(filter-out %.h,$^) $(PKG_LIBS)

# bench: the mount side's timing client (tests/bench/bench.sh builds it)
build/bench-mount-client: tests/bench/mount-client.c tests/bench/stats.h tests/bench/fstx.h
	@mkdir -p build
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $<

# bench: the plugin that counts the guest's instructions (rows.d/60-guest-insns.sh)
build/guest-insns.so: tests/bench/guest-insns.c
	@mkdir -p build
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -fPIC -shared -fvisibility=hidden -o $@ $< -pthread

deps:
	$(Q)scripts/install-deps.sh

guest: deps build/agent/attestfs-vsock-listen
	$(Q)tests/guest/build.sh "$(CACHE)/guests"
	$(Q)mkdir -p build && ln -sfn "$(CACHE)/guests" build/guests

# the debian systemd guest (mmdebstrap, needs root; about 40 s from scratch, cached afterwards)
guest-debian: deps build/agent/attestfs-vsock-listen
	$(Q)tests/guest/build.sh "$(CACHE)/guests" debian
	$(Q)mkdir -p build && ln -sfn "$(CACHE)/guests" build/guests

unit: $(UNIT_BINS)
	$(Q)tests/run-unit.sh $(UNIT_BINS)

# FUZZ_RUNS executions of each target, one after the other
fuzz: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh $(FUZZ_RUNS) $(FUZZ_BINS)

# the contract tests' syscall helper (errno names)
build/fsop: tests/contract/fsop.c
	@mkdir -p build
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $<

# the FUSE contract on the mock backend: no guest, no VM lock, seconds
contract: all build/fsop
	$(Q)bats --tap tests/contract

# the Python driver (python/attestfs_nixos): its names against the pinned NixOS
# driver's, and its behaviour on mock mounts (no guest, no VM lock); TAP
pytest: all
	$(Q)python3 tests/python/tap.py

integration: all guest
	$(Q)ATTESTFS_CACHE="$(CACHE)" bats --tap --timing tests/integration

check: deps
	$(Q)$(MAKE) --no-print-directory all build/fsop $(UNIT_BINS) $(FUZZ_BINS)
	$(Q)$(MAKE) --no-print-directory guest
	$(Q)if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory guest-debian; \
	else echo "not root: the debian guest is not built, its tests will skip"; fi
	$(Q)ATTESTFS_CACHE="$(CACHE)" FUZZ_BINS="$(FUZZ_BINS)" tests/run-check.sh $(UNIT_BINS)

demo: deps
	$(Q)$(MAKE) --no-print-directory all guest
	$(Q)ATTESTFS_CACHE="$(CACHE)" examples/run-demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all guest
	$(Q)ATTESTFS_CACHE="$(CACHE)" tests/bench/bench.sh

# minutes, not in check: 10,000 commands and 1,000 waits over 4 tiny guests;
# fails unless the daemon's RSS and open fds stay flat
soak: deps
	$(Q)$(MAKE) --no-print-directory all guest
	$(Q)ATTESTFS_CACHE="$(CACHE)" tests/soak/soak.sh

# the man page carries the version of the VERSION file
build/man/attestfs.1: man/attestfs.1 VERSION
	@mkdir -p $(dir $@)
	$(Q)sed 's/@VERSION@/$(VERSION)/g' $< > $@

install: attestfs attestfs-ocr attestfs-run attestfs-shell build/man/attestfs.1
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 build/man/attestfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/attestfs.1
	install -m 0755 attestfs $(DESTDIR)$(PREFIX)/bin/attestfs
	install -m 0755 attestfs-ocr $(DESTDIR)$(PREFIX)/bin/attestfs-ocr
	install -m 0755 attestfs-run $(DESTDIR)$(PREFIX)/bin/attestfs-run
	install -d $(DESTDIR)$(PREFIX)/lib/attestfs/python/attestfs_nixos
	install -m 0644 python/attestfs_nixos/*.py $(DESTDIR)$(PREFIX)/lib/attestfs/python/attestfs_nixos/
	install -m 0755 python/bin/attestfs-test-driver $(DESTDIR)$(PREFIX)/bin/attestfs-test-driver
	install -m 0755 attestfs-shell $(DESTDIR)$(PREFIX)/bin/attestfs-shell

clean:
	rm -rf build attestfs attestfs-ocr attestfs-run attestfs-shell

.PHONY: all deps guest guest-debian unit fuzz contract pytest integration check demo bench soak install clean
.SECONDARY:
