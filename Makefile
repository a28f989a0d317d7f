# mod_raceq: the short commands. The module itself is built by Makefile.apxs.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
CC         ?= gcc
APXS       ?= apxs

APR_CFLAGS := $(shell apr-1-config --cflags --cppflags --includes) \
              $(shell apu-1-config --includes)
APR_LIBS   := $(shell apu-1-config --link-ld) $(shell apr-1-config --link-ld --libs)
LIBS       := $(APR_LIBS) -lcurl -ljansson -lcrypto -lpthread -lm

CFLAGS     ?= -O2 -g
CFLAGS     += -Wall -Wextra -Werror -fPIC -Ilib $(APR_CFLAGS)

LIB_OBJ    := $(patsubst %.c,%.o,$(wildcard lib/*.c))
LIB_A      := lib/librq.a
PROGRAMS   := $(patsubst src/%.c,bin/%,$(wildcard src/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,tests/unit/bin/%,$(wildcard tests/unit/test_*.c))

.PHONY: all module programs unit deps test check-deps demo bench install clean

all: module programs unit

module: $(LIB_A)
	$(MAKE) -f Makefile.apxs

programs: $(PROGRAMS)

unit: $(UNIT_TESTS)

lib/%.o: lib/%.c $(wildcard lib/*.h)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

bin/%: src/%.c $(LIB_A)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $< $(LIB_A) $(LIBS)

tests/unit/bin/%: tests/unit/%.c tests/unit/rq_tap.h $(LIB_A)
	@mkdir -p tests/unit/bin
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB_A) $(LIBS)

# Installs missing Debian and npm packages (as root), else says what to run.
deps:
	scripts/deps.sh

test: deps
	$(MAKE) all
	scripts/run-tests.sh

# With JSON=1 stdout is the demo's JSON document alone: the set-up and the
# build report on stderr.
DEMO_QUIET := $(if $(filter-out 0,$(JSON)),>&2)

demo:
	@echo scripts/deps.sh $(DEMO_QUIET)
	@scripts/deps.sh $(DEMO_QUIET)
	@$(MAKE) --no-print-directory all $(DEMO_QUIET)
	@scripts/demo.sh

bench: deps
	$(MAKE) all
	scripts/bench.sh

install: all
	$(MAKE) -f Makefile.apxs install
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(BINDIR)
	scripts/install-conf.sh

clean:
	$(MAKE) -f Makefile.apxs clean
	rm -rf bin tests/unit/bin lib/*.o $(LIB_A)
