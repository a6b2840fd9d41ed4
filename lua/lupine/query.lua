-- SPDX-License-Identifier: MIT
-- lupine.query: listing and filtering the catalog.
--
--   client:list_artifact_versions { name, tag, artifact_type, pipeline_run, version,
--     created, run_metadata, sort_by, page, size } (or { filter = ArtifactVersionFilter })
--   client:list_artifacts, client:list_pipeline_runs, client:list_pipelines,
--   client:get_pipeline, lupine.ArtifactVersionFilter
--
-- A filter becomes one SQL statement run through core.select: its shape
-- depends only on which filters and operators are given, every value is a
-- bound parameter. The statement is shaped so that an index answers it: the
-- newest versions with a tag come from a range of tag_links_by_version, the
-- versions of a name from artifact_versions_by_artifact, and so on (the
-- specs check the query plans).

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

local SQL_OPS = { equals = "=", gt = ">", gte = ">=", lt = "<", lte = "<=",
  contains = "LIKE", startswith = "LIKE", endswith = "LIKE" }
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
  if not SQL_OPS[op] then
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
      c = { op = "equals", bytes = true,
        hex = bytes:gsub(".", function(ch) return string.format("%02X", ch:byte()) end) }
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
-- runtime/catalog.c (core.sort_order).
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
-- { conds = { key = normalized }, sort = key, desc = bool, order = its
-- ORDER BY, page, size }.
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
    local order, keys = core.sort_order(listing,
      (dir == "asc" or dir == "desc") and type(key) == "string" and key or "", dir == "desc")
    if not order then
      fail(level + 1, "%s: unknown sort_by %s (one of: %s, each with an optional 'desc:' "
        .. "or 'asc:' before it)", what, type(v) == "string" and ("'" .. v .. "'") or show(v),
        table.concat(keys, ", "))
    end
    f.sort, f.desc, f.order = key, dir == "desc", order
  else
    f.order = core.sort_order(listing, f.sort, f.desc)
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

-- ---- SQL ----

-- Collects bound values; each call returns its placeholder (?N).
local function binder()
  local b = { n = 0 }
  b.add = function(v)
    b.n = b.n + 1
    b[b.n] = v
    return "?" .. b.n
  end
  return b
end

local function like(op, s)
  s = s:gsub("[\\%%_]", "\\%0")
  if op == "contains" then return "%" .. s .. "%" end
  if op == "startswith" then return s .. "%" end
  return "%" .. s
end

-- col compared with the normalized condition c.
local function compare(col, c, b)
  if SQL_OPS[c.op] == "LIKE" then
    return col .. " LIKE " .. b.add(like(c.op, c.value)) .. " ESCAPE '\\'"
  end
  return col .. " " .. SQL_OPS[c.op] .. " " .. b.add(c.value)
end

-- col (a tag seq) is that of a tag matching c.
local function tag_match(col, c, b)
  if c.op == "equals" then
    return col .. " = (SELECT seq FROM tags WHERE name = " .. b.add(c.value) .. ")"
  end
  return col .. " IN (SELECT seq FROM tags WHERE " .. compare("name", c, b) .. ")"
end

-- The metadata row m matches c.
local function metadata_match(c, b)
  local sql = "m.key = " .. b.add(c.key) .. " AND "
  -- (values are bound as text, which never equals a BLOB: compare in hex)
  if c.bytes then return sql .. "hex(m.value) = " .. b.add(c.hex) end
  if c.number and c.op == "equals" then return sql .. "m.value_number = " .. b.add(c.number) end
  if c.number then return sql .. "m.value_number " .. SQL_OPS[c.op] .. " " .. b.add(c.number) end
  if c.either then
    return sql .. "(m.value_text = " .. b.add(c.value) .. " OR m.value_number = "
      .. b.add(c.either) .. ")"
  end
  return sql .. compare("m.value_text", c, b)
end

local VERSION_COLS = "v.id, a.name, v.version, v.type, v.data_type, v.content_hash, v.size,"
  .. " v.stored_size, v.uri, v.codec_version, v.created, v.producer_step_run_id, v.save_type"
local RUN_COLS = "r.id, r.name, p.name AS pipeline_name, r.status, r.start_time, r.end_time,"
  .. " r.error"

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

