-- SPDX-License-Identifier: MIT
-- lupine.diff: what differs between values, for the dashboard's compare
-- pages: maps key by key (metadata, parameters), tables row by row and
-- column by column, arrays of numbers position by position.

local core = require "lupine.core"
local byte_lt = require("lupine.json").byte_lt

local M = {}

-- Are a and b the same value? (Their encodings are: deterministic CBOR, so
-- tables compare by content, NaN equals NaN.)
local function same(a, b)
  if a == nil or b == nil then return a == b end
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then
    return a == b or (a ~= a and b ~= b)
  end
  return core.encode(a) == core.encode(b)
end
M.same = same

-- maps({ m1, m2, ... }) -> { { key, values = { m1[key], m2[key], ... },
-- differs } }, keys in byte order; differs: not the same in all maps.
function M.maps(list)
  local keys, seen = {}, {}
  for _, m in ipairs(list) do
    for k in pairs(m) do
      if not seen[k] then seen[k], keys[#keys + 1] = true, k end
    end
  end
  table.sort(keys, function(a, b) return byte_lt(tostring(a), tostring(b)) end)
  local rows = {}
  for i, k in ipairs(keys) do
    local values, differs = {}, false
    for j, m in ipairs(list) do
      values[j] = m[k]
      if j > 1 and not same(m[k], list[1][k]) then differs = true end
    end
    rows[i] = { key = k, values = values, differs = differs }
  end
  return rows
end

-- The column that names rows in both tables, if one does: its values
-- strings or integers, none twice in a table. "id", "name" and "key" are
-- preferred, then the columns in byte order.
local function key_column(common, a, na, b, nb)
  local order = {}
  for _, want in ipairs { "id", "name", "key" } do
    for _, c in ipairs(common) do
      if c == want then order[#order + 1] = c end
    end
  end
  for _, c in ipairs(common) do order[#order + 1] = c end
  local function unique(rows, n, c)
    local seen = {}
    for i = 1, n do
      local v = rows[i][c]
      if not (type(v) == "string" or math.type(v) == "integer") or seen[v] then return false end
      seen[v] = true
    end
    return true
  end
  for _, c in ipairs(order) do
    if unique(a, na, c) and unique(b, nb, c) then return c end
  end
  return nil
end

-- tables(a, b [, key]) where a and b are { columns, rows, n } (as
-- lupine.shapes.tabular gives them) -> {
--   columns = { added = {...}, removed = {...}, common = {...} },
--   key = the column rows are matched by (nil: by position),
--   added = { { at, row } }, removed = { { at, row } } (at: the key's value
--   or the row's position), changed = { { at, before, after, columns =
--   { names of the common columns that differ } } }, unchanged = n }
-- A key given must be a column of both; otherwise one is chosen if a
-- column names the rows (key_column above).
function M.tables(a, b, key)
  local in_a, in_b = {}, {}
  for _, c in ipairs(a.columns) do in_a[c] = true end
  for _, c in ipairs(b.columns) do in_b[c] = true end
  local cols = { added = {}, removed = {}, common = {} }
  for _, c in ipairs(b.columns) do
    if not in_a[c] then cols.added[#cols.added + 1] = c end
  end
  for _, c in ipairs(a.columns) do
    if in_b[c] then cols.common[#cols.common + 1] = c else cols.removed[#cols.removed + 1] = c end
  end
  if key and not (in_a[key] and in_b[key]) then
    return nil, string.format("column '%s' is not in both tables", key)
  end
  key = key or key_column(cols.common, a.rows, a.n, b.rows, b.n)
  local out = { columns = cols, key = key, added = {}, removed = {}, changed = {}, unchanged = 0 }
  local function compare(at, ra, rb)
    local changed = {}
    for _, c in ipairs(cols.common) do
      if not same(ra[c], rb[c]) then changed[#changed + 1] = c end
    end
    if #changed == 0 then out.unchanged = out.unchanged + 1
    else out.changed[#out.changed + 1] = { at = at, before = ra, after = rb, columns = changed } end
  end
  if key then
    local index = {}
    for i = 1, b.n do index[b.rows[i][key]] = i end
    local matched = {}
    for i = 1, a.n do
      local ra = a.rows[i]
      local j = index[ra[key]]
      if j and not matched[j] then
        matched[j] = true
        compare(ra[key], ra, b.rows[j])
      else
        out.removed[#out.removed + 1] = { at = ra[key], row = ra }
      end
    end
    for j = 1, b.n do
      if not matched[j] then out.added[#out.added + 1] = { at = b.rows[j][key], row = b.rows[j] } end
    end
  else
    for i = 1, math.max(a.n, b.n) do
      if i > b.n then out.removed[#out.removed + 1] = { at = i, row = a.rows[i] }
      elseif i > a.n then out.added[#out.added + 1] = { at = i, row = b.rows[i] }
      else compare(i, a.rows[i], b.rows[i]) end
    end
  end
  return out
end

-- numbers(a, b) -> { differing = positions both have whose numbers differ,
-- largest = the largest absolute difference there (nil: none) }
function M.numbers(a, b)
  local differing, largest = 0, nil
  for i = 1, math.min(#a, #b) do
    if not same(a[i], b[i]) then
      differing = differing + 1
      local d = math.abs(a[i] - b[i])
      if d == d and (not largest or d > largest) then largest = d end
    end
  end
  return { differing = differing, largest = largest }
end

return M
