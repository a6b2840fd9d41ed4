# SPDX-License-Identifier: MIT
# Lupine: a pipeline runner in C that embeds Lua 5.4.
#
#   make            build everything into build/
#   make demo       build, run examples/quickstart.lua, show what it stored
#   make test       build (also with ASan+UBSan), run every test
#   make install PREFIX=/usr/local   (DESTDIR, BINDIR, LIBDIR, ... below)
#   make deps       install the Debian packages the build and the tests need

BUILD ?= build
CC ?= cc
WERROR ?=
SOVERSION = 0

# Where `make install` puts things (GNU names; DESTDIR is prepended to all).
# HELPERDIR holds lupine-repl and lupine-ui, which the lupine program finds
# relative to its own folder, so an installed tree can be moved.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
LIBEXECDIR ?= $(PREFIX)/libexec
HELPERDIR ?= $(LIBEXECDIR)/lupine
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
LUA_LMOD ?= $(DATADIR)/lua/5.4
LUA_CMOD ?= $(LIBDIR)/lua/5.4
# the editor annotations (---@meta files) of the Lua API
METADIR ?= $(DATADIR)/lupine/meta

# The Debian packages each goal needs; `make deps` installs all of them.
BUILD_PACKAGES = build-essential pkg-config lua5.4 liblua5.4-dev libsqlite3-dev \
  libzstd-dev uuid-dev libssl-dev libpq-dev libedit-dev libmicrohttpd-dev libmd4c-dev libmd4c-html0-dev \
  libcurl4-openssl-dev
TEST_PACKAGES = lua-busted python3-cbor2 python3-zstandard sqlite3 graphviz tmux chromium \
  curl procps time luarocks groff-base man-db valgrind slurm-wlm munge \
  postgresql-15
DEBIAN_PACKAGES = $(BUILD_PACKAGES) $(TEST_PACKAGES)

# md4c-html: Markdown visualizations shown as HTML (runtime/visual.c)
# libcurl: the s3 store's transport (runtime/store_s3.c), and libpq: the
# PostgreSQL catalog (runtime/catalog_pg.c): their headers only, each loaded
# when first needed (the first s3 store, the first PostgreSQL catalog), not
# at start
PKGS = lua5.4 sqlite3 libzstd uuid libcrypto md4c-html
DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS) libcurl libpq 2>/dev/null)
DEP_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
# Only the lupine command links libedit (its REPL); the library does not.
EDIT_LIBS = $(shell pkg-config --libs libedit 2>/dev/null || echo -ledit)
# Only the lupine command serves HTTP (`lupine ui`), with libmicrohttpd.
UI_LIBS = $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
# The Lua module is loaded by an interpreter that already has Lua in it.
MOD_LIBS = $(shell pkg-config --libs sqlite3 libzstd uuid libcrypto md4c-html 2>/dev/null) \
  -lm

# The project's own flags (BASE_CFLAGS) come first on every compile, then the
# user's or the distribution's CPPFLAGS and CFLAGS; every link takes CFLAGS
# and LDFLAGS. A flavour's flags (the sanitizers) come last: they win.
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes $(WERROR)
BASE_CFLAGS = -std=c11 -g -fPIC -fvisibility=hidden $(WARN) -Iruntime $(DEP_CFLAGS)
CFLAGS ?= -O2
CPPFLAGS ?=
LDFLAGS ?=
COMPILE = $(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS)
LINK = $(CC) $(CFLAGS) $(LDFLAGS)
# float-cast-overflow: a double too large for the integer it is cast to
# (GCC's "undefined" leaves that check out; clang's has it)
SAN_FLAGS = -O1 -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
  -fno-omit-frame-pointer

LIB_SRC = runtime/api.c runtime/arena.c runtime/cache.c runtime/catalog.c runtime/catalog_copy.c \
  runtime/catalog_listing.c runtime/catalog_pg.c runtime/catalog_sqlite.c runtime/codec.c \
  runtime/exec.c runtime/executor.c runtime/files.c runtime/frame.c runtime/gc.c runtime/graph.c \
  runtime/lmodule.c \
  runtime/run.c runtime/runtime.c runtime/sigv4.c runtime/spawn.c runtime/step.c runtime/store.c \
  runtime/store_local.c runtime/store_s3.c runtime/text.c runtime/util.c runtime/versions.c \
  runtime/visual.c runtime/wire.c runtime/worker.c
