-- SPDX-License-Identifier: MIT
-- Listing and filtering the catalog: list_artifact_versions and its filters,
-- ArtifactVersionFilter, paging, sorting, list_artifacts, list_pipeline_runs,
-- list_pipelines and get_pipeline, and the query plans behind them.
local H = require "helper"
local lupine = require "lupine"
local query = require "lupine.query"
local core = require "lupine.core"
local step, pipeline, ArtifactConfig = lupine.step, lupine.pipeline, lupine.ArtifactConfig

local function save(name, value, opts)
  return lupine.save_artifact(value, name, opts)
end

-- "name:version" of each listed version, in order.
local function vs(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.name .. ":" .. r.version end
  return out
end

local function names_of(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.name end
  return out
end

describe("list_artifact_versions", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  describe("by name", function()
    before_each(function()
      save("model", 1); save("model", 2)
      save("model_a", 3); save("my_model", 4)
      save("a%b", 5); save("a_b", 6); save("axb", 7); save("a\\b", 8)
    end)

    it("matches the name exactly without an operator or with equals:", function()
      assert.same({ "model:1", "model:2" }, vs(client:list_artifact_versions { name = "model" }))
      assert.same({ "model:1", "model:2" },
        vs(client:list_artifact_versions { name = "equals:model" }))
      assert.same({}, vs(client:list_artifact_versions { name = "mode" }))
    end)

    it("takes contains:, startswith:, endswith: and comparisons", function()
      assert.same({ "model:1", "model:2", "model_a:1", "my_model:1" },
        vs(client:list_artifact_versions { name = "contains:model" }))
      assert.same({ "model:1", "model:2", "model_a:1" },
        vs(client:list_artifact_versions { name = "startswith:model" }))
      assert.same({ "model:1", "model:2", "my_model:1" },
        vs(client:list_artifact_versions { name = "endswith:model" }))
      assert.same({ "model_a:1", "my_model:1" },
        vs(client:list_artifact_versions { name = "gt:model" }))
      assert.same({ "model:1", "model:2", "model_a:1", "my_model:1" },
        vs(client:list_artifact_versions { name = "gte:model" }))
      assert.same({ "a%b:1", "a_b:1", "axb:1", "a\\b:1" },
        vs(client:list_artifact_versions { name = "lt:m" }))
      assert.same({ "a%b:1", "a_b:1", "axb:1", "a\\b:1" },
        vs(client:list_artifact_versions { name = "lte:a~" }))
    end)

    it("escapes % and _ and \\ in patterns", function()
      assert.same({ "a%b:1" }, vs(client:list_artifact_versions { name = "contains:%" }))
      assert.same({ "a_b:1" }, vs(client:list_artifact_versions { name = "contains:a_" }))
      assert.same({ "a%b:1" }, vs(client:list_artifact_versions { name = "startswith:a%" }))
      assert.same({ "a_b:1" }, vs(client:list_artifact_versions { name = "endswith:_b" }))
      assert.same({ "a\\b:1" }, vs(client:list_artifact_versions { name = "contains:\\" }))
    end)

    it("ignores ASCII case in contains:, startswith: and endswith: (as LIKE does)", function()
      assert.same({ "model:1", "model:2", "model_a:1" },
        vs(client:list_artifact_versions { name = "startswith:MODEL" }))
      assert.same({}, vs(client:list_artifact_versions { name = "MODEL" }))
    end)
  end)

  it("reads 'word:' as an operator only before a single colon", function()
    save("training::produce::output", 1)
    save("team:alpha", 2)
    assert.same({ "training::produce::output:1" },
      vs(client:list_artifact_versions { name = "training::produce::output" }))
    assert.same({ "team:alpha:1" }, vs(client:list_artifact_versions { name = "equals:team:alpha" }))
    assert.same({ "team:alpha:1" }, vs(client:list_artifact_versions { name = "endswith:m:alpha" }))
    assert.equal("list_artifact_versions: filter 'name': unknown operator 'team' in 'team:alpha' "
      .. "(operators: contains, endswith, equals, gt, gte, lt, lte, startswith; "
      .. "write 'equals:team:alpha' to match it as it is)",
      H.err(function() client:list_artifact_versions { name = "team:alpha" } end))
  end)

  describe("by version", function()
    before_each(function()
      for i = 1, 11 do save("m", i) end
      save("m", 12, { version = "v-beta" })
      save("other", 1)
    end)

    it("matches a version string or integer exactly", function()
      assert.same({ "m:2" }, vs(client:list_artifact_versions { name = "m", version = "2" }))
      assert.same({ "m:2" }, vs(client:list_artifact_versions { name = "m", version = 2 }))
      assert.same({ "m:v-beta" }, vs(client:list_artifact_versions { version = "v-beta" }))
      assert.same({ "m:1", "other:1" }, vs(client:list_artifact_versions { version = "1" }))
    end)

    it("compares numerically with gte:, gt:, lte:, lt: (custom versions never match)", function()
      assert.same({ "m:9", "m:10", "m:11" },
        vs(client:list_artifact_versions { name = "m", version = "gte:9" }))
      assert.same({ "m:10", "m:11" }, vs(client:list_artifact_versions { name = "m", version = "gt:9" }))
      assert.same({ "m:1", "m:2" }, vs(client:list_artifact_versions { name = "m", version = "lte:2" }))
      assert.same({ "m:1" }, vs(client:list_artifact_versions { name = "m", version = "lt:2" }))
      assert.same({ "m:10", "m:11" }, vs(client:list_artifact_versions { version = "gte:9.5" }))
    end)

    it("matches the version text with contains:, startswith:, endswith:", function()
      assert.same({ "m:1", "m:10", "m:11" },
        vs(client:list_artifact_versions { name = "m", version = "startswith:1" }))
      assert.same({ "m:v-beta" }, vs(client:list_artifact_versions { version = "contains:beta" }))
      assert.same({ "m:1", "m:11", "other:1" },
        vs(client:list_artifact_versions { version = "endswith:1" }))
    end)

    it("refuses a numeric comparison with something that is not a number", function()
      assert.equal("list_artifact_versions: filter 'version': 'gte:abc' compares numbers, "
        .. "but 'abc' is not a number",
        H.err(function() client:list_artifact_versions { version = "gte:abc" } end))
      assert.equal("list_artifact_versions: filter 'version' must be a string or an integer "
        .. "(got number 1.5)",
        H.err(function() client:list_artifact_versions { version = 1.5 } end))
    end)
  end)

  it("filters by artifact_type", function()
    save("m", 1, { artifact_type = "model" })
    save("d", 2)
    save("m", 3, { artifact_type = "model" })
    assert.same({ "m:1", "m:2" }, vs(client:list_artifact_versions { artifact_type = "model" }))
    assert.same({ "d:1" }, vs(client:list_artifact_versions { artifact_type = "data" }))
    assert.same({ "m:1", "d:1", "m:2" },
      vs(client:list_artifact_versions { artifact_type = "contains:d" }))
    assert.same({ "m:1", "m:2" }, vs(client:list_artifact_versions { artifact_type = "contains:o" }))
  end)

  it("filters by created, comparing the ISO text", function()
    local a = save("x", 1)
    local b = save("x", 2)
    local c = save("x", 3)
    assert.is_true(a.created < b.created and b.created < c.created)
    assert.same({ "x:2", "x:3" }, vs(client:list_artifact_versions { created = "gte:" .. b.created }))
    assert.same({ "x:3" }, vs(client:list_artifact_versions { created = "gt:" .. b.created }))
    assert.same({ "x:1" }, vs(client:list_artifact_versions { created = "lt:" .. b.created }))
    assert.same({ "x:1", "x:2" }, vs(client:list_artifact_versions { created = "lte:" .. b.created }))
    assert.same({ "x:2" }, vs(client:list_artifact_versions { created = b.created }))
    assert.same({ "x:1", "x:2", "x:3" },
      vs(client:list_artifact_versions { created = "startswith:" .. a.created:sub(1, 10) }))
    assert.same({ "x:1", "x:2", "x:3" }, vs(client:list_artifact_versions { created = "gte:2000-01-01" }))
    assert.same({}, vs(client:list_artifact_versions { created = "gte:9999" }))
  end)

  describe("by tag", function()
    before_each(function()
      save("model", 1, { tags = { "staging" } })
      save("model", 2, { tags = { "production", "staging" } })
      save("model", 3)
      save("data", 4, { tags = { "production" } })
      save("model", 5, { tags = { "production", "preprod" } })
    end)

    it("takes one tag", function()
      assert.same({ "model:2", "data:1", "model:4" },
        vs(client:list_artifact_versions { tag = "production" }))
      assert.same({}, vs(client:list_artifact_versions { tag = "nope" }))
    end)

    it("takes a list of tags, all of which must match", function()
      assert.same({ "model:2" }, vs(client:list_artifact_versions { tag = { "production", "staging" } }))
      assert.same({ "model:2" }, vs(client:list_artifact_versions { tag = { "staging", "production" } }))
      assert.same({}, vs(client:list_artifact_versions { tag = { "production", "nope" } }))
    end)

    it("takes operators on tag names", function()
      assert.same({ "model:2", "data:1", "model:4" },
        vs(client:list_artifact_versions { tag = "startswith:prod" }))
      assert.same({ "model:4" },
        vs(client:list_artifact_versions { tag = { "startswith:pre", "production" } }))
      assert.same({ "model:1", "model:2", "data:1", "model:4" },
        vs(client:list_artifact_versions { tag = "contains:i" }))
    end)

    it("combines with name, version, created and sorting", function()
      assert.same({ "model:2", "model:4" },
        vs(client:list_artifact_versions { name = "model", tag = "production" }))
      assert.same({ "model:2" },
        vs(client:list_artifact_versions { name = "model", tag = "production", version = "lt:3" }))
      assert.same({ "model:2", "model:4" },
        vs(client:list_artifact_versions { name = "startswith:mod", tag = "production" }))
      assert.same({ "data:1", "model:2", "model:4" },
        vs(client:list_artifact_versions { tag = "production", sort_by = "name" }))
      assert.same({ "model:2", "data:1", "model:4" },
        vs(client:list_artifact_versions { tag = "production", sort_by = "created" }))
      local second = client:list_artifact_versions { tag = "production" }[2]
      assert.same({ "data:1", "model:4" },
        vs(client:list_artifact_versions { tag = "production", created = "gte:" .. second.created }))
    end)

    it("finds tags added after the version was saved", function()
      local v3 = client:get_artifact_version("model", "3")
      core.write("tag", "artifact_version", v3.id, "production")
      assert.same({ "model:2", "model:3", "data:1", "model:4" },
        vs(client:list_artifact_versions { tag = "production" }))
    end)

    it("finds tags linked before their version was recorded (another writer)", function()
      local home = lupine.home()
      local _, err = H.sqlite(home, "INSERT INTO tag_links(entity, entity_id, tag_seq) SELECT "
        .. "'artifact_version', 'early-id', seq FROM tags WHERE name = 'production';"
        .. "INSERT INTO artifact_versions(id, artifact_id, version, version_number, type, "
        .. "data_type, content_hash, size, stored_size, uri, codec_version, created) SELECT "
        .. "'early-id', artifact_id, '9', 9, type, data_type, content_hash, size, stored_size, "
        .. "uri, codec_version, created FROM artifact_versions WHERE version = '3'")
      assert.equal("", err)
      assert.same({ "model:2", "data:1", "model:4", "model:9" },
        vs(client:list_artifact_versions { tag = "production" }))
    end)
  end)

  describe("by pipeline_run", function()
    local run1, run2
    before_each(function()
      local make = step { name = "make", outputs = { "raw" }, function(x) return { x } end }
      local use = step { name = "use", outputs = { "derived" }, function(raw) return #raw end }
      local p = pipeline { name = "flow", function(x) use(make(x)) end }
      run1 = p:with_options { run_name = "first" }(1)
      local reuse = step { name = "reuse", outputs = { "again" }, function(raw) return raw end }
      local q = pipeline { name = "consumer", function(x) reuse(x) end }
      run2 = q:with_options { run_name = "second" }(client:get_artifact_version("raw"))
      save("unrelated", 1)
    end)

    it("lists what the run's steps produced and consumed, by name, id, prefix or run", function()
      local produced = { "raw:1", "derived:1" }
      assert.same(produced, vs(client:list_artifact_versions { pipeline_run = "first" }))
      assert.same(produced, vs(client:list_artifact_versions { pipeline_run = run1.id }))
      assert.same(produced, vs(client:list_artifact_versions { pipeline_run = run1.id:sub(1, 8) }))
      assert.same(produced, vs(client:list_artifact_versions { pipeline_run = run1 }))
      assert.same({ "raw:1", "again:1" }, vs(client:list_artifact_versions { pipeline_run = run2 }))
      assert.same({ "raw:1" },
        vs(client:list_artifact_versions { pipeline_run = "second", name = "raw" }))
    end)

    it("says when the run does not exist", function()
      assert.equal("list_artifact_versions: filter 'pipeline_run': pipeline run 'frist' not found;"
        .. " did you mean 'first'?",
        H.err(function() client:list_artifact_versions { pipeline_run = "frist" } end))
      assert.equal("list_artifact_versions: filter 'pipeline_run' must be a run name, id or "
        .. "PipelineRun (got number 3)",
        H.err(function() client:list_artifact_versions { pipeline_run = 3 } end))
    end)
  end)

  describe("by run_metadata", function()
    before_each(function()
      save("m", 1, { run_metadata = { accuracy = 0.8, framework = "sklearn", epochs = 10 } })
      save("m", 2, { run_metadata = { accuracy = 0.95, framework = "torch", epochs = 20,
        final = true, shape = { 2, 3 } } })
      save("m", 3, { run_metadata = { accuracy = 0.91, framework = "sklearn-extra" } })
      save("m", 4)
    end)

    it("compares numbers with operators and plain numbers", function()
      assert.same({ "m:2", "m:3" },
        vs(client:list_artifact_versions { run_metadata = { accuracy = "gte:0.9" } }))
      assert.same({ "m:2" }, vs(client:list_artifact_versions { run_metadata = { accuracy = 0.95 } }))
      assert.same({ "m:1" }, vs(client:list_artifact_versions { run_metadata = { accuracy = "lt:0.9" } }))
      assert.same({ "m:2" }, vs(client:list_artifact_versions { run_metadata = { epochs = 20 } }))
      assert.same({ "m:1", "m:2" },
        vs(client:list_artifact_versions { run_metadata = { epochs = "gt:5" } }))
    end)

    it("matches text exactly or with an operator; a numeric string also matches the number", function()
      assert.same({ "m:1" }, vs(client:list_artifact_versions { run_metadata = { framework = "sklearn" } }))
      assert.same({ "m:1", "m:3" },
        vs(client:list_artifact_versions { run_metadata = { framework = "startswith:sklearn" } }))
      assert.same({ "m:2" }, vs(client:list_artifact_versions { run_metadata = { epochs = "20" } }))
    end)

    it("matches other values by their stored value", function()
      assert.same({ "m:2" }, vs(client:list_artifact_versions { run_metadata = { final = true } }))
      assert.same({}, vs(client:list_artifact_versions { run_metadata = { final = false } }))
      assert.same({ "m:2" }, vs(client:list_artifact_versions { run_metadata = { shape = { 2, 3 } } }))
    end)

    it("requires every key to match", function()
      assert.same({ "m:3" }, vs(client:list_artifact_versions {
        run_metadata = { accuracy = "gte:0.9", framework = "contains:sk" } }))
      assert.same({}, vs(client:list_artifact_versions {
        run_metadata = { accuracy = "gte:0.9", missing = 1 } }))
      assert.same({ "m:3" }, vs(client:list_artifact_versions {
        name = "m", version = "gte:3", run_metadata = { accuracy = "gte:0.9" } }))
    end)

    it("refuses bad metadata filters, naming the key", function()
      assert.equal("list_artifact_versions: filter 'run_metadata.accuracy': 'gte:high' compares "
        .. "numbers, but 'high' is not a number", H.err(function()
          client:list_artifact_versions { run_metadata = { accuracy = "gte:high" } } end))
      assert.equal("list_artifact_versions: filter 'run_metadata' must be a table of key = value "
        .. "(got string 'accuracy')", H.err(function()
          client:list_artifact_versions { run_metadata = "accuracy" } end))
      assert.equal("list_artifact_versions: filter 'run_metadata': keys must be strings "
        .. "(got number 1)", H.err(function()
          client:list_artifact_versions { run_metadata = { 0.9 } } end))
      assert.equal("list_artifact_versions: filter 'run_metadata.f': run_metadata.f is a function",
        H.err(function() client:list_artifact_versions { run_metadata = { f = print } } end))
    end)
  end)

  describe("pages", function()
    before_each(function()
      for i = 1, 7 do save("p", i) end
    end)

    it("give page, size, total and total_pages", function()
      local first = client:list_artifact_versions { name = "p", size = 3 }
      assert.same({ "p:1", "p:2", "p:3" }, vs(first))
      assert.equal(1, first.page); assert.equal(3, first.size)
      assert.equal(7, first.total); assert.equal(3, first.total_pages)
      local second = client:list_artifact_versions { name = "p", size = 3, page = 2 }
      assert.same({ "p:4", "p:5", "p:6" }, vs(second))
      assert.equal(7, second.total); assert.equal(3, second.total_pages)
    end)

    it("end with a partial page, and are empty beyond the end", function()
      local last = client:list_artifact_versions { name = "p", size = 3, page = 3 }
      assert.same({ "p:7" }, vs(last))
      assert.equal(7, last.total); assert.equal(3, last.total_pages); assert.equal(3, last.page)
      local beyond = client:list_artifact_versions { name = "p", size = 3, page = 4 }
      assert.equal(0, #beyond)
      assert.equal(7, beyond.total); assert.equal(3, beyond.total_pages); assert.equal(4, beyond.page)
      local exact = client:list_artifact_versions { name = "p", size = 7 }
      assert.equal(7, #exact); assert.equal(7, exact.total); assert.equal(1, exact.total_pages)
    end)

    it("are empty far beyond the end, where page * size overflows an integer", function()
      for _, a in ipairs { { page = math.maxinteger, size = 3 }, { page = math.maxinteger },
          { page = math.maxinteger // 2 + 2, size = 2 }, { page = (1 << 62) // 1000 + 2, size = 1000 } } do
        a.name = "p"
        local far = client:list_artifact_versions(a)
        assert.equal(0, #far)
        assert.equal(7, far.total); assert.equal(a.page, far.page)
        assert.equal(a.size and (7 + a.size - 1) // a.size or 1, far.total_pages)
      end
      local list = client:list_artifacts { page = math.maxinteger }
      assert.equal(0, #list); assert.equal(1, list.total)
    end)

    it("count every match even when the page is full", function()
      local first = client:list_artifact_versions { size = 2 }
      assert.equal(2, #first)
      assert.equal(7, first.total)
      assert.equal(4, first.total_pages)
    end)

    it("hold 50 versions by default and 1000 at most", function()
      for i = 8, 55 do save("p", i) end
      local all = client:list_artifact_versions()
      assert.equal(50, #all); assert.equal(50, all.size); assert.equal(55, all.total)
      assert.equal(2, all.total_pages)
      assert.equal(55, #client:list_artifact_versions { size = 1000 })
      assert.equal(50, query.DEFAULT_SIZE); assert.equal(1000, query.MAX_SIZE)
    end)

    it("of nothing have total 0 and one (empty) page", function()
      local none = client:list_artifact_versions { name = "nothing" }
      assert.equal(0, #none); assert.equal(0, none.total); assert.equal(1, none.total_pages)
    end)

    it("work with ipairs and print a summary", function()
      local n = 0
      for _, v in ipairs(client:list_artifact_versions { size = 4 }) do
        assert.equal("p", v.name)
        n = n + 1
      end
      assert.equal(4, n)
      assert.equal("<Page 2 of 3: 3 items of 7>",
        tostring(client:list_artifact_versions { size = 3, page = 2 }))
    end)

    it("refuse a bad page or size", function()
      assert.equal("list_artifact_versions: page must be an integer >= 1 (got number 0)",
        H.err(function() client:list_artifact_versions { page = 0 } end))
      assert.equal("list_artifact_versions: page must be an integer >= 1 (got number 1.5)",
        H.err(function() client:list_artifact_versions { page = 1.5 } end))
      assert.equal("list_artifact_versions: size must be an integer from 1 to 1000 (got number 1001)",
        H.err(function() client:list_artifact_versions { size = 1001 } end))
      assert.equal("list_artifact_versions: size must be an integer from 1 to 1000 (got string '5')",
        H.err(function() client:list_artifact_versions { size = "5" } end))
    end)
  end)

  describe("sort_by", function()
    before_each(function()
      save("b", 1); save("a", 1)
      for i = 2, 10 do save("b", i) end
      save("c", 1)
    end)

    it("defaults to oldest first (ZenML's sort_by = 'created')", function()
      local rows = client:list_artifact_versions { size = 3 }
      assert.same({ "b:1", "a:1", "b:2" }, vs(rows))
      assert.same({ "b:9", "b:10", "c:1" }, vs(client:list_artifact_versions { size = 3, page = 4 }))
      assert.same({ "c:1", "b:10", "b:9" },
        vs(client:list_artifact_versions { size = 3, sort_by = "desc:created" }))
    end)

    it("takes created (oldest first), asc: and desc:", function()
      assert.same({ "b:1", "a:1", "b:2" }, vs(client:list_artifact_versions { size = 3, sort_by = "created" }))
      assert.same({ "b:1", "a:1", "b:2" },
        vs(client:list_artifact_versions { size = 3, sort_by = "asc:created" }))
    end)

    it("sorts versions as numbers", function()
      assert.same({ "b:1", "b:2", "b:3" },
        vs(client:list_artifact_versions { name = "b", size = 3, sort_by = "version" }))
      assert.same({ "b:10", "b:9", "b:8" },
        vs(client:list_artifact_versions { name = "b", size = 3, sort_by = "desc:version" }))
    end)

    it("sorts by name, then in order of creation", function()
      assert.same({ "a:1", "b:1", "b:2" }, vs(client:list_artifact_versions { size = 3, sort_by = "name" }))
      assert.same({ "c:1", "b:10", "b:9" },
        vs(client:list_artifact_versions { size = 3, sort_by = "desc:name" }))
      assert.same({ "b:9", "b:10", "c:1" },
        vs(client:list_artifact_versions { size = 3, page = 4, sort_by = "name" }))
    end)

    it("sorts by size, stored_size, artifact_type and data_type, ties in order of creation",
      function()
      H.fresh(lupine)
      save("s", string.rep("x", 300)); save("s", 7, { artifact_type = "model" })
      save("s", { 1, 2 }, { artifact_type = "model" }); save("s", string.rep("y", 40))
      save("s", "short")
      assert.same({ "s:2", "s:3", "s:5", "s:4", "s:1" },
        vs(client:list_artifact_versions { sort_by = "size" }))
      assert.same({ "s:1", "s:4", "s:5", "s:3", "s:2" },
        vs(client:list_artifact_versions { sort_by = "desc:size" }))
      local by_stored = client:list_artifact_versions { sort_by = "stored_size" }
      for i = 2, #by_stored do
        assert.is_true(by_stored[i - 1].stored_size <= by_stored[i].stored_size)
      end
      assert.same({ "s:1", "s:4", "s:5", "s:2", "s:3" },
        vs(client:list_artifact_versions { sort_by = "artifact_type" }))
      -- number, numbers ({ 1, 2 }), string
      assert.same({ "s:2", "s:3", "s:1", "s:4", "s:5" },
        vs(client:list_artifact_versions { sort_by = "data_type" }))
    end)

    it("refuses an unknown key or direction, naming the keys", function()
      local msg = "list_artifact_versions: unknown sort_by %s (one of: artifact_type, created, "
        .. "data_type, name, size, stored_size, version, each with an optional 'desc:' or "
        .. "'asc:' before it)"
      assert.equal(msg:format("'updated'"), H.err(function()
        client:list_artifact_versions { sort_by = "updated" } end))
      assert.equal(msg:format("'down:name'"), H.err(function()
        client:list_artifact_versions { sort_by = "down:name" } end))
      assert.equal(msg:format("'desc:'"), H.err(function()
        client:list_artifact_versions { sort_by = "desc:" } end))
      assert.equal(msg:format("number 1"),
        H.err(function() client:list_artifact_versions { sort_by = 1 } end))
      assert.equal(msg:format("'sizes'"):gsub("^list_artifact_versions", "ArtifactVersionFilter"),
        H.err(function() lupine.ArtifactVersionFilter { sort_by = "sizes" } end))
    end)
  end)

  describe("refuses bad filters, naming them", function()
    it("unknown keys, with a suggestion", function()
      assert.equal("list_artifact_versions: unknown filter 'nme'; did you mean 'name'?",
        H.err(function() client:list_artifact_versions { nme = "x" } end))
      assert.equal("list_artifact_versions: unknown filter 'tags'; did you mean 'tag'?",
        H.err(function() client:list_artifact_versions { tags = { "x" } } end))
      assert.equal("list_artifact_versions: unknown filter 'zzzzzzzz'",
        H.err(function() client:list_artifact_versions { zzzzzzzz = 1 } end))
      assert.equal("list_artifact_versions: unknown filter '1'",
        H.err(function() client:list_artifact_versions { "model" } end))
    end)

    it("unknown operators", function()
      assert.equal("list_artifact_versions: filter 'name': unknown operator 'like' in 'like:x' "
        .. "(operators: contains, endswith, equals, gt, gte, lt, lte, startswith; "
        .. "write 'equals:like:x' to match it as it is)",
        H.err(function() client:list_artifact_versions { name = "like:x" } end))
      assert.equal("list_artifact_versions: filter 'tag': unknown operator 'GTE' in 'GTE:a' "
        .. "(operators: contains, endswith, equals, gt, gte, lt, lte, startswith; "
        .. "write 'equals:GTE:a' to match it as it is)",
        H.err(function() client:list_artifact_versions { tag = { "ok", "GTE:a" } } end))
    end)

    it("values of the wrong type", function()
      assert.equal("list_artifact_versions: filter 'name' must be a string (got number 42)",
        H.err(function() client:list_artifact_versions { name = 42 } end))
      assert.equal("list_artifact_versions: filter 'tag': each tag must be a string (got number 42)",
        H.err(function() client:list_artifact_versions { tag = { "a", 42 } } end))
      assert.equal("list_artifact_versions: filter 'tag' must be a string or a non-empty list "
        .. "of strings (got boolean true)",
        H.err(function() client:list_artifact_versions { tag = true } end))
      assert.equal("list_artifact_versions: filter 'tag' must be a string or a non-empty list "
        .. "of strings (got table)",
        H.err(function() client:list_artifact_versions { tag = {} } end))
      assert.equal("list_artifact_versions: filter 'tag' must be a list of strings (it has the "
        .. "key string 'x')",
        H.err(function() client:list_artifact_versions { tag = { "a", x = "b" } } end))
      assert.equal("list_artifact_versions: filter 'artifact_type' must be a string (got table)",
        H.err(function() client:list_artifact_versions { artifact_type = {} } end))
      assert.equal("bad argument #1 to 'list_artifact_versions' (table expected, got string)",
        H.err(function() client:list_artifact_versions("model") end))
    end)
  end)

  it("treats SQL-looking values as data", function()
    local evil = "x'); DROP TABLE artifacts; --"
    save(evil, 1, { tags = { evil }, run_metadata = { [evil] = evil } })
    save("plain", 2)
    assert.same({ evil .. ":1" }, vs(client:list_artifact_versions { name = evil }))
    assert.same({ evil .. ":1" }, vs(client:list_artifact_versions { name = "contains:'); DROP" }))
    assert.same({ evil .. ":1" }, vs(client:list_artifact_versions { tag = evil }))
    assert.same({ evil .. ":1" }, vs(client:list_artifact_versions { tag = "startswith:" .. evil }))
    assert.same({ evil .. ":1" }, vs(client:list_artifact_versions { run_metadata = { [evil] = evil } }))
    assert.same({}, vs(client:list_artifact_versions { name = "' OR 1=1 --" }))
    assert.same({}, vs(client:list_artifact_versions { version = "1' OR '1'='1" }))
    assert.equal(2, client:list_artifact_versions().total)
    assert.equal(2, #client:list_artifacts())
  end)
end)

describe("ArtifactVersionFilter", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
    save("trained_model", 1, { tags = { "production" } })
    save("trained_model", 2)
    save("trained_model", 3, { tags = { "production" } })
    save("other", 4, { tags = { "production" } })
  end)

  it("does the example of ZenML's guide: name and tag", function()
    local filter = lupine.ArtifactVersionFilter { name = "trained_model", tag = "production" }
    local artifacts = client:list_artifact_versions { filter = filter }
    local seen = {}
    for _, artifact in ipairs(artifacts) do
      seen[#seen + 1] = string.format("%s v%s: %s", artifact.name, artifact.version, artifact.id)
    end
    assert.same({ "trained_model v1: " .. artifacts[1].id, "trained_model v3: " .. artifacts[2].id },
      seen)
    assert.equal(2, artifacts.total)
  end)

  it("can be passed itself, and takes page, size and sort_by beside it or inside it", function()
    local f = lupine.ArtifactVersionFilter { tag = "production" }
    assert.same({ "trained_model:1", "trained_model:3", "other:1" }, vs(client:list_artifact_versions(f)))
    local page2 = client:list_artifact_versions { filter = f, size = 2, page = 2 }
    assert.same({ "other:1" }, vs(page2))
    assert.equal(3, page2.total)
    local sized = lupine.ArtifactVersionFilter { tag = "production", size = 1, sort_by = "name" }
    assert.same({ "trained_model:3" }, vs(client:list_artifact_versions { filter = sized, page = 3 }))
  end)

  it("keeps its fields and prints them", function()
    local f = lupine.ArtifactVersionFilter { name = "trained_model", tag = { "a", "b" },
      run_metadata = { accuracy = "gte:0.9" } }
    assert.equal("trained_model", f.name)
    assert.same({ "a", "b" }, f.tag)
    assert.equal("<ArtifactVersionFilter name='trained_model' run_metadata={accuracy='gte:0.9'} "
      .. "tag={'a', 'b'}>", tostring(f))
    assert.is_true(query.is_filter(f))
  end)

  it("is checked when it is made", function()
    assert.equal("ArtifactVersionFilter: unknown filter 'nam'; did you mean 'name'?",
      H.err(function() lupine.ArtifactVersionFilter { nam = "x" } end))
    assert.equal("ArtifactVersionFilter: filter 'name': unknown operator 'has' in 'has:x' "
      .. "(operators: contains, endswith, equals, gt, gte, lt, lte, startswith; "
      .. "write 'equals:has:x' to match it as it is)",
      H.err(function() lupine.ArtifactVersionFilter { name = "has:x" } end))
    assert.equal("ArtifactVersionFilter: filter 'version': 'lt:two' compares numbers, but 'two' "
      .. "is not a number", H.err(function() lupine.ArtifactVersionFilter { version = "lt:two" } end))
    assert.equal("ArtifactVersionFilter: filter 'tag': each tag must be a string (got number 7)",
      H.err(function() lupine.ArtifactVersionFilter { tag = { 7 } } end))
    assert.equal("bad argument #1 to 'ArtifactVersionFilter' (table expected, got string)",
      H.err(function() lupine.ArtifactVersionFilter "x" end))
  end)

  it("refuses the same key inside and beside it, and other filter values", function()
    local f = lupine.ArtifactVersionFilter { name = "trained_model", size = 2 }
    assert.equal("list_artifact_versions: 'name' is given both in the filter and beside it",
      H.err(function() client:list_artifact_versions { filter = f, name = "other" } end))
    assert.equal("list_artifact_versions: 'size' is given both in the filter and beside it",
      H.err(function() client:list_artifact_versions { filter = f, size = 3 } end))
    assert.equal("list_artifact_versions: filter must be an ArtifactVersionFilter (got table)",
      H.err(function() client:list_artifact_versions { filter = { name = "x" } } end))
  end)
end)

describe("list_artifacts", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
    save("model", 1, { tags = { "production" } })
    save("model", 2, { tags = { "staging" } })
    save("data", 3)
    save("model", 4)
    save("metrics", 5, { tags = { "production" } })
  end)

  it("lists artifacts newest first, with their versions and tags", function()
    local all = client:list_artifacts()
    assert.same({ "metrics", "data", "model" }, names_of(all))
    assert.equal(3, all.total)
    local model = all[3]
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", model.id)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", model.created)
    assert.equal(3, model.version_count)
    assert.equal("3", model.latest_version.version)
    assert.equal(4, model.latest_version:load())
    assert.same({ "production", "staging" }, model.tags)
    assert.same({}, all[2].tags)
    assert.equal("<Artifact model (3 versions) " .. model.id .. ">", tostring(model))
    assert.equal("<Artifact data (1 version) " .. all[2].id .. ">", tostring(all[2]))
  end)

  it("filters by name and tag, pages and sorts", function()
    assert.same({ "model" }, names_of(client:list_artifacts { name = "model" }))
    assert.same({ "metrics", "model" }, names_of(client:list_artifacts { name = "startswith:m" }))
    assert.same({ "metrics", "model" }, names_of(client:list_artifacts { tag = "production" }))
    assert.same({ "model" }, names_of(client:list_artifacts { tag = { "production", "staging" } }))
    assert.same({ "model" }, names_of(client:list_artifacts { tag = "staging", name = "contains:o" }))
    local page = client:list_artifacts { size = 2, page = 2 }
    assert.same({ "model" }, names_of(page))
    assert.equal(3, page.total); assert.equal(2, page.total_pages)
    assert.same({ "data", "metrics", "model" }, names_of(client:list_artifacts { sort_by = "name" }))
    assert.same({ "model", "data", "metrics" }, names_of(client:list_artifacts { sort_by = "created" }))
  end)

  it("counts tags on the artifact itself", function()
    local data = client:list_artifacts { name = "data" }[1]
    core.write("tag", "artifact", data.id, "curated")
    assert.same({ "data" }, names_of(client:list_artifacts { tag = "curated" }))
    assert.same({ "curated" }, client:list_artifacts { name = "data" }[1].tags)
  end)

  it("refuses bad filters", function()
    assert.equal("list_artifacts: unknown filter 'version'",
      H.err(function() client:list_artifacts { version = "1" } end))
    assert.equal("list_artifacts: unknown sort_by 'version' (one of: created, name, each with an "
      .. "optional 'desc:' or 'asc:' before it)",
      H.err(function() client:list_artifacts { sort_by = "version" } end))
    assert.equal("bad argument #1 to 'list_artifacts' (table expected, got string)",
      H.err(function() client:list_artifacts "model" end))
  end)
end)

describe("pipelines and their runs", function()
  local client, ok_run, failed_run, nightly
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
    local good = step { name = "good", function() return 1 end }
    local bad = step { name = "bad", function() error("boom") end }
    local train = pipeline { name = "training", function() good() end }
    local broken = pipeline { name = "broken", function() bad() end }
    ok_run = train:with_options { run_name = "train-1" }()
    failed_run = broken:with_options { run_name = "broken-1", raise_on_failure = false }()
    nightly = train:with_options { run_name = "train-nightly", tags = { "nightly" } }()
  end)

  describe("list_pipeline_runs", function()
    it("lists runs newest first, with paging", function()
      local runs = client:list_pipeline_runs()
      assert.same({ "train-nightly", "broken-1", "train-1" }, names_of(runs))
      assert.equal(3, runs.total)
      assert.equal(nightly.id, runs[1].id)
      assert.matches("^<PipelineRun train%-nightly %[completed%]", tostring(runs[1]))
      local page = client:list_pipeline_runs { size = 2, page = 2 }
      assert.same({ "train-1" }, names_of(page))
      assert.equal(3, page.total); assert.equal(2, page.total_pages)
    end)

    it("filters by pipeline_name, status, tag, name and created", function()
      assert.same({ "train-nightly", "train-1" },
        names_of(client:list_pipeline_runs { pipeline_name = "training" }))
      assert.same({ "broken-1" }, names_of(client:list_pipeline_runs { status = "failed" }))
      assert.same({ "train-nightly", "train-1" },
        names_of(client:list_pipeline_runs { status = "completed" }))
      assert.same({ "train-nightly" }, names_of(client:list_pipeline_runs { tag = "nightly" }))
      assert.same({ "train-nightly" },
        names_of(client:list_pipeline_runs { tag = "startswith:night", pipeline_name = "training" }))
      assert.same({}, names_of(client:list_pipeline_runs { tag = { "nightly", "other" } }))
      assert.same({ "train-nightly", "train-1" },
        names_of(client:list_pipeline_runs { name = "startswith:train" }))
      assert.same({ "train-nightly", "broken-1" },
        names_of(client:list_pipeline_runs { created = "gte:" .. failed_run.start_time }))
      assert.same({ "broken-1" }, names_of(client:list_pipeline_runs {
        created = "gte:" .. failed_run.start_time, status = "failed" }))
    end)

    it("sorts by created or name", function()
      assert.same({ "train-1", "broken-1", "train-nightly" },
        names_of(client:list_pipeline_runs { sort_by = "created" }))
      assert.same({ "broken-1", "train-1", "train-nightly" },
        names_of(client:list_pipeline_runs { sort_by = "name" }))
      assert.same({ "train-nightly", "train-1", "broken-1" },
        names_of(client:list_pipeline_runs { sort_by = "desc:name" }))
    end)

    it("refuses bad filters", function()
      assert.equal("list_pipeline_runs: unknown filter 'pipline_name'; did you mean 'pipeline_name'?",
        H.err(function() client:list_pipeline_runs { pipline_name = "training" } end))
      assert.equal("list_pipeline_runs: filter 'status': unknown operator 'not' in 'not:failed' "
        .. "(operators: contains, endswith, equals, gt, gte, lt, lte, startswith; "
        .. "write 'equals:not:failed' to match it as it is)",
        H.err(function() client:list_pipeline_runs { status = "not:failed" } end))
    end)
  end)

  describe("list_pipelines and get_pipeline", function()
    it("list pipelines newest first, filtered by name", function()
      local all = client:list_pipelines()
      assert.same({ "broken", "training" }, names_of(all))
      assert.equal(2, all.total)
      assert.same({ "training" }, names_of(client:list_pipelines { name = "contains:rain" }))
      assert.same({ "broken" }, names_of(client:list_pipelines { size = 1 }))
      assert.same({ "training" }, names_of(client:list_pipelines { size = 1, page = 2 }))
      assert.same({ "training", "broken" }, names_of(client:list_pipelines { sort_by = "desc:name" }))
    end)

    it("give Pipeline objects with their runs, newest first", function()
      local p = client:get_pipeline("training")
      assert.equal("training", p.name)
      assert.matches("^%x+%-", p.id)
      assert.matches("^%d%d%d%d%-", p.created)
      assert.equal(2, p.run_count)
      assert.same({ "train-nightly", "train-1" }, names_of(p.runs))
      assert.equal(nightly.id, p.latest_run.id)
      assert.equal("completed", p.latest_run.status)
      assert.equal("<Pipeline training (2 runs) " .. p.id .. ">", tostring(p))
      assert.equal("<Pipeline broken (1 run) " .. client:get_pipeline("broken").id .. ">",
        tostring(client:get_pipeline("broken")))
    end)

    it("get_pipeline takes a name, an id or an id prefix", function()
      local p = client:get_pipeline("training")
      assert.equal("training", client:get_pipeline(p.id).name)
      assert.equal("training", client:get_pipeline(p.id:sub(1, 8)).name)
      assert.equal("pipeline 'trainig' not found; did you mean 'training'?",
        H.err(function() client:get_pipeline("trainig") end))
      assert.equal("bad argument #1 to 'get_pipeline' (string expected, got nil)",
        H.err(function() client:get_pipeline() end))
    end)

    it("get_pipeline reports an ambiguous id prefix", function()
      local home = lupine.home()
      H.sqlite(home, (H.pg and "" or "PRAGMA foreign_keys = OFF; ") .. "UPDATE pipeline_runs SET pipeline_id = "
        .. "'abcd0000-0000-4000-8000-00000000000' || (SELECT seq FROM pipelines p WHERE "
        .. "p.id = pipeline_id); UPDATE pipelines SET id = 'abcd0000-0000-4000-8000-00000000000' || seq")
      assert.equal("pipeline id prefix 'abcd' is ambiguous: it matches "
        .. "abcd0000-0000-4000-8000-000000000001, abcd0000-0000-4000-8000-000000000002",
        H.err(function() client:get_pipeline("abcd") end))
      assert.equal(2, client:get_pipeline("abcd0000-0000-4000-8000-000000000001").run_count)
    end)
  end)
end)

describe("query plans", function()
  before_each(function()
    H.fresh(lupine)
    lupine.save_artifact(1, "model", { tags = { "production" }, run_metadata = { accuracy = 1 } })
    local s = step { name = "s", function() return 1 end }
    pipeline { name = "planned", function() s() end } :with_options { run_name = "planned-1" }()
  end)

  -- Tables that grow with use (by name or alias): never scanned whole. The
  -- small ones (artifacts, tags, pipelines: one row per name) may be.
  local big = { v = true, artifact_versions = true, l = true, t = true, tag_links = true,
    m = true, run_metadata = true, s = true, step_runs = true, k = true,
    step_run_artifacts = true, r = true, pipeline_runs = true }

  -- The plan of a listing (and of its count) uses an index and scans no big table.
  local function indexed(kind, args)
    for _, counting in ipairs { false, true } do
      local plan, sql = query.explain(kind, args, counting)
      for line in plan:gmatch("[^\n]+") do
        local scanned = line:match("^SCAN (%w+)")
        assert(not big[scanned], "full scan in the plan of " .. sql .. ":\n" .. plan)
      end
      assert.matches("USING", plan)
    end
    return (query.explain(kind, args))
  end

  it("lead with an index for each filter of list_artifact_versions #sqlite", function()
    for _, args in ipairs {
      { name = "model" }, { name = "contains:od" }, { name = "startswith:mo" },
      { tag = "production" }, { tag = { "production", "staging" } }, { tag = "contains:prod" },
      { tag = "production", sort_by = "name" }, { name = "model", tag = "production" },
      { name = "contains:o", tag = "production" }, { pipeline_run = "planned-1" },
      { pipeline_run = "planned-1", tag = "production" }, { artifact_type = "model" },
      { created = "gte:2026-01-01" }, { run_metadata = { accuracy = "gte:0.9" } },
      { run_metadata = { framework = "sklearn" } },
      { name = "model", version = "gte:3" }, { name = "model", sort_by = "version" },
    } do
      indexed("artifact_versions", args)
    end
  end)

  it("read the newest versions with a tag in index order, without sorting #sqlite", function()
    local plan = indexed("artifact_versions", { tag = "production" })
    assert.matches("SEARCH l USING COVERING INDEX tag_links_by_version", plan)
    assert.not_matches("TEMP B%-TREE", plan)
    plan = indexed("artifact_versions", { name = "model" })
    assert.matches("artifact_versions_by_artifact", plan)
    assert.not_matches("TEMP B%-TREE", plan)
  end)

  it("use an index for the other listings #sqlite", function()
    indexed("artifacts", { tag = "production" })
    indexed("artifacts", { name = "model" })
    indexed("pipeline_runs", { tag = "nightly" })
    indexed("pipeline_runs", { pipeline_name = "planned" })
    indexed("pipeline_runs", { status = "failed" })
    indexed("pipelines", { name = "planned" })
  end)
end)
