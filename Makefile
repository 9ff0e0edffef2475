# popsift — see README.md.  `make check` and `make demo` install what they need.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libcurl libpcre2-8 sqlite3
WARN     = -Wall -Wextra -Wshadow -Wformat=2
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
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(OBJDIR)/%.o: src/%.c src/*.h
	@mkdir -p $(OBJDIR)
	$(CC) $(CFLAGS) -c -o $@ $<

$(UNITDIR)/test-%: tests/unit/test-%.c tests/unit/unit.h $(LIBOBJS)
	@mkdir -p $(UNITDIR)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

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

install: popsift
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 popsift $(DESTDIR)$(PREFIX)/bin/popsift
	for m in doc/*.1; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done
	for m in doc/*.5; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man5/ || true; done

clean:
	rm -rf popsift popsift-asan build src/*.o $(patsubst %.c,%,$(wildcard tests/unit/test-*.c))

.PHONY: all deps demo units check valgrind bench install clean

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
