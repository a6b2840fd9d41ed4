-- SPDX-License-Identifier: MIT
-- The examples run, through the CLI and through plain lua5.4, alone and all in
-- one catalog.
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
  it("runs with plain lua5.4", function()
    local out, err, code = lua54(H.tmpdir() .. "/home", "examples/multiple_outputs.lua")
    assert.equal(0, code, err)
    assert.equal("Model evaluation report: accuracy 1.00\n", out)
  end)
end)

-- One example per section of ZenML's artifact guide. Each checks what it
-- prints: alone in a fresh catalog, and with all the others in one catalog,
-- in several orders (their artifacts and pipelines have names of their own).
local EXPECT = {
  quickstart = function(out)
    assert.matches("dataset%s+v1  sha256:%x+%s+%d+ bytes %(%d+ stored%)  by step 'load_data'", out)
    assert.matches("processed = { 2, 4, 6, 8, 10 }", out)
  end,
  multiple_outputs = function(out)
    assert.matches("Model evaluation report: accuracy 1.00\n", out)
  end,
  naming = function(out)
    assert.matches("train_model      %-> trained_model v1 \n", out)
    assert.matches("train_production %-> production_model v42 %[production, v2%]\n", out)
    assert.matches("train_dated      %-> model_%d%d%d%d%d%d%d%d_%d%d%d%d%d%d v1 \n", out)
    assert.matches("train_versioned  %-> model_v2%.1_%d%d%d%d%d%d%d%d v1 \n", out)
  end,
  configuration = function(out)
    assert.matches("classifier v3: type data, w = 1%.990\n", out)
    assert.matches("  accuracy = 0%.95\n  epochs = 100\n  framework = lupine%-demo\n"
      .. "  learning_rate = 0%.05\n", out)
    assert.matches("tags of classifier v1: baseline, experiment, rf%-classifier\n", out)
  end,
  loading = function(out)
    assert.matches("latest forecaster: v2, accuracy 0%.93\n", out)
    assert.matches("forecaster v1: accuracy 0%.8\n", out)
    assert.matches("by id %x+%-[%x%-]+: v1\n", out)
    assert.matches("comparison: current 0%.93, production 0%.90, improvement 0%.03\n", out)
    assert.matches("from run train_forecaster%-[%d%-]+: accuracy 0%.93\n"
      .. "same, through %.output: accuracy 0%.93\n", out)
  end,
  versioning = function(out)
    -- oldest first, as ZenML lists them
    assert.matches("\nVersion 1: [%x%-]+\n  Created: %d+%-%d+%-%d+T[%d:%.]+Z\n  Tags: \nVersion 2: "
      .. ".-\nVersion 3: ", out)
  end,
  promotion = function(out)
    assert.matches("Model did not meet promotion criteria\n", out)
    assert.matches("Model [%x%-]+ promoted to production\n", out)
    assert.matches("tags of the promoted model: production, promoted\n", out)
    -- production is exclusive: the model promoted before lost it, and kept "promoted"
    assert.matches("\nmodel v3 %(quality 0%.99%): production, promoted\n"
      .. "model v2 %(quality 0%.97%): promoted\nmodel v1 %(quality 0%.90%): \n", out)
  end,
  searching = function(out)
    assert.matches("name contains 'churn_model': 4 versions\n", out)
    assert.matches("tagged reviewed: 1\n", out)
    assert.matches("churn_model v2: [%x%-]+\n", out)
  end,
  lineage = function(out)
    assert.matches("Produced by: train_model\nIn pipeline: train_recommender\n", out)
    assert.matches("Consumed by: evaluate %(input 'model'%) in run evaluate_recommender%-[%d%-]+\n",
      out)
    assert.matches("recommender:v1\n  produced by train_model %(run train_recommender%-[%d%-]+%) "
      .. "%[completed%] as 'recommender'\n", out)
  end,
  etl = function(out)
    assert.matches("1000 rows: north 2505000, south 2500000\n", out)
    assert.matches("again, unchanged: extract cached\n", out)
    assert.matches("2000 rows: extract completed %(input 'path' changed%), north 10010000\n", out)
    assert.matches("input: external::etl::extract::path v2\n", out)
    assert.matches("sweep: rate 0%.3, score 1%.00, read best_model v1\n", out)
    assert.matches("pick's inputs: models%[1%], models%[2%], models%[3%]\n", out)
  end,
  troubleshooting = function(out)
    assert.matches("%f[%w_]spam_filter v1\n", out)
    assert.matches("Failed to load artifact: .*artifact 'spam_fitler' not found; did you mean "
      .. "'spam_filter'%?\n", out)
    assert.matches("\nArtifact store: default\n", out)
  end,
  analysis = function(out)
    assert.matches("visualization 1: html, %d+ bytes\nvisualization 2: csv, %d+ bytes\n"
      .. "visualization 3: html, %d+ bytes\nmetric,value\naccuracy,0.95\n", out)
  end,
  performance_plot = function(out)
    assert.matches("performance_plot v1: a line plot, 'Model Performance', 4 points\n"
      .. "visualization 1: svg, %d+ bytes, Model Performance\n", out)
  end,
}

local function run_example(home, name)
  local out, err, code = H.lupine(home, "run examples/" .. name .. ".lua")
  assert.equal(0, code, name .. ".lua: " .. err)
  return out
end

describe("each example alone", function()
  for name, expect in pairs(EXPECT) do
    it(name .. ".lua prints what it shows", function()
      expect(run_example(H.tmpdir() .. "/home", name))
    end)
  end

  it("is every example in examples/, and examples/README.md names each", function()
    local index = H.read(H.root .. "/examples/README.md")
    local listed = {}
    for file in H.sh("ls " .. H.quote(H.root .. "/examples")):gmatch("(%S+)%.lua") do
      listed[#listed + 1] = file
      assert.truthy(EXPECT[file], "examples/" .. file .. ".lua has no expectations here")
      assert.truthy(index:find("`" .. file .. ".lua`", 1, true), "examples/README.md: " .. file)
    end
    local n = 0
    for _ in pairs(EXPECT) do n = n + 1 end
    assert.equal(n, #listed)
  end)
end)

describe("all examples in one shared catalog", function()
  local names = {}
  for name in pairs(EXPECT) do names[#names + 1] = name end
  table.sort(names)
  local reversed = {}
  for i = #names, 1, -1 do reversed[#reversed + 1] = names[i] end
  -- a new shuffle each time, named in the test so that a failure can be replayed
  local seed = os.time()
  math.randomseed(seed)
  local shuffled = { table.unpack(names) }
  for i = #shuffled, 2, -1 do
    local j = math.random(i)
    shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
  end
  for _, order in ipairs {
    { "in order", names }, { "in reverse", reversed },
    { "shuffled (" .. table.concat(shuffled, " ") .. ")", shuffled } } do
    it("run and print what they show " .. order[1], function()
      local home = H.tmpdir() .. "/home"
      for _, name in ipairs(order[2]) do EXPECT[name](run_example(home, name)) end
    end)
  end
end)
