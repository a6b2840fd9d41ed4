-- SPDX-License-Identifier: MIT
-- Steps and pipelines through `require "lupine"` (in-process).
local H = require "helper"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local load_data = step { name = "load_data", outputs = { "dataset" },
  function() return { values = { 1, 2, 3, 4, 5 } } end }

local process_data = step { name = "process_data", outputs = { "processed" },
  function(dataset)
    local out = {}
    for i, x in ipairs(dataset.values) do out[i] = x * 2 end
    return out
  end }

local ml = pipeline { name = "ml_pipeline", function()
  local dataset = load_data()
  process_data(dataset)
end }

describe("a pipeline run", function()
  before_each(function() H.fresh(lupine) end)

  it("runs the steps in order and stores their named outputs", function()
    local run = ml()
    assert.equal("completed", run.status)
    assert.equal("ml_pipeline", run.pipeline_name)
    assert.same({ values = { 1, 2, 3, 4, 5 } }, run.steps.load_data.outputs.dataset:load())
    assert.same({ 2, 4, 6, 8, 10 }, run.steps.process_data.outputs.processed:load())
    assert.same({ 2, 4, 6, 8, 10 }, run.steps.process_data.output:load())
  end)

  it("names runs <pipeline>-<YYYYMMDD>-<HHMMSS>, unique", function()
    local a, b = ml(), ml()
    assert.matches("^ml_pipeline%-%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d", a.name)
    assert.not_equal(a.name, b.name)
    local date = os.date("!%Y%m%d")
    assert.equal(date, a.name:match("%-(%d+)%-"))
  end)

  it("takes a run name from with_options", function()
    local run = ml:with_options { run_name = "nightly" }()
    assert.equal("nightly", run.name)
    assert.equal("pipeline 'ml_pipeline': a run named 'nightly' already exists",
      H.err(function() ml:with_options { run_name = "nightly" }() end))
  end)

  it("passes pipeline arguments to the body and records step parameters", function()
    local scale = step { name = "scale", outputs = { "scaled" },
      function(dataset, factor)
        local out = {}
        for i, x in ipairs(dataset.values) do out[i] = x * factor end
        return out
      end }
    local p = pipeline { name = "scaling", function(factor)
      scale(load_data(), factor)
    end }
    local run = p(3)
    assert.same({ 3, 6, 9, 12, 15 }, run.steps.scale.output:load())
    assert.same({ factor = 3 }, run.steps.scale.parameters)
    assert.equal("dataset", next(run.steps.scale.inputs))
    assert.equal(run.steps.load_data.output.id, run.steps.scale.inputs.dataset.id)
  end)

  it("returns multiple outputs as separate artifacts", function()
    local split_and_train = step { name = "split_and_train",
      outputs = { "train_data", "test_data", "model" },
      function()
        return { X = { 1, 2 }, y = { 0, 1 } }, { X = { 3 }, y = { 1 } }, { weights = { 0.5 } }
      end }
    local evaluate = step { name = "evaluate", outputs = { "metrics" },
      function(model, test_data)
        return { accuracy = model.weights[1] * #test_data.X + 0.45 }
      end }
    local p = pipeline { name = "multi", function()
      local train, test, model = split_and_train()
      evaluate(model, test)
    end }
    local run = p()
    local outs = run.steps.split_and_train.outputs
    assert.same({ X = { 3 }, y = { 1 } }, outs.test_data:load())
    assert.same({ weights = { 0.5 } }, outs.model:load())
    assert.same({ accuracy = 0.95 }, run.steps.evaluate.output:load())
    assert.equal("step run 'split_and_train' has 3 outputs (model, test_data, train_data): use .outputs[name]",
      H.err(function() return run.steps.split_and_train.output end))
  end)

  it("names an unnamed output <pipeline>::<step>::output", function()
    local double = step("double", function(x) return x * 2 end)
    local p = pipeline { name = "unnamed", function() double(21) end }
    local run = p()
    local av = run.steps.double.outputs.output
    assert.equal("unnamed::double::output", av.name)
    assert.equal(42, av:load())
  end)

  it("gives a step used twice the invocation names step, step_2", function()
    local inc = step("inc", function(x) return x + 1 end)
    local p = pipeline { name = "twice", function()
      inc(inc(1))
    end }
    local run = p()
    assert.equal(2, run.steps.inc.output:load())
    assert.equal(3, run.steps.inc_2.output:load())
    assert.equal("twice::inc_2::output", run.steps.inc_2.output.name)
  end)

  it("runs a step called outside a pipeline at once", function()
    local a, b = step { name = "pair", outputs = { "left", "right" },
      function(x) return x, { x } end } (7)
    assert.equal(7, a)
    assert.same({ 7 }, b)
    local run = lupine.Client():list_pipeline_runs()[1]
    assert.equal("pair", run.pipeline_name)
    assert.equal("completed", run.status)
  end)

  it("takes a stored artifact version as a step input", function()
    ml()
    local av = lupine.Client():get_artifact_version("processed")
    local sum = step("sum", function(xs)
      local s = 0
      for _, x in ipairs(xs) do s = s + x end
      return s
    end)
    local p = pipeline { name = "reuse", function() sum(av) end }
    local run = p()
    assert.equal(30, run.steps.sum.output:load())
    assert.equal(av.id, run.steps.sum.inputs.xs.id)
  end)

  it("isolates steps: a step cannot change another step's input", function()
    local mutate = step("mutate", function(d) d.values[1] = 100; return d.values[1] end)
    local p = pipeline { name = "iso", function()
      local d = load_data()
      mutate(d)
      process_data(d)
    end }
    local run = p()
    assert.same({ 2, 4, 6, 8, 10 }, run.steps.process_data.output:load())
  end)
end)

describe("a failing step", function()
  before_each(function() H.fresh(lupine) end)

  local boom = step { name = "boom", outputs = { "never" }, function(dataset)
    error("the data is bad")
  end }
  local after = step { name = "after", function(x) return x end }
  local independent = step { name = "independent", function() return "fine" end }
  local failing = pipeline { name = "failing", function()
    after(boom(load_data()))
    independent()
  end }

  it("fails the run with an error that names the step, as a table with the run", function()
    local ok, err = pcall(failing)
    assert.is_false(ok)
    assert.equal("table", type(err))
    assert.equal("failed", err.run.status)
    assert.matches("pipeline run 'failing%-[%d%-]+' failed:\n"
      .. "step 'boom' %(tests/pipeline_spec.lua:%d+%) failed: "
      .. "tests/pipeline_spec.lua:%d+: the data is bad", tostring(err))
  end)

  it("records error and traceback, skips what depends on it, runs the rest", function()
    local run = failing:with_options { raise_on_failure = false }()
    assert.equal("failed", run.status)
    local steps = run.steps
    assert.equal("completed", steps.load_data.status)
    assert.equal("failed", steps.boom.status)
    assert.equal("skipped", steps.after.status)
    assert.equal("completed", steps.independent.status)
    assert.matches("the data is bad", steps.boom.error)
    assert.equal(steps.load_data.output.id, steps.boom.inputs.dataset.id,
      "a failed step still shows what it took")
    assert.matches("stack traceback:", steps.boom.traceback)
    assert.matches("pipeline_spec.lua:%d+: in function", steps.boom.traceback)
    assert.matches("the data is bad", run.error)
  end)

  it("fails a step that returns the wrong number of values", function()
    local two = step { name = "two", outputs = { "a", "b" }, function() return 1 end }
    local run = pipeline { name = "count", function() two() end }
      :with_options { raise_on_failure = false }()
    assert.equal("failed", run.status)
    assert.matches("^step 'two' %(tests/pipeline_spec.lua:%d+%): returned 1 value but "
      .. "declares 2 outputs$", run.steps.two.error)
  end)

  it("fails a step whose output cannot be serialized, naming the path", function()
    local train_model = step { name = "train_model", outputs = { "model" }, function()
      return { layers = { {}, {}, { fn = print } } }
    end }
    local run = pipeline { name = "bad_output", function() train_model() end }
      :with_options { raise_on_failure = false }()
    assert.matches("^step 'train_model' %(tests/pipeline_spec.lua:%d+%): output 'model': "
      .. "value%.layers%[3%]%.fn is a function$", run.steps.train_model.error)
    assert.equal(0, lupine.Client():list_artifact_versions { name = "model" }.total)
  end)

  it("fails a step whose output has two keys that encode alike, naming the map", function()
    local pairs_of = step { name = "pairs_of", outputs = { "pairs" }, function()
      return { by_point = { [{ 1, 2 }] = "first", [{ 1, 2 }] = "second" } }
    end }
    local run = pipeline { name = "alike", function() pairs_of() end }
      :with_options { raise_on_failure = false }()
    assert.matches("^step 'pairs_of' %(tests/pipeline_spec.lua:%d+%): output 'pairs': "
      .. "value%.by_point has two keys that encode alike %(tables with equal contents%)$",
      run.steps.pairs_of.error)
    assert.equal("save_artifact 'p': value has two keys that encode alike (tables with "
      .. "equal contents)", H.err(function()
        lupine.save_artifact({ [{}] = "first", [{}] = "second" }, "p") end))
    assert.equal(0, lupine.Client():list_artifact_versions { name = "pairs" }.total)
  end)
end)

describe("bad pipeline definitions", function()
  before_each(function() H.fresh(lupine) end)

  it("refuses a parameter that cannot be serialized, naming step and parameter", function()
    local s = step("takes_fn", function(f) return 1 end)
    local p = pipeline { name = "bad_param", function() s(print) end }
    assert.has_error(function() p() end)
    local ok, err = pcall(p)
    assert.matches("step 'takes_fn': parameter 'f': value is a function", err)
  end)

  it("refuses too many arguments", function()
    local s = step("one", function(a) return a end)
    local ok, err = pcall(pipeline { name = "too_many", function() s(1, 2) end })
    assert.matches("step 'one' takes 1 input %(a%) but was given 2", err)
  end)

  it("explains that a placeholder is not a value inside a body", function()
    local p = pipeline { name = "peek", function()
      local d = load_data()
      return d.values
    end }
    local ok, err = pcall(p)
    assert.matches("output 'dataset' of step 'load_data' is not a value yet", err)
  end)

  it("refuses a body with no steps, a missing function, bad options", function()
    assert.has_error(function() pipeline { name = "empty", function() end } () end)
    assert.equal("bad argument #1 to 'step' (the step's function is missing)",
      H.err(function() step { name = "x" } end))
    assert.equal("pipeline 'ml_pipeline': unknown option 'jobs_typo'",
      H.err(function() ml:with_options { jobs_typo = 1 } end))
    assert.equal("step 'dup': output 'a' is declared twice",
      H.err(function() step { name = "dup", outputs = { "a", "a" }, function() end } end))
  end)

  it("refuses bad names", function()
    assert.equal("step name must not be empty",
      H.err(function() step { name = "", function() end } end))
    assert.equal('step name "a\\x00b" contains a control character',
      H.err(function() step { name = "a\0b", function() end } end))
    assert.equal('step name "\\xFF" is not valid UTF-8',
      H.err(function() step { name = "\255", function() end } end))
    assert.has_error(function() pipeline { name = string.rep("x", 256), function() end } end)
  end)

  it("refuses a pipeline called inside another body", function()
    local inner = pipeline { name = "inner", function() load_data() end }
    local outer = pipeline { name = "outer", function() inner() end }
    local ok, err = pcall(outer)
    assert.matches("pipeline 'inner' was called inside the body of pipeline 'outer'", err)
  end)
end)
