-- SPDX-License-Identifier: MIT
-- Versioning and reading the catalog through lupine.Client.
local H = require "helper"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

local produce = step { name = "produce", outputs = { "trained_model" },
  function(x) return { weights = { x, x + 1 } } end }
local p = pipeline { name = "training", function(x) produce(x) end }

describe("artifact versions", function()
  local home, client
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
  end)

  it("are numbered 1, 2, ... and 'latest' is the newest", function()
    for i = 1, 3 do p(i) end
    local latest = client:get_artifact_version("trained_model")
    assert.equal("3", latest.version)
    assert.same({ weights = { 3, 4 } }, latest:load())
    assert.same({ weights = { 1, 2 } }, client:get_artifact_version("trained_model", "1"):load())
    assert.same({ weights = { 2, 3 } }, client:get_artifact_version("trained_model", 2):load())
    assert.equal("3", client:get_artifact_version("trained_model", "latest").version)
  end)

  it("carry every documented field", function()
    p(1)
    local av = client:get_artifact_version("trained_model")
    assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x+$", av.id)
    assert.equal("trained_model", av.name)
    assert.equal("data", av.type)
    assert.equal("columns", av.data_type)   -- { weights = { 1, 2 } }: one column
    assert.matches("^sha256:%x+$", av.content_hash)
    assert.equal(64 + 7, #av.content_hash)
    assert.equal(#require("lupine.core").encode({ weights = { 1, 2 } }), av.size)
    assert.is_true(av.stored_size > 0)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", av.created)
    assert.truthy(H.read(av.uri), "uri names the object file")
    local producer = av.producer_step_run
    assert.equal("produce", producer.name)
    assert.equal("completed", producer.status)
    assert.equal("training", producer.pipeline_run.pipeline_name)
    assert.equal(av.id, producer.outputs.trained_model.id)
  end)

  it("record what their value is: records, columns, numbers, a plot, a file ...", function()
    local values = {
      { "records", { { a = 1, b = "x" }, { a = 2, b = "y" } } },
      { "columns", { a = { 1, 2 }, b = { "x", "y" } } },
      { "records", lupine.table { columns = { "b", "a" }, { { a = 1, b = "x" } } } },
      { "columns", lupine.table { columns = { "b" }, rows = { a = { 1 }, b = { "x" } } } },
      { "numbers", { 1, 2.5, -3 } }, { "number_map", { x = 1, y = 2.5 } },
      { "plot", lupine.plot { y = { 1, 2 } } }, { "html", lupine.HTMLString("<p>hi</p>") },
      { "markdown", lupine.MarkdownString("# hi") }, { "csv", lupine.CSVString("a\n1\n") },
      { "svg", lupine.SVGString("<svg/>") }, { "string", "hello" }, { "bytes", "\255\254" },
      { "number", 3 }, { "boolean", true }, { "table", {} }, { "table", { 1, "a" } },
      { "table", { { a = 1 }, { b = 2 } } }, { "table", { x = { y = 1 } } },
    }
    for i, c in ipairs(values) do
      assert.equal(c[1], lupine.save_artifact(c[2], "v" .. i).data_type, c[1] .. " " .. i)
    end
    -- a step's outputs, told apart in its worker
    local dir = H.tmpdir()
    H.write(dir .. "/f.txt", "x")
    local s = step { name = "shapes", outputs = { "rows", "curve", "scores", "f", "d" }, function()
      return { { n = 1 } }, { 0.5, 0.25 }, { a = 1 }, lupine.file(dir .. "/f.txt"), lupine.dir(dir)
    end }
    pipeline { name = "shapes", function() s() end } ()
    local got = {}
    for _, name in ipairs { "rows", "curve", "scores", "f", "d" } do
      got[#got + 1] = client:get_artifact_version(name).data_type
    end
    assert.same({ "records", "numbers", "number_map", "file", "dir" }, got)
  end)

  it("are found by full id and by unique id prefix", function()
    p(1)
    local av = client:get_artifact_version("trained_model")
    assert.equal(av.id, client:get_artifact_version(av.id).id)
    assert.equal(av.id, client:get_artifact_version(av.id:sub(1, 8)).id)
  end)

  it("match ids and id prefixes in any case (UUIDs typed in upper case)", function()
    local run = p(1)
    local av = client:get_artifact_version("trained_model")
    assert.equal(av.id, client:get_artifact_version(av.id:upper()).id)
    assert.equal(av.id, client:get_artifact_version(av.id:sub(1, 8):upper()).id)
    assert.equal(run.id, client:get_pipeline_run(run.id:upper()).id)
    assert.equal(run.id, client:get_pipeline_run(run.id:sub(1, 8):upper()).id)
    local pl = client:get_pipeline("training")
    assert.equal(pl.id, client:get_pipeline(pl.id:upper()).id)
    assert.equal(pl.id, client:get_pipeline(pl.id:sub(1, 8):upper()).id)
  end)

  it("take ZenML's keywords: name_id_or_prefix and version", function()
    p(1); p(2)
    local latest = client:get_artifact_version { name_id_or_prefix = "trained_model" }
    assert.equal("2", latest.version)
    assert.equal("1",
      client:get_artifact_version { name_id_or_prefix = "trained_model", version = "1" }.version)
    assert.equal("1",
      client:get_artifact_version { name_id_or_prefix = "trained_model", version = 1 }.version)
    assert.equal(latest.id,
      client:get_artifact_version { name_id_or_prefix = latest.id:sub(1, 8):upper() }.id)
    assert.equal("get_artifact_version: unknown field 'name' (it takes name_id_or_prefix and "
      .. "version)", H.err(function() client:get_artifact_version { name = "trained_model" } end))
    assert.equal("get_artifact_version: name_id_or_prefix must be a string (got nil)",
      H.err(function() client:get_artifact_version { version = "1" } end))
    assert.equal("artifact 'trained_model' has no version '9' (it has 1, 2)",
      H.err(function()
        client:get_artifact_version { name_id_or_prefix = "trained_model", version = 9 } end))
  end)

  it("report an ambiguous id prefix with its candidates", function()
    p(1); p(2)
    -- give the two versions ids that share the prefix "abcd"
    for v, id in pairs { ["1"] = "abcd0000-0000-4000-8000-000000000001",
                         ["2"] = "abcd0000-0000-4000-8000-000000000002" } do
      H.sqlite(home, "UPDATE step_run_artifacts SET artifact_version_id = '" .. id
        .. "' WHERE artifact_version_id = (SELECT id FROM artifact_versions WHERE version = '"
        .. v .. "'); UPDATE artifact_versions SET id = '" .. id .. "' WHERE version = '" .. v .. "'")
    end
    assert.equal("artifact id prefix 'abcd' is ambiguous: it matches "
      .. "abcd0000-0000-4000-8000-000000000001, abcd0000-0000-4000-8000-000000000002",
      H.err(function() client:get_artifact_version("abcd") end))
    assert.equal("2", client:get_artifact_version("abcd0000-0000-4000-8000-000000000002").version)
  end)

  it("not found: says what was looked for and suggests near names", function()
    p(1)
    assert.equal("artifact 'trained_modle' not found; did you mean 'trained_model'?",
      H.err(function() client:get_artifact_version("trained_modle") end))
    assert.equal("artifact 'zzz' not found",
      H.err(function() client:get_artifact_version("zzz") end))
    assert.equal("artifact 'trained_model' has no version '9' (it has 1)",
      H.err(function() client:get_artifact_version("trained_model", 9) end))
    local id = client:get_artifact_version("trained_model").id
    assert.equal("bad argument #2 to 'get_artifact_version' (a version id takes no version: '"
      .. id .. "' is version 1 of artifact 'trained_model')",
      H.err(function() client:get_artifact_version(id, 1) end))
    assert.equal("bad argument #2 to 'get_artifact_version' (a version id takes no version: '"
      .. id:sub(1, 8) .. "' is version 1 of artifact 'trained_model')",
      H.err(function() client:get_artifact_version(id:sub(1, 8), "1") end))
    assert.equal("bad argument #1 to 'get_artifact_version' (string expected, got nil)",
      H.err(function() client:get_artifact_version() end))
  end)

  it("list oldest first (ZenML's default), filtered by name", function()
    p(1); p(2)
    local other = step { name = "other", outputs = { "other" }, function() return 1 end }
    pipeline { name = "o", function() other() end } ()
    local all = client:list_artifact_versions()
    assert.equal(3, all.total)
    assert.equal("other", all[3].name)
    local mine = client:list_artifact_versions { name = "trained_model" }
    assert.equal(2, #mine)
    assert.equal("1", mine[1].version)
    assert.equal("2", mine[2].version)
    assert.equal("other", client:list_artifact_versions { sort_by = "desc:created" }[1].name)
  end)

  it("are found from the run: by run name, id or id prefix", function()
    local run = p(5)
    local r = client:get_pipeline_run(run.name)
    assert.equal(run.id, r.id)
    assert.equal(run.id, client:get_pipeline_run(run.id).id)
    assert.equal(run.id, client:get_pipeline_run(run.id:sub(1, 6)).name and run.id)
    assert.same({ weights = { 5, 6 } }, r.steps.produce.outputs.trained_model:load())
    assert.matches("^pipeline run 'nope' not found", H.err(function()
      client:get_pipeline_run("nope") end))
  end)

  it("treat SQL-looking names as data", function()
    local evil = "x'); DROP TABLE artifact_versions; --"
    local s = step { name = "evil", outputs = { evil }, function() return 1 end }
    pipeline { name = evil, function() s() end } ()
    assert.equal(1, client:get_artifact_version(evil):load())
    assert.equal(1, client:list_artifact_versions().total)
  end)

  it("print as one-line summaries", function()
    local run = p(1)
    local av = client:get_artifact_version("trained_model")
    assert.matches("^<ArtifactVersion trained_model v1 %(columns, %d+ bytes%) %x+", tostring(av))
    assert.matches("^<PipelineRun training%-[%d%-]+ %[completed%]", tostring(run))
    assert.matches("^<StepRun produce %[completed%]", tostring(run.steps.produce))
  end)
end)

describe("the catalog database", function()
  it("has a schema version, WAL mode and indexes for its lookups #sqlite", function()
    local home = H.fresh(lupine)
    p(1)
    assert.equal(require("lupine.core").schema_version .. "\n",
      (H.sqlite(home, "PRAGMA user_version")))
    assert.equal("wal\n", (H.sqlite(home, "PRAGMA journal_mode")))
    local plan = H.sqlite(home, "EXPLAIN QUERY PLAN SELECT * FROM artifact_versions v JOIN "
      .. "artifacts a ON a.id = v.artifact_id WHERE a.name = 'x' ORDER BY v.seq DESC LIMIT 1")
    assert.matches("USING INDEX", plan)
    assert.not_matches("SCAN v", plan)
  end)

  it("migrates a catalog written by schema version 1 #sqlite", function()
    local home = H.tmpdir() .. "/home"
    local fixture = H.root .. "/tests/fixtures/catalog-v1"
    os.execute("mkdir -p " .. H.quote(home .. "/artifacts") .. " && cp -r "
      .. H.quote(fixture .. "/objects") .. " " .. H.quote(home .. "/artifacts/"))
    local _, err, code = H.sh("sqlite3 " .. H.quote(home .. "/catalog.db") .. " < "
      .. H.quote(fixture .. "/catalog.sql"))
    assert.equal(0, code, err)
    lupine.set_home(home)
    local client = lupine.Client()
    assert.same({ 2, 4, 6, 8, 10 }, client:get_artifact_version("processed"):load())
    assert.same({}, client:get_artifact_version("processed").tags)
    -- the links came along: the dataset's consumer, and the step run's inputs
    local consumers = client:get_artifact_version("dataset"):consumers()
    assert.equal(1, #consumers)
    assert.equal("process_data", consumers[1].name)
    assert.equal(client:get_artifact_version("dataset").id, consumers[1].inputs.dataset.id)
    assert.equal(require("lupine.core").schema_version .. "\n",
      (H.sqlite(home, "PRAGMA user_version")))
    local again = step { name = "process_data", outputs = { "processed" }, function() return {} end }
    pipeline { name = "ml_pipeline", function() again() end } ()
    assert.equal("2", client:get_artifact_version("processed").version)
  end)

  it("is made only where no file is: an empty or foreign file is refused, named #sqlite", function()
    local dir = H.tmpdir()
    local home = dir .. "/home"
    os.execute("mkdir -p " .. H.quote(home))
    local db = home .. "/catalog.db"
    local function refused(why)
      lupine.set_home(home)
      assert.equal(db .. " is not a Lupine catalog (" .. why .. "); move it away and a new "
        .. "catalog is made there", H.err(function() lupine.Client():list_pipeline_runs() end))
      local _, err, code = H.lupine(home, "artifact list")
      assert.equal(1, code)
      assert.equal("lupine: " .. db .. " is not a Lupine catalog (" .. why .. "); move it away "
        .. "and a new catalog is made there\n", err)
    end
    H.write(db, "")
    refused("it is an empty file")
    assert.equal("", H.read(db), "left as it was")
    H.write(db, "some notes\n")
    refused("it is not a database")
    assert.equal("some notes\n", H.read(db))
    os.remove(db)
    H.sqlite(home, "CREATE TABLE mine(x)")
    refused("it is a database Lupine did not make")
    assert.equal("mine\n", (H.sqlite(home, ".tables")))
    -- gone: a new one
    os.remove(db)
    lupine.set_home(home)
    p(1)
    assert.equal("1", lupine.Client():get_artifact_version("trained_model").version)
    H.rm(dir)
  end)

  it("is made once when processes open a new folder at the same time", function()
    local dir = H.tmpdir()
    local cli = H.quote(H.cli)
    -- (a script that opens the catalog: commands that only read make none)
    H.write(dir .. "/open.lua", "lupine.home()\n")
    local cmd = "cd " .. H.quote(dir) .. " && export LUPINE_HOME=home && for i in 1 2 3 4 5 6; do "
      .. "(" .. cli .. " run open.lua >/dev/null 2>err.$i; echo $? > code.$i) & done; wait; "
      -- one more alone, the last to close it: sqlite's -wal and -shm go with it (two
      -- processes closing at once may each leave them to the other)
      .. cli .. " run open.lua && cat code.* err.*; ls home"
    local out = H.sh(cmd)
    -- nothing left over (on PostgreSQL the folder holds the store alone)
    assert.equal("0\n0\n0\n0\n0\n0\nartifacts\n" .. (H.pg and "" or "catalog.db\n"), out)
    H.rm(dir)
  end)

  it("refuses a catalog from a newer Lupine", function()
    local home = H.fresh(lupine)
    p(1)
    H.sqlite(home, H.pg and "UPDATE schema_version SET version = 99" or "PRAGMA user_version = 99")
    lupine.set_home(home)
    assert.matches("schema version 99 is newer than this Lupine understands %("
      .. require("lupine.core").schema_version .. "%); upgrade Lupine", H.err(function() p(1) end))
  end)
end)

describe("the catalog folder", function()
  it("is never an empty path: set_home('') and LUPINE_HOME='' are refused", function()
    local home = H.fresh(lupine)
    finally(function() lupine.set_home(home) end)
    assert.equal("set_home: an empty path names no catalog folder (give none for the default)",
      H.err(function() lupine.set_home("") end))
    assert.equal(home, lupine.home(), "the folder in use stays")
    -- in a folder of its own: a catalog made by a default would show there
    local dir = H.tmpdir()
    H.write(dir .. "/p.lua", "lupine.save_artifact(1, 'x')\n")
    local _, err, code = H.lupine("", "run p.lua", dir)
    assert.equal(1, code)
    assert.matches("^lupine: LUPINE_HOME: an empty path names no catalog folder %(give none for "
      .. "the default%)\n", err)
    assert.equal("p.lua\n", (H.sh("ls -A " .. H.quote(dir))))
    H.rm(dir)
  end)
end)

describe("lupine.core", function()
  it("never crashes the process, whatever a function is called with", function()
    -- tests/core_calls.lua calls every core function with wrong types, empty
    -- strings and odd numbers in every argument place, each call twice
    local dir = H.tmpdir()
    local out, err, code = H.sh("cd " .. H.quote(dir) .. " && TMPDIR=. LUA_CPATH="
      .. H.quote(H.build .. "/?.so;;") .. " lua5.4 " .. H.quote(H.root .. "/tests/core_calls.lua")
      .. " home", true)
    assert.equal(0, code, err)
    local calls = tonumber(out:match("^(%d+) calls\n$"))
    assert.is_true(calls and calls > 4000, out .. err)
    H.rm(dir)
  end)
end)
