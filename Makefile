# popsift — see README.md.  `make check` and `make demo` install what they need.
# CFLAGS, CPPFLAGS and LDFLAGS from the environment are honoured (a
# package build passes dpkg-buildflags' hardening flags through them).
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libcurl libpcre2-8 sqlite3
WARN     = -Wall -Wextra -Wshadow -Wformat=2
# The one release number is src/version.h's (popsift --version, make dist).
VERSION := $(shell sed -n 's/^\#define POPSIFT_VERSION "\(.*\)"/\1/p' src/version.h)
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread

# `make check SANITIZE=1`: ASan + UBSan, built apart (build/asan/,
# ./popsift-asan) so the two builds never mix.
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
OBJDIR   = build/asan
BIN      = popsift-asan
else
OBJDIR   = build/obj
BIN      = popsift
endif
UNITDIR  = $(OBJDIR)/unit

SRCS    := $(wildcard src/*.c)
OBJS    := $(patsubst src/%.c,$(OBJDIR)/%.o,$(SRCS))
LIBOBJS := $(filter-out $(OBJDIR)/main.o,$(OBJS))
UNITS   := $(patsubst tests/unit/%.c,$(UNITDIR)/%,$(wildcard tests/unit/test-*.c))

all: $(BIN)

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(OBJDIR)/%.o: src/%.c src/*.h
	@mkdir -p $(OBJDIR)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(UNITDIR)/test-%: tests/unit/test-%.c tests/unit/unit.h $(LIBOBJS)
	@mkdir -p $(UNITDIR)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

deps:
	@sh tests/deps.sh

demo: deps $(BIN)
	@POPSIFT=$(CURDIR)/$(BIN) sh tests/demo.sh

units: $(UNITS)

check: deps $(BIN) units
	@POPSIFT=$(CURDIR)/$(BIN) UNITDIR=$(UNITDIR) POPSIFT_SANITIZE=$(SANITIZE) sh tests/run.sh

valgrind: deps popsift units
	@mkdir -p tests/out && sh tests/valgrind.sh

bench: deps $(BIN)
	@sh bench/run.sh

# Installs the binary, the manuals, the bash and zsh completions and the
# systemd user units (their ExecStart names $(PREFIX)/bin/popsift).
BINDIR   = $(PREFIX)/bin
MANDIR   = $(PREFIX)/share/man
BASHCOMP = $(PREFIX)/share/bash-completion/completions
ZSHCOMP  = $(PREFIX)/share/zsh/vendor-completions
UNITDIR_USER = $(PREFIX)/lib/systemd/user
UNITS_USER = popsift.service popsift-run.service popsift-run.timer \
	     popsift-logrotate.service popsift-logrotate.timer

install: popsift
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(BASHCOMP) $(DESTDIR)$(ZSHCOMP) $(DESTDIR)$(UNITDIR_USER)
	install -m 0755 popsift $(DESTDIR)$(BINDIR)/popsift
	install -m 0644 doc/popsift.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 doc/popsift.conf.5 doc/popsift.rules.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 contrib/popsift.bash $(DESTDIR)$(BASHCOMP)/popsift
	install -m 0644 contrib/_popsift $(DESTDIR)$(ZSHCOMP)/_popsift
	for u in $(UNITS_USER); do \
		sed 's|/usr/local/bin/popsift|$(BINDIR)/popsift|g' contrib/$$u >$(DESTDIR)$(UNITDIR_USER)/$$u && \
		chmod 0644 $(DESTDIR)$(UNITDIR_USER)/$$u || exit 1; \
	done

# `make dist`: popsift-VERSION.tar.gz of the tracked files (git archive of
# HEAD in a git checkout; else this tree without what builds make), which
# builds and runs `make check` on its own.  Without git the tarball is
# written outside the tree first (tar fails on a directory that changes).
DIST = popsift-$(VERSION)

version:
	@echo $(VERSION)

dist:
	@test -n "$(VERSION)" || { echo "dist: no POPSIFT_VERSION in src/version.h" >&2; exit 1; }
	rm -f $(DIST).tar.gz
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && \
	   [ "$$(git rev-parse --show-toplevel)" = "$$(pwd -P)" ]; then \
		git -c tar.umask=0022 archive --format=tar.gz --prefix=$(DIST)/ -o $(DIST).tar.gz HEAD; \
	else \
		t=$$(mktemp) && trap 'rm -f "$$t"' EXIT && \
		tar -czf "$$t" --transform 's|^\.|$(DIST)|' \
			--exclude=./.git --exclude=./build --exclude=./tests/out \
			--exclude=./popsift --exclude=./popsift-asan --exclude='./popsift-*.tar.gz' \
			--exclude='__pycache__' --exclude='*.o' \
			--exclude=./debian/popsift --exclude=./debian/popsift-dbgsym \
			--exclude=./debian/tmp --exclude=./debian/.debhelper \
			--exclude='./debian/*.substvars' --exclude='./debian/*.log' \
			--exclude=./debian/files --exclude=./debian/debhelper-build-stamp \
			. && chmod 0644 "$$t" && mv "$$t" $(DIST).tar.gz; \
	fi
	@echo "dist: $(DIST).tar.gz"

clean:
	rm -rf popsift popsift-asan build src/*.o $(patsubst %.c,%,$(wildcard tests/unit/test-*.c))

.PHONY: all deps demo units check valgrind bench install version dist clean

# libFuzzer targets (tests/fuzz/fuzz-*.c; Debian: clang, libclang-rt-14-dev).
# `make fuzz FUZZ_SECONDS=N` builds them apart in build/fuzz/ and runs
# each for N seconds from tests/fuzz/corpus/<target>/; fails on a crash.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZDIR       = build/fuzz
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer $(WARN) \
		$(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
		-Wno-format-nonliteral \
		-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIBOBJS := $(patsubst src/%.c,$(FUZZDIR)/obj/%.o,$(filter-out src/main.c,$(SRCS)))
FUZZ_BINS    := $(patsubst tests/fuzz/%.c,$(FUZZDIR)/%,$(wildcard tests/fuzz/fuzz-*.c))

$(FUZZDIR)/obj/%.o: src/%.c src/*.h
	@mkdir -p $(FUZZDIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZDIR)/fuzz-%: tests/fuzz/fuzz-%.c $(FUZZ_LIBOBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc -fsanitize=fuzzer -o $@ $< $(FUZZ_LIBOBJS) $(LDLIBS)

fuzz-deps:
	@sh tests/deps.sh clang libclang-rt-14-dev

fuzz-build: fuzz-deps $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZDIR=$(FUZZDIR) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh

.SECONDARY: $(FUZZ_LIBOBJS)
.PHONY: fuzz fuzz-build fuzz-deps
