-- SPDX-License-Identifier: MIT
-- Errors that help, through `require "lupine"`: each names the user's line
-- (or no line), never a place inside Lupine; a name that can be mistyped
-- gets the near ones suggested, by spelling or as a part of them.
local H = require "helper"
local lupine = require "lupine"
local core = require "lupine.core"
local step, pipeline = lupine.step, lupine.pipeline

-- The message fn raises, and whether it blames the line of at (default:
-- fn; a function of one line, the user's code that makes the mistake), or
-- "no line" if it names none.
local function raised(fn, at)
  local ok, e = pcall(fn)
  assert(not ok, "expected an error, got none")
  local line, msg = tostring(e):match("^tests/errors_spec%.lua:(%d+): (.*)$")
  if line then return msg, tonumber(line) == debug.getinfo(at or fn, "S").linedefined end
  return tostring(e), "no line"
end

local add = step("add", function(x, y) return (x or 0) + (y or 0) end)
local add3 = step("add3", function(x, y, z) return x + (y or 0) + (z or 0) end)

describe("a step called with fewer arguments than its parameters", function()
  before_each(function() H.fresh(lupine) end)

  it("is refused at the caller's line, naming what is missing", function()
    local body = function() add(1) end
    local p = pipeline { name = "p", body }
    assert.same({ "step 'add' takes 2 inputs (x, y) but was given 1: input 'y' is missing "
      .. "(pass nil for an input meant to be empty)", true }, { raised(function() p() end, body) })
    p = pipeline { name = "p", function() add3(1) end }
    assert.same("step 'add3' takes 3 inputs (x, y, z) but was given 1: inputs 'y', 'z' are "
      .. "missing (pass nil for an input meant to be empty)", (raised(function() p() end)))
    -- outside a pipeline, the one-step run is refused alike
    assert.same({ "step 'add' takes 2 inputs (x, y) but was given 0: inputs 'x', 'y' are "
      .. "missing (pass nil for an input meant to be empty)", true },
      { raised(function() add() end) })
  end)

  it("runs when the missing ones are given as nil", function()
    local run = pipeline { name = "p", function() add(1, nil) add3(2, nil, nil) end }()
    assert.equal(1, run.steps.add.output:load())
    assert.equal(2, run.steps.add3.output:load())
    assert.equal(5, add(5, nil))
  end)
end)

describe("a typo in a name", function()
  local run
  setup(function()
    H.fresh(lupine)
    local load_data = step { name = "load_data", outputs = { "dataset" }, function() return 1 end }
    local process_data = step { name = "process_data", outputs = { "trained_model" },
      function(x) return x + 1 end }
    run = pipeline { name = "ml", function() process_data(load_data()) end }()
  end)

  it("in a run's steps, or a step run's outputs and inputs, says what there is", function()
    assert.same({ "pipeline run '" .. run.name .. "' has no step 'proces_data'; did you mean "
      .. "'process_data'? (its steps: load_data, process_data)", true },
      { raised(function() return run.steps.proces_data end) })
    local sr = run.steps.process_data
    assert.same({ "step run 'process_data' has no output 'model'; did you mean "
      .. "'trained_model'? (its outputs: trained_model)", true },
      { raised(function() return sr.outputs.model end) })
    assert.same({ "step run 'process_data' has no input 'y' (its inputs: x)", true },
      { raised(function() return sr.inputs.y end) })
    assert.same({ "step run 'load_data' has no manual output 'x' (its manual outputs: none)",
      true }, { raised(function() return run.steps.load_data.manual_outputs.x end) })
    -- the names that are there work as before, and pairs sees each
    assert.equal(2, run.steps.process_data.outputs.trained_model:load())
    local names = {}
    for name in pairs(run.steps) do names[#names + 1] = name end
    table.sort(names)
    assert.same({ "load_data", "process_data" }, names)
  end)

  it("in an artifact's name suggests the names it is part of, as well as near spellings", function()
    local client = lupine.Client()
    assert.same({ "artifact 'model' not found; did you mean 'trained_model'?", true },
      { raised(function() client:get_artifact_version("model") end) })
    assert.same({ "artifact 'datset' not found; did you mean 'dataset'?", true },
      { raised(function() client:get_artifact_version("datset") end) })
    -- a near spelling wins over a part: 'dataset' alone, not 'dataset' and others
    assert.equal("artifact 'trained_modle' not found; did you mean 'trained_model'?",
      (raised(function() client:get_artifact_version("trained_modle") end)))
  end)

  it("in a field of step{}, pipeline{} or ArtifactConfig{} suggests the field meant", function()
    assert.same({ "step 's': unknown field 'cahce'; did you mean 'cache_key' or "
      .. "'enable_cache'?", true },
      { raised(function() step { name = "s", cahce = false, function() end } end) })
    assert.same({ "step 's': unknown field 'output'; did you mean 'outputs'?", true },
      { raised(function() step { name = "s", output = { "x" }, function() end } end) })
    assert.same({ "ArtifactConfig: unknown field 'nmae'; did you mean 'name'?", true },
      { raised(function() lupine.ArtifactConfig { nmae = "x" } end) })
    assert.same({ "pipeline 'p': unknown field 'tag'; did you mean 'tags'?", true },
      { raised(function() pipeline { name = "p", tag = "x", function() end } end) })
  end)
end)

describe("an error the runtime raises", function()
  it("names no place inside Lupine", function()
    local home = H.fresh(lupine)
    lupine.set_home("/proc/lupine-nope")
    local client = lupine.Client()
    for what, fn in pairs {
      list_stacks = function() client:list_stacks() end,
      list_pipelines = function() client:list_pipelines() end,
      get_artifact_version = function() client:get_artifact_version("x") end,
      home = function() lupine.home() end,
    } do
      local msg = raised(fn)
      assert.equal("cannot create catalog folder /proc/lupine-nope (No such file or directory)",
        msg, what)
    end
    -- a run refused by the catalog: at the line that started it
    lupine.set_home(home)
    local s = step("s", function() return 1 end)
    local p = pipeline { name = "p", function() s() end }:with_options { run_name = "fixed" }
    p()
    assert.same({ "pipeline 'p': a run named 'fixed' already exists", true },
      { raised(function() p() end) })
    assert.same({ "pipeline 'p': unknown placeholder '{nope}' in run name template 'x{nope}'",
      true }, { raised(function() p:with_options { run_name = "x{nope}" } () end) })
    local t = step { name = "t", outputs = { "{zz}" }, function() return 1 end }
    assert.same({ "step 't': output '{zz}': unknown placeholder '{zz}' in name template '{zz}'",
      true }, { raised(function() t() end) })
  end)

  it("in a pipeline body keeps the body's line, with one traceback", function()
    H.fresh(lupine)
    local body = function() local x = nil; return x.y end
    local p = pipeline { name = "p", body }
    local line = debug.getinfo(body, "S").linedefined
    local ok, e = xpcall(p, debug.traceback)
    assert.is_false(ok)
    assert.matches("^tests/errors_spec%.lua:" .. line .. ": attempt to index a nil value "
      .. "%(local 'x'%)\nstack traceback:\n", e)
    assert.equal(1, select(2, e:gsub("stack traceback:", "")))
    -- and the next body is recorded as usual
    assert.equal("completed", pipeline { name = "q", function() add(1, 2) end }().status)
  end)
end)

describe("durations", function()
  it("read the same everywhere: ms to one tenth below 10, then ms, s, min, h", function()
    for _, case in ipairs { { 0, "0.0 ms" }, { 0.44, "0.4 ms" }, { 9.94, "9.9 ms" },
        { 9.96, "10 ms" }, { 850, "850 ms" }, { 999.4, "999 ms" }, { 999.6, "1.0 s" },
        { 6045, "6.0 s" }, { 59949, "59.9 s" }, { 59951, "1 min 00 s" }, { 125000, "2 min 05 s" },
        { 3599400, "59 min 59 s" }, { 3599600, "1 h 00 min" }, { 11220000, "3 h 07 min" },
        { -5, "0.0 ms" }, { 0 / 0, "0.0 ms" }, { math.huge, "2777777 h 47 min" } } do
      assert.equal(case[2], core.duration(case[1]), tostring(case[1]))
    end
  end)
end)
