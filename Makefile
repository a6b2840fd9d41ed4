# Lupine: a pipeline runner in C that embeds Lua 5.4.
#
#   make            build everything into build/
#   make demo       build, run examples/quickstart.lua, show what it stored
#   make test       build (also with ASan+UBSan), run every test
#   make install PREFIX=/usr/local
#   make deps       install the Debian packages the build and tests need

PREFIX ?= /usr/local
BUILD ?= build
CC ?= cc
WERROR ?=
SOVERSION = 0

DEBIAN_PACKAGES = build-essential pkg-config lua5.4 liblua5.4-dev libsqlite3-dev \
  libzstd-dev uuid-dev libssl-dev lua-busted python3-cbor2 python3-zstandard sqlite3 \
  graphviz libedit-dev tmux libmicrohttpd-dev chromium curl procps time

PKGS = lua5.4 sqlite3 libzstd uuid libcrypto
DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
# Only the lupine command links libedit (its REPL); the library does not.
EDIT_LIBS = $(shell pkg-config --libs libedit 2>/dev/null || echo -ledit)
# Only the lupine command serves HTTP (`lupine ui`), with libmicrohttpd.
UI_LIBS = $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
# The Lua module is loaded by an interpreter that already has Lua in it.
MOD_LIBS = $(shell pkg-config --libs sqlite3 libzstd uuid libcrypto 2>/dev/null) -lm

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes $(WERROR)
BASE_CFLAGS = -std=c11 -g -fPIC -fvisibility=hidden $(WARN) -Iruntime $(DEP_CFLAGS)
CFLAGS ?= -O2
SAN_FLAGS = -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

LIB_SRC = runtime/api.c runtime/arena.c runtime/cache.c runtime/catalog.c runtime/codec.c runtime/executor.c \
  runtime/files.c runtime/gc.c runtime/graph.c runtime/lmodule.c runtime/spawn.c runtime/store.c runtime/util.c runtime/visual.c
