-- SPDX-License-Identifier: MIT
-- The runner killed with SIGKILL at many random moments of a real run.
local H = require "helper"
local lupine = require "lupine"

local PIPELINE = [[
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline
local make = step { name = "make", outputs = { "numbers" }, function(seed)
  local t = {}
  for i = 1, 100000 do t[i] = (i * seed) % 97 end
  return t
end }
local square = step { name = "square", outputs = { "squares" }, function(xs)
  local t = {}
  for i, x in ipairs(xs) do t[i] = x * x end
  return t
end }
local total = step { name = "total", outputs = { "total" }, function(a, b, c)
  local s = 0
  for _, t in ipairs { a, b, c } do for _, x in ipairs(t) do s = s + x end end
  return s
end }
local p = pipeline { name = "stress", function(seed)
  local parts = {}
  for k = 1, 3 do parts[k] = square(make(seed * 10 + k)) end
  total(parts[1], parts[2], parts[3])
end }
p(tonumber(arg[1]) or 1)
]]

describe("a runner killed with SIGKILL at 50 random moments", function()
  it("leaves a catalog that opens, checks, loads, and resumes from what finished", function()
    local home = H.tmpdir() .. "/home"
    local dir = H.tmpdir()
    local script = H.write(dir .. "/stress.lua", PIPELINE)
    -- a first run creates the catalog; the kills then interrupt runs of 5 seeds,
    -- every other one later (a loaded machine may finish no step in 150 ms)
    local _, err, code = H.lupine(home, "run " .. H.quote(script) .. " 0")
    assert.equal(0, code, err)
    math.randomseed(os.time())
    local lines = {}
    for i = 1, 50 do
      lines[#lines + 1] = string.format("LUPINE_HOME=%s %s run --no-cache %s %d > /dev/null "
        .. "2>&1 & pid=$!; sleep 0.%03d; kill -9 $pid 2> /dev/null; wait $pid", H.quote(home),
        H.quote(H.cli), H.quote(script), i % 5 + 1, math.random(0, 150) + i % 2 * 300)
    end
    H.write(dir .. "/kill.sh", table.concat(lines, "\n") .. "\n")
    H.sh("sh " .. H.quote(dir .. "/kill.sh") .. " 2> /dev/null")
    -- orphaned workers finish or die on their own; give them a moment
    H.sh("sleep 0.5")

    -- (PostgreSQL checks its own pages: what it cannot check is that every
    -- link finds its version, or its tombstone)
    assert.equal("ok\n", (H.sqlite(home, H.pg and "SELECT CASE WHEN count(*) = 0 THEN 'ok' END"
      .. " FROM step_run_artifacts l WHERE NOT EXISTS (SELECT 1 FROM artifact_versions v"
      .. " WHERE v.seq = l.version_seq) AND NOT EXISTS (SELECT 1 FROM deleted_versions d"
      .. " WHERE d.id = l.artifact_version_id)" or "PRAGMA integrity_check")))
    lupine.set_home(home)
    local client = lupine.Client()
    local versions = client:list_artifact_versions { size = 1000 }
    assert.is_true(versions.total >= 4)
    for _, v in ipairs(versions) do
      local ok, msg = pcall(v.load, v)
      assert.is_true(ok, msg)
    end
    -- every run the kills cut short is marked failed by the next process to look
    local killed = 0
    for _, run in ipairs(client:list_pipeline_runs { size = 1000 }) do
      assert.is_true(run.status == "completed" or run.status == "failed", run.status)
      if run.status == "failed" then killed = killed + 1 end
    end
    assert.is_true(killed >= 10, "only " .. killed .. " runs were cut short")
    -- the same runs again complete, reusing what had finished
    local cached = 0
    for seed = 1, 5 do
      local out
      out, err, code = H.lupine(home, "run " .. H.quote(script) .. " " .. seed)
      assert.equal(0, code, err)
      for _ in out:gmatch("\nstep '[^']+' cached") do cached = cached + 1 end
    end
    assert.is_true(cached > 0, "no step was reused")
  end)
end)
