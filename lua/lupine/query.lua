-- SPDX-License-Identifier: MIT
-- lupine.query: listing and filtering the catalog.
--
--   client:list_artifact_versions { name, tag, artifact_type, pipeline_run, version,
--     created, run_metadata, sort_by, page, size } (or { filter = ArtifactVersionFilter })
--   client:list_artifacts, client:list_pipeline_runs, client:list_pipelines,
--   client:get_pipeline, lupine.ArtifactVersionFilter
--
-- Here the user's filters are read (shorthands such as "gte:3", a tag or a
-- list of tags, a run by name) and checked, with errors that name the
-- filter; they become a description, a list of { field, op, value }
-- conditions with the sort and the page, which core.list turns into one
-- statement shaped so that an index answers it (runtime/catalog_listing.c;
-- the specs check the query plans).

local core = require "lupine.core"
local client = require "lupine.client"
local names = require "lupine.names"

local Client, PipelineRun = client.classes.Client, client.classes.PipelineRun
local getters, version_of, run_of = client.getters, client.version_of, client.run_of

local M = {}

M.DEFAULT_SIZE, M.MAX_SIZE = 50, 1000

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

-- A value as error messages show it: "number 42", "string 'x'", "table".
local function show(v)
  if type(v) == "string" then return "string '" .. v .. "'" end
  if type(v) == "number" or type(v) == "boolean" then return type(v) .. " " .. tostring(v) end
  return type(v)
end

-- ---- operators ----

local OPS = { equals = true, gt = true, gte = true, lt = true, lte = true,
  contains = true, startswith = true, endswith = true }
local NUMERIC = { gt = true, gte = true, lt = true, lte = true }
local OP_LIST = "contains, endswith, equals, gt, gte, lt, lte, startswith"

-- A string filter value: "op:operand" when it starts with a word and a
-- single colon (so "pipeline::step::output" is a plain value), else an
-- equality. Returns { op, value }; an unknown operator is an error.
local function string_cond(what, key, v, expected, level)
  if type(v) ~= "string" then
    fail(level + 1, "%s: filter '%s' must be %s (got %s)", what, key, expected, show(v))
  end
  local op, operand = v:match("^(%a+):(.*)$")
  if not op or operand:sub(1, 1) == ":" then return { op = "equals", value = v } end
  if not OPS[op] then
    fail(level + 1, "%s: filter '%s': unknown operator '%s' in '%s' (operators: %s; "
      .. "write 'equals:%s' to match it as it is)", what, key, op, v, OP_LIST, v)
  end
  return { op = op, value = operand }
end

-- The operand of a numeric comparison, or an error naming the value.
local function numeric(what, key, v, c, level)
  local n = tonumber(c.value)
  if not n then
    fail(level + 1, "%s: filter '%s': '%s' compares numbers, but '%s' is not a number",
      what, key, v, c.value)
  end
  return n
end

-- ---- the filters of each listing ----

local function name_filter(what, key, v, level)
  return string_cond(what, key, v, "a string", level + 1)
end

local function version_filter(what, key, v, level)
  if math.type(v) == "integer" then return { op = "equals", value = tostring(v) } end
  local c = string_cond(what, key, v, "a string or an integer", level + 1)
  if NUMERIC[c.op] then c.number = numeric(what, key, v, c, level + 1) end
  return c
end

-- One tag or a list of tags, all of which must match.
local function tag_filter(what, key, v, level)
  local list = v
  if type(v) == "string" then list = { v } end
  if type(list) ~= "table" or getmetatable(list) ~= nil or #list == 0 then
    fail(level + 1, "%s: filter '%s' must be a string or a non-empty list of strings (got %s)",
      what, key, show(v))
  end
  local out = {}
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      fail(level + 1, "%s: filter '%s' must be a list of strings (it has the key %s)",
        what, key, show(k))
    end
  end
  for i, t in ipairs(list) do
    if type(t) ~= "string" then
      fail(level + 1, "%s: filter '%s': each tag must be a string (got %s)", what, key, show(t))
    end
    out[i] = string_cond(what, key, t, "a string", level + 1)
  end
  return out
end

-- A run name, id or id prefix (looked up when the query runs), or a PipelineRun.
local function run_filter(what, key, v, level)
  if getmetatable(v) == PipelineRun then return { id = v.id } end
  if type(v) ~= "string" then
    fail(level + 1, "%s: filter '%s' must be a run name, id or PipelineRun (got %s)", what,
      key, show(v))
  end
  return { key = v }
end