# the Lua side, embedded in the library; the annotations too, for the REPL's help
LUA_SRC = lua/lupine/init.lua $(filter-out lua/lupine/init.lua,$(wildcard lua/lupine/*.lua)) \
  $(wildcard lua/meta/*.lua)
C_TESTS = test_codec test_store test_api test_records test_sigv4
FUZZERS = fuzz_decode fuzz_object fuzz_archive

# $(call objs,DIR): the library's objects built into DIR
objs = $(patsubst runtime/%.c,$(1)/obj/%.o,$(LIB_SRC)) $(1)/obj/lua_sources.o

.PHONY: all asan deps demo test check install uninstall clean fuzz
all: $(BUILD)/lupine $(BUILD)/liblupine.a $(BUILD)/liblupine.so $(BUILD)/lupine.so $(BUILD)/crash.so

# ---- one set of rules per build flavour: build/ (release), build/asan/ ----
define flavour
$(1)/obj/%.o: runtime/%.c runtime/lupine.h runtime/lupine_int.h runtime/store_int.h \
  runtime/catalog_backend.h runtime/run.h | $(1)/obj
	$$(COMPILE) $(2) -c $$< -o $$@

$(1)/obj/lua_sources.o: $(1)/obj/lua_sources.c
	$$(COMPILE) $(2) -c $$< -o $$@

$(1)/obj/lua_sources.c: lua/embed.lua $$(LUA_SRC) | $(1)/obj
	lua5.4 lua/embed.lua $$@ $$(LUA_SRC)

# the programs (runtime/programs/) include lupine.h alone of the runtime's headers
$(1)/obj/programs/%.o: runtime/programs/%.c runtime/lupine.h | $(1)/obj/programs
	$$(COMPILE) $(2) -c $$< -o $$@

# main.c finds the helpers through this path (see HELPERDIR); the header is
# rewritten, and main.o rebuilt, only when the path changes
$(1)/obj/programs/main.o: $(1)/obj/helpers.h
$(1)/obj/programs/main.o: BASE_CFLAGS += -I$(1)/obj
$(1)/obj/helpers.h: FORCE | $(1)/obj
	@printf '#define LUPINE_HELPERS "%s"\n' "$$(HELPERS_REL)" > $$@.new
	@if cmp -s $$@.new $$@; then rm $$@.new; else mv $$@.new $$@; fi

$(1)/obj $(1)/obj/programs:
	mkdir -p $$@

$(1)/liblupine.a: $(call objs,$(1))
	rm -f $$@ && ar rcs $$@ $$^

$(1)/liblupine.so.$(SOVERSION): $(call objs,$(1))
	$$(LINK) $(2) -shared -Wl,-soname,liblupine.so.$(SOVERSION) -o $$@ $$^ $$(DEP_LIBS)

$(1)/liblupine.so: $(1)/liblupine.so.$(SOVERSION)
	ln -sf liblupine.so.$(SOVERSION) $$@

# `require "lupine"` from lua5.4 and busted (LUA_CPATH=build/?.so)
$(1)/lupine.so: $(call objs,$(1))
	$$(LINK) $(2) -shared -o $$@ $$^ $$(MOD_LIBS)

# the CLI and its REPL; line editing is libedit's (BSD), not GNU readline (GPL).
# -z now: symbols bound at start-up, not lazily in every worker (each lazy
# binding there writes a page shared copy-on-write with the spawner)
$(1)/lupine: $(1)/obj/programs/main.o $(1)/liblupine.a $(1)/lupine-repl $(1)/lupine-ui
	$$(LINK) $(2) -Wl,-z,now -o $$@ $(1)/obj/programs/main.o $(1)/liblupine.a $$(DEP_LIBS)

# `lupine repl` and `lupine ui` run these, so that only they load libedit
# and libmicrohttpd (with gnutls and the rest): `lupine run` starts faster
$(1)/lupine-repl: $(1)/obj/programs/repl.o $(1)/liblupine.a
	$$(LINK) $(2) -o $$@ $$^ $$(DEP_LIBS) $$(EDIT_LIBS)

$(1)/lupine-ui: $(1)/obj/programs/ui.o $(1)/liblupine.a
	$$(LINK) $(2) -o $$@ $$^ $$(DEP_LIBS) $$(UI_LIBS)

$(1)/test_%: tests/c/test_%.c tests/c/tap.h $(1)/liblupine.a
	$$(COMPILE) $(2) $$(LDFLAGS) -D_GNU_SOURCE -o $$@ $$(filter-out %.h,$$^) $$(DEP_LIBS)

# a Lua module that segfaults, for the tests of crashing steps: unoptimized,
# so the NULL read stays a read (fortification needs optimization: undefined)
$(1)/crash.so: tests/c/crash_module.c
	$$(COMPILE) $$(LDFLAGS) -O0 -U_FORTIFY_SOURCE -shared -o $$@ $$<

$(1)/replay_%: tests/fuzz/%.c tests/fuzz/replay.c $(1)/liblupine.a
	$$(COMPILE) $(2) $$(LDFLAGS) -o $$@ $$^ $$(DEP_LIBS)

# examples/embed/host.c against this flavour's static library
$(1)/embed_host: examples/embed/host.c $(1)/liblupine.a
	$$(COMPILE) $(2) $$(LDFLAGS) -o $$@ $$^ $$(DEP_LIBS)
endef

$(eval $(call flavour,$(BUILD),))
$(eval $(call flavour,$(BUILD)/asan,$$(SAN_FLAGS)))

# test_api runs two handles on two threads at once
$(BUILD)/test_api $(BUILD)/asan/test_api: DEP_LIBS += -pthread

asan: $(BUILD)/asan/lupine $(BUILD)/asan/lupine.so $(BUILD)/asan/liblupine.so $(BUILD)/asan/crash.so \
  $(C_TESTS:%=$(BUILD)/asan/%) $(patsubst fuzz_%,$(BUILD)/asan/replay_fuzz_%,$(FUZZERS))

# ---- set-up ----
# $(call apt,GOAL,PACKAGES): install the Debian packages of the list that are
# missing, naming them first (as root; otherwise print the command to run).
define apt
	@missing=""; for p in $(2); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "$(1): the Debian packages it needs are present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "$(1): installing the Debian packages it needs:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "$(1): missing Debian packages:$$missing; run:"; \
	  echo "  sudo apt-get install -y$$missing"; exit 1; fi
endef

.PHONY: deps-build deps-test FORCE
deps-build:
	$(call apt,build,$(BUILD_PACKAGES))

# npm installs the S3 server of the tests (tests/s3/server.sh); a machine
# with npm from elsewhere (NodeSource's nodejs has it) keeps that one
deps-test:
	$(call apt,test,$(TEST_PACKAGES))
	@command -v npm >/dev/null || { echo "test: installing nodejs and npm"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

deps: deps-build deps-test

# the demo needs nothing the build does not
demo: deps-build
	$(MAKE) --no-print-directory all
	rm -rf $(BUILD)/demo-home
	LUPINE_HOME=$(BUILD)/demo-home $(BUILD)/lupine run examples/quickstart.lua

# (the benchmarks' programs too: built by every test run, under its warnings)
test: deps-build deps-test
	$(MAKE) --no-print-directory all asan $(BENCH_PROGRAMS)
	LUPINE_BUILD=$(BUILD)/asan sh tests/run.sh

check: test

# ---- ThreadSanitizer: make tsan (the C API test, with its two handles on
# two threads at once; tests/embed_spec.lua runs it too) ----
.PHONY: tsan
tsan: $(BUILD)/tsan/test_api
	$(BUILD)/tsan/test_api

$(BUILD)/tsan/test_api: tests/c/test_api.c tests/c/tap.h $(LIB_SRC) $(BUILD)/obj/lua_sources.c
	mkdir -p $(BUILD)/tsan
	$(COMPILE) $(LDFLAGS) -O1 -fsanitize=thread -D_GNU_SOURCE -pthread -o $@ \
	  $(filter-out %.h,$^) $(DEP_LIBS)

# ---- benchmarks: make bench (release build; not part of make test) ----
# Runs every tests/bench/*.lua (benchlib.lua is their shared code) against
# $(BUILD)/lupine.so and $(BUILD)/lupine and prints its output; one alone:
# make bench BENCH=tests/bench/steps.lua. The baselines come from small C
# programs: $(BUILD)/sqlite_bare (the bare sqlite query), $(BUILD)/pg_bare (the
# same through libpq, on a throwaway PostgreSQL server), $(BUILD)/bench_zstd
# (zstd alone), $(BUILD)/bench_timeit (a command's wall time, no shell) and
# $(BUILD)/bench_floor (a fork, a file creation, a sync).
BENCH_PROGRAMS = $(BUILD)/sqlite_bare $(BUILD)/bench_zstd $(BUILD)/bench_timeit \
  $(BUILD)/bench_floor $(BUILD)/pg_bare
BENCH ?= $(filter-out tests/bench/benchlib.lua,$(wildcard tests/bench/*.lua))
.PHONY: bench
bench: deps-build deps-test
	$(MAKE) --no-print-directory all $(BENCH_PROGRAMS)
	@for f in $(BENCH); do echo "== $$f"; \
	  LUA_CPATH="$(BUILD)/?.so;;" LUPINE_BENCH_BARE=$(BUILD)/sqlite_bare \
	  LUPINE_BENCH_PG_BARE=$(BUILD)/pg_bare \
	  LUPINE_BENCH_LUPINE=$(BUILD)/lupine LUPINE_BENCH_ZSTD=$(BUILD)/bench_zstd \
	  LUPINE_BENCH_TIMEIT=$(BUILD)/bench_timeit LUPINE_BENCH_FLOOR=$(BUILD)/bench_floor \
	  lua5.4 $$f || exit 1; \
	done

# (built with the release build's CFLAGS, so the comparisons are even)
BENCH_CC = $(CC) -std=c11 $(WARN) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS)

$(BUILD)/sqlite_bare: tests/bench/sqlite_bare.c tests/bench/measure.h
	$(BENCH_CC) -o $@ $< $(shell pkg-config --cflags --libs sqlite3)

$(BUILD)/pg_bare: tests/bench/pg_bare.c tests/bench/measure.h
	$(BENCH_CC) -o $@ $< $(shell pkg-config --cflags --libs libpq)

$(BUILD)/bench_zstd: tests/bench/zstd_bare.c tests/bench/measure.h
	$(BENCH_CC) -o $@ $< $(shell pkg-config --cflags --libs libzstd)

$(BUILD)/bench_timeit: tests/bench/timeit.c tests/bench/measure.h
	$(BENCH_CC) -o $@ $<

$(BUILD)/bench_floor: tests/bench/floor.c tests/bench/measure.h
	$(BENCH_CC) -o $@ $<

# ---- fuzzing (clang's libFuzzer): make fuzz FUZZ_SECONDS=60 ----
FUZZ_SECONDS ?= 60
# Every target runs for its time and is reported, whatever the others find.
fuzz: $(FUZZERS:%=$(BUILD)/fuzz/%)
	@sh tests/fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZERS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC) $(BUILD)/obj/lua_sources.c
	mkdir -p $(BUILD)/fuzz
	clang -Iruntime $(DEP_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) \
	  -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $^ $(DEP_LIBS)

# ---- install ----
# install: everything; install-rock: what a LuaRocks tree takes (lupine-scm-1.rockspec:
# the module, its Lua files, the programs, man page, completion, annotations;
# not the C library, header and pkg-config file, which a Lua tree has no place for)
VERSION = $(shell sed -n 's/^\#define LUPINE_VERSION "\(.*\)"/\1/p' runtime/lupine.h)
HELPERS_REL = $(shell realpath -m --relative-to='$(BINDIR)' '$(HELPERDIR)')
.PHONY: install-rock install-lib
install: install-rock install-lib

install-rock: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(HELPERDIR) $(DESTDIR)$(LUA_LMOD)/lupine \
	  $(DESTDIR)$(LUA_CMOD) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(METADIR)
	install -m 755 $(BUILD)/lupine $(DESTDIR)$(BINDIR)/lupine
	install -m 755 $(BUILD)/lupine-repl $(BUILD)/lupine-ui $(DESTDIR)$(HELPERDIR)/
	install -m 644 lua/lupine/*.lua $(DESTDIR)$(LUA_LMOD)/lupine/
	install -m 755 $(BUILD)/lupine.so $(DESTDIR)$(LUA_CMOD)/lupine.so
	install -m 644 runtime/lupine.1 $(DESTDIR)$(MANDIR)/man1/lupine.1
	install -m 644 runtime/lupine.bash $(DESTDIR)$(BASHCOMPDIR)/lupine
	install -m 644 lua/meta/*.lua $(DESTDIR)$(METADIR)/

install-lib: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR)
	install -m 644 $(BUILD)/liblupine.a $(DESTDIR)$(LIBDIR)/liblupine.a
	install -m 755 $(BUILD)/liblupine.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf liblupine.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/liblupine.so
	install -m 644 runtime/lupine.h $(DESTDIR)$(INCLUDEDIR)/lupine.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
	  -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
	  runtime/lupine.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/lupine.pc

# (file by file: HELPERDIR or METADIR may be a folder shared with others)
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/lupine $(DESTDIR)$(HELPERDIR)/lupine-repl $(DESTDIR)$(HELPERDIR)/lupine-ui \
	  $(DESTDIR)$(LIBDIR)/liblupine.a $(DESTDIR)$(LIBDIR)/liblupine.so \
	  $(DESTDIR)$(LIBDIR)/liblupine.so.$(SOVERSION) $(DESTDIR)$(INCLUDEDIR)/lupine.h \
	  $(DESTDIR)$(LUA_CMOD)/lupine.so $(DESTDIR)$(PKGCONFIGDIR)/lupine.pc \
	  $(DESTDIR)$(MANDIR)/man1/lupine.1 $(DESTDIR)$(BASHCOMPDIR)/lupine \
	  $(addprefix $(DESTDIR)$(LUA_LMOD)/lupine/,$(notdir $(wildcard lua/lupine/*.lua))) \
	  $(addprefix $(DESTDIR)$(METADIR)/,$(notdir $(wildcard lua/meta/*.lua)))
	rmdir $(DESTDIR)$(HELPERDIR) $(DESTDIR)$(LUA_LMOD)/lupine $(DESTDIR)$(METADIR) \
	  $(DESTDIR)$(DATADIR)/lupine 2>/dev/null || true

clean:
	rm -rf $(BUILD)
