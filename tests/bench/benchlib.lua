-- SPDX-License-Identifier: MIT
-- What the benchmarks in tests/bench share: where the binaries are, timing,
-- medians, and the verdict lines. Not a benchmark itself (`make bench`
-- leaves it out); each benchmark loads it from its own folder:
--
--   package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
--   local B = require "benchlib"
--
-- Environment (`make bench` sets the first three from BUILD):
--   LUPINE_BENCH_LUPINE   the lupine binary (default build/lupine)
--   LUPINE_BENCH_TIMEIT   tests/bench/timeit.c built (default build/bench_timeit)
--   LUPINE_BENCH_ZSTD     tests/bench/zstd_bare.c built (default build/bench_zstd)
--   LUPINE_BENCH_FLOOR    tests/bench/floor.c built (default build/bench_floor)
--   LUPINE_BENCH_ROUNDS   multiplies every repetition count (default 1; a
--                         benchmark never goes below 3 rounds)
--   LUPINE_BENCH_KEEP     keep the scratch folder (its path is printed)

local B = {}

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

B.lupine = env("LUPINE_BENCH_LUPINE", "build/lupine")
B.timeit_bin = env("LUPINE_BENCH_TIMEIT", "build/bench_timeit")
B.zstd_bin = env("LUPINE_BENCH_ZSTD", "build/bench_zstd")
B.floor_bin = env("LUPINE_BENCH_FLOOR", "build/bench_floor")
local scale = tonumber(env("LUPINE_BENCH_ROUNDS", "1")) or 1

-- n rounds, scaled by LUPINE_BENCH_ROUNDS, odd (a true median), at least 3.
function B.rounds(n)
  n = math.max(3, math.floor(n * scale + 0.5))
  return n % 2 == 1 and n or n + 1
end

function B.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Run a shell command; return its stdout, or raise with its output.
function B.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then error("command failed (" .. tostring(code) .. "): " .. cmd .. "\n" .. out, 2) end
  return out
end

local function need(path, what)
  local f = io.open(path)
  if not f then
    error(string.format("%s not found at '%s': run the benchmarks with `make bench`, "
      .. "or build it and set the environment (see tests/bench/benchlib.lua)", what, path), 0)
  end
  f:close()
end

-- A fresh scratch folder, removed by B.finish unless LUPINE_BENCH_KEEP is set.
function B.scratch()
  B.dir = B.sh("mktemp -d \"${TMPDIR:-/tmp}/lupine-bench.XXXXXX\""):gsub("%s+$", "")
  return B.dir
end

function B.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- Wall-clock seconds with microsecond resolution (for work in this process).
local core
function B.wall()
  core = core or require "lupine.core"
  local s = core.now()   -- YYYY-MM-DDTHH:MM:SS.ffffffZ
  return os.time { year = tonumber(s:sub(1, 4)), month = tonumber(s:sub(6, 7)),
    day = tonumber(s:sub(9, 10)), hour = tonumber(s:sub(12, 13)), min = tonumber(s:sub(15, 16)),
    sec = tonumber(s:sub(18, 19)) } + tonumber("0" .. s:sub(20, 26))
end

function B.median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- Median wall seconds of fn() over rounds calls (after one untimed call);
-- fn gets the round number (0 for the warm-up). A full garbage collection
-- before each call keeps one call's garbage off the next one's time.
function B.time(fn, rounds)
  local times = {}
  fn(0)
  for r = 1, rounds do
    collectgarbage("collect")
    local t0 = B.wall()
    fn(r)
    times[r] = B.wall() - t0
  end
  return B.median(times)
end

-- Wall seconds of a command run directly (no shell in the timed part):
-- median, min and max over rounds runs after warmup untimed runs. vars
-- (a table) goes into its environment; each run also gets
-- LUPINE_BENCH_REP = 0, 1, 2, ... (warm-up runs included).
function B.timeit(rounds, warmup, argv, vars)
  need(B.timeit_bin, "the timing helper (tests/bench/timeit.c)")
  local parts = {}
  for k, v in pairs(vars or {}) do parts[#parts + 1] = k .. "=" .. B.quote(v) end
  table.sort(parts)
  parts[#parts + 1] = B.quote(B.timeit_bin)
  parts[#parts + 1] = rounds
  parts[#parts + 1] = warmup
  for _, a in ipairs(argv) do parts[#parts + 1] = B.quote(a) end
  local out = B.sh(table.concat(parts, " "))
  local med, min, max = out:match("(%d+) (%d+) (%d+)%s*$")
  if not med then error("timeit: unexpected output: " .. out, 2) end
  return tonumber(med) / 1e9, tonumber(min) / 1e9, tonumber(max) / 1e9
end

-- The median microseconds of tests/bench/floor.c's measure (see there).
function B.floor(what, arg, rounds)
  need(B.floor_bin, "the floor helper (tests/bench/floor.c)")
  return tonumber((B.sh(table.concat({ B.quote(B.floor_bin), what, B.quote(tostring(arg)),
    rounds }, " "))))
end

function B.check_lupine()
  need(B.lupine, "the lupine binary")
end

function B.ms(s)
  if s >= 0.1 then return string.format("%.0f ms", s * 1e3) end
  return string.format("%.1f ms", s * 1e3)
end

-- Print a figure's line, ending with its verdict when it has a target.
local met, total = 0, 0
function B.verdict(line, ok)
  total = total + 1
  if ok then met = met + 1 end
  print(line .. ": " .. (ok and "ok" or "MISSED"))
end

-- CPU jiffies from /proc/stat: busy, total (nil where there is none).
local function cpu_times()
  local f = io.open("/proc/stat")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  local busy, total, i = 0, 0, 0
  for n in line:gmatch("%d+") do
    i = i + 1
    n = tonumber(n)
    total = total + n
    if i ~= 4 and i ~= 5 then busy = busy + n end   -- idle and iowait are not busy
  end
  return busy, total
end

-- The machine, so that figures from a busy one can be told apart: how much
-- of the CPU other work used over half a second before the benchmark (the
-- load average lags, and counts the benchmark's own earlier work).
function B.machine()
  local cores = tonumber((B.sh("nproc"):gsub("%s+$", "")))
  local b0, t0 = cpu_times()
  B.sh("sleep 0.5")
  local b1, t1 = cpu_times()
  if not b0 or t1 == t0 then return string.format("%d cores", cores) end
  local used = (b1 - b0) / (t1 - t0) * cores
  return string.format("%d cores, %.1f in use by other work%s", cores, used,
    used > 0.5 and " (BUSY: figures are unreliable)" or "")
end

function B.finish()
  if total > 0 then print(string.format("targets: %d of %d met", met, total)) end
  if B.dir then
    if os.getenv("LUPINE_BENCH_KEEP") then print("scratch folder kept: " .. B.dir)
    else B.sh("rm -rf " .. B.quote(B.dir)) end
  end
end

return B
