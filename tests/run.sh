#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs every test: the C unit tests, the fuzz corpora replayed, and the
# busted specs (in-process through `require "lupine"` and through the CLI),
# all against the ASan+UBSan build unless LUPINE_BUILD names another.
# Ends with the line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
build=${LUPINE_BUILD:-build/asan}
tap=$(mktemp)
one=$(mktemp)   # one C test program's output
trap 'rm -f "$tap" "$one"' EXIT INT TERM

section() { printf '\n# %s\n' "$1" | tee -a "$tap"; }

section "C unit tests"
for t in "$build"/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  { "$t" 2>&1; echo "# $name: exit status $?"; } |
    sed "s|^\(not \)\{0,1\}ok [0-9]* - |&$name: |" | tee "$one"
  cat "$one" >> "$tap"
  # a crash, a sanitizer's report or a leak fails the program, not a test of it
  if ! grep -q "^# $name: exit status 0\$" "$one" && ! grep -q '^not ok ' "$one"; then
    echo "not ok - $name: $(grep "^# $name: exit status" "$one" | cut -c3-)" | tee -a "$tap"
  fi
done

section "fuzz corpora"
for r in "$build"/replay_fuzz_*; do
  [ -x "$r" ] || continue
  corpus=tests/fuzz/corpus/${r##*/replay_fuzz_}
  "$r" "$corpus" 2>&1 | tee -a "$tap"
done

section "busted specs"
preload=""
case "$build" in *asan*) preload=$(cc -print-file-name=libasan.so) ;; esac
LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 LUPINE_BUILD=$build \
  LUA_CPATH="$build/?.so;;" lua5.4 /usr/bin/busted -o TAP --lpath='tests/?.lua' tests 2>&1 |
  tee -a "$tap"

# The specs again with the catalogs on PostgreSQL: a throwaway server,
# and a schema of its own for each catalog folder ("{home}"). Specs tagged
# #sqlite look at the sqlite file itself and are left out.
section "busted specs, PostgreSQL catalog"
pgdir=$(mktemp -u /tmp/lupine-pg.XXXXXX)
trap 'rm -f "$tap" "$one"; sh tests/services/postgresql.sh stop "$pgdir"' EXIT INT TERM
if conn=$(sh tests/services/postgresql.sh start "$pgdir"); then
  LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 LUPINE_BUILD=$build \
    LUPINE_CATALOG="$conn options='-csearch_path={home}'" LUPINE_TEST_PG_SERVER="$conn" \
    LUA_CPATH="$build/?.so;;" lua5.4 /usr/bin/busted -o TAP --lpath='tests/?.lua' \
    --exclude-tags=sqlite tests 2>&1 | sed 's/^\(not \)\{0,1\}ok [0-9]* - /&[postgresql] /' |
    tee -a "$tap"
else
  echo "not ok - the PostgreSQL server did not start" | tee -a "$tap"
fi

passed=$(grep -c '^ok ' "$tap")
failed=$(grep -c '^not ok ' "$tap")
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
