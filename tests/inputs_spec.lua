-- SPDX-License-Identifier: MIT
-- What a step can take as an argument in a pipeline body: external files,
-- folders and values, lookups of an artifact's latest version, tables of
-- step outputs (fan-in), and ordering without data (after).
local H = require "helper"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

-- The first line of the error fn raises (errors raised in a pipeline body
-- come with the body's traceback).
local function body_err(fn) return (H.err(fn):match("^[^\n]*")) end

-- The lines of the text file at path, counted.
local count = step { name = "count", outputs = { "rows" }, function(path)
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  return n
end }
local double = step { name = "double", outputs = { "doubled" }, function(n) return 2 * n end }

describe("a file given in a pipeline body (an external input)", function()
  local home, dir, csv, etl
  before_each(function()
    home = H.fresh(lupine)
    dir = H.tmpdir()
    csv = H.write(dir .. "/sales.csv", "a\nb\n")
    etl = pipeline { name = "etl", function(path) double(count(lupine.file(path))) end }
  end)

  it("is stored as a version before the steps run, and is the step's input", function()
    local run = etl(csv)
    local sr = run.steps.count
    local av = sr.inputs.path
    assert.equal("external::etl::count::path", av.name)
    assert.equal("1", av.version)
    assert.equal("file", av.data_type)
    assert.equal("external", av.save_type)
    assert.is_nil(av.producer_step_run)
    assert.equal(2, sr.output:load())
    assert.same({}, sr.parameters)
    -- lineage: the version's consumer is the step
    local consumers = av:consumers()
    assert.equal(1, #consumers)
    assert.equal("count", consumers[1].name)
    assert.equal("path", consumers[1].input_name)
  end)

  it("reaches the step as the path of a read-only copy, not the file itself", function()
    local where = step { name = "where", outputs = { "seen" }, function(path)
      return { path = path, text = io.open(path):read("a") }
    end }
    local run = pipeline { name = "etl", function() where(lupine.file(csv)) end } ()
    local seen = run.steps.where.output:load()
    local av = run.steps.where.inputs.path
    assert.equal(home .. "/files/" .. av.content_hash:sub(8) .. "/sales.csv", seen.path)
    assert.equal("444\n", (H.sh("stat -c %a " .. H.quote(seen.path))))
    assert.equal("a\nb\n", seen.text)
  end)

  it("re-runs the steps when its content changes, and only then", function()
    local first = etl(csv)
    local again = etl(csv)
    assert.equal("cached", again.steps.count.status)
    assert.equal("cached", again.steps.double.status)
    assert.equal(first.steps.count.inputs.path.id, again.steps.count.inputs.path.id,
      "the same content is the same version")
    -- touched, not changed: still cached, still one version
    H.sh("touch -d '2001-01-01' " .. H.quote(csv))
    local touched = etl(csv)
    assert.equal("cached", touched.steps.count.status)
    assert.equal(1,
      lupine.Client():list_artifact_versions { name = "external::etl::count::path" }.total)
    -- grown: the step and what depends on it run again, with the new content
    H.write(csv, "a\nb\nc\n")
    local grown = etl(csv)
    assert.equal("completed", grown.steps.count.status)
    assert.equal("input 'path' changed", grown.steps.count.cache_note)
    assert.equal("2", grown.steps.count.inputs.path.version)
    assert.equal("completed", grown.steps.double.status)
    assert.equal(6, grown.steps.double.output:load())
    -- back to the first content: that version again, and cache hits
    H.write(csv, "a\nb\n")
    local back = etl(csv)
    assert.equal(first.steps.count.inputs.path.id, back.steps.count.inputs.path.id)
    assert.equal("cached", back.steps.count.status)
  end)

  it("may be a folder, given with lupine.dir", function()
    H.sh("mkdir -p " .. H.quote(dir .. "/parts") .. " && printf 'x\\n' > "
      .. H.quote(dir .. "/parts/one") .. " && printf 'y\\n' > " .. H.quote(dir .. "/parts/two"))
    local files = step { name = "files", outputs = { "names" }, function(folder)
      local names = {}
      for name in io.popen("ls " .. folder):lines() do names[#names + 1] = name end
      return names
    end }
    local p = pipeline { name = "parts", function() files(lupine.dir(dir .. "/parts")) end }
    local run = p()
    assert.same({ "one", "two" }, run.steps.files.output:load())
    assert.equal("dir", run.steps.files.inputs.folder.data_type)
    assert.equal("cached", p().steps.files.status)
    H.write(dir .. "/parts/three", "z\n")
    local changed = p()
    assert.equal("completed", changed.steps.files.status)
    assert.same({ "one", "three", "two" }, changed.steps.files.output:load())
  end)

  it("may sit in a table, several files to one step", function()
    local other = H.write(dir .. "/returns.csv", "r\n")
    local rows = step { name = "rows", outputs = { "n" }, function(files)
      local n = 0
      for _, path in ipairs(files) do
        for _ in io.lines(path) do n = n + 1 end
      end
      return n
    end }
    local p = pipeline { name = "both", function()
      rows({ lupine.file(csv), lupine.file(other) })
    end }
    local run = p()
    assert.equal(3, run.steps.rows.output:load())
    assert.equal("external::both::rows::files[2]", run.steps.rows.inputs["files[2]"].name)
    H.write(other, "r\ns\n")
    local again = p()
    assert.equal("input 'files[2]' changed", again.steps.rows.cache_note)
    assert.equal(4, again.steps.rows.output:load())
  end)

  it("that cannot be read is an error before any step runs, naming the step and input", function()
    assert.equal("step 'count': input 'path': cannot read '" .. dir .. "/nope.csv' (No such "
      .. "file or directory)", H.err(etl, dir .. "/nope.csv"))
    assert.equal("step 'count': input 'path': lupine.file('" .. dir .. "') is a folder: use "
      .. "lupine.dir", H.err(etl, dir))
    assert.equal(0, #lupine.Client():list_pipeline_runs())
  end)

  it("is an input of a step called outside a pipeline too", function()
    assert.equal(2, count(lupine.file(csv)))
    local av = lupine.Client():get_artifact_version("external::count::count::path")
    assert.equal("external", av.save_type)
  end)
end)

describe("lupine.ExternalArtifact", function()
  before_each(function() H.fresh(lupine) end)

  it("stores a value given in a body as a version the step reads", function()
    local total = step { name = "total", outputs = { "sum" }, function(t)
      local s = 0
      for _, x in ipairs(t) do s = s + x end
      return s
    end }
    local p = pipeline { name = "sums", function(t)
      total(lupine.ExternalArtifact { value = t })
    end }
    local run = p({ 1, 2, 3 })
    assert.equal(6, run.steps.total.output:load())
    local av = run.steps.total.inputs.t
    assert.equal("external::sums::total::t", av.name)
    assert.equal("external", av.save_type)
    assert.same({ 1, 2, 3 }, av:load())
    assert.equal("cached", p({ 1, 2, 3 }).steps.total.status)
    local other = p({ 1, 2, 4 })
    assert.equal("input 't' changed", other.steps.total.cache_note)
    assert.equal("2", other.steps.total.inputs.t.version)
  end)

  it("refuses what cannot be stored, and unknown fields", function()
    assert.equal("ExternalArtifact: value.f is a function",
      H.err(lupine.ExternalArtifact, { value = { f = print } }))
    assert.equal("ExternalArtifact: unknown field 'path'",
      H.err(lupine.ExternalArtifact, { path = "x" }))
    assert.equal("ExternalArtifact: value is missing", H.err(lupine.ExternalArtifact, {}))
  end)
end)

describe("lupine.register_artifact", function()
  local dir
  before_each(function()
    H.fresh(lupine)
    dir = H.tmpdir()
  end)

  it("stores a file as a new version, with tags and metadata", function()
    local path = H.write(dir .. "/weights.bin", "0123")
    local av = lupine.register_artifact { path = path, name = "weights", tags = { "imported" },
      run_metadata = { source = "lab" } }
    assert.equal("weights", av.name)
    assert.equal("1", av.version)
    assert.equal("file", av.data_type)
    assert.equal("registered", av.save_type)
    assert.same({ "imported" }, av.tags)
    assert.same({ source = "lab" }, av.run_metadata)
    assert.equal("0123", H.read(av:load()))
    H.write(path, "4567")
    local v2 = lupine.register_artifact { path = path, name = "weights" }
    assert.equal("2", v2.version)
    assert.equal("4567", H.read(v2:load()))
    assert.equal("0123", H.read(av:load()), "the first version kept its content")
  end)

  it("stores a folder, with a custom version and type", function()
    H.sh("mkdir -p " .. H.quote(dir .. "/model") .. " && printf 'w' > "
      .. H.quote(dir .. "/model/w.txt"))
    local av = lupine.register_artifact { path = dir .. "/model", name = "model",
      version = "imported-1", artifact_type = lupine.ArtifactType.MODEL }
    assert.equal("dir", av.data_type)
    assert.equal("imported-1", av.version)
    assert.equal("model", av.type)
    assert.equal("w", H.read(av:load() .. "/w.txt"))
    -- a registered version is an input like any other
    local read = step { name = "read", outputs = { "text" }, function(m)
      return io.open(m .. "/w.txt"):read("a")
    end }
    local run = pipeline { name = "use", function() read(av) end } ()
    assert.equal("w", run.steps.read.output:load())
    assert.equal(av.id, run.steps.read.inputs.m.id)
  end)

  it("refuses bad input, naming it", function()
    assert.equal("register_artifact 'x': cannot read '" .. dir .. "/none' (No such file or "
      .. "directory)", H.err(lupine.register_artifact, { path = dir .. "/none", name = "x" }))
    assert.equal("register_artifact 'x': path must be the path of a file or a folder (got nil)",
      H.err(lupine.register_artifact, { name = "x" }))
    assert.equal("register_artifact: unknown field 'uri'",
      H.err(lupine.register_artifact, { uri = "x", name = "x" }))
    assert.equal("register_artifact: name is missing",
      H.err(lupine.register_artifact, { path = dir .. "/none" }))
    local path = H.write(dir .. "/f", "1")
    lupine.register_artifact { path = path, name = "x", version = 1 }
    assert.equal("register_artifact 'x': artifact 'x' already has a version '1'",
      H.err(lupine.register_artifact, { path = path, name = "x", version = 1 }))
    local inside = step { name = "inside", function()
      lupine.register_artifact { path = path, name = "y" }
    end }
    local run = pipeline { name = "p", function() inside() end }
      :with_options { raise_on_failure = false } ()
    assert.matches("register_artifact 'y': inside step 'inside', return lupine%.file%(%.%.%.%) "
      .. "or lupine%.dir%(%.%.%.%) as an output instead$", run.steps.inside.error)
  end)
end)

describe("client:get_artifact_version in a pipeline body", function()
  local client, train, evaluate
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
    train = step { name = "train", outputs = { "model" }, function(w) return { w = w } end }
    evaluate = step { name = "evaluate", outputs = { "score" }, function(model)
      return model.w * 10
    end }
  end)

  it("reads the version a step of this run makes, ordered after that step", function()
    local p = pipeline { name = "train_eval", function(w)
      train(w)
      evaluate(client:get_artifact_version("model"))
    end }
    local first = p(1)
    assert.equal(10, first.steps.evaluate.output:load())
    assert.equal(first.steps.train.output.id, first.steps.evaluate.inputs.model.id)
    local second = p(2)
    assert.equal(20, second.steps.evaluate.output:load(), "this run's model, not the last run's")
    assert.equal(second.steps.train.output.id, second.steps.evaluate.inputs.model.id)
  end)

  it("waits for the step making it even when that step is called later in the body", function()
    local p = pipeline { name = "train_eval", function(w)
      evaluate(lupine.Client():get_artifact_version("model", "latest"))
      train(w)
    end }
    local run = p(3)
    assert.equal(30, run.steps.evaluate.output:load())
    assert.equal(run.steps.train.output.id, run.steps.evaluate.inputs.model.id)
  end)

  it("otherwise reads the latest version when the step starts, and records it", function()
    lupine.save_artifact({ w = 1 }, "model")
    -- a step of the run saves a newer one by hand before evaluate starts
    local bump = step { name = "bump", function() lupine.save_artifact({ w = 5 }, "model") end }
    local p = pipeline { name = "eval", function()
      bump()
      evaluate:after("bump")(client:get_artifact_version("model"))
    end }
    local run = p()
    assert.equal(50, run.steps.evaluate.output:load())
    assert.equal("2", run.steps.evaluate.inputs.model.version)
    -- the cache key has its content: a newer latest version runs the step again
    local again = p()
    assert.equal("cached", again.steps.bump.status)
    assert.equal("cached", again.steps.evaluate.status)
    lupine.save_artifact({ w = 7 }, "model")
    local q = pipeline { name = "eval", function()
      evaluate(client:get_artifact_version("model"))
    end }
    local later = q()
    assert.equal("completed", later.steps.evaluate.status)
    assert.equal("input 'model' changed", later.steps.evaluate.cache_note)
    assert.equal(70, later.steps.evaluate.output:load())
  end)

  it("fails the step, naming it, when the artifact has no version when it starts", function()
    local run = pipeline { name = "eval", function()
      evaluate(client:get_artifact_version("nothing"))
    end }:with_options { raise_on_failure = false } ()
    assert.equal("failed", run.steps.evaluate.status)
    assert.matches("^step 'evaluate' %(.-%): input 'model': artifact 'nothing' not found %(it "
      .. "has no version, and no step of this run makes it%)$", run.steps.evaluate.error)
  end)

  it("with a version, or by id, is looked up at once, as outside a body", function()
    local saved = lupine.save_artifact({ w = 4 }, "model")
    assert.equal("artifact 'model' has no version '9' (it has 1)", body_err(function()
      pipeline { name = "eval", function()
        evaluate(client:get_artifact_version("model", 9))
      end } ()
    end))
    local seen
    pipeline { name = "eval", function()
      seen = client:get_artifact_version(saved.id:sub(1, 8))
      evaluate(seen)
    end } ()
    assert.equal(saved.id, seen.id)
  end)

  it("leaves load_artifact and log_metadata in a body eager", function()
    lupine.save_artifact({ w = 2 }, "model")
    local run = pipeline { name = "eval", function()
      lupine.log_metadata { metadata = { seen = true }, artifact_name = "model" }
      evaluate(lupine.load_artifact("model"))
    end } ()
    assert.equal(20, run.steps.evaluate.output:load())
    assert.same({ w = 2 }, run.steps.evaluate.parameters.model)
    assert.same({ seen = true }, client:get_artifact_version("model").run_metadata)
  end)

  it("is a reference the body cannot read", function()
    assert.equal("the latest version of artifact 'model' is looked up when the step that "
      .. "takes it starts: inside a pipeline body it can only be passed to steps (tried to read "
      .. "field 'load'; give a version to look it up now)", body_err(function()
        pipeline { name = "eval", function() client:get_artifact_version("model"):load() end } ()
      end))
  end)
end)

describe("a table of step outputs as one argument (fan-in)", function()
  local make, pick
  before_each(function()
    H.fresh(lupine)
    make = step { name = "make", outputs = { "model" }, function(score)
      return { score = score }
    end }
    pick = step { name = "pick", outputs = { "best" }, function(models)
      local best
      for _, m in pairs(models) do
        if not best or m.score > best.score then best = m end
      end
      return best.score
    end }
  end)

  it("gives the step the values of a list, each recorded and hashed as an input", function()
    local p = pipeline { name = "sweep", function(a, b, c) pick({ make(a), make(b), make(c) }) end }
    local run = p(1, 5, 3)
    local sr = run.steps.pick
    assert.equal(5, sr.output:load())
    assert.equal(run.steps.make.output.id, sr.inputs["models[1]"].id)
    assert.equal(run.steps.make_2.output.id, sr.inputs["models[2]"].id)
    assert.equal(run.steps.make_3.output.id, sr.inputs["models[3]"].id)
    assert.same({}, sr.parameters)
    assert.equal("cached", p(1, 5, 3).steps.pick.status)
    local changed = p(1, 2, 3)
    assert.equal("input 'models[2]' changed", changed.steps.pick.cache_note)
    assert.equal(3, changed.steps.pick.output:load())
  end)

  it("takes a map, and placeholders nested among plain values", function()
    local report = step { name = "report", outputs = { "text" }, function(cfg)
      return string.format("%s: %d+%d, weights %s", cfg.title, cfg.models.a.score,
        cfg.models.b.score, table.concat(cfg.weights, "/"))
    end }
    local p = pipeline { name = "sweep", function()
      pick({ a = make(1), b = make(2) })
      report({ title = "two", models = { a = make(3), b = make(4) }, weights = { 1, 2 } })
    end }
    local run = p()
    assert.equal(2, run.steps.pick.output:load())
    assert.equal(run.steps.make.output.id, run.steps.pick.inputs["models.a"].id)
    assert.equal("two: 3+4, weights 1/2", run.steps.report.output:load())
    assert.equal(run.steps.make_4.output.id, run.steps.report.inputs["cfg.models.b"].id)
    assert.same({ title = "two", weights = { 1, 2 } }, run.steps.report.parameters.cfg)
  end)

  it("takes stored versions and lookups among them", function()
    local old = lupine.save_artifact({ score = 9 }, "old_model")
    local p = pipeline { name = "sweep", function()
      pick({ old, lupine.Client():get_artifact_version("model"), make(4) })
    end }
    local run = p()
    assert.equal(9, run.steps.pick.output:load())
    assert.equal(old.id, run.steps.pick.inputs["models[1]"].id)
    assert.equal(run.steps.make.output.id, run.steps.pick.inputs["models[2]"].id)
    assert.equal(run.steps.make.output.id, run.steps.pick.inputs["models[3]"].id)
  end)

  it("refuses an output of another pipeline's body, naming the step, parameter and path", function()
    local stray
    pipeline { name = "first", function() stray = make(1) end } ()
    assert.equal("step 'pick': parameter 'models': models[2] is an output of another "
      .. "pipeline's body", body_err(function()
        pipeline { name = "second", function() pick({ make(2), stray }) end } ()
      end))
    assert.equal("step 'pick': parameter 'models': models.x.y is an output of another "
      .. "pipeline's body", body_err(function()
        pipeline { name = "second", function() pick({ x = { y = stray } }) end } ()
      end))
    assert.equal("step 'pick': input 'models' is an output of another pipeline's body",
      body_err(function() pipeline { name = "second", function() pick(stray) end } () end))
  end)

  it("refuses step inputs used as keys, naming the step, parameter and path", function()
    assert.equal("step 'pick': parameter 'models': models has <output 'model' of step "
      .. "'make'> as a key: a step's inputs can be values in a table, not keys",
      body_err(function()
        pipeline { name = "keys", function() pick({ [make(1)] = 1 }) end } ()
      end))
    assert.equal("step 'pick': parameter 'models': models.a has <ExternalArtifact number> as a "
      .. "key: a step's inputs can be values in a table, not keys", body_err(function()
        pipeline { name = "keys", function()
          pick({ a = { [lupine.ExternalArtifact { value = 1 }] = 1 } })
        end } ()
      end))
  end)

  it("refuses outputs hidden in a value with a metatable", function()
    assert.equal("step 'pick': parameter 'models': models.inner holds step inputs but has a "
      .. "metatable: pass them in a plain table", body_err(function()
        pipeline { name = "sweep", function()
          pick({ inner = setmetatable({ make(1) }, {}) })
        end } ()
      end))
  end)
end)

describe("step:after", function()
  local dir, mark, check
  before_each(function()
    H.fresh(lupine)
    dir = H.tmpdir()
    -- mark leaves a file after a pause; check says whether it is there
    mark = step { name = "mark", function()
      os.execute("sleep 0.2")
      H.write(dir .. "/marked", "")
    end }
    check = step { name = "check", outputs = { "seen" }, function()
      return io.open(dir .. "/marked") ~= nil
    end }
  end)

  it("runs a step after another it takes no data from", function()
    local run = pipeline { name = "ordered", jobs = 2, function()
      local m = mark()
      check:after(m)()
    end } ()
    assert.is_true(run.steps.check.output:load())
    assert.same({}, run.steps.check.inputs)
  end)

  it("takes invocation names, also of steps called later in the body, and lists", function()
    local run = pipeline { name = "ordered", jobs = 2, function()
      check:after({ "mark_2" })()
      mark()
      mark:after("mark")()
    end } ()
    assert.is_true(run.steps.check.output:load())
  end)

  it("names a step with no outputs, or an id given with with_options", function()
    local note = step { name = "note", outputs = {}, function()
      os.execute("sleep 0.2")
      H.write(dir .. "/marked", "")
    end }
    local run = pipeline { name = "ordered", jobs = 2, function()
      check:with_options { id = "late_check" }:after("first_note")()
      note:with_options { id = "first_note" }()
    end } ()
    assert.is_true(run.steps.late_check.output:load())
  end)

  it("skips the step when the one it waits for fails", function()
    local boom = step { name = "boom", function() error("no") end }
    local run = pipeline { name = "ordered", function() check:after("boom")() boom() end }
      :with_options { raise_on_failure = false } ()
    assert.equal("skipped", run.steps.check.status)
  end)

  it("refuses a cycle, naming its steps", function()
    local a = step { name = "a", function() end }
    local b = step { name = "b", function() end }
    local c = step { name = "c", function() end }
    assert.equal("pipeline 'loop': the steps 'a' -> 'b' -> 'c' -> 'a' form a cycle (each runs "
      .. "after the one before it)", H.err(function()
        pipeline { name = "loop", function() a:after("c")() b:after("a")() c:after("b")() end } ()
      end))
    assert.equal("pipeline 'loop': the steps 'a' -> 'a' form a cycle (each runs after the one "
      .. "before it)", H.err(function()
        pipeline { name = "loop", function() a:after("a")() end } ()
      end))
    -- a lookup of what a later step makes, feeding that step: a cycle through data
    local train = step { name = "train", outputs = { "model" }, function(x) return x end }
    local eval = step { name = "eval", function(m) return m end }
    assert.equal("pipeline 'loop': the steps 'eval' -> 'train' -> 'eval' form a cycle (each "
      .. "runs after the one before it)", H.err(function()
        pipeline { name = "loop", function()
          train(eval(lupine.Client():get_artifact_version("model")))
        end } ()
      end))
    assert.equal(0, #lupine.Client():list_pipeline_runs())
  end)

  it("refuses unknown names and what is not a step's output, and use outside a body", function()
    assert.equal("step 'check': after: pipeline 'ordered' has no step 'mork' (its steps: check, "
      .. "mark)", H.err(function()
        pipeline { name = "ordered", function() check:after("mork")() mark() end } ()
      end))
    assert.equal("step 'check': after: each step to wait for is given by one of its outputs or "
      .. "its invocation name (got number)", H.err(function() check:after(1) end))
    assert.equal("step 'check': after(...) orders steps inside a pipeline body, but it was "
      .. "called outside one", H.err(function() check:after("mark")() end))
  end)
end)

describe("lupine run", function()
  it("stores a file given in the body, re-runs on a change, and shows inputs by path", function()
    local home = H.tmpdir() .. "/home"
    local script = H.script([[
local lupine = require "lupine"
local count = lupine.step { name = "count", outputs = { "rows" }, function(path)
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  return n
end }
local sum = lupine.step { name = "sum", outputs = { "total" }, function(parts)
  return parts.a + parts.b
end }
local show = lupine.step { name = "show", outputs = { "shown" }, function(total)
  print("total " .. total)
  return total
end }
lupine.pipeline { name = "etl", function()
  sum({ a = count(lupine.file("sales.csv")), b = 1 })
  show(lupine.Client():get_artifact_version("total"))
end } ()
]], "etl.lua")
    local dir = script:match("^(.*)/")
    H.write(dir .. "/sales.csv", "a\nb\n")
    local out, err, code = H.lupine(home, "run etl.lua", dir)
    assert.equal(0, code, err)
    assert.matches("%[show%] total 3\n", out)
    out = H.lupine(home, "run etl.lua", dir)
    assert.matches("\nstep 'count' cached: ", out)
    assert.matches("\nstep 'show' cached: ", out)
    H.write(dir .. "/sales.csv", "a\nb\nc\n")
    out, err, code = H.lupine(home, "run etl.lua", dir)
    assert.equal(0, code, err)
    assert.matches("%[show%] total 4\n", out)
    local runs = H.lupine(home, "pipeline runs list")
    local last = runs:match("^[^\t]+\t([^\t]+)")
    out = H.lupine(home, "pipeline runs describe " .. last)
    assert.matches("\ninput\tcount\tpath\texternal::etl::count::path:2\t", out)
    assert.matches("\ninput\tsum\tparts%.a\trows:2\t", out)
    assert.matches("\nparameter\tsum\tparts\t", out)
    assert.matches("\ninput\tshow\ttotal\ttotal:2\t", out)
  end)
end)
