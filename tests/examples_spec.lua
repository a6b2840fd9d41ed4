-- The examples run, through the CLI and through plain lua5.4.
local H = require "helper"

local function lua54(home, script)
  local cpath = H.root .. "/" .. H.build .. "/?.so;;"
  return H.sh("cd " .. H.quote(H.root) .. " && LUPINE_HOME=" .. H.quote(home)
    .. " LUA_CPATH=" .. H.quote(cpath) .. " lua5.4 " .. script, true)
end

describe("examples/quickstart.lua", function()
  it("runs with lupine run and shows what it stored", function()
    local home = H.tmpdir() .. "/home"
    local out, err, code = H.lupine(home, "run examples/quickstart.lua")
    assert.equal(0, code, err)
    assert.matches("dataset%s+v1  sha256:%x+%s+%d+ bytes %(%d+ stored%)  by step 'load_data'", out)
    assert.matches("processed = { 2, 4, 6, 8, 10 }", out)
    out = H.lupine(home, "run examples/quickstart.lua")
    assert.matches("processed%s+v2", out)
  end)
end)

describe("examples/multiple_outputs.lua", function()
  it("runs with lupine run", function()
    local out, err, code = H.lupine(H.tmpdir() .. "/home", "run examples/multiple_outputs.lua")
    assert.equal(0, code, err)
    assert.matches("Model evaluation report: accuracy 1.00\n", out)
  end)

  it("runs with plain lua5.4", function()
    local out, err, code = lua54(H.tmpdir() .. "/home", "examples/multiple_outputs.lua")
    assert.equal(0, code, err)
    assert.equal("Model evaluation report: accuracy 1.00\n", out)
  end)
end)
