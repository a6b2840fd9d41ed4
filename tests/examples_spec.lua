-- SPDX-License-Identifier: MIT
-- The examples run, through the CLI and through plain lua5.4.
local H = require "helper"

local function lua54(home, script)
  local cpath = H.build .. "/?.so;;"
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
    -- the same run again: every step is a cache hit, nothing new is stored
    out = H.lupine(home, "run examples/quickstart.lua")
    assert.matches("\nstep 'load_data' cached: dataset v1\n", out)
    assert.matches("processed%s+v1", out)
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

-- One example per section of the ZenML artifacts page; each builds what it
-- needs in a fresh catalog. Checked through the CLI.
local function run_example(name)
  local out, err, code = H.lupine(H.tmpdir() .. "/home", "run examples/" .. name .. ".lua")
  assert.equal(0, code, err)
  return out
end

describe("the seed examples", function()
  it("naming.lua names outputs, configures them and fills placeholders", function()
    local out = run_example("naming")
    assert.matches("train_model      %-> trained_model v1 \n", out)
    assert.matches("train_production %-> production_model v42 %[production, v2%]\n", out)
    assert.matches("train_dated      %-> model_%d%d%d%d%d%d%d%d_%d%d%d%d%d%d v1 \n", out)
    assert.matches("train_versioned  %-> model_v2%.1_%d%d%d%d%d%d%d%d v1 \n", out)
  end)

  it("configuration.lua tags, types and annotates", function()
    local out = run_example("configuration")
    assert.matches("model v3: type data, w = 1%.990\n", out)
    assert.matches("  accuracy = 0%.95\n  epochs = 100\n  framework = lupine%-demo\n"
      .. "  learning_rate = 0%.05\n", out)
    assert.matches("tags of model v1: baseline, experiment, rf%-classifier\n", out)
  end)

  it("loading.lua loads from the client, inside a step and from earlier runs", function()
    local out = run_example("loading")
    assert.matches("latest trained_model: v2, accuracy 0%.93\n", out)
    assert.matches("trained_model v1: accuracy 0%.8\n", out)
    assert.matches("by id %x+%-[%x%-]+: v1\n", out)
    assert.matches("comparison: current 0%.93, production 0%.90, improvement 0%.03\n", out)
    assert.matches("from run training%-[%d%-]+: accuracy 0%.93\nsame, through %.output: accuracy 0%.93\n", out)
  end)

  it("versioning.lua lists versions oldest first, as ZenML does", function()
    local out = run_example("versioning")
    assert.matches("\nVersion 1: [%x%-]+\n  Created: %d+%-%d+%-%d+T[%d:%.]+Z\n  Tags: \nVersion 2: "
      .. ".-\nVersion 3: ", out)
  end)

  it("promotion.lua promotes only a good model", function()
    local out = run_example("promotion")
    assert.matches("Model did not meet promotion criteria\n", out)
    assert.matches("Model [%x%-]+ promoted to production\n", out)
    assert.matches("tags of the promoted model: production, promoted\n", out)
    -- production is exclusive: the model promoted before lost it, and kept "promoted"
    assert.matches("\nmodel v3 %(quality 0%.99%): production, promoted\n"
      .. "model v2 %(quality 0%.97%): promoted\nmodel v1 %(quality 0%.90%): \n", out)
  end)

  it("searching.lua finds versions by name pattern, tag and filter", function()
    local out = run_example("searching")
    assert.matches("name contains 'model': 4 versions\n", out)
    assert.matches("tagged production: 1\n", out)
    assert.matches("trained_model v2: [%x%-]+\n", out)
  end)

  it("lineage.lua shows the producer and the consumers", function()
    local out = run_example("lineage")
    assert.matches("Produced by: train_model\nIn pipeline: training\n", out)
    assert.matches("Consumed by: evaluate %(input 'model'%) in run evaluation%-[%d%-]+\n", out)
    assert.matches("trained_model:v1\n  produced by train_model %(run training%-[%d%-]+%) "
      .. "%[completed%] as 'trained_model'\n", out)
  end)

  it("etl.lua versions its input file, fans in a sweep and looks up this run's model", function()
    local out = run_example("etl")
    assert.matches("1000 rows: north 2505000, south 2500000\n", out)
    assert.matches("again, unchanged: extract cached\n", out)
    assert.matches("2000 rows: extract completed %(input 'path' changed%), north 10010000\n", out)
    assert.matches("input: external::etl::extract::path v2\n", out)
    assert.matches("sweep: rate 0%.3, score 1%.00, read model v1\n", out)
    assert.matches("pick's inputs: models%[1%], models%[2%], models%[3%]\n", out)
  end)

  it("troubleshooting.lua lists names and explains a failed load", function()
    local out = run_example("troubleshooting")
    assert.matches("trained_model v1\n", out)
    assert.matches("Failed to load artifact: .*artifact 'trained_modle' not found; did you mean "
      .. "'trained_model'%?\n", out)
    assert.matches("\nArtifact store: default\n", out)
  end)
end)
