-- SPDX-License-Identifier: MIT
-- The s3 artifact store against the test S3 server (tests/s3/server.sh),
-- each figure a ratio against a baseline measured in the same run:
--
-- * Save and load of a 100 MB value and of a 1 GiB file (random bytes: no
--   gain from compression) through an s3 stack, against plain curl PUT and
--   GET of the same bytes to the same server (curl signs with its own
--   SigV4 and an unsigned payload: the cheapest request there is). Target:
--   Lupine's throughput at least 70% of curl's. A save starts from a fresh
--   home and prefix (nothing to skip); a load from an empty read cache. A
--   value's save and load are timed around save_artifact and load_artifact
--   (the value is in memory, as a step's; the whole run is shown beside), a
--   file's by the whole `lupine run` of a step returning lupine.file; curl
--   by its whole run.
--   Every timed run, curl's too, starts after a sync (untimed): each
--   writes a GiB or more, and the write-back of one would slow the next.
--   For context (no target): the same save and load on a local stack,
--   which bounds what an s3 stack can do (it does that work, then the
--   transfer). Also the most resident memory of the 1 GiB save and load (target under
--   64 MB), from /usr/bin/time -v on one more, untimed run of each.
-- * A cached re-run of 1000 steps (every step a cache hit) on an s3 stack,
--   against the same on a local stack. Target: at most 2x.
--
-- Environment: see benchlib.lua; LUPINE_BENCH_S3_GIB (1: the big file's size).

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"

B.check_lupine()
local dir = B.scratch()
local lupine = B.sh("realpath " .. B.quote(B.lupine)):match("[^\n]+")
local GIB = tonumber(os.getenv("LUPINE_BENCH_S3_GIB") or "1")

local port = B.sh("sh tests/s3/server.sh start " .. B.quote(dir .. "/server")):match("^(%d+) ")
local endpoint = "http://127.0.0.1:" .. port
local creds = { AWS_ACCESS_KEY_ID = "S3RVER", AWS_SECRET_ACCESS_KEY = "S3RVER",
  AWS_ENDPOINT_URL = endpoint }
print("machine: " .. B.machine())

local value, big = dir .. "/value.bin", dir .. "/big.bin"
B.sh("head -c 100000000 /dev/urandom > " .. B.quote(value))
B.sh("head -c " .. math.floor(GIB * 1073741824) .. " /dev/urandom > " .. B.quote(big))

-- The scripts: each run (LUPINE_BENCH_REP) gets its own home and prefix.
local prelude = string.format([[
local lupine = require "lupine"
local rep = os.getenv("LUPINE_BENCH_REP")
lupine.set_home(%q .. "/home-" .. os.getenv("LUPINE_BENCH_KIND") .. rep)
local c = lupine.Client()
]], dir)
-- (the kinds starting "local" keep the default stack: a local store)
local s3_stack = [[
if not os.getenv("LUPINE_BENCH_KIND"):match("local") then
  c:register_artifact_store("s3", { flavor = "s3", path = "s3://lupine/" .. os.getenv("LUPINE_BENCH_KIND") .. rep })
  c:register_stack("s3", { artifact_store = "s3" })
  c:set_active_stack("s3")
end
]]
-- A value's save and load are timed around the call, the value in memory
-- as a step's is (its script's start and reading the file it comes from
-- are not part of saving it), each run adding its seconds to the file
-- LUPINE_BENCH_TIMES names; the whole run's time is shown beside.
local timed = [[
local function seconds()
  local s = require("lupine.core").now()   -- YYYY-MM-DDTHH:MM:SS.ffffffZ
  return tonumber(s:sub(12, 13)) * 3600 + tonumber(s:sub(15, 16)) * 60 + tonumber(s:sub(18, 26))
end
local function timed(fn)
  local t0 = seconds()
  fn()
  local out = assert(io.open(os.getenv("LUPINE_BENCH_TIMES"), "a"))
  out:write(string.format("%.6f\n", (seconds() - t0) % 86400))
  out:close()
end
]]
local save_value = B.write(dir .. "/save_value.lua", prelude .. s3_stack .. timed .. [[
local f = assert(io.open(arg[1], "rb"))
local bytes = f:read("a")
f:close()
timed(function() lupine.save_artifact(bytes, "v") end)
]])
local load_value = B.write(dir .. "/load_value.lua", prelude .. timed .. [[
timed(function() assert(#lupine.load_artifact("v") == 100000000) end)
]])
local save_file = B.write(dir .. "/save_file.lua", prelude .. s3_stack .. [[
lupine.pipeline { name = "big", function()
  lupine.step { name = "big", outputs = { "f" }, function() return lupine.file(arg[1]) end } ()
end } ()
]])
local load_file = B.write(dir .. "/load_file.lua", prelude .. [[
local path = c:get_artifact_version("f"):load()
local g = assert(io.open(path, "rb")); assert(g:seek("end") > 0); g:close()
]])

local function curl(method, file, key)
  local argv = { "curl", "-sS", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
    "S3RVER:S3RVER", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD" }
  if method == "PUT" then argv[#argv + 1] = "-T"; argv[#argv + 1] = file
  else argv[#argv + 1] = "-o"; argv[#argv + 1] = file end
  argv[#argv + 1] = endpoint .. "/lupine/" .. key
  return argv
end

-- The median seconds of `lupine run` of script, and of the call it times
-- (nil for a script that times none).
local function run(kind, script, file, rounds)
  local times = dir .. "/times-" .. kind
  local vars = { LUPINE_BENCH_KIND = kind, LUPINE_BENCH_TIMES = times, LUPINE_BENCH_SYNC = "1" }
  for k, v in pairs(creds) do vars[k] = v end
  os.remove(times)
  local whole = B.timeit(rounds, 0, { lupine, "run", "--quiet", script, file }, vars)
  local calls = {}
  local f = io.open(times)
  for t in (f and f:read("a") or ""):gmatch("%S+") do calls[#calls + 1] = tonumber(t) end
  if f then f:close() end
  return whole, #calls > 0 and B.median(calls) or nil
end

-- Every timed load reads from a home whose save made the object; its read
-- cache (and a file's extracted copy) removed first, so each load downloads.
local function forget(kind, n)
  for r = 0, n - 1 do
    B.sh("rm -rf " .. B.quote(dir .. "/home-" .. kind .. r .. "/cache") .. " "
      .. B.quote(dir .. "/home-" .. kind .. r .. "/files"))
  end
end

local function ratio(what, bytes, lupine_s, curl_s)
  local mbs = function(s) return bytes / s / 1e6 end
  B.verdict(string.format("%s: %.0f MB/s, curl %.0f MB/s (%.0f%%, target >= 70%%)", what,
    mbs(lupine_s), mbs(curl_s), curl_s / lupine_s * 100), curl_s / lupine_s >= 0.7)
end

local function transfers(label, kind, file, bytes, save, load, rounds)
  local put = B.timeit(rounds, 1, curl("PUT", file, "curl-" .. kind), { LUPINE_BENCH_SYNC = "1" })
  local get = B.timeit(rounds, 1, curl("GET", dir .. "/got-" .. kind, "curl-" .. kind),
    { LUPINE_BENCH_SYNC = "1" })
  -- saves write homes 0 .. rounds-1 (LUPINE_BENCH_REP counts from 0)
  -- the seconds of a save and a load: of the call a script times, else of its run
  local function save_load(k)
    local s, s_call = run("save-" .. k, save, file, rounds)
    for r = 0, rounds - 1 do
      B.sh("mv " .. B.quote(dir .. "/home-save-" .. k .. r) .. " "
        .. B.quote(dir .. "/home-load-" .. k .. r))
    end
    forget("load-" .. k, rounds)
    local l, l_call = run("load-" .. k, load, file, rounds)
    if s_call and not k:match("^local") then
      print(string.format("  (%s on an s3 stack, the whole lupine run: save %.0f MB/s, load"
        .. " %.0f MB/s)", label, bytes / s / 1e6, bytes / l / 1e6))
    end
    return s_call or s, l_call or l
  end
  local s, l = save_load(kind)
  local ls, ll = save_load("local" .. kind)
  ratio("save " .. label, bytes, s, put)
  ratio("load " .. label, bytes, l, get)
  print(string.format("  (on a local stack: save %.0f MB/s, load %.0f MB/s)", bytes / ls / 1e6,
    bytes / ll / 1e6))
end

transfers("a 100 MB value", "value", value, 100000000, save_value, load_value, B.rounds(3))
transfers(string.format("a %g GiB file", GIB), "file", big, GIB * 1073741824, save_file,
  load_file, B.rounds(1))

-- memory: one more save and load of the big file, untimed
local function rss(kind, script)
  local env = {}
  for k, v in pairs(creds) do env[#env + 1] = k .. "=" .. B.quote(v) end
  local out = B.sh("env " .. table.concat(env, " ") .. " LUPINE_BENCH_KIND=" .. kind
    .. " LUPINE_BENCH_REP=99 /usr/bin/time -v " .. B.quote(lupine) .. " run --quiet "
    .. B.quote(script) .. " " .. B.quote(big))
  return tonumber(out:match("Maximum resident set size %(kbytes%): (%d+)")) / 1024
end
local save_mb = rss("mem", save_file)
forget("mem", 100)
local load_mb = rss("mem", load_file)
B.verdict(string.format("resident memory, %g GiB file: save %.1f MB, load %.1f MB "
  .. "(target < 64 MB)", GIB, save_mb, load_mb), save_mb < 64 and load_mb < 64)
B.sh("rm -rf " .. B.quote(dir) .. "/home-* " .. B.quote(big) .. " " .. B.quote(dir) .. "/got-*")

-- cached re-runs of 1000 steps: local stack, then s3 stack
local STEPS = 1000
local chain = B.write(dir .. "/chain.lua", string.format([[
local lupine = require "lupine"
lupine.set_home(%q .. "/home-chain-" .. os.getenv("LUPINE_BENCH_KIND"))
local c = lupine.Client()
if os.getenv("LUPINE_BENCH_KIND") == "s3" and not c.active_stack.name:match("s3") then
  c:register_artifact_store("s3", { flavor = "s3", path = "s3://lupine/chain" })
  c:register_stack("s3", { artifact_store = "s3" })
  c:set_active_stack("s3")
end
local steps = {}
for i = 1, %d do
  steps[i] = lupine.step { name = "s" .. i, outputs = { "o" .. i }, function(x) return x + 1 end }
end
lupine.pipeline { name = "chain", function()
  local x = 0
  for i = 1, %d do x = steps[i](x) end
end } ()
]], dir, STEPS, STEPS))
local function rerun(kind)
  local vars = { LUPINE_BENCH_KIND = kind }
  for k, v in pairs(creds) do vars[k] = v end
  return B.timeit(B.rounds(5), 1, { lupine, "run", "--quiet", chain }, vars)
end
local loc, s3 = rerun("local"), rerun("s3")
B.verdict(string.format("cached re-run of %d steps: s3 stack %s, local stack %s (%.2fx, "
  .. "target <= 2x)", STEPS, B.ms(s3), B.ms(loc), s3 / loc), s3 / loc <= 2)

B.sh("sh tests/s3/server.sh stop " .. B.quote(dir .. "/server"))
B.finish()
