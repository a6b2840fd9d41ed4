-- SPDX-License-Identifier: MIT
-- The lupine command.
local H = require "helper"

local PIPELINE = [[
local lupine = require "lupine"
local load_data = lupine.step { name = "load_data", outputs = { "dataset" },
  function() return { values = { 1, 2, 3, 4, 5 } } end }
local process_data = lupine.step { name = "process_data", outputs = { "processed" },
  function(dataset)
    local out = {}
    for i, x in ipairs(dataset.values) do out[i] = x * (tonumber(arg[1]) or 2) end
    return out
  end }
local ml = lupine.pipeline { name = "ml_pipeline", function()
  process_data(load_data())
end }
local run = ml()
print("status", run.status, select("#", ...), ...)
]]

describe("lupine run", function()
  local home
  before_each(function() home = H.tmpdir() .. "/home" end)

  it("runs a script and prints a summary of the run", function()
    local out, err, code = H.lupine(home, "run " .. H.script(PIPELINE))
    assert.equal(0, code, err)
    assert.matches("run 'ml_pipeline%-%d+%-%d+' completed in [%d.]+ ms", out)
    assert.matches("\n  load_data%s+completed%s+[%d.]+ ms  dataset v1\n", out)
    assert.matches("\n  process_data%s+completed%s+[%d.]+ ms  processed v1\n", out)
    assert.matches("status\tcompleted\t0\n", out)
  end)

  it("sets arg and ... as lua does", function()
    local script = H.script(PIPELINE)
    local out, err, code = H.lupine(home, "run " .. script .. " 3 x")
    assert.equal(0, code, err)
    assert.matches("status\tcompleted\t2\t3\tx\n", out)
    local check = [[
      local lupine = require "lupine"
      print(lupine.Client():get_artifact_version("processed"):load()[5])
    ]]
    out = H.lupine(home, "run " .. H.script(check))
    assert.equal("15\n", out)
  end)

  it("shows each step as it settles; --verbose also as it starts; --quiet only the result", function()
    local script = H.script(PIPELINE)
    local out = H.lupine(home, "run " .. script)
    assert.matches("^step 'load_data' completed in [%d.]+ ms: dataset v1\n"
      .. "step 'process_data' completed in [%d.]+ ms: processed v1\nrun 'ml_pipeline", out)
    out = H.lupine(home, "run --verbose --no-cache " .. script)
    assert.matches("^run 'ml_pipeline%-[%d%-]+' of pipeline 'ml_pipeline' started\n"
      .. "step 'load_data' started\nstep 'load_data' completed in [%d.]+ ms: dataset v2\n", out)
    out = H.lupine(home, "run " .. script)
    assert.matches("^step 'load_data' cached: dataset v2\n", out)
    out = H.lupine(home, "run --quiet " .. script)
    assert.matches("^run 'ml_pipeline%-[%d%-]+' completed in [%d.]+ ms\nstatus\tcompleted\t0\n$", out)
  end)

  it("draws a one-line bar on a terminal for a run of many steps", function()
    local script = H.script([[
      local lupine = require "lupine"
      local s = lupine.step("s", function(i) return i end)
      lupine.pipeline { name = "many", function() for i = 1, 12 do s(i) end end } ()
    ]])
    local out = H.sh("LUPINE_HOME=" .. H.quote(home) .. " script -qec " .. H.quote(H.cli .. " run "
      .. script) .. " /dev/null")
    assert.matches("\r%[" .. string.rep("#", 30) .. "%] 12/12 steps\r\27%[Krun 'many", out)
    assert.not_matches("step 's_3' completed", out)
  end)

  it("exits 1 when a run fails, naming the step and its error", function()
    local script = H.script([[
      local lupine = require "lupine"
      local bad = lupine.step("bad", function() error("no data today") end)
      lupine.pipeline { name = "p", function() bad() end } ()
    ]], "broken.lua")
    local out, err, code = H.lupine(home, "run " .. script)
    assert.equal(1, code)
    assert.matches("run 'p%-[%d%-]+' failed", out)
    assert.matches("lupine: pipeline run 'p%-[%d%-]+' failed:\nstep 'bad' %(.*broken.lua:2%) "
      .. "failed: .*broken.lua:2: no data today", err)
  end)

  it("exits 1 when a run failed even if the script caught it", function()
    local script = H.script([[
      local lupine = require "lupine"
      local bad = lupine.step("bad", function() error("oops") end)
      local p = lupine.pipeline { name = "p", function() bad() end }
      print(p:with_options { raise_on_failure = false } ().status)
    ]])
    local out, _, code = H.lupine(home, "run " .. script)
    assert.equal(1, code)
    assert.matches("failed\n$", out)
  end)

  it("exits 1 on a script error, with file:line", function()
    local script = H.script("local x = nil\nprint(x.y)\n", "oops.lua")
    local _, err, code = H.lupine(home, "run " .. script)
    assert.equal(1, code)
    assert.matches("lupine: .*oops.lua:2: attempt to index a nil value", err)
    _, err, code = H.lupine(home, "run " .. H.script("x = = 1", "syntax.lua"))
    assert.equal(1, code)
    assert.matches("lupine: .*syntax.lua:1: unexpected symbol near '='", err)
  end)

  it("exits 2 on usage errors, naming the culprit", function()
    local _, err, code = H.lupine(home, "run /nonexistent/x.lua")
    assert.equal(2, code)
    assert.matches("cannot open /nonexistent/x.lua", err)
    _, err, code = H.lupine(home, "frobnicate")
    assert.equal(2, code)
    assert.matches("lupine: unknown command 'frobnicate'", err)
    _, err, code = H.lupine(home, "run")
    assert.equal(2, code)
    assert.matches("run: no script given", err)
    _, err, code = H.lupine(home, "run --bogus x.lua")
    assert.equal(2, code)
    assert.matches("run: unknown option '%-%-bogus'", err)
  end)

  it("answers --help and --version", function()
    local out, _, code = H.lupine(home, "--help")
    assert.equal(0, code)
    assert.matches("usage: lupine <command>", out)
    out, _, code = H.lupine(home, "--version")
    assert.equal(0, code)
    assert.matches("^lupine %d+%.%d+%.%d+\n$", out)
  end)
end)

describe("where the catalog lives", function()
  local script = [[print((require "lupine").home())]]

  it("is $LUPINE_HOME when set", function()
    local home = H.tmpdir() .. "/elsewhere"
    local out = H.lupine(home, "run " .. H.script(script))
    assert.equal(home .. "\n", out)
  end)

  it("is the nearest .lupine walking up, else ./.lupine", function()
    local top = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(top .. "/a/b/c") .. " " .. H.quote(top .. "/a/.lupine"))
    local s = H.script(script)
    local out = H.lupine(nil, "run " .. s, top .. "/a/b/c")
    assert.equal(top .. "/a/.lupine\n", out)
    out = H.lupine(nil, "run " .. s, top)
    assert.equal(top .. "/.lupine\n", out)
    assert.truthy(H.read(top .. "/.lupine/catalog.db"), "created on first use")
  end)

  it("names the folder when it cannot be created", function()
    local _, err, code = H.lupine("/proc/lupine-home", "run " .. H.script(script))
    assert.equal(1, code)
    assert.matches("cannot create catalog folder /proc/lupine%-home", err)
  end)
end)