-- { key = value, ... }: a number is equality on the number; a string is
-- equality on the text (or on the number, when it reads as one) or an
-- operator; any other value is equality of the stored value.
local function metadata_filter(what, key, v, level)
  if type(v) ~= "table" or getmetatable(v) ~= nil then
    fail(level + 1, "%s: filter '%s' must be a table of key = value (got %s)", what, key, show(v))
  end
  local keys = {}
  for k in pairs(v) do
    if type(k) ~= "string" then
      fail(level + 1, "%s: filter '%s': keys must be strings (got %s)", what, key, show(k))
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do
    local val, name = v[k], key .. "." .. k
    local c
    if type(val) == "number" then
      c = { op = "equals", number = val }
    elseif type(val) == "string" then
      c = string_cond(what, name, val, "a string", level + 1)
      if NUMERIC[c.op] then
        c.number = numeric(what, name, val, c, level + 1)
      elseif c.op == "equals" then
        c.either = tonumber(c.value)
      end
    else
      local bytes, msg = core.encode(val, name)
      if not bytes then fail(level + 1, "%s: filter '%s': %s", what, name, msg) end
      c = { op = "equals", bytes = bytes }
    end
    c.key = k
    out[i] = c
  end
  return out
end

local VERSION_FILTERS = { name = name_filter, version = version_filter, tag = tag_filter,
  artifact_type = name_filter, created = name_filter, pipeline_run = run_filter,
  run_metadata = metadata_filter }
local ARTIFACT_FILTERS = { name = name_filter, tag = tag_filter, created = name_filter }
local RUN_FILTERS = { pipeline_name = name_filter, status = name_filter, tag = tag_filter,
  name = name_filter, created = name_filter }
local PIPELINE_FILTERS = { name = name_filter, created = name_filter }
-- Listings in created order go newest first, but for versions: oldest
-- first, ZenML's default. The orders each listing takes are in
-- runtime/catalog_listing.c (core.sort_keys).
local NEWEST_FIRST = { artifact_versions = false, artifacts = true, pipeline_runs = true,
  pipelines = true }
local PAGING = { sort_by = true, page = true, size = true }

-- The keys of t, in the order of their strings (keys of any type).
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end
M.sorted_keys = sorted_keys

local function key_list(t)
  local list = sorted_keys(t)
  for i, k in ipairs(list) do list[i] = tostring(k) end
  return list
end

