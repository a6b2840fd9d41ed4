-- SPDX-License-Identifier: MIT
-- Per-step overhead: `make bench` runs this against the release build.
--
-- A chain of 1000 trivial steps (each adds 1 to the one before's output)
-- and a fan-out of 1000 (each adds 1 to its own parameter), run by
-- `lupine run --jobs N` with the default settings (caching on, every
-- object written durably), against the same Lua calls made directly by
-- `lua5.4` (one process, a plain loop). Overhead per step = (lupine time -
-- direct time) / steps, both the median wall time of the whole process.
-- Each timed run starts from new values (LUPINE_BENCH_REP), so every step
-- runs and writes a new object; one untimed run first fills the catalog
-- and the store's fan-out folders (steady state, not a first use).
--
-- The no-op re-run: the same script again with the values of a run that
-- completed, so every step is a cache hit; the median wall time of the
-- whole `lupine run`.
--
-- Environment: see benchlib.lua; LUPINE_BENCH_STEPS (1000).

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"

local STEPS = tonumber(os.getenv("LUPINE_BENCH_STEPS") or "1000")
local TARGET_STEP = 0.25e-3     -- s of overhead per step, jobs = 1
local TARGET_NOOP = 30e-3       -- s for a re-run of every step, all cached

B.check_lupine()
local dir = B.scratch()

-- The values of a run: LUPINE_BENCH_BASE when set (the cached re-runs),
-- else new ones per run (timeit's run number, offset per series).
local prelude = [[
local N = tonumber(os.getenv("LUPINE_BENCH_STEPS"))
local base = math.tointeger(os.getenv("LUPINE_BENCH_BASE")
  or os.getenv("LUPINE_BENCH_SERIES") + os.getenv("LUPINE_BENCH_REP")) * 1000000
local function inc(x) return x + 1 end
]]

local shapes = {
  chain = {
    label = "chain",
    body = "local x = base\nfor _ = 1, N do x = inc(x) end\n",
  },
  fanout = {
    label = "fan-out",
    body = "for i = 1, N do inc(base + i) end\n",
  },
}

for name, shape in pairs(shapes) do
  shape.direct = B.write(dir .. "/" .. name .. "_direct.lua", prelude .. shape.body
    .. "assert(base)\n")
  shape.script = B.write(dir .. "/" .. name .. ".lua", "local lupine = require 'lupine'\n"
    .. prelude:gsub("local function inc%(x%) return x %+ 1 end",
      "local inc = lupine.step('inc', function(x) return x + 1 end)")
    .. "lupine.pipeline { name = '" .. name .. "', function()\n" .. shape.body .. "end }()\n")
end

print(string.format("%d steps; %s", STEPS, B.machine()))
-- what a step costs at the least here: the fork of its worker, a file for
-- its object, a sync (informative: not a baseline of any target)
print(string.format("floor here: fork+exit+wait %.0f us for a 1 MiB process, %.0f us for "
  .. "8 MiB; a file created in the scratch folder %.0f us, with fdatasync %.0f us",
  B.floor("fork", 1, 201), B.floor("fork", 8, 201), B.floor("create", dir, 101),
  B.floor("sync", dir, 51)))
local vars = { LUPINE_BENCH_STEPS = STEPS, LUPINE_BENCH_SERIES = 0 }
local rounds = B.rounds(5)
local series = 0

for _, name in ipairs { "chain", "fanout" } do
  local shape = shapes[name]
  vars.LUPINE_HOME = dir .. "/home_" .. name
  local direct = B.timeit(B.rounds(11), 1, { "lua5.4", shape.direct }, vars)
  for _, jobs in ipairs { 1, 2 } do
    series = series + 1000
    vars.LUPINE_BENCH_SERIES = series
    local t = B.timeit(rounds, 1, { B.lupine, "run", "--jobs", jobs, shape.script }, vars)
    local per = (t - direct) / STEPS
    local line = string.format("%s of %d steps, jobs=%d: %s median (direct lua %s): "
      .. "%.3f ms/step overhead", shape.label, STEPS, jobs, B.ms(t), B.ms(direct), per * 1e3)
    if jobs == 1 then
      B.verdict(line .. string.format(" (target %.2f)", TARGET_STEP * 1e3), per <= TARGET_STEP)
    else
      print(line)
    end
  end
  -- the no-op re-run: the values of a run that completed (the first timed
  -- run of the last series), so every step is a cache hit
  vars.LUPINE_BENCH_BASE = series + 1
  local t = B.timeit(B.rounds(11), 1, { B.lupine, "run", "--jobs", 1, shape.script }, vars)
  vars.LUPINE_BENCH_BASE = nil
  B.verdict(string.format("%s of %d steps, no-op re-run (all cached), jobs=1: %s median in all "
    .. "(target %s)", shape.label, STEPS, B.ms(t), B.ms(TARGET_NOOP)), t <= TARGET_NOOP)
end

B.finish()
