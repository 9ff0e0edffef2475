# popsift — see README.md.  `make check` and `make demo` install what they need.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libcurl libpcre2-8 sqlite3
WARN     = -Wall -Wextra -Wshadow -Wformat=2
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null)

ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

SRCS    := $(wildcard src/*.c)
OBJS    := $(SRCS:.c=.o)
LIBOBJS := $(filter-out src/main.o,$(OBJS))
UNITS   := $(patsubst tests/unit/%.c,tests/unit/%,$(wildcard tests/unit/test-*.c))

all: popsift

popsift: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

src/%.o: src/%.c src/*.h
	$(CC) $(CFLAGS) -c -o $@ $<

tests/unit/test-%: tests/unit/test-%.c tests/unit/unit.h $(LIBOBJS)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

deps:
	@sh tests/deps.sh

demo: deps popsift
	@sh tests/demo.sh

units: $(UNITS)

check: deps popsift units
	@sh tests/run.sh

bench: deps popsift
	@sh bench/run.sh

install: popsift
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 popsift $(DESTDIR)$(PREFIX)/bin/popsift
	for m in doc/*.1; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done
	for m in doc/*.5; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man5/ || true; done

clean:
	rm -f popsift src/*.o $(UNITS)

.PHONY: all deps demo units check bench install clean
