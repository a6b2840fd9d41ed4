-- SPDX-License-Identifier: MIT
-- The catalog commands of the lupine program (lua/lupine/cli.lua): each one
-- through the CLI, in the tab-separated form (stdout is a pipe here), in
-- --json, and on a pseudo-terminal for the human tables.
local H = require "helper"
local dkjson = require "dkjson"
local lupine = require "lupine"
local core = require "lupine.core"
local cli = require "lupine.cli"

-- A catalog with two runs of ml_pipeline (first, second), a failed run, a
-- default-named output, 120 versions of "item" saved outside any step, a
-- long name, and a value with every kind of non-JSON content ("weird").
local FIXTURE = [[
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline
local load_data = step { name = "load_data", outputs = { "dataset" },
  function() return { values = { 1, 2, 3, 4, 5 } } end }
local process_data = step { name = "process_data", outputs = { "processed" },
  function(dataset, factor)
    local out = {}
    for i, x in ipairs(dataset.values) do out[i] = x * factor end
    return out
  end }
local ml = pipeline { name = "ml_pipeline", tags = { "nightly" },
  function(f) process_data(load_data(), f) end }
ml:with_options { run_name = "first", enable_cache = false } (2)
ml:with_options { run_name = "second", enable_cache = false } (3)
local explode = step("explode", function() error("no data today") end)
pipeline { name = "broken", function() explode() end }
  :with_options { run_name = "broken-run", raise_on_failure = false } ()
local anon = step("anon", function() return 42 end)
pipeline { name = "p", function() anon() end }:with_options { run_name = "anon-run" } ()
lupine.log_metadata { artifact_name = "processed", artifact_version = "2",
  metadata = { accuracy = 0.5, note = "ok" } }
for i = 1, 120 do
  lupine.save_artifact({ i = i }, "item", { tags = i % 2 == 0 and { "even" } or nil })
end
lupine.save_artifact("x", "a_very_long_artifact_name_that_goes_on_and_on_and_on")
local shared, cyc = { 1, 2 }, {}
cyc.self = cyc
lupine.save_artifact({
  list = { 1, 2.0, -0.0, 0.1, 1e300 }, special = { 0/0, math.huge, -math.huge },
  bytes = "\255\254", text = "tab\there \"q\" \u{e9}", sparse = { [1] = "a", [3] = "c" },
  keys = { [true] = 1, [2.5] = 2 }, dollar = { ["$ref"] = 1 }, a = shared, b = shared,
  cyc = cyc, empty = {},
}, "weird", { artifact_type = "model" })
]]

-- A catalog made by running script; status is lupine run's expected exit
-- status (1 when a run in it fails).
local function build(script, status)
  local home = H.tmpdir() .. "/home"
  local _, err, code = H.lupine(home, "run " .. H.script(script))
  assert(code == (status or 0), err)
  return home
end

local function json(s)
  local v, _, msg = dkjson.decode(s, 1, dkjson.null)
  assert(v ~= nil, "not JSON: " .. tostring(msg) .. ": " .. s)
  return v
end

-- Lines of s, without the empty one after the last newline.
local function lines(s)
  local out = {}
  for l in s:gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