-- The statement parts for the versions that f selects: from, where (a
-- list), order; values go to b. Which table leads depends on the filters:
-- an equal name (artifact_versions_by_artifact), a run (its step links),
-- else an equal tag when newest-first (tag_links_by_version, in order), else
-- the planner's choice, with the first tag or metadata key as an IN list it
-- may lead with. Further tags and metadata keys are probes per version.
local function versions_query(self, f, b, what, level)
  local conds, where = f.conds, {}
  local from = "artifact_versions v JOIN artifacts a ON a.id = v.artifact_id"
  local dir = f.desc and " DESC" or ""
  local order
  local led = (conds.name and conds.name.op == "equals") or conds.pipeline_run
  local tags, rest = conds.tag or {}, {}
  for _, t in ipairs(tags) do
    if not led and f.sort == "created" and t.op == "equals" then
      from = "tag_links l INDEXED BY tag_links_by_version CROSS JOIN artifact_versions v"
        .. " ON v.seq = l.version_seq JOIN artifacts a ON a.id = v.artifact_id"
      where[1] = "l.entity = 'artifact_version' AND " .. tag_match("l.tag_seq", t, b)
      order = "l.version_seq" .. dir
      led = true
    else
      rest[#rest + 1] = t
    end
  end
  if conds.name and not led then
    -- the names matching first (artifacts is small), then their versions
    where[#where + 1] = "v.artifact_id IN (SELECT id FROM artifacts WHERE "
      .. compare("name", conds.name, b) .. ")"
    led = true
  elseif conds.name then
    where[#where + 1] = compare("a.name", conds.name, b)
  end
  if conds.created and not led and f.sort == "created" then
    -- the same order as seq (versions are recorded in time order), but one
    -- index then answers both the range and the order
    order = "v.created" .. dir .. ", v.seq" .. dir
    led = true
  end
  if conds.pipeline_run then
    where[#where + 1] = "v.id IN (SELECT k.artifact_version_id FROM step_runs s"
      .. " JOIN step_run_artifacts k ON k.step_run_id = s.id WHERE s.run_id = "
      .. b.add(run_id(self, conds.pipeline_run, what, level + 1)) .. ")"
  end
  local version = conds.version
  if version then
    if version.number then
      where[#where + 1] = "v.version_number " .. SQL_OPS[version.op] .. " " .. b.add(version.number)
    else
      where[#where + 1] = compare("v.version", version, b)
    end
  end
  if conds.artifact_type then where[#where + 1] = compare("v.type", conds.artifact_type, b) end
  if conds.created then where[#where + 1] = compare("v.created", conds.created, b) end
  for _, t in ipairs(rest) do
    if not led then
      where[#where + 1] = "v.seq IN (SELECT l.version_seq FROM tag_links l"
        .. " WHERE l.entity = 'artifact_version' AND " .. tag_match("l.tag_seq", t, b) .. ")"
      led = true
    else
      where[#where + 1] = "EXISTS (SELECT 1 FROM tag_links t WHERE t.entity = 'artifact_version'"
        .. " AND t.entity_id = v.id AND " .. tag_match("t.tag_seq", t, b) .. ")"
    end
  end
  for _, c in ipairs(conds.run_metadata or {}) do
    if not led then
      where[#where + 1] = "v.id IN (SELECT m.entity_id FROM run_metadata m WHERE "
        .. metadata_match(c, b) .. " AND m.entity = 'artifact_version')"
      led = true
    else
      where[#where + 1] = "EXISTS (SELECT 1 FROM run_metadata m WHERE m.entity = "
        .. "'artifact_version' AND m.entity_id = v.id AND " .. metadata_match(c, b) .. ")"
    end
  end
  -- Counting needs artifacts only to test names: every version has one.
  local count_from = from
  if not conds.name then
    count_from = from:gsub(" JOIN artifacts a ON a%.id = v%.artifact_id$", "")
  end
  return VERSION_COLS, from, where, order or f.order, count_from
end

local function artifacts_query(_, f, b)
  local conds, where = f.conds, {}
  if conds.name then where[#where + 1] = compare("a.name", conds.name, b) end
  if conds.created then where[#where + 1] = compare("a.created", conds.created, b) end
  for _, t in ipairs(conds.tag or {}) do
    -- one placeholder per side of the UNION, so each side can use its index
    where[#where + 1] = "a.id IN (SELECT entity_id FROM tag_links WHERE entity = 'artifact'"
      .. " AND " .. tag_match("tag_seq", t, b) .. " UNION SELECT v.artifact_id FROM tag_links l"
      .. " JOIN artifact_versions v ON v.seq = l.version_seq"
      .. " WHERE l.entity = 'artifact_version' AND " .. tag_match("l.tag_seq", t, b) .. ")"
  end
  return "a.id, a.name, a.created", "artifacts a", where, f.order
end

local function runs_query(_, f, b)
  local conds, where = f.conds, {}
  if conds.pipeline_name then where[#where + 1] = compare("p.name", conds.pipeline_name, b) end
  if conds.name then where[#where + 1] = compare("r.name", conds.name, b) end
  if conds.status then where[#where + 1] = compare("r.status", conds.status, b) end
  if conds.created then where[#where + 1] = compare("r.start_time", conds.created, b) end
  for _, t in ipairs(conds.tag or {}) do
    where[#where + 1] = "r.id IN (SELECT l.entity_id FROM tag_links l"
      .. " WHERE l.entity = 'pipeline_run' AND " .. tag_match("l.tag_seq", t, b) .. ")"
  end
  return RUN_COLS, "pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id", where, f.order,
    not conds.pipeline_name and "pipeline_runs r" or nil
end

local function pipelines_query(_, f, b)
  local conds, where = f.conds, {}
  if conds.name then where[#where + 1] = compare("p.name", conds.name, b) end
  if conds.created then where[#where + 1] = compare("p.created", conds.created, b) end
  return "p.id, p.name, p.created", "pipelines p", where, f.order
end

-- The rows before page f.page: math.maxinteger (past any table) where
-- (page - 1) * size would overflow, as it would wrap to a negative
-- OFFSET, which sqlite reads as 0 (the first page).
local function offset(f)
  if f.page - 1 > math.maxinteger // f.size then return math.maxinteger end
  return (f.page - 1) * f.size
end

-- The page's statement and its count statement, and the bound values
-- (LIMIT and OFFSET last, so the count statement uses the others).
local function statements(build, self, f, what, level)
  local b = binder()
  local cols, from, where, order, count_from = build(self, f, b, what, level + 1)
  local cond = #where > 0 and (" WHERE " .. table.concat(where, " AND ")) or ""
  local count = "SELECT count(*) AS n FROM " .. (count_from or from) .. cond
  local sql = "SELECT " .. cols .. " FROM " .. from .. cond .. " ORDER BY " .. order
    .. " LIMIT " .. b.add(f.size) .. " OFFSET " .. b.add(offset(f))
  return sql, count, b
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
  local total = core.select(q.sql, table.unpack(q.b, 1, q.b.n))[1].n
  rawset(p, "total", total)
  rawset(p, "total_pages", pages(total, p.size))
  return rawget(p, k)
end

Page.__tostring = function(p)
  return string.format("<Page %d of %d: %d item%s of %d>", p.page, p.total_pages, #p,
    #p == 1 and "" or "s", p.total)
end

local function list(build, self, args, filters, listing, what, object_of)
  if args == nil then args = {} end
  if type(args) ~= "table" then
    fail(3, "bad argument #1 to '%s' (table expected, got %s)", what, type(args))
  end
  if filters == VERSION_FILTERS then args = with_filter(args, what, 3) end
  local f = normalize(args, filters, listing, what, 3)
  local sql, count, b = statements(build, self, f, what, 3)
  local rows = core.select(sql, table.unpack(b, 1, b.n))
  for _, row in ipairs(rows) do object_of(row) end
  rows.page, rows.size = f.page, f.size
  local n = #rows
  if (n > 0 and n < f.size) or (n == 0 and f.page == 1) then
    rows.total = offset(f) + n   -- rows were found there: no overflow
    rows.total_pages = pages(rows.total, f.size)
  else
    pending[rows] = { sql = count, b = b }
  end
  return setmetatable(rows, Page)
end

M.Page = Page

-- The query plan (EXPLAIN QUERY PLAN details, one a line) of a listing:
-- kind is "artifact_versions", "artifacts", "pipeline_runs" or "pipelines".
-- For the specs and the benchmark.
local KINDS = {
  artifact_versions = { versions_query, VERSION_FILTERS },
  artifacts = { artifacts_query, ARTIFACT_FILTERS },
  pipeline_runs = { runs_query, RUN_FILTERS },
  pipelines = { pipelines_query, PIPELINE_FILTERS },
}
function M.explain(kind, args, counting)
  local k = KINDS[kind]
  local f = normalize(with_filter(args or {}, kind, 2), k[2], kind, kind, 2)
  local sql, count, b = statements(k[1], client.Client(), f, kind, 2)
  local lines = {}
  for i, row in ipairs(core.select("EXPLAIN QUERY PLAN " .. (counting and count or sql),
      table.unpack(b, 1, b.n))) do
    lines[i] = row.detail
  end
  return table.concat(lines, "\n"), sql
end

-- ---- Client methods ----

function Client:list_artifact_versions(args)
  return list(versions_query, self, args, VERSION_FILTERS, "artifact_versions",
    "list_artifact_versions", version_of)
end

function Client:list_pipeline_runs(args)
  return list(runs_query, self, args, RUN_FILTERS, "pipeline_runs", "list_pipeline_runs", run_of)
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
  return list(artifacts_query, self, args, ARTIFACT_FILTERS, "artifacts", "list_artifacts",
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
  return list(pipelines_query, self, args, PIPELINE_FILTERS, "pipelines", "list_pipelines",
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
