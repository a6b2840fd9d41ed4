-- SPDX-License-Identifier: MIT
-- The snapshot of a sqlite catalog that `lupine exec` reads (a step on
-- Slurm, or through LUPINE_EXEC): made by the coordinator before a step's
-- spec when the catalog changed. Measured on the catalog a 1000-step chain
-- leaves, against the baseline of copying the catalog file's bytes in the
-- same process (read whole, written, no sync). Target: within 3x of that
-- copy, which is what a snapshot at least does.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"

B.check_lupine()
local dir = B.scratch()
local lupine = B.sh("realpath " .. B.quote(B.lupine)):match("[^\n]+")   -- we cd below
local benchlib = B.sh("realpath " .. B.quote((arg[0]:match("^(.*)/") or ".") .. "/benchlib.lua"))
  :match("[^\n]+")
B.write(dir .. "/chain.lua", [[
local lupine = require "lupine"
local inc = lupine.step("inc", function(x) return x + 1 end)
lupine.pipeline("chain", function() local x = 0 for i = 1, 1000 do x = inc(x) end end)()
]])
B.sh("cd " .. B.quote(dir) .. " && LUPINE_HOME=home " .. B.quote(lupine) .. " run --quiet chain.lua")
local rounds = B.rounds(15)
B.write(dir .. "/measure.lua", string.format([[
local lupine = require "lupine"
local core = require "lupine.core"
local B = dofile(%q)
local dir, rounds = %q, %d
os.execute("mkdir -p " .. dir .. "/snaps")
local times = {}
for i = 0, rounds do
  lupine.save_artifact(i, "bench_marker")   -- a change: the next one is made anew
  collectgarbage("collect")
  local t0 = B.wall()
  core.exec_release(core.exec_snapshot(dir .. "/snaps"))
  times[i] = B.wall() - t0   -- (the first, 0, a warm-up: not in the median)
end
local snapshot = B.median(times)
local bytes = assert(io.open(dir .. "/home/catalog.db", "rb")):read("a")
local copy = B.time(function()
  local f = assert(io.open(dir .. "/copy.db", "wb"))
  f:write(assert(io.open(dir .. "/home/catalog.db", "rb")):read("a"))
  f:close()
end, rounds)
print(snapshot, copy, #bytes)
]], benchlib, dir, rounds))
local out = B.sh("cd " .. B.quote(dir) .. " && LUPINE_HOME=home " .. B.quote(lupine)
  .. " run --quiet measure.lua")
local snapshot, copy, size = out:match("([%d.e-]+)%s+([%d.e-]+)%s+(%d+)")
snapshot, copy = tonumber(snapshot), tonumber(copy)
B.verdict(string.format("catalog snapshot of a 1000-step chain's catalog (%.1f MB): %s, "
  .. "copying its bytes %s: %.1fx (target <= 3x)", size / 1e6, B.ms(snapshot), B.ms(copy),
  snapshot / copy), snapshot <= 3 * copy)
B.finish()