local function fields(line)
  local out = {}
  for f in (line .. "\t"):gmatch("([^\t]*)\t") do out[#out + 1] = f end
  return out
end

-- The CLI on a pseudo-terminal (stdin and stdout), input typed into it;
-- returns what the terminal showed (\r\n made \n) and the exit status.
local function pty(home, args, input)
  local cli_path = H.cli:sub(1, 1) == "/" and H.cli or (H.root .. "/" .. H.cli)
  local cmd = "LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(cli_path) .. " " .. args
  local out, _, code = H.sh((input and ("printf " .. H.quote(input) .. " | ") or "")
    .. "script -qec " .. H.quote(cmd) .. " /dev/null" .. (input and "" or " </dev/null"))
  return (out:gsub("\r\n", "\n")), code
end

local has_script = select(3, H.sh("command -v script")) == 0
local has_dot = select(3, H.sh("command -v dot")) == 0

describe("lupine catalog commands", function()
  local home
  setup(function() home = build(FIXTURE, 1) end)
  teardown(function() H.rm(home:match("^(.*)/home$")) end)

  local function run(args) return H.lupine(home, args) end

  describe("artifact list", function()
    it("prints one tab-separated line per artifact, newest first", function()
      local out, err, code = run("artifact list")
      assert.equal(0, code, err)
      assert.equal("", err)
      local names, rows = {}, {}
      for i, l in ipairs(lines(out)) do
        rows[i] = fields(l)
        names[i] = rows[i][2]
        assert.equal(6, #rows[i], l)
        assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", rows[i][1])
      end
      assert.same({ "weird", "a_very_long_artifact_name_that_goes_on_and_on_and_on", "item",
        "p::anon::output", "processed", "dataset" }, names)
      assert.same({ "120", "120" }, { rows[3][3], rows[3][4] })   -- versions, latest
      assert.equal("even", rows[3][6])
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z$", rows[3][5])
    end)

    it("filters by --name and --tag", function()
      local out = run("artifact list --name processed")
      assert.equal(1, #lines(out))
      assert.equal("processed", fields(lines(out)[1])[2])
      out = run("artifact list --tag even")
      assert.equal("item", fields(lines(out)[1])[2])
      assert.equal(1, #lines(out))
      out = run("artifact list --name nothing-like-it")
      assert.equal("", out)
    end)

    it("gives --json: items, page, size, total, total_pages", function()
      local out, err, code = run("artifact list --json --name item")
      assert.equal(0, code, err)
      local doc = json(out)
      assert.same({ "items", "page", "size", "total", "total_pages" },
        (function() local k = {} for key in pairs(doc) do k[#k + 1] = key end
          table.sort(k) return k end)())
      assert.equal(1, doc.total)
      local a = doc.items[1]
      assert.equal("item", a.name)
      assert.equal(120, a.version_count)
      assert.equal("120", a.latest_version.version)
      assert.same({ "even" }, a.tags)
      assert.matches("^%x+%-", a.id)
      assert.matches("Z$", a.created)
    end)
  end)

  describe("artifact version list", function()
    it("prints id, name, version, type, data type, size, created, tags", function()
      local out, err, code = run("artifact version list --name processed")
      assert.equal(0, code, err)
      local l = lines(out)
      assert.equal(2, #l)
      local f = fields(l[1])
      assert.equal(8, #f)
      assert.same({ "processed", "2", "data", "numbers" }, { f[2], f[3], f[4], f[5] })
      assert.equal(tostring(#core.encode { 3, 6, 9, 12, 15 }), f[6])
      assert.equal("1", fields(l[2])[3])
    end)

    it("filters by --tag, --type and --run", function()
      local out = run("artifact version list --tag even --size 1000")
      assert.equal(60, #lines(out))
      out = run("artifact version list --type model")
      assert.equal(1, #lines(out))
      assert.equal("weird", fields(lines(out)[1])[2])
      out = run("artifact version list --run first")
      local got = {}
      for i, l in ipairs(lines(out)) do got[i] = fields(l)[2] .. ":" .. fields(l)[3] end
      assert.same({ "processed:1", "dataset:1" }, got)
    end)

    it("pages with --page and --size; the page line goes to stderr", function()
      local out, err, code = run("artifact version list --name item --size 40")
      assert.equal(0, code)
      assert.equal(40, #lines(out))
      assert.equal("120", fields(lines(out)[1])[3])
      assert.equal("page 1 of 3 (120 versions); --page 2 for more\n", err)
      out, err = run("artifact version list --name item --size 40 --page 3")
      assert.equal("40", fields(lines(out)[1])[3])
      assert.equal("1", fields(lines(out)[40])[3])
      assert.equal("page 3 of 3 (120 versions)\n", err)
      out, err = run("artifact version list --name item --size 40 --page 4")
      assert.equal("", out)
      assert.equal("page 4 of 3 (120 versions)\n", err)
      out, err = run("artifact version list --name processed")
      assert.equal("", err, "one page: no page line")
    end)

    it("shows nothing on a page far beyond the end, and never a negative count", function()
      local out, err, code = run("artifact version list --name item --page 9223372036854775807")
      assert.equal(0, code)
      assert.equal("", out)
      assert.equal("page 9223372036854775807 of 3 (120 versions)\n", err)
      local doc = json(run("artifact version list --name item --page 9223372036854775807 --json"))
      assert.same({ 9223372036854775807, 50, 120, 3 }, { doc.page, doc.size, doc.total, doc.total_pages })
      assert.same({}, doc.items)
      local total = json(run("artifact list --json")).total
      doc = json(run("artifact list --page 4611686018427387905 --size 2 --json"))
      assert.same({ 0, total }, { #doc.items, doc.total })
    end)

    it("gives --json with each version's fields", function()
      local doc = json(run("artifact version list --name item --size 5 --page 2 --json"))
      assert.same({ 2, 5, 120, 24 }, { doc.page, doc.size, doc.total, doc.total_pages })
      assert.equal(5, #doc.items)
      assert.equal("115", doc.items[1].version)
      doc = json(run("artifact version list --name processed --json"))
      local v = doc.items[1]
      local av = lupine.Client()
      lupine.set_home(home)
      local want = av:get_artifact_version("processed")
      for _, k in ipairs { "id", "name", "version", "type", "data_type", "content_hash", "size",
          "stored_size", "uri", "codec_version", "created" } do
        assert.equal(want[k], v[k], k)
      end
      assert.same({}, v.tags)
      assert.same({ "process_data", "second" }, { v.producer.step, v.producer.run })
      assert.equal(want.producer_step_run.id, v.producer.step_run_id)
      assert.equal(want.producer_step_run.run_id, v.producer.run_id)
      doc = json(run("artifact version list --name item --size 1 --json"))
      assert.equal(dkjson.null, doc.items[1].producer)
    end)

    it("shows an aligned table with a page line on a terminal", function()
      if not has_script then pending("util-linux script is not installed") return end
      local out, code = pty(home, "artifact version list --name item --size 2")
      assert.equal(0, code, out)
      local l = lines(out)
      assert.equal(5, #l, out)
      assert.equal("catalog: " .. H.catalog_label(home), l[1])   -- the catalog it reads, named
      assert.matches("^ID        NAME  VERSION  TYPE  DATA TYPE   SIZE  CREATED              TAGS$",
        l[2])
      assert.matches("^%x%x%x%x%x%x%x%x  item  120      data  number_map   5 B  "
        .. "%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d  even$", l[3])
      assert.matches("^%x%x%x%x%x%x%x%x  item  119      data  number_map   5 B  "
        .. "%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", l[4])
      assert.equal("page 1 of 60 (120 versions); --page 2 for more", l[5])
      out = pty(home, "artifact list --name a_very_long_artifact_name_that_goes_on_and_on_and_on")
      assert.matches("\n%x+  a_very_long_artifact_name_that_goes_on_…  ", out)
    end)

    it("says a listing is empty on a terminal, and prints nothing when piped", function()
      if not has_script then pending("util-linux script is not installed") return end
      for args, said in pairs { ["artifact list --name nothing_here"] = "no artifacts",
          ["artifact version list --name nothing_here"] = "no artifact versions",
          ["pipeline list --name nothing_here"] = "no pipelines",
          ["pipeline runs list --pipeline nothing_here"] = "no pipeline runs" } do
        local out, code = pty(home, args)
        assert.equal(0, code, out)
        assert.equal("catalog: " .. H.catalog_label(home) .. "\n" .. said .. "\n", out, args)
        local piped, err, piped_code = run(args)
        assert.equal(0, piped_code, err)
        assert.equal("", piped, args)
      end
    end)
  end)

  describe("artifact version describe", function()
    it("takes NAME, NAME:VERSION, an id or an id prefix", function()
      local out, err, code = run("artifact version describe processed")
      assert.equal(0, code, err)
      local rec = {}
      for _, l in ipairs(lines(out)) do
        local f = fields(l)
        if f[1] ~= "metadata" then rec[f[1]] = f[2] end
      end
      assert.equal("2", rec.version)
      assert.same({ "process_data", "second", "" }, { rec.producer_step, rec.producer_run,
        rec.tags })
      assert.matches("^sha256:%x+$", rec.content_hash)
      assert.equal(rec.id, json(run("artifact version describe processed:2 --json")).id)
      local first = json(run("artifact version describe processed:1 --json"))
      assert.equal("1", first.version)
      assert.equal("1", json(run("artifact version describe " .. first.id .. " --json")).version)
      assert.equal("1", json(run("artifact version describe " .. first.id:sub(1, 8)
        .. " --json")).version)
      local anon = json(run("artifact version describe p::anon::output --json"))
      assert.same({ "p::anon::output", "1" }, { anon.name, anon.version })
      anon = json(run("artifact version describe p::anon::output:1 --json"))
      assert.same({ "p::anon::output", "1" }, { anon.name, anon.version })
    end)

    it("shows run metadata as JSON values", function()
      local out = run("artifact version describe processed")
      assert.matches("\nmetadata\taccuracy\t0.5\nmetadata\tnote\t\"ok\"\n$", out)
      local doc = json(run("artifact version describe processed --json"))
      assert.same({ accuracy = 0.5, note = "ok" }, doc.run_metadata)
      doc = json(run("artifact version describe processed:1 --json"))
      assert.equal("{}", run("artifact version describe processed:1 --json")
        :match('"run_metadata":(%b{})'))
      assert.same({}, doc.run_metadata)
    end)

    it("labels the fields on a terminal", function()
      if not has_script then pending("util-linux script is not installed") return end
      local out, code = pty(home, "artifact version describe processed")
      assert.equal(0, code, out)
      local label = H.catalog_label(home)
      assert.equal("catalog: " .. label .. "\n", out:sub(1, #label + 10))
      assert.matches("^artifact version  processed:2\nid                %x+%-", out:sub(#label + 11))
      assert.matches("\nsize              %d+ B %(stored %d+ B%)\n", out)
      assert.matches("\nproduced by       step 'process_data' of run 'second'\n", out)
      assert.matches("\nmetadata          accuracy = 0.5\n                  note = \"ok\"\n$", out)
    end)

    it("says what is not found, with suggestions, and exits 1", function()
      local out, err, code = run("artifact version describe procesed")
      assert.same({ "", "lupine: artifact 'procesed' not found; did you mean 'processed'?\n", 1 },
        { out, err, code })
      _, err, code = run("artifact version describe processed:9")
      assert.same({ "lupine: artifact 'processed' has no version '9' (it has 1, 2)\n", 1 },
        { err, code })
      -- the key lineage and the tables print (processed:v2) is taken back
      out, err, code = run("artifact version describe processed:v2 --json")
      assert.same({ "", 0, "2" }, { err, code, dkjson.decode(out).version })
      _, err, code = run("artifact version describe processed:v9")
      assert.same({ "lupine: artifact 'processed' has no version 'v9' (it has 1, 2)\n", 1 },
        { err, code })
      _, err, code = run("artifact version describe procesed:1")
      assert.same({ "lupine: artifact 'procesed' not found; did you mean 'processed'?\n", 1 },
        { err, code })
    end)
  end)

  describe("artifact export", function()
    it("writes the stored CBOR bytes exactly with --format cbor", function()
      local out, err, code = run("artifact export processed --format cbor")
      assert.equal(0, code, err)
      assert.equal(core.encode { 3, 6, 9, 12, 15 }, out)
      lupine.set_home(home)
      local av = lupine.Client():get_artifact_version("weird")
      assert.equal(core.read(av.id), run("artifact export weird --format cbor"))
      assert.equal(core.encode(av:load()), run("artifact export weird:1 --format cbor"))
    end)

    it("writes the value as JSON by default, which parses back to it", function()
      local out, err, code = run("artifact export processed")
      assert.equal(0, code, err)
      assert.equal("[3,6,9,12,15]\n", out)
      assert.same({ 3, 6, 9, 12, 15 }, json(out))
      assert.same({ values = { 1, 2, 3, 4, 5 } }, json(run("artifact export dataset:1")))
      assert.same({ i = 7 }, json(run("artifact export item:7 --json")))
    end)

    it("maps non-JSON values to documented $ forms, deterministically", function()
      local out = run("artifact export weird")
      assert.equal('{"a":{"$shared":0,"$value":[1,2]},"b":{"$ref":0},'
        .. '"bytes":{"$bytes":"//4="},"cyc":{"$shared":1,"$value":{"self":{"$ref":1}}},'
        .. '"dollar":{"$map":[["$ref",1]]},"empty":[],"keys":{"$map":[[true,1],[2.5,2]]},'
        .. '"list":[1,2.0,-0.0,0.1,1e+300],"sparse":{"$map":[[1,"a"],[3,"c"]]},'
        .. '"special":[{"$float":"nan"},{"$float":"inf"},{"$float":"-inf"}],'
        .. '"text":"tab\\there \\"q\\" \u{e9}"}\n', out)
      local doc = json(out)
      assert.equal("float", math.type(doc.list[2]))
      assert.equal("integer", math.type(doc.list[1]))
      assert.equal(out, run("artifact export weird"), "the same bytes every time")
    end)

    it("writes to a file with -o", function()
      local dir = H.tmpdir()
      local out, err, code = run("artifact export processed:1 -o " .. dir .. "/v1.json")
      assert.equal(0, code, err)
      assert.equal("wrote processed:1 as json to " .. dir .. "/v1.json (13 bytes)\n", out)
      assert.equal("[2,4,6,8,10]\n", H.read(dir .. "/v1.json"))
      out = run("artifact export processed:1 --format cbor -o " .. dir .. "/v1.cbor --json")
      local doc = json(out)
      assert.same({ format = "cbor", file = dir .. "/v1.cbor", bytes = 6, name = "processed",
        version = "1", id = doc.id }, doc)
      assert.equal(core.encode { 2, 4, 6, 8, 10 }, H.read(dir .. "/v1.cbor"))
      _, err, code = run("artifact export processed -o /nonexistent/dir/x.json")
      assert.same({ "lupine: cannot write /nonexistent/dir/x.json: No such file or directory\n",
        1 }, { err, code })
      H.rm(dir)
    end)

    it("does not write CBOR to a terminal", function()
      if not has_script then pending("util-linux script is not installed") return end
      local out, code = pty(home, "artifact export processed --format cbor")
      assert.equal(2, code)
      assert.equal("catalog: " .. H.catalog_label(home) .. "\nlupine: artifact export: not writing CBOR to a "
        .. "terminal: give -o FILE or redirect stdout\nTry 'lupine artifact export --help'.\n",
        out)
    end)
  end)

  describe("pipeline list", function()
    it("prints each pipeline with its run count and latest run", function()
      local out, err, code = run("pipeline list")
      assert.equal(0, code, err)
      local got = {}
      for i, l in ipairs(lines(out)) do
        local f = fields(l)
        got[i] = table.concat({ f[2], f[3], f[4], f[5] }, " ")
      end
      assert.same({ "p 1 anon-run completed", "broken 1 broken-run failed",
        "ml_pipeline 2 second completed" }, got)
      local doc = json(run("pipeline list --json --size 2"))
      assert.same({ 1, 2, 3, 2 }, { doc.page, doc.size, doc.total, doc.total_pages })
      assert.equal("p", doc.items[1].name)
      assert.same({ "anon-run", "completed" }, { doc.items[1].latest_run.name,
        doc.items[1].latest_run.status })
      assert.equal(1, doc.items[1].run_count)
    end)
  end)

  describe("pipeline runs list", function()
    it("prints runs newest first, filtered by --pipeline and --status", function()
      local out, err, code = run("pipeline runs list")
      assert.equal(0, code, err)
      local names = {}
      for i, l in ipairs(lines(out)) do names[i] = fields(l)[2] end
      assert.same({ "anon-run", "broken-run", "second", "first" }, names)
      local f = fields(lines(run("pipeline runs list --pipeline ml_pipeline"))[1])
      assert.same({ "second", "ml_pipeline", "completed", "nightly" }, { f[2], f[3], f[4], f[7] })
      assert.matches("^%d+%.%d%d%d$", f[6])
      out = run("pipeline runs list --status failed")
      assert.equal(1, #lines(out))
      assert.equal("broken-run", fields(lines(out)[1])[2])
      out = run("pipeline runs list --tag nightly --size 1")
      assert.equal(1, #lines(out))
    end)

    it("gives --json", function()
      local doc = json(run("pipeline runs list --pipeline ml_pipeline --json"))
      assert.equal(2, doc.total)
      local r = doc.items[1]
      assert.same({ "second", "ml_pipeline", "completed", { "nightly" } },
        { r.name, r.pipeline, r.status, r.tags })
      assert.equal("number", type(r.duration_ms))
      assert.matches("Z$", r.start_time)
      assert.matches("Z$", r.end_time)
    end)
  end)

  describe("pipeline runs describe", function()
    it("prints the run, then each step's inputs, outputs, parameters and error", function()
      local out, err, code = run("pipeline runs describe second")
      assert.equal(0, code, err)
      local l = lines(out)
      assert.same({ "name", "second" }, fields(l[2]))
      assert.same({ "pipeline", "ml_pipeline" }, fields(l[3]))
      assert.same({ "status", "completed" }, fields(l[4]))
      assert.same({ "tags", "nightly" }, fields(l[8]))
      assert.same({ "error", "" }, fields(l[9]))
      local dataset = json(run("artifact version describe dataset:2 --json")).id
      local processed = json(run("artifact version describe processed:2 --json")).id
      local rest = {}
      for i = 10, #l do
        local f = fields(l[i])
        if f[1] == "step" then f[4] = f[4]:match("^%d+%.%d%d%d$") and "<ms>" end
        if f[1] == "seed" then f[3] = f[3]:match("^%d+$") and "<seed>" end
        rest[#rest + 1] = table.concat(f, "|")
      end
      assert.same({
        "step|load_data|completed|<ms>",
        "seed|load_data|<seed>",
        "orchestrator|load_data|local",
        "output|load_data|dataset|dataset:2|" .. dataset,
        "cache_note|load_data|caching is off for this step",
        "step|process_data|completed|<ms>",
        "seed|process_data|<seed>",
        "orchestrator|process_data|local",
        "input|process_data|dataset|dataset:2|" .. dataset,
        "output|process_data|processed|processed:2|" .. processed,
        "parameter|process_data|factor|3",
        "cache_note|process_data|caching is off for this step",
      }, rest)
    end)

    it("shows a failed step's error", function()
      local out = run("pipeline runs describe broken-run")
      assert.matches("\nstatus\tfailed\n", out)
      assert.matches("\nstep\texplode\tfailed\t[%d.]+\nseed\texplode\t%d+\n"
        .. "orchestrator\texplode\tlocal\n"
        .. "cache_note\texplode\tit never ran before\n"
        .. "step_error\texplode\tstep 'explode' "
        .. "%(.-%) failed: .-no data today\n", out)
      local doc = json(run("pipeline runs describe broken-run --json"))
      assert.equal("failed", doc.status)
      assert.matches("no data today", doc.steps[1].error)
      assert.matches("traceback", doc.steps[1].traceback)
    end)

    it("gives --json with steps in order", function()
      local doc = json(run("pipeline runs describe first --json"))
      assert.same({ "first", "ml_pipeline", "completed", { "nightly" } },
        { doc.name, doc.pipeline, doc.status, doc.tags })
      assert.equal(dkjson.null, doc.error)
      assert.same({}, doc.run_metadata)
      assert.equal(2, #doc.steps)
      local s1, s2 = doc.steps[1], doc.steps[2]
      assert.same({ "load_data", "completed" }, { s1.name, s1.status })
      assert.same({}, s1.inputs)
      assert.same({}, s1.parameters)
      assert.same({ "dataset", "1" }, { s1.outputs.dataset.name, s1.outputs.dataset.version })
      assert.same({ factor = 2 }, s2.parameters)
      assert.equal(s1.outputs.dataset.id, s2.inputs.dataset.id)
      assert.equal(dkjson.null, s2.error)
      assert.equal("number", type(s2.duration_ms))
    end)

    it("lays the run out for a terminal", function()
      if not has_script then pending("util-linux script is not installed") return end
      local out, code = pty(home, "pipeline runs describe second")
      assert.equal(0, code, out)
      assert.matches("^catalog: [^\n]+\nrun       second\nid        %x+[%x-]+\npipeline  ml_pipeline\n"
        .. "status    completed\nstarted   %d+%-%d+%-%d+ %d+:%d+:%d+ UTC\nduration  [%d.]+ m?s\n"
        .. "tags      nightly\nsteps:\n", out)
      assert.matches("\n  process_data  completed  [%d.]+ m?s\n    inputs:     dataset <%- dataset:2\n"
        .. "    outputs:    processed %-> processed:2\n    parameters: factor = 3\n"
        .. "    seed:       %d+\n    ran on:     local\n"
        .. "    cache note: caching is off for this step\n$", out)
    end)

    it("shows the versions a step's lookups found and why it was not a cache hit", function()
      local lookups = build([[
local lupine = require "lupine"
lupine.save_artifact("m1", "production_model")
local compare = lupine.step { name = "compare", function()
  return lupine.Client():get_artifact_version("production_model"):load()
end }
local p = lupine.pipeline { name = "cmp", function() compare() end }
p:with_options { run_name = "before" }()
lupine.save_artifact("m2", "production_model")
p:with_options { run_name = "after" }()
]])
      local m2 = json(H.lupine(lookups, "artifact version describe production_model:2 --json")).id
      local out = H.lupine(lookups, "pipeline runs describe after")
      local note = "artifact 'production_model' has a newer version (2, was 1)"
      local want = "\nlookup\tcompare\tproduction_model\tproduction_model:2\t" .. m2
        .. "\ncache_note\tcompare\t" .. note .. "\n"
      assert.equal(want, out:sub(-#want))
      local doc = json(H.lupine(lookups, "pipeline runs describe after --json"))
      assert.same({ state = "miss", note = note, key = doc.steps[1].cache.key,
        cached_from = dkjson.null }, doc.steps[1].cache)
      assert.matches("^sha256:%x+$", doc.steps[1].cache.key)
      assert.same({ production_model = { id = m2, name = "production_model", version = "2",
        deleted = dkjson.null } }, doc.steps[1].lookups)
      assert.equal("it never ran before",
        json(H.lupine(lookups, "pipeline runs describe before --json")).steps[1].cache.note)
    end)

    it("says which run is not found", function()
      local _, err, code = run("pipeline runs describe frist")
      assert.same({ "lupine: pipeline run 'frist' not found; did you mean 'first'?\n", 1 },
        { err, code })
    end)
  end)

  describe("lineage", function()
    it("prints the tree of a version as text", function()
      local out, err, code = run("lineage processed:1")
      assert.equal(0, code, err)
      assert.equal("processed:v1\n"
        .. "  produced by process_data (run first) [completed] as 'processed'\n"
        .. "    input 'dataset': dataset:v1\n"
        .. "      produced by load_data (run first) [completed] as 'dataset'\n", out)
    end)

    it("follows --up, --down and --depth", function()
      local down = run("lineage dataset:1 --down")
      assert.equal("dataset:v1\n"
        .. "  consumed by process_data (run first) [completed] as 'dataset'\n"
        .. "    output 'processed': processed:v1\n", down)
      local up = run("lineage dataset:1 --up")
      assert.equal("dataset:v1\n"
        .. "  produced by load_data (run first) [completed] as 'dataset'\n", up)
      assert.equal("processed:v1\n"
        .. "  produced by process_data (run first) [completed] as 'processed'\n"
        .. "    input 'dataset': dataset:v1\n", run("lineage processed:1 --up --depth 1"))
      assert.equal("dataset:v1\n", run("lineage dataset:1 --depth 0"))
      local doc = json(run("lineage processed:1 --json --depth 1"))
      assert.equal(1, doc.depth)
      assert.equal("both", doc.direction)
      assert.equal(3, #doc.nodes)   -- processed, its producer, dataset
    end)

    it("writes Graphviz, Mermaid and JSON", function()
      local dot = run("lineage processed:2 --format dot")
      assert.matches("^digraph lineage {\n", dot)
      assert.matches('%[label="processed:v2", style=bold%];', dot)
      if has_dot then
        local path = H.write(os.tmpname(), dot)
        local svg, err, code = H.sh("dot -Tsvg " .. H.quote(path))
        os.remove(path)
        assert.equal(0, code, err)
        assert.matches("<svg", svg)
        assert.matches("processed:v2", svg)
      end
      local mermaid = run("lineage processed:2 --format mermaid")
      assert.matches("^flowchart LR\n", mermaid)
      assert.matches('n%d+%["processed:v2"%]', mermaid)
      local doc = json(run("lineage processed:2 --format json"))
      assert.equal(json(run("lineage processed:2 --json")).root, doc.root)
      assert.equal(json(run("artifact version describe processed:2 --json")).id, doc.root)
      assert.equal(4, #doc.nodes)
      assert.equal(3, #doc.edges)
    end)

    it("says what is not found", function()
      local _, err, code = run("lineage procesed")
      assert.same({ "lupine: artifact 'procesed' not found; did you mean 'processed'?\n", 1 },
        { err, code })
    end)
  end)

  describe("--help", function()
    it("lupine --help lists every command", function()
      local out, _, code = run("--help")
      assert.equal(0, code)
      for _, cmd in ipairs { "run", "artifact list", "artifact version list",
          "artifact version describe", "artifact version update", "artifact export",
          "artifact prune", "pipeline list", "pipeline runs list", "pipeline runs describe",
          "lineage", "gc" } do
        assert.matches("\n  " .. cmd:gsub("%-", "%%-") .. " ", out)
      end
    end)

    it("each command shows its usage", function()
      local out, err, code = run("artifact version update --help")
      assert.equal(0, code, err)
      assert.equal("usage: lupine artifact version update NAME[:VERSION]|ID [options]\n\n"
        .. "Add or remove tags of an artifact version.\n\noptions:\n"
        .. "  -t, --tag TAG            add this tag (repeatable)\n"
        .. "  -r, --remove-tag TAG     remove this tag (repeatable)\n"
        .. "      --json               print JSON (shapes in runtime/README.md)\n"
        .. "  -h, --help               show this help\n", out)
      out = run("pipeline runs list -h")
      assert.matches("^usage: lupine pipeline runs list %[options%]\n", out)
      assert.matches("\n      %-%-page N ", out)
      out = run("artifact --help")
      assert.matches("^usage: lupine artifact <command> %[options%]\n", out)
      assert.matches("\n  version describe NAME%[:VERSION%]|ID   ", out)
      for _, cmd in ipairs { "artifact list", "artifact version list", "artifact version describe",
          "artifact export", "artifact prune", "pipeline list", "pipeline runs list",
          "pipeline runs describe", "lineage", "gc" } do
        out, err, code = run(cmd .. " --help")
        assert.equal(0, code, err)
        assert.matches("^usage: lupine " .. cmd .. " ", out)
      end
    end)
  end)

  describe("usage errors", function()
    -- args, and the exact stderr; every one exits 2 and prints nothing on stdout
    local cases = {
      { "artefact list", "unknown command 'artefact'; did you mean 'artifact'?\n"
        .. "Try 'lupine --help'." },
      { "lineag x", "unknown command 'lineag'; did you mean 'lineage'?\nTry 'lupine --help'." },
      { "artifact lst", "artifact: unknown command 'lst'; did you mean 'list'?\n"
        .. "Try 'lupine artifact --help'." },
      { "artifact", "artifact: missing command (one of: list, version, export, visualize, prune)\n"
        .. "Try 'lupine artifact --help'." },
      { "pipeline runs", "pipeline runs: missing command (one of: list, describe)\n"
        .. "Try 'lupine pipeline runs --help'." },
      { "artifact version list --nme x", "artifact version list: unknown option '--nme'; "
        .. "did you mean '--name'?\nTry 'lupine artifact version list --help'." },
      { "artifact version list -x", "artifact version list: unknown option '-x'\n"
        .. "Try 'lupine artifact version list --help'." },
      { "artifact version list --page", "artifact version list: option '--page' needs a value "
        .. "(N)\nTry 'lupine artifact version list --help'." },
      { "artifact version list --page 0", "artifact version list: option '--page' needs a "
        .. "positive integer (got '0')\nTry 'lupine artifact version list --help'." },
      { "artifact version list --size=1001", "artifact version list: option '--size' is at "
        .. "most 1000 (got 1001)\nTry 'lupine artifact version list --help'." },
      { "artifact version list --type modle", "artifact version list: option '--type': unknown "
        .. "value 'modle'; did you mean 'model'? (one of: base, data, data_analysis, model, "
        .. "schema, service, statistics)\nTry 'lupine artifact version list --help'." },
      { "artifact version describe", "artifact version describe: missing argument "
        .. "NAME[:VERSION]|ID\nTry 'lupine artifact version describe --help'." },
      { "artifact version describe a b", "artifact version describe: unexpected argument 'b'\n"
        .. "Try 'lupine artifact version describe --help'." },
      { "artifact version update processed", "artifact version update: nothing to do: give -t "
        .. "TAG to add a tag or -r TAG to remove one\n"
        .. "Try 'lupine artifact version update --help'." },
      { "artifact version update processed -t ''", "artifact version update: tag name must "
        .. "not be empty\nTry 'lupine artifact version update --help'." },
      { "artifact export processed --format xml", "artifact export: option '--format': unknown "
        .. "value 'xml' (one of: json, cbor)\nTry 'lupine artifact export --help'." },
      { "artifact export processed --format cbor --json", "artifact export: --json and "
        .. "--format cbor ask for different things\nTry 'lupine artifact export --help'." },
      { "pipeline runs list --status complete", "pipeline runs list: option '--status': "
        .. "unknown value 'complete'; did you mean 'completed'? (one of: completed, failed, "
        .. "running)\nTry 'lupine pipeline runs list --help'." },
      { "pipeline runs describe", "pipeline runs describe: missing argument RUN\n"
        .. "Try 'lupine pipeline runs describe --help'." },
      { "lineage processed --depth x", "lineage: option '--depth' needs a non-negative integer "
        .. "(got 'x')\nTry 'lupine lineage --help'." },
      { "lineage processed --json --format dot", "lineage: --json and --format dot ask for "
        .. "different things\nTry 'lupine lineage --help'." },
      { "gc --dry-run=yes", "gc: option '--dry-run' takes no value\nTry 'lupine gc --help'." },
      { "artifact prune", "artifact prune: refusing to delete without confirmation: pass -y to "
        .. "prune (or --dry-run to see what would be deleted)\n"
        .. "Try 'lupine artifact prune --help'." },
    }
    for _, case in ipairs(cases) do
      it("lupine " .. case[1], function()
        local out, err, code = H.sh("LUPINE_HOME=" .. H.quote(home) .. " "
          .. H.quote(H.cli:sub(1, 1) == "/" and H.cli or (H.root .. "/" .. H.cli)) .. " "
          .. case[1] .. " </dev/null")
        assert.same({ "", "lupine: " .. case[2] .. "\n", 2 }, { out, err, code })
      end)
    end

    it("a value given with = works as with a space", function()
      assert.equal(run("artifact version list --name=processed"),
        run("artifact version list --name processed"))
      assert.equal(2, #lines(run("artifact version list --name processed")))
    end)

    it("a not-found --run is exit 1 with the client's message", function()
      local _, err, code = run("artifact version list --run secnod")
      assert.same({ "lupine: pipeline run 'secnod' not found; did you mean 'second'?\n", 1 },
        { err, code })
    end)
  end)
end)

describe("lupine artifact version update", function()
  local home
  before_each(function() home = build(FIXTURE:match("^(.-)\nlocal explode")) end)
  after_each(function() H.rm(home:match("^(.*)/home$")) end)

  it("adds tags with -t and removes them with -r; describe shows them", function()
    local out, err, code = H.lupine(home, "artifact version update processed:1 -t best -t prod")
    assert.equal(0, code, err)
    assert.equal("processed:1 tags: best, prod\n", out)
    out = H.lupine(home, "artifact version describe processed:1")
    assert.matches("\ntags\tbest,prod\n", out)
    out, err, code = H.lupine(home, "artifact version update processed:1 -r prod --tag=new --json")
    assert.equal(0, code, err)
    local doc = json(out)
    assert.same({ "best", "new" }, doc.tags)
    assert.equal("1", doc.version)
    assert.same({ "best", "new" }, json(H.lupine(home,
      "artifact version describe processed:1 --json")).tags)
    assert.same({}, json(H.lupine(home, "artifact version describe processed:2 --json")).tags)
    out = H.lupine(home, "artifact version list --tag best")
    assert.equal(1, #lines(out))
    out = H.lupine(home, "artifact version update processed:1 --remove-tag best -r new")
    assert.equal("processed:1 tags: (none)\n", out)
  end)

  it("exits 1 for an unknown version", function()
    local _, err, code = H.lupine(home, "artifact version update processd -t x")
    assert.same({ "lupine: artifact 'processd' not found; did you mean 'processed'?\n", 1 },
      { err, code })
  end)
end)

describe("lupine artifact prune and lupine gc", function()
  local home
  local SCRIPT = FIXTURE:match("^(.-)\nlocal explode") .. [[

for i = 1, 3 do lupine.save_artifact({ n = i }, "scratch") end
lupine.save_artifact("kept", "used")
local use = step("use", function() return lupine.load_artifact("used") end)
pipeline { name = "user", function() use() end } ()
]]
  before_each(function() home = build(SCRIPT) end)
  after_each(function() H.rm(home:match("^(.*)/home$")) end)

  local function versions()
    local out = H.lupine(home, "artifact version list")
    local list = {}
    for i, l in ipairs(lines(out)) do list[i] = fields(l)[2] .. ":" .. fields(l)[3] end
    return list
  end

  it("--dry-run lists what would go and deletes nothing", function()
    local before = versions()
    local out, err, code = H.lupine(home, "artifact prune --dry-run")
    assert.equal(0, code, err)
    local l = lines(out)
    assert.equal(4, #l)
    for i = 1, 3 do
      local f = fields(l[i])
      assert.same({ "version", "scratch", tostring(i) }, { f[1], f[3], f[4] })
    end
    assert.same({ "artifact", "scratch" }, fields(l[4]))
    assert.same(before, versions())
    local doc = json(H.lupine(home, "artifact prune --dry-run --json"))
    assert.is_true(doc.dry_run)
    assert.same({ "scratch" }, doc.artifacts)
    assert.equal(3, #doc.versions)
    assert.same({ "scratch", "1" }, { doc.versions[1].name, doc.versions[1].version })
  end)

  it("-y deletes the versions no step run produced or used", function()
    local out, err, code = H.lupine(home, "artifact prune -y --json")
    assert.equal(0, code, err)
    local doc = json(out)
    assert.is_false(doc.dry_run)
    assert.same({ "scratch" }, doc.artifacts)
    assert.same({ "user::use::output:1", "used:1", "processed:2", "dataset:2", "processed:1",
      "dataset:1" }, versions())
    out = H.lupine(home, "artifact prune -y")
    assert.equal("", out, "nothing left to prune")
  end)

  it("asks on a terminal, and deletes only on yes", function()
    if not has_script then pending("util-linux script is not installed") return end
    local out, code = pty(home, "artifact prune", "n\n")
    assert.equal(1, code, out)
    assert.matches("  scratch:1\t%x[%x-]+\n", out)
    assert.matches("delete 3 artifact versions and 1 artifact%? %[y/N%] ", out)
    assert.matches("lupine: not pruned\n$", out)
    assert.equal(9, #versions())
    out, code = pty(home, "artifact prune", "y\n")
    assert.equal(0, code, out)
    assert.matches("deleted 3 artifact versions and 1 artifact\n$", out)
    assert.equal(6, #versions())
  end)

  it("gc reports the objects and bytes it frees", function()
    local doc = json(H.lupine(home, "gc --dry-run --json --grace 0"))
    assert.same({ dry_run = true, objects = 0, bytes = 0, copies = 0, copy_bytes = 0,
      recent = 0 }, doc)
    H.lupine(home, "artifact prune -y")
    local out, err, code = H.lupine(home, "gc --dry-run --grace 0")
    assert.equal(0, code, err)
    local n = tonumber(out:match("^objects\t(%d+)\n"))
    local bytes = tonumber(out:match("\nbytes\t(%d+)\ncopies\t0\ncopy_bytes\t0\nrecent\t0\n$"))
    assert.equal(6, n, out)   -- three values and their bar charts
    assert.is_true(bytes > 0)
    -- written a moment ago: kept by the default grace of an hour
    assert.same({ dry_run = false, objects = 0, bytes = 0, copies = 0, copy_bytes = 0,
      recent = 6 }, json(H.lupine(home, "gc --json")))
    doc = json(H.lupine(home, "gc --json --grace 0"))
    assert.same({ dry_run = false, objects = 6, bytes = bytes, copies = 0, copy_bytes = 0,
      recent = 0 }, doc)
    assert.same({ dry_run = true, objects = 0, bytes = 0, copies = 0, copy_bytes = 0,
      recent = 0 }, json(H.lupine(home, "gc --dry-run --json --grace 0")))
    assert.same({ 2, 4, 6, 8, 10 }, json(H.lupine(home, "artifact export processed:1")),
      "what is kept still loads")
  end)

  it("gc says what it freed on a terminal, and what the grace period kept", function()
    if not has_script then pending("util-linux script is not installed") return end
    H.lupine(home, "artifact prune -y")
    local out, code = pty(home, "gc --dry-run")
    assert.equal(0, code, out)
    -- on a terminal, the catalog read is named
    local catalog = "catalog: " .. H.catalog_label(home) .. "\n"
    assert.equal(catalog .. "would free 0 objects (0 B); kept 6 unused objects written in the last "
      .. "1h (--grace)\n", out)
    out = pty(home, "gc --dry-run --grace 90s")
    assert.equal(catalog .. "would free 0 objects (0 B); kept 6 unused objects written in the last "
      .. "90s (--grace)\n", out)
    out, code = pty(home, "gc --grace 0")
    assert.equal(0, code, out)
    assert.matches("^catalog: [^\n]+\nfreed 6 objects %([%d.]+ K?i?B%)\n$", out)
  end)

  it("gc refuses a bad --grace, and to empty a store for a catalog with no version", function()
    local _, err, code = H.lupine(home, "gc --grace 1y")
    assert.equal(2, code)
    assert.equal("lupine: gc: --grace: '1y' is not a duration (such as 0, 90s, 30m, 1h or 2d)\n"
      .. "Try 'lupine gc --help'.\n", err)
    -- every version deleted: gc then asks for --force
    _, err, code = H.lupine(home, "run " .. H.script([[
      local client = lupine.Client()
      for _, av in ipairs(client:list_artifact_versions()) do
        client:delete_artifact_version(av, { force = true })
      end]]))
    assert.equal(0, code, err)
    _, err, code = H.lupine(home, "gc --grace 0")
    assert.equal(1, code)
    assert.equal("lupine: gc: the catalog records no artifact version, yet the store at " .. home
      .. "/artifacts holds objects: refusing to remove them all; if every version was deleted "
      .. "on purpose, force it (lupine gc --force, or force = true)\n", err)
    local out
    out, err, code = H.lupine(home, "gc --grace 0 --force --json")
    assert.equal(0, code, err)
    assert.is_true(json(out).objects > 0)
  end)
end)

-- Stored strings that escape: control characters in values (allowed), and,
-- put in with sqlite3 as a catalog written before keys were checked (or by
-- another tool) might hold them, a metadata key that is not UTF-8 and a
-- version with an escape sequence.
describe("lupine catalog commands on strings that would break the output #sqlite", function()
  local home
  setup(function()
    home = build([[
local lupine = require "lupine"
local make = lupine.step { name = "make", outputs = { "odd" }, function(p)
  return { ["\255"] = "\27[31m", text = "bell\7" }
end }
lupine.pipeline { name = "odd_pipe", function() make("\27]0;title\7") end }
  :with_options { run_name = "odd-run" } ()
lupine.log_metadata { artifact_name = "odd", metadata = { note = "\27[2J\255", keep = 1 } }
]])
    local _, err, code = H.sqlite(home, "UPDATE run_metadata SET key = CAST(X'6B6579FF1B5B33316D' "
      .. "AS TEXT) WHERE key = 'keep'; UPDATE artifact_versions SET version = '1' || char(27) "
      .. "|| '[5m'")
    assert(code == 0, err)
  end)
  teardown(function() H.rm(home:match("^(.*)/home$")) end)

  it("writes valid JSON for every --json, invalid UTF-8 keys replaced by U+FFFD", function()
    for _, args in ipairs { "artifact version describe odd --json", "artifact version list --json",
        "artifact export odd", "pipeline runs describe odd-run --json", "lineage odd --json",
        "pipeline runs list --json", "artifact list --json" } do
      local out, err, code = H.lupine(home, args)
      assert.equal(0, code, err)
      assert.is_true(H.strict_json(out), args .. ": " .. out)
    end
    local doc = json(H.lupine(home, "artifact version describe odd --json"))
    assert.same({ ["key\u{FFFD}\27[31m"] = 1, note = { ["$bytes"] = "G1sySv8=" } },
      doc.run_metadata)
    assert.equal("1\27[5m", doc.version)
    assert.equal('{"$map":[[{"$bytes":"/w=="},"\\u001b[31m"],["text","bell\\u0007"]]}\n',
      (H.lupine(home, "artifact export odd")), "a value, lossless: keys not UTF-8 make a $map")
  end)

  it("escapes control characters in tab-separated lines", function()
    for _, args in ipairs { "artifact version describe odd", "artifact version list",
        "pipeline runs describe odd-run" } do
      local out = H.lupine(home, args)
      assert.is_nil(out:find("[\0-\8\11-\31\127]"), args .. ": " .. out)
    end
    local out = H.lupine(home, "artifact version describe odd")
    assert.matches("\nversion\t1\\x1B[5m\n", out, 1, true)
    assert.matches("\nmetadata\tkey\\xFF\\x1B[31m\t1\n", out, 1, true)
  end)

  it("escapes control characters on a terminal", function()
    if not has_script then pending("script(1) is not installed: no pseudo-terminal") return end
    for _, args in ipairs { "artifact version describe odd", "artifact version list",
        "pipeline runs describe odd-run", "lineage odd", "artifact version update odd -t x" } do
      local out, code = pty(home, args)
      assert.equal(0, code, out)
      assert.is_nil(out:find("[\0-\8\11-\31\127]"), args .. ": " .. out)
      assert.matches("1\\x1B[5m", out, 1, true)
    end
    assert.matches("key\\xFF\\x1B[31m = 1", pty(home, "artifact version describe odd"), 1, true)
    assert.matches('p = "\\u001b]0;title\\u0007"', pty(home, "pipeline runs describe odd-run"), 1,
      true)
  end)
end)

describe("lupine.cli.json", function()
  local enc = cli.json.encode

  it("maps scalars", function()
    assert.equal("null", enc(nil))
    assert.equal("true", enc(true))
    assert.equal("-9223372036854775808", enc(math.mininteger))
    assert.equal("1.0", enc(1.0))
    assert.equal("-0.0", enc(-0.0))
    assert.equal("0.1", enc(0.1))
    assert.equal("1e+300", enc(1e300))
    assert.equal("100.0", enc(100.0), "the digits a float needs, not fewer, in %g's notation")
    assert.equal("5e-324", enc(4.9406564584124654e-324))
    assert.equal("0.30000000000000004", enc(0.1 + 0.2))
    assert.equal('{"$float":"nan"}', enc(0 / 0))
    assert.equal('{"$float":"-inf"}', enc(-math.huge))
    assert.equal('"a\\u0001\\u007f\\n\\\\\\"\u{2028}"', enc('a\1\127\n\\"\u{2028}'))
    assert.equal('"\\u0000"', enc("\0"))
    assert.equal('{"$bytes":"7aCA"}', enc("\237\160\128"), "a surrogate is not UTF-8")
    assert.equal('{"$bytes":"wIA="}', enc("\192\128"), "nor an overlong form")
    assert.equal('{"$bytes":"/w=="}', enc("\255"))
    assert.equal('{"$bytes":"//79"}', enc("\255\254\253"))
  end)

  it("maps tables: arrays, objects with sorted keys, $map", function()
    assert.equal("[]", enc {})
    assert.equal("[1,[2,3]]", enc { 1, { 2, 3 } })
    assert.equal('{"B":1,"a":2,"b":{"c":[]}}', enc { b = { c = {} }, a = 2, B = 1 })
    assert.equal('{"z":1,"\u{e9}":2}', enc { ["\u{e9}"] = 2, z = 1 }, "keys in byte order")
    assert.equal('{"$map":[[2,"b"]]}', enc { [2] = "b" })
    assert.equal('{"$map":[[{"$bytes":"/w=="},1],["a",2]]}', enc { ["\255"] = 1, a = 2 },
      "a key that is not UTF-8")
    assert.equal('{"$map":[[1,"x"],["k","y"]]}', enc { "x", k = "y" })
    assert.equal('{"$map":[["a",2],["$x",1]]}', enc { ["$x"] = 1, a = 2 }, "CBOR order")
    assert.equal('{"$map":[[[1],"first"],[[2],"second"]]}', enc { [{ 2 }] = "second",
      [{ 1 }] = "first" })
  end)

  it("maps shared tables and cycles to $shared/$ref, numbered in order", function()
    local t = {}
    assert.equal('[{"$shared":0,"$value":[]},{"$ref":0}]', enc { t, t })
    local c = {}
    c[1] = c
    assert.equal('{"$shared":0,"$value":[{"$ref":0}]}', enc(c))
    local k = { 1 }
    assert.equal('{"$map":[[{"$shared":0,"$value":[1]},{"$ref":0}]]}', enc { [k] = k })
  end)

  it("writes records with object and array, and null", function()
    local j = cli.json
    assert.equal('{"a":[],"b":{},"c":null,"d":[1,{"$float":"inf"}]}',
      enc(j.object { a = j.array {}, b = j.object {}, c = j.null, d = { 1, math.huge } }))
  end)
end)
