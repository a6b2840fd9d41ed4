-- SPDX-License-Identifier: MIT
-- Streaming a 2 GB file through Lupine: stored by a step (lupine.file),
-- then loaded (a read-only copy). Memory must stay bounded: the target is
-- under 64 MB of resident memory, measured with /usr/bin/time -v, for the
-- run that stores it and for the one that loads it.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"

local dir = B.sh("mktemp -d /tmp/lupine-bench-files.XXXXXX"):match("%S+")
local lupine = B.sh("realpath " .. B.quote(B.lupine)):match("[^\n]+")   -- we cd below
local big = dir .. "/big.txt"
-- 2 GiB of text that compresses like real data does, not like zeros
B.sh("yes 'lupine streams this line: 0123456789 abcdefghij' | head -c 2147483648 > " .. B.quote(big))

local store = dir .. "/store.lua"
local f = assert(io.open(store, "w"))
f:write(string.format([[
local lupine = require "lupine"
local s = lupine.step { name = "big", outputs = { "big" }, function() return lupine.file(%q) end }
lupine.pipeline { name = "big", function() s() end } ()
]], big))
f:close()
local load = dir .. "/load.lua"
f = assert(io.open(load, "w"))
f:write([[
local lupine = require "lupine"
local path = lupine.Client():get_artifact_version("big"):load()
local g = assert(io.open(path, "rb")); local size = g:seek("end"); g:close()
print("loaded " .. size .. " bytes")
]])
f:close()

local function rss(script)
  local out = B.sh("cd " .. B.quote(dir) .. " && LUPINE_HOME=home /usr/bin/time -v "
    .. B.quote(lupine) .. " run --quiet " .. B.quote(script))
  local kb = tonumber(out:match("Maximum resident set size %(kbytes%): (%d+)"))
  local secs = out:match("Elapsed %(wall clock%) time %(h:mm:ss or m:ss%): ([%d:.]+)")
  return kb / 1024, secs
end

local store_mb, store_t = rss(store)
local load_mb, load_t = rss(load)
local function verdict(mb) return mb < 64 and "met" or "MISSED" end
print(string.format("store a 2 GiB file: %.1f MB resident at most, %s wall (target < 64 MB): %s",
  store_mb, store_t, verdict(store_mb)))
print(string.format("load it back (read-only copy): %.1f MB resident at most, %s wall "
  .. "(target < 64 MB): %s", load_mb, load_t, verdict(load_mb)))
if not os.getenv("LUPINE_BENCH_KEEP") then B.sh("rm -rf " .. B.quote(dir)) end
