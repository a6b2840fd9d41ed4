#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs each libFuzzer target for its time, whatever the others find, and
# reports each: usage: run.sh DIR SECONDS TARGET... (targets built in DIR).
# A target stops at its first finding; its input is written to
# DIR/TARGET-crash-* (or -timeout-, -oom-), its log to DIR/TARGET.log, and
# new inputs to DIR/new-NAME. Exits 1 if any target found something.
set -u
dir=$1 seconds=$2
shift 2
failed=0
for f in "$@"; do
  name=${f#fuzz_}
  mkdir -p "$dir/new-$name"
  if "$dir/$f" -max_total_time="$seconds" -rss_limit_mb=512 -timeout=5 \
       -artifact_prefix="$dir/$f-" "$dir/new-$name" "tests/fuzz/corpus/$name" \
       >"$dir/$f.log" 2>&1; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$dir/$f.log")
    echo "$f: nothing found in $seconds s (${runs:-?} runs)"
  else
    failed=1
    what=$(grep -m1 -E '^(fuzz_[a-z]+:|==[0-9]+==ERROR)' "$dir/$f.log")
    input=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$dir/$f.log" | head -n 1)
    echo "$f: FOUND ${what:-a failure} (input: ${input:-none written}; log: $dir/$f.log)"
  fi
done
echo "new inputs are in $dir/new-*; merge useful ones into tests/fuzz/corpus/"
exit $failed