-- Check args against the filters allowed in a listing and normalize them:
-- { conds = { key = normalized }, sort = key, desc = bool, page, size }.
local function normalize(args, filters, listing, what, level)
  local f = { conds = {}, page = 1, size = M.DEFAULT_SIZE, sort = "created",
    desc = NEWEST_FIRST[listing] }
  for _, k in ipairs(sorted_keys(args)) do
    local check, v = filters[k], args[k]
    if check then
      f.conds[k] = check(what, k, v, level + 1)
    elseif not PAGING[k] then
      local all = key_list(filters)
      for p in pairs(PAGING) do all[#all + 1] = p end
      local near = type(k) == "string" and names.near(k, all)[1]
      fail(level + 1, "%s: unknown filter '%s'%s", what, tostring(k),
        near and ("; did you mean '" .. near .. "'?") or "")
    end
  end
  if args.sort_by ~= nil then
    -- "key", "asc:key" or "desc:key"; anything else gets the list of keys
    local v, dir, key = args.sort_by, "asc", args.sort_by
    if type(v) == "string" and v:find("^%a+:") then dir, key = v:match("^(%a+):(.*)$") end
    local keys, known = core.sort_keys(listing), false
    for _, k in ipairs(keys) do
      known = known or ((dir == "asc" or dir == "desc") and k == key)
    end
    if not known then
      fail(level + 1, "%s: unknown sort_by %s (one of: %s, each with an optional 'desc:' "
        .. "or 'asc:' before it)", what, type(v) == "string" and ("'" .. v .. "'") or show(v),
        table.concat(keys, ", "))
    end
    f.sort, f.desc = key, dir == "desc"
  end
  if args.page ~= nil then
    if math.type(args.page) ~= "integer" or args.page < 1 then
      fail(level + 1, "%s: page must be an integer >= 1 (got %s)", what, show(args.page))
    end
    f.page = args.page
  end
  if args.size ~= nil then
    if math.type(args.size) ~= "integer" or args.size < 1 or args.size > M.MAX_SIZE then
      fail(level + 1, "%s: size must be an integer from 1 to %d (got %s)", what, M.MAX_SIZE,
        show(args.size))
    end
    f.size = args.size
  end
  return f
end

-- ---- ArtifactVersionFilter ----

local ArtifactVersionFilter = { __name = "lupine.ArtifactVersionFilter" }
ArtifactVersionFilter.__index = ArtifactVersionFilter

-- ArtifactVersionFilter { name = ..., tag = ..., ... }: the filters of
-- list_artifact_versions (sort_by, page and size too), checked now.
function M.ArtifactVersionFilter(spec)
  if type(spec) ~= "table" then
    fail(2, "bad argument #1 to 'ArtifactVersionFilter' (table expected, got %s)", type(spec))
  end
  normalize(spec, VERSION_FILTERS, "artifact_versions", "ArtifactVersionFilter", 2)
  local f = {}
  for k, v in pairs(spec) do f[k] = v end
  return setmetatable(f, ArtifactVersionFilter)
end

local function show_value(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) ~= "table" then return tostring(v) end
  if getmetatable(v) == PipelineRun then return "'" .. v.name .. "'" end
  local parts = {}
  if #v > 0 then
    for i, x in ipairs(v) do parts[i] = show_value(x) end
  else
    for _, k in ipairs(sorted_keys(v)) do parts[#parts + 1] = k .. "=" .. show_value(v[k]) end
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

ArtifactVersionFilter.__tostring = function(f)
  local parts = {}
  for _, k in ipairs(sorted_keys(f)) do parts[#parts + 1] = k .. "=" .. show_value(f[k]) end
  return "<ArtifactVersionFilter " .. table.concat(parts, " ") .. ">"
end

M.is_filter = function(f) return getmetatable(f) == ArtifactVersionFilter end

-- args with its `filter` (an ArtifactVersionFilter) merged in.
local function with_filter(args, what, level)
  local filter = args.filter
  if filter == nil then return args end
  if getmetatable(filter) ~= ArtifactVersionFilter then
    fail(level + 1, "%s: filter must be an ArtifactVersionFilter (got %s)", what, show(filter))
  end
  local out = {}
  for k, v in pairs(filter) do out[k] = v end
  for _, k in ipairs(sorted_keys(args)) do
    if k ~= "filter" then
      if out[k] ~= nil then
        fail(level + 1, "%s: '%s' is given both in the filter and beside it", what, tostring(k))
      end
      out[k] = args[k]
    end
  end
  return out
end

-- ---- descriptions ----

-- Resolve the pipeline_run filter to a run id.
local function run_id(self, c, what, level)
  if c.id then return c.id end
  local ok, run = pcall(Client.get_pipeline_run, self, c.key)
  if not ok then
    fail(level + 1, "%s: filter 'pipeline_run': %s", what,
      (tostring(run):gsub("^[^\n:]+%.lua:%d+: ", "", 1)))
  end
  return run.id
end

-- The rows before page f.page: math.maxinteger (past any table) where
-- (page - 1) * size would overflow, as it would wrap to a negative
-- OFFSET, which sqlite reads as 0 (the first page).
local function offset(f)
  if f.page - 1 > math.maxinteger // f.size then return math.maxinteger end
  return (f.page - 1) * f.size
end

-- The single-valued filters, in a fixed order (the statement's shape
-- depends on which are given, not on their order).
local FIELDS = { "name", "pipeline_name", "version", "artifact_type", "status", "created" }

-- The description core.list takes (runtime/catalog_listing.c) of the
-- normalized filters f: a condition per filter, per tag and per metadata
-- key, and the sort and the page.
local function description(self, f, what, level)
  local d, conds = { sort = f.sort, desc = f.desc, limit = f.size, offset = offset(f) },
    f.conds
  for _, field in ipairs(FIELDS) do
    local c = conds[field]
    if c then d[#d + 1] = { field = field, op = c.op, value = c.number or c.value } end
  end
  for _, t in ipairs(conds.tag or {}) do
    d[#d + 1] = { field = "tag", op = t.op, value = t.value }
  end
  if conds.pipeline_run then
    d[#d + 1] = { field = "pipeline_run", op = "equals",
      value = run_id(self, conds.pipeline_run, what, level + 1) }
  end
  for _, c in ipairs(conds.run_metadata or {}) do
    local m = { field = "run_metadata", key = c.key, op = c.op }
    if c.bytes then
      m.bytes = c.bytes
    elseif c.number then
      m.value = c.number
    else
      m.value, m.number = c.value, c.either
    end
    d[#d + 1] = m
  end
  return d
end

-- ---- pages ----

-- A listing: an array of objects with page and size; total and
-- total_pages are counted when first read, unless this page shows them.
local Page = { __name = "lupine.Page" }
local pending = setmetatable({}, { __mode = "k" })

local function pages(total, size)
  return math.max(1, (total + size - 1) // size)
end

Page.__index = function(p, k)
  if k ~= "total" and k ~= "total_pages" then return nil end
  local q = pending[p]
  if not q then return nil end
  pending[p] = nil
  local total = core.list(q.listing, q.description, "count")
  rawset(p, "total", total)
  rawset(p, "total_pages", pages(total, p.size))
  return rawget(p, k)
end

Page.__tostring = function(p)
  return string.format("<Page %d of %d: %d item%s of %d>", p.page, p.total_pages, #p,
    #p == 1 and "" or "s", p.total)
end

local function list(self, args, filters, listing, what, object_of)
  if args == nil then args = {} end
  if type(args) ~= "table" then
    fail(3, "bad argument #1 to '%s' (table expected, got %s)", what, type(args))
  end
  if filters == VERSION_FILTERS then args = with_filter(args, what, 3) end
  local f = normalize(args, filters, listing, what, 3)
  local d = description(self, f, what, 3)
  local rows = core.list(listing, d)
  for _, row in ipairs(rows) do object_of(row) end
  rows.page, rows.size = f.page, f.size
  local n = #rows
  if (n > 0 and n < f.size) or (n == 0 and f.page == 1) then
    rows.total = offset(f) + n   -- rows were found there: no overflow
    rows.total_pages = pages(rows.total, f.size)
  else
    pending[rows] = { listing = listing, description = d }
  end
  return setmetatable(rows, Page)
end

M.Page = Page

-- The query plan of a listing (the catalog's plan lines, one a line; of
-- its count if counting) and its statement: kind is "artifact_versions",
-- "artifacts", "pipeline_runs" or "pipelines". For the specs and the
-- benchmark, which also takes the description.
local KINDS = { artifact_versions = VERSION_FILTERS, artifacts = ARTIFACT_FILTERS,
  pipeline_runs = RUN_FILTERS, pipelines = PIPELINE_FILTERS }
function M.explain(kind, args, counting)
  local f = normalize(with_filter(args or {}, kind, 2), KINDS[kind], kind, kind, 2)
  local d = description(client.Client(), f, kind, 2)
  local plan, sql = core.list(kind, d, counting and "count_plan" or "plan")
  return plan, sql, d
end

-- ---- Client methods ----

function Client:list_artifact_versions(args)
  return list(self, args, VERSION_FILTERS, "artifact_versions",
    "list_artifact_versions", version_of)
end

function Client:list_pipeline_runs(args)
  return list(self, args, RUN_FILTERS, "pipeline_runs", "list_pipeline_runs", run_of)
end

-- ---- Artifact ----

local class = client.class

local Artifact, Pipeline = {}, {}
class(Artifact, "lupine.Artifact")
class(Pipeline, "lupine.Pipeline")
client.classes.Artifact, client.classes.Pipeline = Artifact, Pipeline

local function artifact_of(row) return setmetatable(row, Artifact) end
local function pipeline_of(row) return setmetatable(row, Pipeline) end
client.artifact_of, client.pipeline_of = artifact_of, pipeline_of

getters[Artifact].version_count = function(a)
  return core.query("version_count_of_artifact", a.id)[1].n
end
getters[Artifact].latest_version = function(a)
  local row = core.query("latest_version_of_artifact", a.id)[1]
  return row and version_of(row)
end
getters[Artifact].tags = function(a)
  local list_ = {}
  for i, row in ipairs(core.query("tags_of_artifact", a.id)) do list_[i] = row.name end
  return list_
end

Artifact.__tostring = function(a)
  local n = a.version_count
  return string.format("<Artifact %s (%d version%s) %s>", a.name, n, n == 1 and "" or "s", a.id)
end

function Client:list_artifacts(args)
  return list(self, args, ARTIFACT_FILTERS, "artifacts", "list_artifacts",
    artifact_of)
end

-- ---- Pipeline ----

getters[Pipeline].run_count = function(p)
  return core.query("run_count_of_pipeline", p.id)[1].n
end
getters[Pipeline].runs = function(p)
  local rows = core.query("runs_of_pipeline", p.id)
  for _, row in ipairs(rows) do run_of(row) end
  return rows
end
getters[Pipeline].latest_run = function(p)
  local row = core.query("latest_run_of_pipeline", p.id)[1]
  return row and run_of(row)
end

Pipeline.__tostring = function(p)
  local n = p.run_count
  return string.format("<Pipeline %s (%d run%s) %s>", p.name, n, n == 1 and "" or "s", p.id)
end

function Client:list_pipelines(args)
  return list(self, args, PIPELINE_FILTERS, "pipelines", "list_pipelines",
    pipeline_of)
end

-- get_pipeline(name_or_id): by name, id or unique id prefix.
function Client:get_pipeline(key)
  if type(key) ~= "string" then
    fail(2, "bad argument #1 to 'get_pipeline' (string expected, got %s)", type(key))
  end
  return pipeline_of(client.lookup("pipeline", key, "pipeline_by_id", "pipelines_by_id_prefix",
    function(name) return core.query("pipeline_by_name", name)[1] end, "pipeline_names", 2))
end

return M
