-- SPDX-License-Identifier: MIT
-- lupine.shapes: what a stored value is, told from its shape, as the
-- data_type of its version records it (and the dashboard shows it):
--
--   records     an array of records: rows with the same string keys and
--               scalar values (strings, numbers, booleans)
--   columns     a map of column names to arrays of scalars, all of one
--               length (a data frame, as pd.DataFrame({...}) takes it)
--               (either, its columns in an order: lupine.table { columns =
--               ..., rows }, stored as { _kind = "table", columns, rows })
--   numbers     a non-empty array of numbers
--   number_map  a non-empty map of names (strings) to numbers
--   plot        a lupine.plot description
--   html, markdown, csv, svg   lupine.HTMLString(s) and the others
--   string      a string that is valid UTF-8; bytes: any other string
--   number, boolean, table (any other table)
--
-- A file or folder is "file" or "dir", a value a materializer stored its
-- type's name: those are set where the value is saved, not here.

local core = require "lupine.core"

local M = {}

local is_seq = core.is_sequence   -- is_seq(t) -> t is a sequence, its number of keys

local function is_scalar(v)
  local t = type(v)
  return t == "string" or t == "number" or t == "boolean"
end

-- The column names of a map of equal-length arrays of scalars (in byte
-- order), and that length; nil if v is not one.
local function column_map(v)
  local cols, len = {}, nil
  for k, col in pairs(v) do
    if type(k) ~= "string" or type(col) ~= "table" then return nil end
    local s, m = is_seq(col)
    if not s or m == 0 or (len and m ~= len) then return nil end
    for i = 1, m do
      if not is_scalar(col[i]) then return nil end
    end
    len = m
    cols[#cols + 1] = k
  end
  if not len then return nil end
  table.sort(cols)
  return cols, len
end
M.column_map = column_map

-- The kind of table v is (see the top of this file).
local function table_kind(v)
  local kind = rawget(v, "_kind")
  if kind == "plot" then return "plot" end
  if kind == "table" and type(rawget(v, "rows")) == "table" and type(rawget(v, "columns")) == "table" then
    local rows = table_kind(v.rows)
    return (rows == "records" or rows == "columns") and rows or "table"
  end
  local explicit = require("lupine.viz").explicit_kind(v)
  if explicit then return explicit end
  local seq, n = is_seq(v)
  if n == 0 then return "table" end
  if seq then
    if core.record_columns(v, n) then return "records" end
    for i = 1, n do
      if type(v[i]) ~= "number" then return "table" end
    end
    return "numbers"
  end
  if column_map(v) then return "columns" end
  for k, x in pairs(v) do
    if type(k) ~= "string" or type(x) ~= "number" then return "table" end
  end
  return "number_map"
end

-- data_type(v) -> the name of what v is, as above.
function M.data_type(v)
  local t = type(v)
  if t == "table" then return table_kind(v) end
  if t == "string" then return utf8.len(v) and "string" or "bytes" end
  return t
end

-- tabular(v) -> columns (names in byte order, or the order of a
-- lupine.table), rows (records), count; nil if v is neither records nor
-- columns.
function M.tabular(v)
  if type(v) ~= "table" then return nil end
  if rawget(v, "_kind") == "table" and type(rawget(v, "columns")) == "table" then
    local _, rows, n = M.tabular(rawget(v, "rows"))
    if not rows then return nil end
    return v.columns, rows, n
  end
  local seq, n = is_seq(v)
  if n == 0 then return nil end
  if seq then
    local cols = core.record_columns(v, n)
    if not cols then return nil end
    table.sort(cols)
    return cols, v, n
  end
  local cols, len = column_map(v)
  if not cols then return nil end
  local rows = {}
  for i = 1, len do
    local row = {}
    for _, c in ipairs(cols) do row[c] = v[c][i] end
    rows[i] = row
  end
  return cols, rows, len
end

local LABELS = {
  records = "table (records)", columns = "table (columns)", numbers = "number array",
  number_map = "map of numbers", plot = "plot", html = "HTML", markdown = "Markdown",
  csv = "CSV", svg = "SVG", string = "string", bytes = "bytes", number = "number",
  boolean = "boolean", table = "table", file = "file", dir = "folder", ["nil"] = "nil",
}

-- label(data_type) -> what a person reads: "table (records)", "folder",
-- "Matrix (materializer)" for a type no built-in name is.
function M.label(data_type)
  return LABELS[data_type] or (data_type .. " (materializer)")
end

return M
