-- SPDX-License-Identifier: MIT
-- The catalog interface (runtime/catalog.c and its backends): the named
-- statements check what they are given, listings take a filter
-- description, and SQL lives in the catalog's C files only.
local H = require "helper"
local lupine = require "lupine"
local core = require "lupine.core"

describe("named catalog statements", function()
  before_each(function() H.fresh(lupine) end)

  it("check their arguments, naming the statement and the argument", function()
    assert.equal("bad argument #3 to 'set_metadata' (key: string expected, got table)",
      H.err(core.write, "set_metadata", "artifact_version", "x", {}, "v", nil, nil, "now"))
    assert.equal("bad argument #4 to 'set_metadata' (value: string expected, got number)",
      H.err(core.write, "set_metadata", "artifact_version", "x", "k", 1, nil, nil, "now"))
    assert.equal("bad argument #3 to 'untag' (tag: string expected, got no value)",
      H.err(core.write, "untag", "artifact_version", "x"))
    assert.equal("bad argument #2 to 'untag' (entity_id: string expected, got nil)",
      H.err(core.write, "untag", "artifact_version", nil, "t"))
    assert.equal("bad argument #2 to 'create_tag' (exclusive: integer expected, got string)",
      H.err(core.write, "create_tag", "t", "1"))
    assert.equal("bad argument #2 to 'create_tag' (exclusive: number has no integer "
      .. "representation)", H.err(core.write, "create_tag", "t", 0.5))
    assert.equal("wrong number of arguments to 'delete_tag' (1 expected, got 2)",
      H.err(core.write, "delete_tag", "t", "more"))
    assert.equal("bad argument #1 to 'version_by_id' (id: string expected, got number)",
      H.err(core.query, "version_by_id", 42))
    assert.equal("wrong number of arguments to 'tags' (0 expected, got 1)",
      H.err(core.query, "tags", "x"))
    -- nothing was written by the calls refused
    assert.same({}, core.query("tags"))
  end)

  it("take nil where a parameter may be NULL, and the catalog's own time and ids", function()
    core.write("create_tag", "t", 0)
    assert.equal(1, core.write("update_tag", "t", nil, 1))
    assert.same({ { name = "t", exclusive = 1, tagged_count = 0 } }, core.query("tags"))
    core.write("add_artifact_store", "elsewhere", "local", H.tmpdir())
    local store = core.query("artifact_store_by_name", "elsewhere")[1]
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", store.id)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", store.created)
  end)

  it("are found by name and kind: a read is no write, the catalog's own are neither", function()
    assert.equal("unknown catalog query 'nope'", H.err(core.query, "nope"))
    assert.equal("unknown catalog write 'version_by_id'", H.err(core.write, "version_by_id", "x"))
    assert.equal("unknown catalog query 'tag'", H.err(core.query, "tag", "a", "b", "c"))
    assert.equal("unknown catalog query 'begin'", H.err(core.query, "begin"))
    assert.equal("unknown catalog write 'version_new'", H.err(core.write, "version_new"))
  end)

  it("are checked inside a step, where the step calls them", function()
    local bad = lupine.step { name = "bad", function()
      require("lupine.core").write("untag", "artifact_version")
      return 1
    end }
    local run = lupine.pipeline { name = "checked", function() bad() end }
      :with_options { raise_on_failure = false } ()
    assert.equal("failed", run.steps.bad.status)
    assert.matches("^step 'bad' %(tests/catalog_interface_spec.lua:%d+%) failed: "
      .. "bad argument #2 to 'untag' %(entity_id: string expected, got no value%)$",
      run.steps.bad.error)
  end)
end)

