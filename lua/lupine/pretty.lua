-- SPDX-License-Identifier: MIT
-- lupine.pretty: values as readable Lua literals, for the REPL.
--
-- API:
--   pretty.format(v [, { depth = 3, items = 20, width = 80 }]) -> string
--       Tables as Lua table constructors: the array part first, in order,
--       then the other keys sorted (numbers, strings, booleans, then the
--       rest), identifier keys unquoted. Tables nested more than `depth`
--       levels down print as {...}; after `items` entries a table ends
--       with "... (N more)"; a table inside itself prints as <cycle>. A
--       value whose metatable has __tostring (ArtifactVersion, PipelineRun,
--       StepRun, Client) prints as that one-line summary; functions,
--       threads and userdata without one as <function: 0x...>. A table
--       that fits in `width` columns is printed on one line, else one entry
--       a line (the array items filling lines), indented by two spaces.
--   pretty.repl(...) -> string
--       What the REPL prints for the values a line returned, as lua -i
--       does: separated by tabs, strings as they are, numbers and the rest
--       as tostring gives them, tables (without __tostring) formatted, a
--       Page (client:list_*) as a table of its items and its summary;
--       but control characters other than newline and tab, and bytes of
--       invalid UTF-8, written as \xHH (lupine.names.visible), so that a
--       stored string cannot drive the terminal.
--   pretty.columns(columns, rows) -> string
--       An aligned table: a line of titles (if a column has one), then a
--       line a row. columns: { title, max = 40, right = false } each; rows:
--       arrays of cells, written through lupine.names.visible too. A cell
--       wider than its column's max is cut, ending in "…". Widths are
--       counted in terminal columns.
--   pretty.width(s) -> integer
--       The terminal columns s takes: East Asian wide characters take two,
--       combining marks none.
--   pretty.truncate(s, width) -> string
--       s cut to width columns, its end replaced by "…" if it was cut.

local core = require "lupine.core"
local names = require "lupine.names"

local pretty = {}

local DEFAULTS = { depth = 3, items = 20, width = 80 }

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
    repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\a"] = "\\a", ["\b"] = "\\b",
  ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\v"] = "\\v" }

-- A string as a Lua literal that reads back as the same bytes. Valid UTF-8
-- stays readable, but for C1 control characters (U+0080 to U+009F), written
-- as \u{HH}; bytes of invalid UTF-8 are written as \xHH.
local function quote(s)
  local valid = utf8.len(s)
  s = s:gsub(valid and '[%c"\\]' or '[%c"\\\128-\255]', function(c)
    return escapes[c] or (c:byte() < 128 and string.format("\\%03d", c:byte()))
      or string.format("\\x%02X", c:byte())
  end)
  if valid then
    s = s:gsub("\xC2[\x80-\x9F]", function(c) return string.format("\\u{%X}", utf8.codepoint(c)) end)
  end
  return '"' .. s .. '"'
end

local function number(x)
  if math.type(x) == "integer" then return string.format("%d", x) end
  if x ~= x then return "0/0" end
  if x == math.huge then return "math.huge" end
  if x == -math.huge then return "-math.huge" end
  return tostring(x)
end

-- The real metatable (a __metatable field does not hide __tostring from
-- tostring either).
local getmt = debug and debug.getmetatable or getmetatable

-- The __tostring summary of v, if its metatable has one.
local function summary(v)
  local mt = getmt(v)
  if not (mt and rawget(mt, "__tostring")) then return nil end
  local ok, s = pcall(tostring, v)
  if not ok then return "<error in __tostring: " .. tostring(s) .. ">" end
  return s
end

local type_order = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  local oa, ob = type_order[ta] or 4, type_order[tb] or 4
  if oa ~= ob then return oa < ob end
  if ta == "number" or ta == "string" then return a < b end
  if ta == "boolean" then return not a and b end
  return tostring(a) < tostring(b)
end

local format

