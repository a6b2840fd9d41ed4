-- SPDX-License-Identifier: MIT
-- What each call of a step gets and records: its own random seed, the
-- options of one call (with_options), and its outputs: none, its own, and
-- what it saved by hand.
local H = require "helper"
local dkjson = require "dkjson"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local function json(s)
  local v, _, msg = dkjson.decode(s, 1, dkjson.null)
  assert(v ~= nil, "not JSON: " .. tostring(msg) .. ": " .. s)
  return v
end

local draw = step("draw", function(i) return math.random() end)

describe("random numbers", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  -- the values the three calls of draw drew, and their step runs
  local function sweep(p)
    local run = p()
    local values, seeds = {}, {}
    for i, name in ipairs { "draw", "draw_2", "draw_3" } do
      values[i] = run.steps[name].output:load()
      seeds[i] = run.steps[name].seed
    end
    return values, seeds, run
  end

  it("differ between the calls of a step, from the script's, and from run to run", function()
    local p = pipeline { name = "sweep", enable_cache = false, function()
      for i = 1, 3 do draw(i) end
    end }
    math.randomseed(42)
    local values, seeds = sweep(p)
    math.randomseed(42)
    local script_draw = math.random()
    assert.are_not.equal(values[1], values[2])
    assert.are_not.equal(values[2], values[3])
    assert.are_not.equal(values[1], values[3])
    for i = 1, 3 do assert.are_not.equal(script_draw, values[i]) end
    local again = sweep(p)
    for i = 1, 3 do assert.are_not.equal(values[i], again[i]) end
    -- each step run's seed is recorded, and is what its numbers came from
    for i = 1, 3 do
      assert.equal("integer", math.type(seeds[i]))
      assert.is_true(seeds[i] >= 0 and seeds[i] < 2 ^ 53)
      math.randomseed(seeds[i])
      assert.equal(values[i], math.random())
    end
  end)

  it("are reproducible with a seed, on a step, a call, a pipeline or a run", function()
    math.randomseed(7)
    local seven = math.random()
    local fixed = step { name = "draw", seed = 7, function(i) return math.random() end }
    local p = pipeline { name = "fixed", enable_cache = false, function()
      for i = 1, 3 do fixed(i) end
    end }
    local values, seeds = sweep(p)
    assert.same({ seven, seven, seven }, values)
    assert.same({ 7, 7, 7 }, seeds)
    assert.same(values, (sweep(p)))
    -- a call's seed wins over its step's; a run's over both
    local q = pipeline { name = "per_call", enable_cache = false, seed = 1, function()
      fixed(1)
      fixed:with_options { seed = 8 }(2)
      draw(3)
    end }
    values, seeds = sweep(q)
    assert.same({ 7, 8, 1 }, seeds)
    math.randomseed(8)
    assert.equal(math.random(), values[2])
    values, seeds = sweep(q:with_options { seed = 3 })
    assert.same({ 3, 3, 3 }, seeds)
  end)

  it("reproduce a step run given its recorded seed", function()
    local resample = step { name = "resample", function(data, size)
      local out = {}
      for i = 1, size do out[i] = data[math.random(#data)] end
      return out
    end }
    local make = step("make", function() return { 10, 20, 30, 40, 50, 60, 70, 80 } end)
    local run = pipeline { name = "boot", function()
      local data = make()
      for _ = 1, 3 do resample(data, 6) end
    end } ()
    local sr = run.steps.resample_3
    local again = resample:with_options { seed = sr.seed }(sr.inputs.data, sr.parameters.size)
    assert.same(sr.output:load(), again)
  end)

  it("a fixed seed is part of the cache key, a fresh one is not", function()
    local p = pipeline { name = "cached", function() draw(1) end }
    local first = p()
    local second = p()
    local a, b = first.steps.draw, second.steps.draw
    assert.equal("cached", b.status)
    assert.equal(a.output.id, b.output.id)
    assert.equal(a.seed, b.seed)   -- the seed that made the outputs it reuses
    local seeded = pipeline { name = "cached", seed = 5, function() draw(1) end }
    local third = seeded()
    assert.equal("completed", third.steps.draw.status)
    assert.equal("its seed changed", third.steps.draw.cache_note)
    assert.equal("cached", seeded().steps.draw.status)
    local fourth = pipeline { name = "cached", seed = 6, function() draw(1) end } ()
    assert.equal("completed", fourth.steps.draw.status)
  end)

  it("keeps its seed through retries", function()
    local dir = H.tmpdir()
    local flaky = step { name = "flaky", retries = 2, function()
      local f = io.open(dir .. "/draws", "a")
      f:write(string.format("%.17g\n", math.random()))
      f:close()
      local n = select(2, H.read(dir .. "/draws"):gsub("\n", ""))
      if n < 3 then error("try again") end
      return true
    end }
    local run = pipeline { name = "retried", function() flaky() end } ()
    assert.equal(3, run.steps.flaky.attempts)
    local draws = {}
    for line in H.read(dir .. "/draws"):gmatch("[^\n]+") do draws[#draws + 1] = line end
    math.randomseed(run.steps.flaky.seed)
    local expected = string.format("%.17g", math.random())
    assert.same({ expected, expected, expected }, draws)
  end)

  it("refuses a seed that is not an integer, naming it", function()
    assert.equal("step 's': seed must be an integer (got 1.5)",
      H.err(function() step { name = "s", seed = 1.5, function() end } end))
    assert.equal("pipeline 'p': seed must be an integer (got x)",
      H.err(function() pipeline { name = "p", seed = "x", function() end } end))
    assert.equal("step 'draw': seed must be an integer (got 2.5)",
      H.err(function() draw:with_options { seed = 2.5 } end))
  end)

  it("shows the seed in pipeline runs describe, as text and in --json", function()
    local home = H.tmpdir() .. "/home"
    local script = H.script([[
      local s = lupine.step("s", function() return math.random() end)
      lupine.pipeline { name = "p", function() s(); s:with_options { seed = 11 }() end }
        :with_options { run_name = "r" } ()
      lupine.pipeline { name = "p", function() s(); s:with_options { seed = 11 }() end }
        :with_options { run_name = "r2" } ()
    ]])
    local _, err, code = H.lupine(home, "run " .. script)
    assert.equal(0, code, err)
    local doc = json(H.lupine(home, "pipeline runs describe r --json"))
    local fresh = doc.steps[1].seed
    assert.equal("integer", math.type(fresh))
    assert.equal(11, doc.steps[2].seed)
    local out = H.lupine(home, "pipeline runs describe r2")
    assert.matches("\nstep\ts\tcached\t[%d.]+\nseed\ts\t" .. fresh .. "\n", out)
    assert.matches("\nstep\ts_2\tcached\t[%d.]+\nseed\ts_2\t11\n", out)
  end)
end)

describe("with_options on a step", function()
  before_each(function() H.fresh(lupine) end)

  local train = step { name = "train", function(rate) return { rate = rate } end }

  it("names a call with id, and leaves the step itself as it was", function()
    local run = pipeline { name = "sweep", function()
      train:with_options { id = "train_small" }(0.1)
      train(0.2)
      train:with_options { id = "train_big" }(0.9)
      train(0.3)
    end } ()
    assert.same({ rate = 0.1 }, run.steps.train_small.output:load())
    assert.same({ rate = 0.2 }, run.steps.train.output:load())
    assert.same({ rate = 0.9 }, run.steps.train_big.output:load())
    assert.same({ rate = 0.3 }, run.steps.train_2.output:load())
    assert.equal("sweep::train_small::output", run.steps.train_small.output.name)
    assert.equal("train", run.steps.train_small.step_name)
  end)

  it("skips the names ids took, and refuses an id used twice, naming it", function()
    local run = pipeline { name = "named", function()
      train:with_options { id = "train_2" }(1)
      train(2)
      train(3)
    end } ()
    assert.same({ rate = 1 }, run.steps.train_2.output:load())
    assert.same({ rate = 3 }, run.steps.train_3.output:load())
    local dup = pipeline { name = "dup", function()
      train:with_options { id = "a" }(1)
      train:with_options { id = "a" }(2)
    end }
    assert.matches("^[^\n]*step_runs_spec%.lua:%d+: step 'train': id 'a' is already used in "
      .. "pipeline 'dup'", select(2, pcall(dup)))
    local taken = pipeline { name = "taken", function()
      train(1)
      train:with_options { id = "train" }(2)
    end }
    assert.matches("step 'train': id 'train' is already used in pipeline 'taken'",
      select(2, pcall(taken)))
  end)

  it("sets the step's settings and substitutions for that call", function()
    local dir = H.tmpdir()
    local counted = step { name = "counted", outputs = { lupine.ArtifactConfig {
        name = "out_{size}" } }, substitutions = { size = "default" }, function(x)
      local f = io.open(dir .. "/" .. x, "a"); f:write("x\n"); f:close()
      if #H.read(dir .. "/" .. x) < 4 then error("not yet") end
      return x
    end }
    local p = pipeline { name = "opts", function()
      counted:with_options { retries = 1, substitutions = { size = "small" } }("a")
      counted:with_options { id = "uncached", retries = 1, enable_cache = false }("b")
    end }
    local run = p()
    assert.equal(2, run.steps.counted.attempts)
    assert.equal("out_small", run.steps.counted.output.name)
    assert.equal("out_default", run.steps.uncached.output.name)
    run = p()
    assert.equal("cached", run.steps.counted.status)
    assert.equal("completed", run.steps.uncached.status)
    assert.equal("caching is off for this step", run.steps.uncached.cache_note)
    local slow = step("slow", function() os.execute("sleep 5") end)
    run = pipeline { name = "timed", function() slow:with_options { timeout = 0.3 }() end }
      :with_options { raise_on_failure = false } ()
    assert.matches("ran past its timeout of 0.3 s and was stopped$", run.steps.slow.error)
  end)

  it("runs a call outside a body as a one-step run with those options", function()
    assert.same({ rate = 5 }, train:with_options { id = "alone", seed = 3 }(5))
    local run = lupine.Client():list_pipeline_runs()[1]
    assert.equal("train", run.pipeline_name)
    assert.equal(3, run.steps.alone.seed)
  end)

  it("refuses an unknown option or a bad value, naming it", function()
    assert.equal("step 'train': unknown option 'enable_cach' in with_options; did you mean "
      .. "'enable_cache'?", H.err(function() train:with_options { enable_cach = false } end))
    assert.equal("step 'train': unknown option 'colour' in with_options",
      H.err(function() train:with_options { colour = "red" } end))
    assert.equal("step 'train': retries must be an integer from 0 (got -1)",
      H.err(function() train:with_options { retries = -1 } end))
    assert.equal("step 'train': id must be a string (got number)",
      H.err(function() train:with_options { id = 3 } end))
    assert.equal("step name must not be empty",
      H.err(function() train:with_options { id = "" } end))
    assert.equal("bad argument #1 to 'with_options' (table expected, got string)",
      H.err(function() train:with_options "id" end))
    assert.equal("pipeline 'p': unknown option 'run_nme'; did you mean 'run_name'?",
      H.err(function() pipeline { name = "p", function() end }:with_options { run_nme = "x" } end))
  end)
end)

describe("outputs", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("outputs = {} declares none: nothing stored, still cacheable", function()
    local notify = step { name = "notify", outputs = {}, function(msg) print(msg) end }
    local after = step("after", function() return "done" end)
    local p = pipeline { name = "quiet", function()
      assert(select("#", notify("hello")) == 0, "a call with no outputs gives no placeholder")
      after()
    end }
    local run = p()
    local sr = run.steps.notify
    assert.equal("completed", sr.status)
    assert.same({}, sr.outputs)
    assert.equal("hello\n", sr.logs)
    assert.equal(1, client:list_artifact_versions().total)   -- after's output alone
    assert.equal("step run 'notify' has no outputs",
      H.err(function() return sr.output end))
    run = p()
    assert.equal("cached", run.steps.notify.status)
    assert.equal(sr.id, run.steps.notify.cached_from)
    assert.is_nil(notify("outside"))
    assert.equal(0, select("#", notify("outside")))
  end)

  it("outputs = {}: a step that returns a value fails, naming the step", function()
    local chatty = step { name = "chatty", outputs = {}, function() return 1 end }
    local run = pipeline { name = "chatty", function() chatty() end }
      :with_options { raise_on_failure = false } ()
    assert.matches("^step 'chatty' %(tests/step_runs_spec.lua:%d+%): returned 1 value but "
      .. "declares no outputs$", run.steps.chatty.error)
    assert.equal("step 'x': outputs must be a list of names or ArtifactConfigs",
      H.err(function() step { name = "x", outputs = { a = 1 }, function() end } end))
  end)

  it("the default output stores nothing when the step returns no value, nil for return nil",
    function()
    local nothing = step("nothing", function() end)
    local explicit = step("explicit", function() return nil end)
    local takes = step("takes", function(x) return x == nil end)
    local p = pipeline { name = "none", function()
      takes(nothing())
      explicit()
    end }
    local run = p()
    assert.same({}, run.steps.nothing.outputs)
    assert.equal(0, client:list_artifact_versions { name = "none::nothing::output" }.total)
    assert.is_true(run.steps.takes.output:load())
    assert.same({}, run.steps.takes.inputs)
    assert.is_nil(run.steps.explicit.output:load())
    assert.equal("none::explicit::output", run.steps.explicit.output.name)
    run = p()
    for _, name in ipairs { "nothing", "explicit", "takes" } do
      assert.equal("cached", run.steps[name].status, name)
    end
    assert.same({}, run.steps.nothing.outputs)
    assert.equal(0, client:list_artifact_versions { name = "none::nothing::output" }.total)
    assert.equal(0, select("#", nothing()))
  end)

  it("a step whose output version was deleted runs again, not a hit with nothing", function()
    local value = step("value", function() return 41 end)
    local p = pipeline { name = "deleted", function() value() end }
    local first = p()
    client:delete_artifact_version(first.steps.value.output, { force = true })
    local run = p()
    assert.equal("completed", run.steps.value.status)
    assert.equal(41, run.steps.value.output:load())
  end)

  it("are the step's own; versions saved by hand are apart, with their save type", function()
    local worker = step { name = "worker", function()
      lupine.save_artifact({ extra = true }, "side_output")
      return "main"
    end }
    local p = pipeline { name = "saves", function() worker() end }
    local run = p()
    local sr = run.steps.worker
    assert.equal("main", sr.output:load())
    assert.same({ "output" }, (function()
      local names = {}
      for name in pairs(sr.outputs) do names[#names + 1] = name end
      return names
    end)())
    assert.same({ extra = true }, sr.manual_outputs.side_output:load())
    assert.equal("step_output", sr.output.save_type)
    assert.equal("manual", sr.manual_outputs.side_output.save_type)
    assert.equal("manual", client:get_artifact_version("side_output").save_type)
    assert.equal("manual", lupine.save_artifact(1, "outside").save_type)
    assert.equal("manual", client:list_artifact_versions { name = "outside" }[1].save_type)
    -- a cache hit links what the step saved by hand as it was
    local again = p().steps.worker
    assert.equal("cached", again.status)
    assert.equal(sr.output.id, again.output.id)
    assert.equal(sr.manual_outputs.side_output.id, again.manual_outputs.side_output.id)
  end)

  it("refuse a version saved by hand under a name its step run links already", function()
    local twice = step { name = "twice", function()
      lupine.save_artifact(1, "x")
      lupine.save_artifact(2, "x")
      return 0
    end }
    local shadow = step { name = "shadow", outputs = { "x" }, function()
      lupine.save_artifact(1, "x")
      return 0
    end }
    local run = pipeline { name = "clash", function() twice(); shadow() end }
      :with_options { raise_on_failure = false } ()
    assert.matches("^step 'twice' %(tests/step_runs_spec.lua:%d+%) failed: "
      .. "tests/step_runs_spec.lua:%d+: save_artifact 'x': step 'twice' saved a version of "
      .. "'x' already %(one per name in a step run%)$", run.steps.twice.error)
    assert.matches("^step 'shadow' %(tests/step_runs_spec.lua:%d+%) failed: "
      .. "tests/step_runs_spec.lua:%d+: save_artifact 'x': step 'shadow' has an output named "
      .. "'x' %(save the version under another name%)$", run.steps.shadow.error)
  end)

  it("show in describe and --json: manual outputs apart, each version's save type", function()
    local home = H.tmpdir() .. "/home"
    local script = H.script([[
      local w = lupine.step { name = "worker", function()
        lupine.save_artifact({ 1 }, "side_output")
        return "main"
      end }
      local q = lupine.step { name = "quiet", outputs = {}, function() end }
      lupine.pipeline { name = "p", function() w(); q() end }
        :with_options { run_name = "r" } ()
    ]])
    local _, err, code = H.lupine(home, "run " .. script)
    assert.equal(0, code, err)
    local doc = json(H.lupine(home, "pipeline runs describe r --json"))
    local w, q = doc.steps[1], doc.steps[2]
    assert.same({ "output" }, (function()
      local names = {}
      for name in pairs(w.outputs) do names[#names + 1] = name end
      return names
    end)())
    assert.equal("side_output", w.manual_outputs.side_output.name)
    assert.same({}, q.outputs)
    assert.same({}, q.manual_outputs)
    local out = H.lupine(home, "pipeline runs describe r")
    assert.matches("\nmanual_output\tworker\tside_output\tside_output:1\t[%x-]+\n", out)
    assert.matches("\nstep\tquiet\tcompleted\t[%d.]+\nseed\tquiet\t%d+\n"
      .. "orchestrator\tquiet\tlocal\n"
      .. "cache_note\tquiet\tit never ran before\n$", out)
    assert.equal("manual", json(H.lupine(home, "artifact version describe side_output --json"))
      .save_type)
    assert.equal("step_output", json(H.lupine(home,
      "artifact version describe p::worker::output --json")).save_type)
    assert.matches("\nsave_type\tmanual\n", (H.lupine(home, "artifact version describe side_output")))
  end)
end)