LUA_SRC = lua/lupine/init.lua $(filter-out lua/lupine/init.lua,$(wildcard lua/lupine/*.lua))
C_TESTS = test_codec test_store test_api
FUZZERS = fuzz_decode fuzz_object fuzz_archive

# $(call objs,DIR): the library's objects built into DIR
objs = $(patsubst runtime/%.c,$(1)/obj/%.o,$(LIB_SRC)) $(1)/obj/lua_sources.o

.PHONY: all asan deps demo test check install uninstall clean fuzz
all: $(BUILD)/lupine $(BUILD)/liblupine.a $(BUILD)/liblupine.so $(BUILD)/lupine.so $(BUILD)/crash.so

# ---- one set of rules per build flavour: build/ (release), build/asan/ ----
define flavour
$(1)/obj/%.o: runtime/%.c runtime/lupine.h runtime/lupine_int.h | $(1)/obj
	$$(CC) $$(BASE_CFLAGS) $(2) -c $$< -o $$@

$(1)/obj/lua_sources.o: $(1)/obj/lua_sources.c
	$$(CC) $$(BASE_CFLAGS) $(2) -c $$< -o $$@

$(1)/obj/lua_sources.c: lua/embed.lua $$(LUA_SRC) | $(1)/obj
	lua5.4 lua/embed.lua $$@ $$(LUA_SRC)

$(1)/obj:
	mkdir -p $$@

$(1)/liblupine.a: $(call objs,$(1))
	rm -f $$@ && ar rcs $$@ $$^

$(1)/liblupine.so.$(SOVERSION): $(call objs,$(1))
	$$(CC) $(2) -shared -Wl,-soname,liblupine.so.$(SOVERSION) -o $$@ $$^ $$(DEP_LIBS)

$(1)/liblupine.so: $(1)/liblupine.so.$(SOVERSION)
	ln -sf liblupine.so.$(SOVERSION) $$@

# `require "lupine"` from lua5.4 and busted (LUA_CPATH=build/?.so)
$(1)/lupine.so: $(call objs,$(1))
	$$(CC) $(2) -shared -o $$@ $$^ $$(MOD_LIBS)

# the CLI and its REPL; line editing is libedit's (BSD), not GNU readline (GPL).
# -z now: symbols bound at start-up, not lazily in every worker (each lazy
# binding there writes a page shared copy-on-write with the spawner)
$(1)/lupine: $(1)/obj/main.o $(1)/liblupine.a $(1)/lupine-repl $(1)/lupine-ui
	$$(CC) $(2) -Wl,-z,now -o $$@ $(1)/obj/main.o $(1)/liblupine.a $$(DEP_LIBS)

# `lupine repl` and `lupine ui` run these, so that only they load libedit
# and libmicrohttpd (with gnutls and the rest): `lupine run` starts faster
$(1)/lupine-repl: $(1)/obj/repl.o $(1)/liblupine.a
	$$(CC) $(2) -o $$@ $$^ $$(DEP_LIBS) $$(EDIT_LIBS)

$(1)/lupine-ui: $(1)/obj/ui.o $(1)/liblupine.a
	$$(CC) $(2) -o $$@ $$^ $$(DEP_LIBS) $$(UI_LIBS)

$(1)/test_%: tests/c/test_%.c tests/c/tap.h $(1)/liblupine.a
	$$(CC) $$(BASE_CFLAGS) $(2) -D_GNU_SOURCE -o $$@ $$(filter-out %.h,$$^) $$(DEP_LIBS)

# a Lua module that segfaults, for the tests of crashing steps
$(1)/crash.so: tests/c/crash_module.c
	$$(CC) $$(BASE_CFLAGS) -O0 -shared -o $$@ $$<

$(1)/replay_%: tests/fuzz/%.c tests/fuzz/replay.c $(1)/liblupine.a
	$$(CC) $$(BASE_CFLAGS) $(2) -o $$@ $$^ $$(DEP_LIBS)

# examples/embed/host.c against this flavour's static library
$(1)/embed_host: examples/embed/host.c $(1)/liblupine.a
	$$(CC) $$(BASE_CFLAGS) $(2) -o $$@ $$^ $$(DEP_LIBS)
endef

$(eval $(call flavour,$(BUILD),$$(CFLAGS)))
$(eval $(call flavour,$(BUILD)/asan,$$(SAN_FLAGS)))

# test_api runs two handles on two threads at once
$(BUILD)/test_api $(BUILD)/asan/test_api: DEP_LIBS += -pthread

asan: $(BUILD)/asan/lupine $(BUILD)/asan/lupine.so $(BUILD)/asan/liblupine.so $(BUILD)/asan/crash.so \
  $(C_TESTS:%=$(BUILD)/asan/%) $(patsubst fuzz_%,$(BUILD)/asan/replay_fuzz_%,$(FUZZERS))

# ---- set-up ----
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing$$missing; run:"; \
	  echo "  sudo apt-get install -y$$missing"; exit 1; fi

demo: deps
	$(MAKE) --no-print-directory all
	rm -rf $(BUILD)/demo-home
	LUPINE_HOME=$(BUILD)/demo-home $(BUILD)/lupine run examples/quickstart.lua

test: deps
	$(MAKE) --no-print-directory all asan
	LUPINE_BUILD=$(BUILD)/asan sh tests/run.sh

check: test

# ---- ThreadSanitizer: make tsan (the C API test, with its two handles on
# two threads at once; tests/embed_spec.lua runs it too) ----
.PHONY: tsan
tsan: $(BUILD)/tsan/test_api
	$(BUILD)/tsan/test_api

$(BUILD)/tsan/test_api: tests/c/test_api.c tests/c/tap.h $(LIB_SRC) $(BUILD)/obj/lua_sources.c
	mkdir -p $(BUILD)/tsan
	$(CC) $(BASE_CFLAGS) -O1 -fsanitize=thread -D_GNU_SOURCE -pthread -o $@ \
	  $(filter-out %.h,$^) $(DEP_LIBS)

# ---- benchmarks: make bench (release build; not part of make test) ----
# Runs every tests/bench/*.lua (benchlib.lua is their shared code) against
# $(BUILD)/lupine.so and $(BUILD)/lupine and prints its output; one alone:
# make bench BENCH=tests/bench/steps.lua. The baselines come from small C
# programs: $(BUILD)/sqlite_bare (the bare sqlite query), $(BUILD)/bench_zstd
# (zstd alone), $(BUILD)/bench_timeit (a command's wall time, no shell) and
# $(BUILD)/bench_floor (a fork, a file creation, a sync).
BENCH ?= $(filter-out tests/bench/benchlib.lua,$(wildcard tests/bench/*.lua))
.PHONY: bench
bench: deps
	$(MAKE) --no-print-directory all $(BUILD)/sqlite_bare $(BUILD)/bench_zstd $(BUILD)/bench_timeit \
	  $(BUILD)/bench_floor
	@for f in $(BENCH); do echo "== $$f"; \
	  LUA_CPATH="$(BUILD)/?.so;;" LUPINE_BENCH_BARE=$(BUILD)/sqlite_bare \
	  LUPINE_BENCH_LUPINE=$(BUILD)/lupine LUPINE_BENCH_ZSTD=$(BUILD)/bench_zstd \
	  LUPINE_BENCH_TIMEIT=$(BUILD)/bench_timeit LUPINE_BENCH_FLOOR=$(BUILD)/bench_floor \
	  lua5.4 $$f || exit 1; \
	done

$(BUILD)/sqlite_bare: tests/bench/sqlite_bare.c tests/bench/measure.h
	$(CC) -std=c11 -O2 $(WARN) -o $@ $< $(shell pkg-config --cflags --libs sqlite3)

$(BUILD)/bench_zstd: tests/bench/zstd_bare.c tests/bench/measure.h
	$(CC) -std=c11 -O2 $(WARN) -o $@ $< $(shell pkg-config --cflags --libs libzstd)

$(BUILD)/bench_timeit: tests/bench/timeit.c tests/bench/measure.h
	$(CC) -std=c11 -O2 $(WARN) -o $@ $<

$(BUILD)/bench_floor: tests/bench/floor.c tests/bench/measure.h
	$(CC) -std=c11 -O2 $(WARN) -o $@ $<

# ---- fuzzing (clang's libFuzzer): make fuzz FUZZ_SECONDS=60 ----
FUZZ_SECONDS ?= 60
fuzz: $(FUZZERS:%=$(BUILD)/fuzz/%)
	for f in $(FUZZERS); do mkdir -p $(BUILD)/fuzz/new-$${f#fuzz_} && \
	  $(BUILD)/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=512 -timeout=5 \
	    $(BUILD)/fuzz/new-$${f#fuzz_} tests/fuzz/corpus/$${f#fuzz_} || exit 1; done
	@echo "new inputs are in $(BUILD)/fuzz/new-*; merge useful ones into tests/fuzz/corpus/"

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC) $(BUILD)/obj/lua_sources.c
	mkdir -p $(BUILD)/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Iruntime $(DEP_CFLAGS) \
	  -o $@ $^ $(DEP_LIBS)

# ---- install ----
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/lua/5.4/lupine \
	  $(DESTDIR)$(PREFIX)/lib/lua/5.4
	install -m 755 $(BUILD)/lupine $(BUILD)/lupine-repl $(BUILD)/lupine-ui $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/liblupine.a $(DESTDIR)$(PREFIX)/lib/liblupine.a
	install -m 755 $(BUILD)/liblupine.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf liblupine.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/liblupine.so
	install -m 644 runtime/lupine.h $(DESTDIR)$(PREFIX)/include/lupine.h
	install -m 644 lua/lupine/*.lua $(DESTDIR)$(PREFIX)/share/lua/5.4/lupine/
	install -m 755 $(BUILD)/lupine.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/lupine.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/^#define LUPINE_VERSION "\(.*\)"/\1/p' runtime/lupine.h)|' \
	  runtime/lupine.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/lupine.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/lupine $(DESTDIR)$(PREFIX)/bin/lupine-repl \
	  $(DESTDIR)$(PREFIX)/bin/lupine-ui $(DESTDIR)$(PREFIX)/lib/liblupine.* \
	  $(DESTDIR)$(PREFIX)/include/lupine.h $(DESTDIR)$(PREFIX)/share/lua/5.4/lupine \
	  $(DESTDIR)$(PREFIX)/lib/lua/5.4/lupine.so $(DESTDIR)$(PREFIX)/lib/pkgconfig/lupine.pc

clean:
	rm -rf $(BUILD)