-- The entries of table t (active: the tables being printed around it).
local function entries(t, opts, level, indent, active)
  local parts, n = {}, 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  local total = n + #keys
  local shown = math.min(total, opts.items)
  for i = 1, math.min(n, shown) do
    parts[i] = format(rawget(t, i), opts, level + 1, indent, 0, active)
  end
  if shown > n then
    table.sort(keys, key_less)
    for i = 1, shown - n do
      local k = keys[i]
      local key
      if type(k) == "string" and k:find("^[%a_][%w_]*$") and not keywords[k] then
        key = k
      else
        key = "[" .. format(k, opts, level + 1, indent, 1, active) .. "]"
      end
      parts[#parts + 1] = key .. " = "
        .. format(rawget(t, k), opts, level + 1, indent, #key + 3, active)
    end
  end
  if total > shown then parts[#parts + 1] = string.format("... (%d more)", total - shown) end
  return parts, math.min(n, shown)
end

-- The lines of a table printed one entry a line, except that the first
-- npos (positional) entries share lines up to the width.
local function fill(parts, npos, width)
  local lines = {}
  for i, p in ipairs(parts) do
    local last = lines[#lines]
    if i > 1 and i <= npos and last and not last.full and not p:find("\n")
        and #last.text + 2 + #p <= width then
      last.text = last.text .. ", " .. p
    else
      lines[#lines + 1] = { text = p, full = i > npos or p:find("\n") ~= nil }
    end
  end
  for i, l in ipairs(lines) do lines[i] = l.text end
  return lines
end

-- v as text. level: how deep v is (the value printed is at 1); indent: the
-- indentation of the line v starts on; lead: the columns before v on that
-- line after the indentation.
function format(v, opts, level, indent, lead, active)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if tv == "number" then return number(v) end
  if tv == "nil" or tv == "boolean" then return tostring(v) end
  local s = summary(v)
  if s then return names.visible(s) end
  if tv ~= "table" then return "<" .. tostring(v) .. ">" end
  if active[v] then return "<cycle>" end
  if next(v) == nil then return "{}" end
  if level > opts.depth then return "{...}" end
  active[v] = true
  local inner = indent .. "  "
  local parts, npos = entries(v, opts, level, inner, active)
  active[v] = nil
  local line = "{ " .. table.concat(parts, ", ") .. " }"
  if #indent + lead + #line <= opts.width and not line:find("\n") then return line end
  local lines = fill(parts, npos, opts.width - #inner - 1)
  return "{\n" .. inner .. table.concat(lines, ",\n" .. inner) .. ",\n" .. indent .. "}"
end

function pretty.format(v, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'format' (table expected, got " .. type(opts) .. ")", 2)
  end
  local o = {}
  for k, d in pairs(DEFAULTS) do
    local x = opts and opts[k]
    if x == nil then
      x = d
    elseif math.type(x) ~= "integer" or x < 1 then
      error(string.format("format: option '%s' must be a positive integer (got %s)", k,
        tostring(x)), 2)
    end
    o[k] = x
  end
  return format(v, o, 1, "", 0, {})
end

-- ---- tables for the terminal ----

local CELL_MAX = 40

function pretty.width(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'width' (string expected, got " .. type(s) .. ")", 2)
  end
  return (core.text_width(s))
end

local function truncate(s, width)
  if core.text_width(s) <= width then return s end
  local _, fit = core.text_width(s, width - 1)
  return s:sub(1, fit) .. "…"
end

function pretty.truncate(s, width)
  if type(s) ~= "string" then
    error("bad argument #1 to 'truncate' (string expected, got " .. type(s) .. ")", 2)
  end
  if math.type(width) ~= "integer" or width < 1 then
    error(string.format("bad argument #2 to 'truncate' (positive integer expected, got %s)",
      type(width) == "number" and tostring(width) or type(width)), 2)
  end
  return truncate(s, width)
end

function pretty.columns(columns, rows)
  local bad = type(columns) ~= "table" and 1 or type(rows) ~= "table" and 2
  if bad then
    error(string.format("bad argument #%d to 'columns' (table expected, got %s)", bad,
      type(bad == 1 and columns or rows)), 2)
  end
  local widths, cells = {}, {}
  for c, col in ipairs(columns) do
    if col.max ~= nil and (math.type(col.max) ~= "integer" or col.max < 1) then
      error(string.format("columns: column %d's max must be a positive integer (got %s)", c,
        tostring(col.max)), 2)
    end
    widths[c] = core.text_width(tostring(col.title or ""))
  end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c, col in ipairs(columns) do
      local v = row[c]
      local s = truncate(names.visible(v == nil and "" or tostring(v)), col.max or CELL_MAX)
      cells[r][c] = s
      widths[c] = math.max(widths[c], core.text_width(s))
    end
  end
  local function line(list)
    local parts = {}
    for c, s in ipairs(list) do
      local pad = string.rep(" ", widths[c] - core.text_width(s))
      parts[c] = columns[c].right and (pad .. s) or (c < #columns and s .. pad or s)
    end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  local titles, lines = {}, {}
  for c, col in ipairs(columns) do titles[c] = tostring(col.title or "") end
  if table.concat(titles) ~= "" then lines[1] = line(titles) end
  for _, list in ipairs(cells) do lines[#lines + 1] = line(list) end
  return table.concat(lines, "\n")
end

-- ---- pages ----

local function short_id(x) return x.id:sub(1, 8) end
-- "2026-11-27T13:05:01.123456Z" -> "2026-11-27T13:05:01Z": to the second, as
-- created filters take it
local function seconds(t) return t and (t:gsub("%.%d+Z$", "Z")) end
local function tags(x) return table.concat(x.tags, ", ") end

-- The columns of a page's table, by the class of its items: { title,
-- value of an item, right }.
local PAGE_COLUMNS = {
  ["lupine.ArtifactVersion"] = {
    { "ID", short_id }, { "NAME", function(v) return v.name end },
    { "VERSION", function(v) return v.version end }, { "TYPE", function(v) return v.type end },
    { "DATA TYPE", function(v) return v.data_type end },
    { "SIZE", function(v) return v.size end, true },
    { "CREATED", function(v) return seconds(v.created) end }, { "TAGS", tags },
  },
  ["lupine.PipelineRun"] = {
    { "ID", short_id }, { "NAME", function(r) return r.name end },
    { "PIPELINE", function(r) return r.pipeline_name end },
    { "STATUS", function(r) return r.status end },
    { "STARTED", function(r) return seconds(r.start_time) end }, { "TAGS", tags },
  },
  ["lupine.Artifact"] = {
    { "ID", short_id }, { "NAME", function(a) return a.name end },
    { "VERSIONS", function(a) return a.version_count end, true },
    { "LATEST", function(a) return a.latest_version and a.latest_version.version end },
    { "CREATED", function(a) return seconds(a.created) end }, { "TAGS", tags },
  },
  ["lupine.Pipeline"] = {
    { "ID", short_id }, { "NAME", function(p) return p.name end },
    { "RUNS", function(p) return p.run_count end, true },
    { "LATEST RUN", function(p) return p.latest_run and p.latest_run.name end },
    { "STATUS", function(p) return p.latest_run and p.latest_run.status end },
    { "CREATED", function(p) return seconds(p.created) end },
  },
}

local function class_name(v)
  local mt = getmt(v)
  return type(mt) == "table" and rawget(mt, "__name") or nil
end

-- A page: its items as a table (columns by the class of its items; items
-- of another kind, one a line), then its summary line.
local function page_text(p)
  if rawlen(p) == 0 then return summary(p) end
  local spec = PAGE_COLUMNS[class_name(rawget(p, 1))]
  for i = 2, rawlen(p) do
    if PAGE_COLUMNS[class_name(rawget(p, i))] ~= spec then spec = nil end
  end
  spec = spec or { { "ITEM", function(x) return pretty.format(x, { width = 1000 }) end } }
  local columns, rows = {}, {}
  for c, col in ipairs(spec) do columns[c] = { title = col[1], right = col[3] } end
  for r = 1, rawlen(p) do
    rows[r] = {}
    for c, col in ipairs(spec) do rows[r][c] = col[2](rawget(p, r)) end
  end
  return pretty.columns(columns, rows) .. "\n" .. summary(p)
end

function pretty.repl(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if class_name(v) == "lupine.Page" then
      out[i] = page_text(v)
    elseif type(v) == "table" and not summary(v) then
      out[i] = pretty.format(v)
    else
      out[i] = names.visible(tostring(v), "\n\t")
    end
  end
  return table.concat(out, "\t")
end

return pretty