describe("a listing's filter description", function()
  before_each(function()
    H.fresh(lupine)
    for i = 1, 3 do lupine.save_artifact(i, "m", { tags = { i == 2 and "two" or "other" } }) end
    lupine.save_artifact(0, "other")
  end)

  local function versions(d)
    local out = {}
    for i, row in ipairs(core.list("artifact_versions", d)) do out[i] = row.name .. ":" .. row.version end
    return out
  end

  it("selects, sorts and pages with conditions of field, operator and value", function()
    assert.same({ "m:3", "m:2" }, versions {
      { field = "name", op = "equals", value = "m" }, sort = "version", desc = true,
      limit = 2, offset = 0 })
    assert.same({ "m:1" }, versions {
      { field = "name", op = "equals", value = "m" }, sort = "version", desc = true,
      limit = 2, offset = 2 })
    assert.same({ "m:2" }, versions {
      { field = "tag", op = "equals", value = "two" }, limit = 10, offset = 0 })
    assert.same({ "m:2", "m:3" }, versions {
      { field = "version", op = "gte", value = 2 }, { field = "name", op = "startswith", value = "M" },
      limit = 10, offset = 0 })
    assert.equal(4, core.list("artifact_versions", {}, "count"))
    assert.equal(2, core.list("artifact_versions",
      { { field = "tag", op = "contains", value = "th" } }, "count"))
  end)

  it("reaches the coordinator from inside a step, conditions and all", function()
    local look = lupine.step { name = "look", function()
      local page = lupine.Client():list_artifact_versions { name = "m", tag = "other", size = 1 }
      return { n = #page, total = page.total, first = page[1].version }
    end }
    local run = lupine.pipeline { name = "looks", function() look() end } ()
    assert.same({ n = 1, total = 2, first = "1" }, run.steps.look.output:load())
  end)

  it("is checked part by part, each wrong part named", function()
    local function err(listing, d, what)
      return H.err(core.list, listing, d, what)
    end
    local page = { limit = 1, offset = 0 }
    local function with(conds)
      for k, v in pairs(page) do conds[k] = v end
      return conds
    end
    assert.equal("unknown listing 'nope' (one of: artifact_versions, artifacts, pipeline_runs, "
      .. "pipelines)", err("nope", {}))
    assert.equal("bad argument #3 to 'list' (invalid option 'all')", err("artifacts", page, "all"))
    assert.equal("bad argument #2 to 'list' (description[1]: table expected, got string)",
      err("artifacts", with { "name" }))
    assert.equal("bad argument #2 to 'list' (description[1].field: 'version' is not a field "
      .. "of artifacts)", err("artifacts", with { { field = "version", op = "equals", value = "1" } }))
    assert.equal("bad argument #2 to 'list' (description[1].op: unknown operator 'like')",
      err("artifacts", with { { field = "name", op = "like", value = "x" } }))
    assert.equal("bad argument #2 to 'list' (description[1].value: string expected, got number)",
      err("artifacts", with { { field = "name", op = "equals", value = 3 } }))
    assert.equal("bad argument #2 to 'list' (description[2].field: 'name' is given twice)",
      err("pipelines", with { { field = "name", op = "equals", value = "a" },
        { field = "name", op = "equals", value = "b" } }))
    assert.equal("bad argument #2 to 'list' (description[1].op: 'contains' compares text, and "
      .. "value is a number)",
      err("artifact_versions", with { { field = "version", op = "contains", value = 3 } }))
    assert.equal("bad argument #2 to 'list' (description[1].op: pipeline_run takes only equals)",
      err("artifact_versions", with { { field = "pipeline_run", op = "gt", value = "x" } }))
    assert.equal("bad argument #2 to 'list' (description[1].key: string expected, got nil)",
      err("artifact_versions", with { { field = "run_metadata", op = "equals", value = 1 } }))
    assert.equal("bad argument #2 to 'list' (description.sort: 'size' is not a sort key of "
      .. "pipelines)", err("pipelines", { sort = "size", limit = 1, offset = 0 }))
    assert.equal("bad argument #2 to 'list' (description.limit: integer from 1 expected, got 0)",
      err("pipelines", { limit = 0, offset = 0 }))
    assert.equal("bad argument #2 to 'list' (description.offset: integer expected, got nil)",
      err("pipelines", { limit = 1 }))
    assert.same({ "created", "name" }, core.sort_keys("pipelines"))
  end)
end)

describe("the catalog's SQL", function()
  local function files(pattern)
    local out = {}
    local p = io.popen("ls " .. H.root .. "/" .. pattern)
    for f in p:lines() do out[#out + 1] = f end
    p:close()
    return out
  end

  -- (catalog_backend.h, which only the catalog's C files include, holds
  -- the fragments its backends' statements share)
  it("lives in the catalog's C files only, and sqlite3.h in its backend's", function()
    local found = {}
    for _, glob in ipairs { "lua/lupine/*.lua", "runtime/*.c", "runtime/*.h", "runtime/programs/*.c" } do
      for _, f in ipairs(files(glob)) do
        local text = H.read(f)
        if not (f:match("/runtime/catalog[%w_]*%.c$") or f:match("/runtime/catalog_backend%.h$"))
        then
          for _, sql in ipairs { "SELECT%s[^\n]-%sFROM%s", "INSERT%s+INTO%s", "DELETE%s+FROM%s",
              "UPDATE%s+[%w_]+%s+SET%s", "CREATE%s+TABLE%s", "PRAGMA%s" } do
            if text:find(sql) then found[#found + 1] = f:match("[^/]+/[^/]+$") .. ": " .. sql end
          end
        end
        if text:find("#include <sqlite3.h>", 1, true) and not f:match("/catalog_sqlite%.c$") then
          found[#found + 1] = f:match("[^/]+/[^/]+$") .. ": includes sqlite3.h"
        end
      end
    end
    assert.same({}, found)
  end)
end)
