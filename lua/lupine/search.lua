-- SPDX-License-Identifier: MIT
-- lupine.search: the dashboard's one search box. find(q) looks for q in
-- artifact names, versions (name:version, custom version names), run and
-- pipeline names, tags, metadata keys and text values, and ids (a prefix
-- of 4 hex digits or more), by substring in any case; names of artifacts,
-- pipelines, tags and metadata keys are also matched by near spelling
-- ("trained_modle" finds trained_model), and the nearest are suggested.

local core = require "lupine.core"
local client = require "lupine.client"

local M = {}

M.LIMIT = 20   -- results of each kind

-- How many edits (insert, delete, change, swap of two neighbours) q is
-- from the nearest part of s: Sellers' approximate substring match, with
-- the optimal string alignment distance; at most limit + 1 is reported.
local function near_distance(q, s, limit)
  local m, n = #q, #s
  local prev2, prev, cur = {}, {}, {}
  for j = 0, n do prev[j] = 0 end   -- the match may start anywhere in s
  for i = 1, m do
    cur[0] = i
    local qi, best = q:byte(i), i
    for j = 1, n do
      local sj = s:byte(j)
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (qi == sj and 0 or 1))
      if i > 1 and j > 1 and qi == s:byte(j - 1) and q:byte(i - 1) == sj then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
      if d < best then best = d end
    end
    if best > limit then return limit + 1 end   -- it cannot come down again
    prev2, prev, cur = prev, cur, prev2
  end
  local best = prev[0]
  for j = 1, n do best = math.min(best, prev[j]) end   -- and end anywhere
  return best
end
M.near_distance = near_distance

-- How many edits a query of n bytes may be from a name to be near it.
local function tolerance(n)
  if n <= 3 then return 0 end
  return math.min(3, n // 4)
end

-- The LIKE pattern that finds s anywhere ('\' escapes % and _).
local function like(s)
  return "%" .. s:gsub("[\\%%_]", "\\%0") .. "%"
end

-- rows, and whether there were more than limit
local function limited(query, pattern, limit)
  local rows = core.query(query, pattern, limit + 1)
  local more = #rows > limit
  rows[limit + 1] = nil
  return rows, more
end

-- Nearest first; of two as near, the one nearer q's length (the whole
-- name rather than a part of a longer one), then by name.
local function nearer(q)
  return function(a, b)
    if a.distance ~= b.distance then return a.distance < b.distance end
    local la, lb = math.abs(#a.name - #q), math.abs(#b.name - #q)
    if la ~= lb then return la < lb end
    return a.name < b.name
  end
end

-- The names among candidates near q (lower case) but not containing it:
-- { name, distance }, nearest first.
local function near_names(q, candidates)
  local limit, found = tolerance(#q), {}
  if limit == 0 then return found end
  for _, name in ipairs(candidates) do
    local low = name:lower()
    if not low:find(q, 1, true) and #q - #low <= limit then
      local d = near_distance(q, low, limit)
      if d <= limit then found[#found + 1] = { name = name, distance = d } end
    end
  end
  table.sort(found, nearer(q))
  return found
end

local function names_of(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.name end
  return out
end

-- A metadata row's entity as { kind, id, label, run_id }.
local function metadata_owner(row)
  if row.entity == "artifact_version" then
    return { kind = "artifact_version", id = row.entity_id,
      label = client.version_label(row.artifact or "?", row.version or "?") }
  elseif row.entity == "pipeline_run" then
    return { kind = "pipeline_run", id = row.entity_id, label = row.run or "?" }
  end
  return { kind = "step_run", id = row.entity_id,
    label = (row.step or "?") .. " in " .. (row.step_run_run or "?") }
end

-- find(q [, limit]) -> {
--   query, artifacts = { { id, name, version_count, near = distance|nil } },
--   versions = { version rows }, runs = { run rows }, pipelines = { rows },
--   tags = { { name, tagged_count, near } }, metadata = { { key, value,
--   owner = { kind, id, label }, near } }, more = { kind = true when cut },
--   suggestions = { names near q, nearest first } }
function M.find(q, limit)
  limit = limit or M.LIMIT
  local low = q:lower()
  local pattern = like(q)
  local r = { query = q, more = {} }
  r.artifacts, r.more.artifacts = limited("search_artifacts", pattern, limit)
  r.versions, r.more.versions = limited("search_versions", pattern, limit)
  r.runs, r.more.runs = limited("search_runs", pattern, limit)
  r.pipelines, r.more.pipelines = limited("search_pipelines", pattern, limit)
  r.tags, r.more.tags = limited("search_tags", pattern, limit)
  local meta
  meta, r.more.metadata = limited("search_metadata", pattern, limit)
  r.metadata = {}
  for i, row in ipairs(meta) do
    r.metadata[i] = { key = row.key, value = core.decode(row.value), owner = metadata_owner(row) }
  end
  -- "name:version" (or "name:v3"): that version first
  local name, version = q:match("^(.+):v?([^:]+)$")
  local exact = name and core.query("version_by_name", name, version)[1]
  if exact then
    for i = #r.versions, 1, -1 do
      if r.versions[i].id == exact.id then table.remove(r.versions, i) end
    end
    table.insert(r.versions, 1, exact)
  end
  -- an id, or its prefix
  if #q >= 4 and q:find("^[%x%-]+$") then
    local id = low
    for _, v in ipairs(core.query("versions_by_id_prefix", id)) do table.insert(r.versions, 1, v) end
    for _, run in ipairs(core.query("runs_by_id_prefix", id)) do table.insert(r.runs, 1, run) end
  end
  -- near spelling: artifacts, pipelines and tags found so, and suggestions
  local near = {}
  local function add_near(list, found, lookup)
    for _, f in ipairs(found) do
      local row = lookup(f.name)
      if row and #list < limit then
        row.near = f.distance
        list[#list + 1] = row
      end
      near[#near + 1] = f
    end
  end
  add_near(r.artifacts, near_names(low, names_of(core.query("artifact_names"))), function(n)
    local row = core.query("artifact_by_name", n)[1]
    if row then row.version_count = core.query("version_count_of_artifact", row.id)[1].n end
    return row
  end)
  add_near(r.pipelines, near_names(low, names_of(core.query("pipeline_names"))), function(n)
    return core.query("pipeline_by_name", n)[1]
  end)
  local tags = core.query("tags")
  local tag_rows = {}
  for _, t in ipairs(tags) do tag_rows[t.name] = t end
  add_near(r.tags, near_names(low, names_of(tags)), function(n) return tag_rows[n] end)
  -- metadata under a key near q: its entries, as those found by substring
  for _, f in ipairs(near_names(low, names_of(core.query("metadata_keys")))) do
    near[#near + 1] = f
    for _, row in ipairs(core.query("search_metadata", like(f.name), limit)) do
      if row.key == f.name and #r.metadata < limit then
        r.metadata[#r.metadata + 1] = { key = row.key, value = core.decode(row.value),
          owner = metadata_owner(row), near = f.distance }
      end
    end
  end
  table.sort(near, nearer(low))
  r.suggestions = {}
  local seen = {}
  for _, f in ipairs(near) do
    if not seen[f.name] and #r.suggestions < 5 then
      seen[f.name] = true
      r.suggestions[#r.suggestions + 1] = f.name
    end
  end
  return r
end

-- How many results find found in all.
function M.count(r)
  return #r.artifacts + #r.versions + #r.runs + #r.pipelines + #r.tags + #r.metadata
end

return M
