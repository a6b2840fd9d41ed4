-- SPDX-License-Identifier: MIT
-- Parallel speed-up: `make bench` runs this against the release build.
--
-- 8 independent CPU-bound steps (each a Lua loop calibrated here to take
-- about 0.3 s of CPU) run by `lupine run --no-cache --jobs N`, N = 1 and
-- 2: the median wall time of the whole process, and the same loops run
-- one after another by a plain `lua5.4` for reference. Target: jobs = 2 at least
-- 1.8x faster than jobs = 1. On a machine other work is using, the
-- figure says so too: the load average is printed with it.
--
-- Environment: see benchlib.lua; LUPINE_BENCH_STEP_SECONDS (0.3).

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"

local TARGET = 1.8
local STEPS = 8
local SECONDS = tonumber(os.getenv("LUPINE_BENCH_STEP_SECONDS") or "0.3")
local ROUNDS = B.rounds(3)

B.check_lupine()
local dir = B.scratch()

local loop = [[
local function spin(n)
  local x = 0
  for k = 1, n do x = x + k % 7 end
  return x
end
]]

-- Calibrate: iterations for SECONDS of CPU (the best of a few tries).
local spin = load(loop .. "return spin")()
local rate = 0
for _ = 1, 3 do
  local n, t0 = 5000000, os.clock()
  spin(n)
  rate = math.max(rate, n / (os.clock() - t0))
end
local iters = math.floor(rate * SECONDS)

local script = B.write(dir .. "/parallel.lua", "local lupine = require 'lupine'\n" .. loop
  .. string.format("local N = %d\n", iters) .. [[
local busy = lupine.step("busy", function(i) return spin(N) + i end)
lupine.pipeline { name = "parallel", function()
  for i = 1, ]] .. STEPS .. [[ do busy(i) end
end }()
]])

local direct = B.write(dir .. "/direct.lua", loop .. string.format("local N = %d\n", iters)
  .. "for i = 1, " .. STEPS .. " do local _ = spin(N) + i end\n")

print(string.format("%d steps of %d iterations (%.2f s each here); %d runs each; %s", STEPS,
  iters, SECONDS, ROUNDS, B.machine()))
local vars = { LUPINE_HOME = dir .. "/home" }
local t1 = B.timeit(ROUNDS, 1, { B.lupine, "run", "--no-cache", "--jobs", "1", script }, vars)
local t2 = B.timeit(ROUNDS, 0, { B.lupine, "run", "--no-cache", "--jobs", "2", script }, vars)
local t0 = B.timeit(ROUNDS, 0, { "lua5.4", direct }, vars)
B.verdict(string.format("%d CPU-bound steps, jobs=2: %s median (jobs=1 %s; the same loops in one "
  .. "lua5.4 %s): %.2fx speed-up (target %.1fx)", STEPS, B.ms(t2), B.ms(t1), B.ms(t0), t1 / t2,
  TARGET), t1 / t2 >= TARGET)

B.finish()
