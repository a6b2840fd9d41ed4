-- SPDX-License-Identifier: MIT
-- Artifact configuration, dynamic names, tags, metadata and the step context.
local H = require "helper"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline
local ArtifactConfig, ArtifactType = lupine.ArtifactConfig, lupine.ArtifactType

local function one_step(output, fn, opts)
  local spec = { name = "make", outputs = { output }, fn or function() return { weights = { 1, 2, 3 } } end }
  for k, v in pairs(opts or {}) do spec[k] = v end
  local s = step(spec)
  return pipeline { name = "p", function() s() end }
end

describe("ArtifactConfig", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("names, versions, tags, types and annotates an output", function()
    local p = one_step(ArtifactConfig { name = "production_model", version = 42,
      tags = { "production", "v2" }, artifact_type = ArtifactType.MODEL,
      run_metadata = { learning_rate = 0.01, accuracy = 0.95, epochs = 10, framework = "lua",
        layers = { 3, { 4 } } } })
    local run = p()
    local av = run.steps.make.outputs.production_model
    assert.equal("production_model", av.name)
    assert.equal("42", av.version)
    assert.equal("model", av.type)
    assert.same({ "production", "v2" }, av.tags)
    local md = av.run_metadata
    assert.equal(0.01, md.learning_rate)
    assert.equal(10, md.epochs)
    assert.equal("integer", math.type(md.epochs))
    assert.equal("lua", md.framework)
    assert.same({ 3, { 4 } }, md.layers)
  end)

  it("continues automatic numbering after the highest numeric version", function()
    one_step(ArtifactConfig { name = "m", version = 42 })()
    local auto = one_step("m")()
    assert.equal("43", auto.steps.make.output.version)
    one_step(ArtifactConfig { name = "m", version = "v-beta" })()
    local again = one_step("m", nil, { enable_cache = false })()
    assert.equal("44", again.steps.make.output.version)
    assert.equal("v-beta", client:get_artifact_version("m", "v-beta").version)
  end)

  it("says a step with a custom version is done, with its version, before the step after it",
    function()
      -- (such a step is recorded at once, where the others' records wait for
      -- the next steps' cache questions: executor.c)
      local home = H.fresh(lupine)
      local out, err, code = H.lupine(home, "run " .. H.quote(H.script([[
local make = lupine.step { name = "make",
  outputs = { lupine.ArtifactConfig { name = "m", version = "7.1" } }, function() return 1 end }
local after = lupine.step { name = "after", outputs = { "n" }, function(x) return x + 1 end }
lupine.pipeline { name = "order", jobs = 1, function() after(make()) after(make()) end } ()]])))
      assert.equal(0, code, err)
      assert.matches("\nstep 'make' completed in [^\n]*: m v7%.1\nstep 'after' completed in "
        .. "[^\n]*: n v1\nstep 'make_2' cached: m v7%.1\n", out)
    end)

  it("refuses a duplicate custom version and overwrites nothing", function()
    one_step(ArtifactConfig { name = "m", version = 42 }, function() return "first" end)()
    local run = one_step(ArtifactConfig { name = "m", version = 42 }, function() return "second" end)
      :with_options { raise_on_failure = false }()
    assert.equal("failed", run.status)
    assert.matches("^step 'make' %(tests/artifacts_spec.lua:%d+%): output 'm': artifact 'm' "
      .. "already has a version '42'$", run.steps.make.error)
    assert.equal("first", client:get_artifact_version("m", 42):load())
    assert.equal(1, client:list_artifact_versions { name = "m" }.total)
  end)

  it("stores every artifact type in lower case and refuses unknown ones", function()
    assert.same({ BASE = "base", DATA = "data", DATA_ANALYSIS = "data_analysis",
      MODEL = "model", SCHEMA = "schema", SERVICE = "service", STATISTICS = "statistics" },
      ArtifactType)
    assert.equal("ArtifactConfig 'x': unknown artifact type 'Model' (one of: base, data, "
      .. "data_analysis, model, schema, service, statistics)",
      H.err(function() ArtifactConfig { name = "x", artifact_type = "Model" } end))
  end)

  it("refuses bad configuration, naming it", function()
    assert.equal("ArtifactConfig: unknown field 'tag'; did you mean 'tags'?",
      H.err(function() ArtifactConfig { name = "x", tag = "a" } end))
    assert.equal("ArtifactConfig 'x': metadata.fn is a function",
      H.err(function() ArtifactConfig { name = "x", run_metadata = { fn = print } } end))
    assert.equal("ArtifactConfig 'x': version must be a string or an integer (got number)",
      H.err(function() ArtifactConfig { name = "x", version = 1.5 } end))
    assert.equal("tag name must not be empty",
      H.err(function() ArtifactConfig { name = "x", tags = { "" } } end))
    assert.equal("step 'make': output 2 must be a name or an ArtifactConfig (got number)",
      H.err(function() step { name = "make", outputs = { "a", 3 }, function() end } end))
  end)
end)

describe("dynamic names", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("fill {date} and {time} from the run's start, in UTC", function()
    local run = one_step(ArtifactConfig { name = "model_{date}_{time}" })()
    local av = run.steps.make.outputs["model_{date}_{time}"]
    local date, time = av.name:match("^model_(%d%d%d%d%d%d%d%d)_(%d%d%d%d%d%d)$")
    assert.truthy(date, av.name)
    local start = run.start_time
    assert.equal(start:sub(1, 4) .. start:sub(6, 7) .. start:sub(9, 10), date)
    assert.equal(start:sub(12, 13) .. start:sub(15, 16) .. start:sub(18, 19), time)
  end)

  it("fill {pipeline_name}, {step_name} and {run_name}", function()
    local run = one_step(ArtifactConfig { name = "{pipeline_name}/{step_name}/{run_name}" })
      :with_options { run_name = "r1" }()
    assert.equal("p/make/r1", run.steps.make.output.name)
    run = one_step(ArtifactConfig { name = "x_{run_name}" })()
    assert.equal("x_" .. run.name, run.steps.make.output.name)
  end)

  it("take substitutions from step, pipeline and run: run > step > pipeline", function()
    local s = step { name = "train_model", substitutions = { model_version = "v2.1", who = "step" },
      outputs = { ArtifactConfig { name = "model_{model_version}_{who}_{where}" } },
      function() return 1 end }
    local p = pipeline { name = "subs", substitutions = { who = "pipeline", where = "here" },
      function() s() end }
    assert.equal("model_v2.1_step_here", p().steps.train_model.output.name)
    local r = p:with_options { substitutions = { who = "run", model_version = "v3" } }()
    assert.equal("model_v3_run_here", r.steps.train_model.output.name)
  end)

  it("let a user substitution named date or time win", function()
    local run = one_step(ArtifactConfig { name = "m_{date}_{time}" })
      :with_options { substitutions = { date = "today", time = 7 } }()
    assert.equal("m_today_7", run.steps.make.output.name)
  end)

  it("apply to run names", function()
    local run = one_step("x"):with_options { run_name = "nightly-{date}" }()
    assert.equal("nightly-" .. os.date("!%Y%m%d"), run.name)
  end)

  it("refuse an unknown placeholder or an empty name before anything runs", function()
    local ran = false
    local p = one_step(ArtifactConfig { name = "model_{nope}" }, function() ran = true end)
    assert.equal("step 'make': output 'model_{nope}': unknown placeholder '{nope}' in name "
      .. "template 'model_{nope}'", H.err(p))
    assert.is_false(ran)
    assert.equal(0, #client:list_pipeline_runs())
    assert.equal("step 'make': output '{x}': name template '{x}' gives an empty name",
      H.err(one_step(ArtifactConfig { name = "{x}" }):with_options { substitutions = { x = "" } }))
    assert.equal("pipeline 'p': unknown placeholder '{who}' in run name template 'r-{who}'",
      H.err(one_step("a"):with_options { run_name = "r-{who}" }))
  end)
end)

describe("tags", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("are added and removed on versions (tags = ... is add_tags)", function()
    local av = one_step("model")().steps.make.output
    av = client:update_artifact_version(av.id, { add_tags = { "a", "b" } })
    assert.same({ "a", "b" }, av.tags)
    av = client:update_artifact_version(av, { tags = { "production", "promoted" }, remove_tags = { "a" } })
    assert.same({ "b", "production", "promoted" }, av.tags)
    av = client:update_artifact_version("model", "1", { remove_tags = "b" })
    assert.same({ "production", "promoted" }, av.tags)
  end)

  it("live on artifacts and on pipeline runs too", function()
    local run = one_step("model", nil):with_options { tags = { "nightly" } }()
    assert.same({ "nightly" }, run.tags)
    assert.same({ "checked", "nightly" },
      client:update_pipeline_run(run.name, { add_tags = { "checked" } }).tags)
    assert.same({ "family" }, client:update_artifact("model", { add_tags = { "family" } }))
    assert.equal("artifact 'modle' not found; did you mean 'model'?",
      H.err(function() client:update_artifact("modle", { add_tags = { "x" } }) end))
    local p = pipeline { name = "tagged", tags = { "team" }, function() step("s", function() end)() end }
    assert.same({ "team" }, p().tags)
  end)

  it("treat SQL-looking tags as data, and refuse bad ones", function()
    local av = one_step("model")().steps.make.output
    local evil = "x'); DELETE FROM tags; --"
    av = client:update_artifact_version(av, { add_tags = { evil, "ok" } })
    assert.same({ "ok", evil }, av.tags)
    assert.equal("update_artifact_version: unknown option 'add_tag'",
      H.err(function() client:update_artifact_version(av, { add_tag = { "x" } }) end))
    assert.equal('tag name "a\\x00" contains a control character',
      H.err(function() client:update_artifact_version(av, { add_tags = { "a\0" } }) end))
  end)
end)

describe("the step context", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("gives the step its names, runs, and output metadata and tags", function()
    local s = step { name = "train_model", outputs = { "model", "stats" }, function()
      local ctx = lupine.get_step_context()
      local seen = { step = ctx.step_name, pipeline = ctx.pipeline_name,
        run_status = ctx.pipeline_run.status, step_run_status = ctx.step_run.status }
      ctx:add_output_metadata("model", { accuracy = 0.93 })
      ctx.add_output_metadata("model", { loss = 0.2 })     -- plain call works too
      ctx:add_output_tags("stats", { "summary" })
      return { w = 1 }, seen
    end }
    local run = pipeline { name = "ctx", function() s() end } ()
    assert.same({ step = "train_model", pipeline = "ctx", run_status = "running",
      step_run_status = "running" }, run.steps.train_model.outputs.stats:load())
    assert.same({ accuracy = 0.93, loss = 0.2 }, run.steps.train_model.outputs.model.run_metadata)
    assert.same({ "summary" }, run.steps.train_model.outputs.stats.tags)
  end)

  it("shows earlier steps of the live run (ZenML's promotion workflow)", function()
    local train = step { name = "train_model", function() return { weights = { 1 } } end }
    local evaluate = step { name = "evaluate", outputs = { "metrics" },
      function(model) return { accuracy = 0.97 } end }
    local promote = step { name = "promote_model_to_production", function(metrics)
      if metrics.accuracy > 0.95 then
        local current_run = lupine.get_step_context().pipeline_run
        local model_artifact = current_run.steps["train_model"].output
        lupine.Client():update_artifact_version(model_artifact.id, { tags = { "production", "promoted" } })
        return "promoted " .. model_artifact.id
      end
    end }
    local run = pipeline { name = "promotion", function()
      local model = train()
      promote(evaluate(model))
    end } ()
    local model = run.steps.train_model.output
    assert.same({ "production", "promoted" }, client:get_artifact_version(model.id).tags)
    assert.equal("promoted " .. model.id, run.steps.promote_model_to_production.output:load())
  end)

  it("sees what the run recorded before the step, committed or not", function()
    local make = step { name = "make", outputs = { "answer" }, function() return 42 end }
    local look = step { name = "look", function(_)
      local av = lupine.Client():get_artifact_version("answer")
      return { version = av.version, value = av:load(), loaded = lupine.load_artifact("answer") }
    end }
    for round = 1, 2 do
      local run = pipeline { name = "look", enable_cache = false, function() look(make()) end } ()
      assert.same({ version = tostring(round), value = 42, loaded = 42 },
        run.steps.look.output:load())
    end
  end)

  it("removes output tags, the configuration's too (remove_output_tags)", function()
    local s = step { name = "s", outputs = { ArtifactConfig { name = "m", tags = { "a", "b" } } },
      function()
        local ctx = lupine.get_step_context()
        ctx:add_output_tags { "c", "d" }
        ctx:remove_output_tags { "a", "c" }
        ctx.remove_output_tags("m", "b")          -- one tag, plain call
        ctx:add_output_tags("m", { "b" })         -- added again after it was removed
        return 1
      end }
    local run = pipeline { name = "untag", function() s() end } ()
    assert.same({ "b", "d" }, run.steps.s.output.tags)
    local bad = step { name = "bad", function()
      lupine.get_step_context():remove_output_tags("nope", { "x" })
    end }
    run = pipeline { name = "bad_untag", function() bad() end }
      :with_options { raise_on_failure = false }()
    assert.matches("remove_output_tags: step 'bad' has no output 'nope' %(its outputs: output%)",
      run.steps.bad.error)
  end)

  it("refuses an unknown output and use outside a step", function()
    local s = step { name = "s", outputs = { "a", "b" }, function()
      lupine.get_step_context():add_output_metadata("c", { x = 1 })
      return 1, 2
    end }
    local run = pipeline { name = "bad_ctx", function() s() end }
      :with_options { raise_on_failure = false }()
    assert.matches("add_output_metadata: step 's' has no output 'c' %(its outputs: a, b%)",
      run.steps.s.error)
    assert.equal("get_step_context() was called outside a running step",
      H.err(lupine.get_step_context))
  end)

  it("fails the step when output metadata cannot be stored", function()
    local s = step { name = "s", function()
      lupine.get_step_context():add_output_metadata { f = print }
      return 1
    end }
    local run = pipeline { name = "bad_md", function() s() end }
      :with_options { raise_on_failure = false }()
    assert.matches("add_output_metadata: metadata.f is a function", run.steps.s.error)
  end)
end)

describe("log_metadata", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("attaches to the running step run by default", function()
    local s = step { name = "s", function()
      lupine.log_metadata { metadata = { rows = 120, source = "db" } }
      return 1
    end }
    local run = pipeline { name = "lm", function() s() end } ()
    assert.same({ rows = 120, source = "db" }, run.steps.s.run_metadata)
  end)

  it("targets an artifact version, a step of a run, or a run", function()
    local run = one_step("model")()
    lupine.log_metadata { metadata = { a = 1 }, artifact_name = "model" }
    lupine.log_metadata { metadata = { b = 2 }, artifact_name = "model", artifact_version = "1" }
    lupine.log_metadata { metadata = { c = 3 }, artifact_version_id = run.steps.make.output.id }
    lupine.log_metadata { metadata = { d = 4 }, step_name = "make", run = run.name }
    lupine.log_metadata { metadata = { e = 5 }, run = run }
    lupine.log_metadata { metadata = { e = 6 }, run = run.id }     -- a key again: replaced
    run = client:get_pipeline_run(run.id)
    assert.same({ a = 1, b = 2, c = 3 }, run.steps.make.output.run_metadata)
    assert.same({ d = 4 }, run.steps.make.run_metadata)
    assert.same({ e = 6 }, run.run_metadata)
  end)

  it("says what is wrong", function()
    assert.equal("log_metadata: outside a step, say what to attach to (artifact_name, "
      .. "artifact_version_id, step_name with run, or run)",
      H.err(function() lupine.log_metadata { metadata = { a = 1 } } end))
    local run = one_step("model")()
    assert.equal("log_metadata: metadata.t.f is a function",
      H.err(function() lupine.log_metadata { metadata = { t = { f = print } }, run = run } end))
    assert.equal("log_metadata: run '" .. run.name .. "' has no step 'nope'",
      H.err(function() lupine.log_metadata { metadata = { a = 1 }, step_name = "nope", run = run } end))
    assert.equal("log_metadata: unknown field 'artifact'; did you mean 'artifact_name' or "
      .. "'artifact_version' or 'artifact_version_id'?",
      H.err(function() lupine.log_metadata { metadata = {}, artifact = "x" } end))
  end)

  it("refuses keys that break the name rules, naming the key escaped", function()
    local run = one_step("model")()
    local function err(key)
      return H.err(function() lupine.log_metadata { metadata = { [key] = 1 }, run = run } end)
    end
    assert.equal("log_metadata: metadata key must not be empty", err(""))
    assert.equal('log_metadata: metadata key "a\\x00b" contains a control character', err("a\0b"))
    assert.equal('log_metadata: metadata key "red\\x1B[31m" contains a control character',
      err("red\27[31m"))
    assert.equal('log_metadata: metadata key "csi\\u{9B}1m" contains a control character',
      err("csi\u{9B}1m"))
    assert.equal('log_metadata: metadata key "caf\u{e9}\\xFF" is not valid UTF-8',
      err("caf\u{e9}\xff"))
    assert.equal('log_metadata: metadata key "' .. ("k"):rep(60) .. '"... is 10000 bytes long '
      .. "(at most 255)", err(("k"):rep(10000)))
    assert.same({}, client:get_pipeline_run(run.id).run_metadata, "nothing stored")
    -- the same rule wherever metadata is given
    local _, e = pcall(function() lupine.save_artifact(1, "m", { run_metadata = { ["\27"] = 1 } }) end)
    assert.matches('^tests/artifacts_spec%.lua:%d+: save_artifact \'m\': metadata key "\\x1B" '
      .. "contains a control character$", e, "the caller's position, not the library's")
    assert.equal("ArtifactConfig 'm': metadata key must not be empty",
      H.err(function() lupine.ArtifactConfig { name = "m", run_metadata = { [""] = 1 } } end))
    local s = step { name = "s", function()
      lupine.get_step_context():add_output_metadata { ["\n"] = 1 }
      return 1
    end }
    run = pipeline { name = "bad_key", function() s() end }
      :with_options { raise_on_failure = false }()
    assert.matches('add_output_metadata: metadata key "\\x0A" contains a control character',
      run.steps.s.error, 1, true)
    -- a key of 255 bytes, and any printable UTF-8, are fine
    lupine.log_metadata { metadata = { [("k"):rep(255)] = 1, ["caf\u{e9} / \u{1F600}"] = 2 },
      run = run }
  end)
end)

describe("the step's own outputs, named inside it", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  -- A step making "target" that names it: metadata and tag changes go to
  -- the version it makes, on the first run and on later ones.
  local produce = step { name = "produce", outputs = { "target" }, function(n)
    local c = lupine.Client()
    lupine.log_metadata { metadata = { n = n }, artifact_name = "target" }
    lupine.log_metadata { metadata = { latest = true }, artifact_name = "target",
      artifact_version = "latest" }
    local returned = c:update_artifact_version("target", { add_tags = { "run" .. n, "tmp" } })
    c:update_artifact_version("target", { remove_tags = { "tmp" } })
    if n > 1 then   -- an explicit version is that version
      lupine.log_metadata { metadata = { seen_by = n }, artifact_name = "target",
        artifact_version = "1" }
      c:update_artifact_version("target", "1", { add_tags = { "older" } })
    end
    return { n = n, returned = returned == nil }
  end }
  local p = pipeline { name = "own", function(n) produce(n) end }

  it("log_metadata and tag updates go to the version the step is making", function()
    local first = p(1).steps.produce.output
    assert.equal("1", first.version)
    assert.same({ n = 1, latest = true }, first.run_metadata)
    assert.same({ "run1" }, first.tags)
    assert.same({ n = 1, returned = true }, first:load())
    local second = p(2).steps.produce.output
    assert.equal("2", second.version)
    assert.same({ n = 2, latest = true }, second.run_metadata)
    assert.same({ "run2" }, second.tags)
    local v1 = client:get_artifact_version("target", "1")
    assert.same({ n = 1, latest = true, seen_by = 2 }, v1.run_metadata)
    assert.same({ "older", "run1" }, v1.tags)
  end)

  it("never writes onto the version before", function()
    lupine.save_artifact("by hand", "target")
    local made = p(7).steps.produce.output
    assert.equal("2", made.version)
    assert.same({ n = 7, latest = true }, made.run_metadata)
    assert.same({ "run7" }, made.tags)
    local before = client:get_artifact_version("target", "1")
    assert.same({ seen_by = 7 }, before.run_metadata)
    assert.same({ "older" }, before.tags)
  end)

  it("follows the output's name template", function()
    local s = step { name = "s", outputs = { ArtifactConfig { name = "m_{run_name}" } }, function()
      lupine.log_metadata { metadata = { own = true },
        artifact_name = "m_" .. lupine.get_step_context().run_name }
      lupine.Client():update_artifact_version("m_r1", { tags = { "mine" } })
      return 1
    end }
    local run = pipeline { name = "tmpl", function() s() end }:with_options { run_name = "r1" }()
    local av = run.steps.s.output
    assert.equal("m_r1", av.name)
    assert.same({ own = true }, av.run_metadata)
    assert.same({ "mine" }, av.tags)
  end)

  it("get_artifact_version and load_artifact say the version does not exist yet", function()
    local s = step { name = "s", outputs = { "target" }, function()
      local function msg(f, ...)
        local ok, e = pcall(f, ...)
        return ok and "no error" or (e:gsub("^[^\n:]+%.lua:%d+: ", "", 1))
      end
      local c = lupine.Client()
      local earlier = c:list_artifact_versions { name = "target" }.total > 0
        and c:get_artifact_version("target", "1").version
      return { earlier = earlier or "none",
        get = msg(function() return c:get_artifact_version("target") end),
        keywords = msg(function() return c:get_artifact_version { name_id_or_prefix = "target" } end),
        load = msg(function() return lupine.load_artifact("target") end) }
    end }
    local q = pipeline { name = "own_get", enable_cache = false, function() s() end }
    local first = q().steps.s.output:load()
    local why = "artifact 'target' is output 'target' of the running step 's': its version is "
      .. "recorded when the step returns (pass a version to read an earlier one)"
    assert.same({ earlier = "none", get = "get_artifact_version: " .. why,
      keywords = "get_artifact_version: " .. why, load = "load_artifact: " .. why }, first)
    assert.equal("1", q().steps.s.output:load().earlier)   -- an earlier one, by its version
  end)

  it("leave the names of other steps' outputs alone", function()
    local make = step { name = "make", outputs = { "made" }, function() return 1 end }
    local tag = step { name = "tag", function(_)
      lupine.Client():update_artifact_version("made", { add_tags = { "seen" } })
      lupine.log_metadata { metadata = { by = "tag" }, artifact_name = "made" }
      return 1
    end }
    local run = pipeline { name = "others", function() tag(make()) end } ()
    local made = client:get_artifact_version(run.steps.make.output.id)
    assert.same({ "seen" }, made.tags)
    assert.same({ by = "tag" }, made.run_metadata)
  end)
end)

describe("save_artifact and load_artifact", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("work outside steps", function()
    local av = lupine.save_artifact({ 1, 2 }, "manual", { version = "v1", tags = { "hand" },
      artifact_type = ArtifactType.DATA_ANALYSIS, run_metadata = { note = "x" } })
    assert.equal("v1", av.version)
    assert.equal("data_analysis", av.type)
    assert.same({ "hand" }, av.tags)
    assert.same({ note = "x" }, av.run_metadata)
    assert.is_nil(av.producer_step_run)
    assert.same({ 1, 2 }, lupine.load_artifact("manual"))
    assert.same({ 1, 2 }, lupine.load_artifact(av.id))
    assert.equal("save_artifact 'manual': artifact 'manual' already has a version 'v1'",
      H.err(function() lupine.save_artifact(3, "manual", { version = "v1" }) end))
    assert.equal("save_artifact 'f': value.x is a function",
      H.err(function() lupine.save_artifact({ x = print }, "f") end))
  end)

  it("name the caller's line when load_artifact finds nothing", function()
    local ok, e = pcall(function()
      local v = lupine.load_artifact("nope")
      return v
    end)
    assert.is_false(ok)
    assert.matches("^tests/artifacts_spec%.lua:%d+: artifact 'nope' not found$", e)
  end)

  it("are recorded as outputs saved by hand and inputs inside steps", function()
    lupine.save_artifact({ threshold = 0.5 }, "config")
    local s = step { name = "s", function()
      local cfg = lupine.load_artifact("config")
      lupine.save_artifact({ extra = cfg.threshold * 2 }, "side_output")
      return "main"
    end }
    local run = pipeline { name = "manual", function() s() end } ()
    local sr = run.steps.s
    assert.equal(client:get_artifact_version("config").id, sr.inputs.config.id)
    assert.same({ extra = 1.0 }, sr.manual_outputs.side_output:load())
    assert.equal("main", sr.output:load())
    assert.equal("s", client:get_artifact_version("side_output").producer_step_run.name)
  end)
end)

describe("names", function()
  before_each(function() H.fresh(lupine) end)

  it("refuse empty, NUL, invalid UTF-8 and over-long names, showing them", function()
    assert.equal("artifact name must not be empty",
      H.err(function() lupine.save_artifact(1, "") end))
    assert.equal('artifact name "a\\x00b" contains a control character',
      H.err(function() lupine.save_artifact(1, "a\0b") end))
    assert.equal('artifact name "\\xC3(" is not valid UTF-8',
      H.err(function() lupine.save_artifact(1, "\xC3(") end))
    local long = string.rep("n", 10000)
    assert.equal('artifact name "' .. string.rep("n", 60) .. '"... is 10000 bytes long (at most 255)',
      H.err(function() lupine.save_artifact(1, long) end))
    assert.equal("run name must not be empty",
      H.err(function() one_step("x"):with_options { run_name = "" } end))
  end)

  it("are data, never paths", function()
    for _, name in ipairs { "team/model", "../x", "..", "/etc/passwd", "a\\b" } do
      local av = lupine.save_artifact(name, name)
      assert.equal(name, lupine.Client():get_artifact_version(name):load())
      assert.matches("/artifacts/objects/%x%x/%x+%.zst$", av.uri)
    end
  end)
end)

describe("errors of the step context and the Client's updates", function()
  before_each(function() H.fresh(lupine) end)

  -- The message of a failed call, with the position error() gave it.
  local function raw_err(fn)
    local ok, e = pcall(fn)
    assert.is_false(ok)
    return tostring(e)
  end

  it("name the line that called them, in a step and from a helper it calls", function()
    local file = H.script([[
local lupine = require "lupine"
local s = lupine.step { name = "s", outputs = { "y" }, function()
  local ctx = lupine.get_step_context()
  ctx.add_output_metadata({ ["a\27b"] = 1 })
  return 1
end }
local function helper(ctx)
  ctx:add_output_tags("y2", { "" })
end
local s2 = lupine.step { name = "s2", outputs = { "y2" }, function()
  helper(lupine.get_step_context())
  return 1
end }
local s3 = lupine.step { name = "s3", outputs = { "y3" }, function()
  lupine.get_step_context():remove_output_tags("nope", { "t" })
  return 1
end }
return lupine.pipeline { name = "p", function() s(); s2(); s3() end }
]], "ctx.lua")
    local run = dofile(file):with_options { raise_on_failure = false }()
    for _, sr in pairs(run.steps) do sr.error = sr.error:gsub("[^ (]*/ctx%.lua", "ctx.lua") end
    assert.equal('step \'s\' (ctx.lua:2) failed: ctx.lua:4: add_output_metadata: metadata key '
      .. '"a\\x1Bb" contains a control character', run.steps.s.error)
    assert.equal("step 's2' (ctx.lua:10) failed: ctx.lua:8: tag name must not be empty",
      run.steps.s2.error)
    assert.equal("step 's3' (ctx.lua:14) failed: ctx.lua:15: remove_output_tags: step 's3' has "
      .. "no output 'nope' (its outputs: y3)", run.steps.s3.error)
  end)

  it("of runs and versions that do not exist name the caller's line", function()
    local client = lupine.Client()
    local here = debug.getinfo(1, "S").short_src
    local function at(line, msg) return here .. ":" .. line .. ": " .. msg end
    local line = debug.getinfo(1, "l").currentline
    local e1 = raw_err(function() client:update_artifact_version("nope", { add_tags = { "a" } }) end)
    local e2 = raw_err(function() client:update_pipeline_run("nope", { add_tags = { "a" } }) end)
    local e3 = raw_err(function() lupine.log_metadata { metadata = { a = 1 }, run = "nope" } end)
    local e4 = raw_err(function() lupine.log_metadata { metadata = { a = 1 }, artifact_name = "zzz" } end)
    local e5 = raw_err(function()
      lupine.log_metadata { metadata = { a = 1 }, step_name = "s", run = "nope" } end)
    assert.equal(at(line + 1, "artifact 'nope' not found"), e1)
    assert.equal(at(line + 2, "pipeline run 'nope' not found"), e2)
    assert.equal(at(line + 3, "pipeline run 'nope' not found"), e3)
    assert.equal(at(line + 4, "artifact 'zzz' not found"), e4)
    assert.equal(at(line + 6, "pipeline run 'nope' not found"), e5)
    local function helper() client:get_artifact_version("nope") end
    line = debug.getinfo(1, "l").currentline
    assert.equal(at(line - 1, "artifact 'nope' not found"), raw_err(function() helper() end))
  end)
end)
