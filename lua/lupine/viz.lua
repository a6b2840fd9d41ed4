-- SPDX-License-Identifier: MIT
-- lupine.viz: visualizations of artifact values.
--
-- compute(value) looks at a value's shape and returns its visualizations as
-- { { type, bytes }, ... } (type "html", "svg", "csv", "markdown" or
-- "text"); the runtime stores each one as an object, content-addressed like
-- values, and lists it on the version (runtime/visual.c). By shape:
--   an array of records (rows with the same string keys and scalar values),
--   or a map of column names to equal-length arrays of scalars (a "data
--   frame"): an HTML table of the first TABLE_ROWS rows, a CSV of all rows,
--   and an HTML summary of the numeric columns (as pandas' describe());
--   an array of numbers: an SVG line chart;
--   a map of names to numbers: an SVG bar chart, in an order that means
--   something (see map_chart);
--   a string (valid UTF-8): text. Markdown is never guessed.
-- Explicit kinds: lupine.HTMLString(s), MarkdownString, CSVString, SVGString
-- make the table { _kind = "html", text = s } (with a metatable whose
-- __tostring gives s); stored, it is that plain table, and compute knows it
-- by its shape, so the kind survives the round trip with no codec support.
-- lupine.plot { ... } makes { _kind = "plot", kind = ..., ... }, drawn as
-- SVG by lupine.chart; lupine.table { columns = ..., rows } makes
-- { _kind = "table", columns = ..., rows = ... }, a table whose columns
-- keep the order given (a Lua table has none).
--
-- Each visualization is at most MAX_BYTES; a longer one is cut, with a note
-- saying so inside it. Every string taken from a value is escaped where it
-- lands in HTML, SVG or CSV.

local core = require "lupine.core"
local client = require "lupine.client"

local M = {}

M.MAX_BYTES = 1024 * 1024   -- a visualization's size limit, note included
M.TABLE_ROWS = 100          -- rows shown by a table visualization
M.CELL_CHARS = 500          -- characters shown of one table cell

local function fail(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

-- ---- escaping ----

-- s as valid UTF-8 without control characters other than tab, newline and
-- carriage return (what XML 1.0 accepts): other bytes become U+FFFD.
local function clean(s)
  if utf8.len(s) and not s:find("[%z\1-\8\11\12\14-\31\127]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len = 1
    local c = s:byte(i)
    if c >= 0xC2 and c <= 0xF4 then len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or 2 end
    local ch = s:sub(i, i + len - 1)
    if len > 1 and #ch == len and utf8.len(ch) == 1 then
      out[#out + 1] = ch
      i = i + len
    else
      local ok = c < 128 and (c >= 32 or c == 9 or c == 10 or c == 13) and c ~= 127
      out[#out + 1] = ok and ch:sub(1, 1) or "\u{FFFD}"
      i = i + 1
    end
  end
  return table.concat(out)
end
M.clean = clean

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
  ["'"] = "&#39;" }

-- s escaped for HTML or XML text and (double- or single-quoted) attributes.
local function esc(s)
  return (clean(tostring(s)):gsub("[&<>\"']", ESC))
end
M.esc = esc

-- s cut to at most n characters (UTF-8), with "…" when cut.
local function shorten(s, n)
  if utf8.len(s) and utf8.len(s) <= n then return s end
  local cut = utf8.offset(s, n + 1)
  return (cut and s:sub(1, cut - 1) or s) .. "…"
end
M.shorten = shorten

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  return (s:gsub("..?.?", function(chunk)
    local a, b, c = chunk:byte(1, 3)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local out = {}
    for i = 1, #chunk + 1 do
      local k = (n >> (18 - 6 * (i - 1))) & 63
      out[i] = B64:sub(k + 1, k + 1)
    end
    return table.concat(out) .. string.rep("=", 3 - #chunk)
  end))
end
M.base64 = base64

-- ---- numbers ----

-- The text of a number: integers as they are, floats as the shortest text
-- that reads back as the same double ("0.95", "3.0", "1e+300").
local num_text = core.number_text
M.num_text = num_text

-- Six significant digits, as pandas prints a summary.
local function short_num(x)
  if x ~= x then return "NaN" end
  if x == math.huge then return "inf" end
  if x == -math.huge then return "-inf" end
  return (string.format("%.6g", x))
end

-- ---- times ----

-- The days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
-- (Howard Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
end
M.days_from_civil = days_from_civil

local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- The seconds since 1970-01-01T00:00:00Z of an ISO 8601 date or time:
-- "2025-03-14", "2025-03-14T09:30", "2025-03-14 09:30:15.25+01:00" (T or a
-- blank between date and time; Z, +hh:mm, +hhmm or +hh after it, none
-- meaning UTC); nil if s is not one.
local function time_of(s)
  if type(s) ~= "string" or #s < 10 or #s > 40 then return nil end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  local leap = y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
  if mo < 1 or mo > 12 or d < 1 or d > MONTH_DAYS[mo] + ((mo == 2 and leap) and 1 or 0) then
    return nil
  end
  local t = days_from_civil(y, mo, d) * 86400
  if rest == "" then return t end
  local h, mi, more = rest:match("^[T ](%d%d):(%d%d)(.*)$")
  if not h then return nil end
  local sec = 0
  local ss, after = more:match("^:(%d%d)(.*)$")
  if ss then
    sec, more = tonumber(ss), after
    local frac, zone = more:match("^[.,](%d+)(.*)$")
    if frac then sec, more = sec + tonumber("0." .. frac), zone end
  end
  h, mi = tonumber(h), tonumber(mi)
  if h > 23 or mi > 59 or sec >= 61 then return nil end   -- 60: a leap second
  t = t + h * 3600 + mi * 60 + sec
  if more == "" or more == "Z" then return t end
  local sign, zh, zm = more:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then
    sign, zh = more:match("^([+-])(%d%d)$")
    zm = "00"
  end
  if not sign or tonumber(zh) > 23 or tonumber(zm) > 59 then return nil end
  local offset = tonumber(zh) * 3600 + tonumber(zm) * 60
  return sign == "+" and t - offset or t + offset
end
M.time_of = time_of

-- Numbers from EPOCH_FROM (2000-01-01) to EPOCH_TO (2100-01-01) on an x
-- axis are taken for times in seconds since 1970 (a plot's xscale says
-- otherwise).
M.EPOCH_FROM, M.EPOCH_TO = 946684800, 4102444800

-- ---- limits ----

-- bytes cut to fit MAX_BYTES with a note, in a way that suits type t.
local function limited(t, bytes)
  if #bytes <= M.MAX_BYTES then return bytes end
  local note = string.format("cut: this %s visualization was %d bytes, over the limit of %d",
    t, #bytes, M.MAX_BYTES)
  if t == "svg" then
    return '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="60">'
      .. '<text x="10" y="35" font-family="sans-serif" font-size="14" fill="#a00">'
      .. esc(note) .. "</text></svg>"
  end
  local tail = t == "html" and ('\n<p style="color:#a00;font-weight:bold">… ' .. esc(note) .. "</p>\n")
    or ("\n… " .. note .. "\n")
  local keep = M.MAX_BYTES - #tail
  while keep > 0 and (bytes:byte(keep + 1) or 0) & 0xC0 == 0x80 do keep = keep - 1 end
  local head = bytes:sub(1, keep)
  if t == "csv" then head = head:match("^(.*\n)") or ""   -- whole rows only
  elseif t == "html" then                                -- no half tag
    local lt, gt = head:match(".*()<"), head:match(".*()>")
    if lt and (not gt or lt > gt) then head = head:sub(1, lt - 1) end
  end
  return head .. tail
end
M.limited = limited

-- ---- explicit kinds ----

local Visual = { __name = "lupine.Visual" }
Visual.__index = Visual
Visual.__tostring = function(v) return v.text end
Visual.__concat = function(a, b)
  return (getmetatable(a) == Visual and a.text or a) .. (getmetatable(b) == Visual and b.text or b)
end
Visual.__len = function(v) return #v.text end

local KIND_OF = { html = "HTMLString", markdown = "MarkdownString", csv = "CSVString",
  svg = "SVGString" }

local api = {}
M.api = api

for kind, fname in pairs(KIND_OF) do
  api[fname] = function(s)
    if type(s) ~= "string" then
      fail(2, "bad argument #1 to '%s' (string expected, got %s)", fname, type(s))
    end
    return setmetatable({ _kind = kind, text = s }, Visual)
  end
end

-- The kind of an explicit string value (made by one of the above, or loaded
-- back as the plain table), or nil.
local function explicit_kind(v)
  if type(v) ~= "table" or not KIND_OF[rawget(v, "_kind")] or type(rawget(v, "text")) ~= "string" then
    return nil
  end
  for k in pairs(v) do
    if k ~= "_kind" and k ~= "text" then return nil end
  end
  return v._kind
end
M.explicit_kind = explicit_kind

-- ---- plots ----

local Plot = { __name = "lupine.Plot" }
Plot.__index = Plot
Plot.__tostring = function(p)
  return string.format("<plot %s%s>", p.kind, p.title and (" '" .. p.title .. "'") or "")
end

local PLOT_FIELDS = { _kind = true, kind = true, x = true, y = true, series = true, title = true,
  xlabel = true, ylabel = true, bins = true, xscale = true, yscale = true }
local SERIES_FIELDS = { name = true, x = true, y = true }
local PLOT_KINDS = { "bar", "hist", "line", "scatter" }
M.PLOT_MAX_BINS = 1000

local is_seq = core.is_sequence   -- is_seq(t) -> t is a sequence, its number of keys

-- What the items of a list may be: a test, and how to name them.
local NUMBERS = { ok = function(v) return type(v) == "number" end, plural = "numbers",
  one = "a number" }
local LABELS = { ok = function(v) return type(v) == "number" or type(v) == "string" end,
  plural = "labels", one = "a label" }
local POSITIONS = { ok = function(v) return type(v) == "number" or time_of(v) ~= nil end,
  plural = "numbers or ISO 8601 times", one = "a number or an ISO 8601 time" }

-- v for an error message: a string quoted (and cut), else its type.
local function shown(v)
  if type(v) == "string" then return "'" .. shorten(v, 40) .. "'" end
  return type(v)
end

-- A copy of list, checked: a sequence of items of the kind items.
local function check_list(list, what, items, level)
  if type(list) ~= "table" then
    fail(level + 1, "plot: %s must be a list of %s (got %s)", what, items.plural, type(list))
  end
  if not is_seq(list) then
    fail(level + 1, "plot: %s must be a list of %s (it has other keys)", what, items.plural)
  end
  local out, ok = {}, items.ok
  for i = 1, #list do
    local v = list[i]
    if not ok(v) then
      fail(level + 1, "plot: %s[%d] is not %s (got %s)", what, i, items.one,
        items == POSITIONS and shown(v) or type(v))
    end
    out[i] = v
  end
  return out
end

local function check_string(p, k, level)
  if p[k] ~= nil and type(p[k]) ~= "string" then
    fail(level + 1, "plot: %s must be a string (got %s)", k, type(p[k]))
  end
  return p[k]
end

-- The checked scales of a plot: xscale "linear", "log" or "time" (nil:
-- chosen from the values when drawn), yscale "linear" or "log".
local function check_scales(spec, kind, level)
  local xscale, yscale = spec.xscale, spec.yscale
  if xscale ~= nil then
    if kind == "bar" then fail(level + 1, "plot: xscale is not for kind 'bar' (its x are labels)") end
    if xscale ~= "linear" and xscale ~= "log" and xscale ~= "time" then
      fail(level + 1, "plot: xscale must be 'linear', 'log' or 'time' (got %s)", shown(xscale))
    end
    if xscale == "log" and kind == "hist" then
      fail(level + 1, "plot: xscale 'log' is for kinds line and scatter")
    end
  end
  if yscale ~= nil and yscale ~= "linear" and yscale ~= "log" then
    fail(level + 1, "plot: yscale must be 'linear' or 'log' (got %s)", shown(yscale))
  end
  return xscale, yscale
end

-- The checked description of a plot (see lua/README.md, "Plots"); raises naming
-- the culprit.
local function check_plot(spec, level)
  for k in pairs(spec) do
    if not PLOT_FIELDS[k] then fail(level + 1, "plot: unknown field '%s'", tostring(k)) end
  end
  local kind = spec.kind or "line"
  local known = false
  for _, k in ipairs(PLOT_KINDS) do known = known or k == kind end
  if not known then
    fail(level + 1, "plot: kind must be one of %s (got %s)", table.concat(PLOT_KINDS, ", "),
      type(kind) == "string" and ("'" .. kind .. "'") or tostring(kind))
  end
  local p = { _kind = "plot", kind = kind, title = check_string(spec, "title", level + 1),
    xlabel = check_string(spec, "xlabel", level + 1), ylabel = check_string(spec, "ylabel", level + 1) }
  p.xscale, p.yscale = check_scales(spec, kind, level + 1)
  if spec.bins ~= nil then
    if kind ~= "hist" then fail(level + 1, "plot: bins is for kind 'hist'") end
    if math.type(spec.bins) ~= "integer" or spec.bins < 1 or spec.bins > M.PLOT_MAX_BINS then
      fail(level + 1, "plot: bins must be an integer from 1 to %d (got %s)", M.PLOT_MAX_BINS,
        tostring(spec.bins))
    end
    p.bins = spec.bins
  end
  local xitems = kind == "bar" and LABELS or POSITIONS
  -- x checked, times only where the x scale can place them; lv: the
  -- level of xlist itself
  local function xlist(x, what, lv)
    local out = check_list(x, what, xitems, lv)
    if xitems == POSITIONS and p.xscale and p.xscale ~= "time" then
      for i, v in ipairs(out) do
        if type(v) == "string" then
          fail(lv, "plot: %s[%d] is a time, which xscale '%s' cannot place", what, i, p.xscale)
        end
      end
    end
    return out
  end
  -- one series: its x and y checked against each other; what names it
  local function series(s, what, default_x)
    local out = { name = s.name }
    if kind == "hist" then
      if s.y ~= nil then fail(level + 2, "plot: a hist takes its values in %sx, not y", what) end
      if s.x == nil then fail(level + 2, "plot: %sx is missing", what) end
      out.x = check_list(s.x, what .. "x", NUMBERS, level + 2)
      return out
    end
    if s.y == nil then fail(level + 2, "plot: %sy is missing", what) end
    out.y = check_list(s.y, what .. "y", NUMBERS, level + 2)
    local x = s.x or default_x
    if x ~= nil then
      local xname = s.x and (what .. "x") or "x"
      out.x = xlist(x, xname, level + 3)
      if #out.x ~= #out.y then
        fail(level + 2, "plot: %s has %d values but %sy has %d", xname, #out.x, what, #out.y)
      end
    end
    return out
  end
  if spec.series ~= nil then
    if spec.y ~= nil then fail(level + 1, "plot: give either y or series, not both") end
    if kind == "hist" and spec.x ~= nil then
      fail(level + 1, "plot: give either x or series, not both")
    end
    if type(spec.series) ~= "table" or #spec.series == 0 or not is_seq(spec.series) then
      fail(level + 1, "plot: series must be a non-empty list of { name = ..., x = ..., y = ... }")
    end
    p.series = {}
    for i, s in ipairs(spec.series) do
      local what = "series[" .. i .. "]."
      if type(s) ~= "table" then fail(level + 1, "plot: series[%d] must be a table (got %s)", i, type(s)) end
      for k in pairs(s) do
        if not SERIES_FIELDS[k] then fail(level + 1, "plot: series[%d]: unknown field '%s'", i, tostring(k)) end
      end
      if s.name ~= nil and type(s.name) ~= "string" then
        fail(level + 1, "plot: series[%d].name must be a string (got %s)", i, type(s.name))
      end
      p.series[i] = series(s, what, spec.x)
    end
    if spec.x ~= nil then p.x = xlist(spec.x, "x", level + 2) end
  else
    local one = series(spec, "", nil)
    p.x, p.y = one.x, one.y
  end
  return p
end

-- plot { kind = "line"|"bar"|"scatter"|"hist", x = {...}, y = {...},
--        series = { { name, x, y }, ... }, title, xlabel, ylabel, bins,
--        xscale = "linear"|"log"|"time", yscale = "linear"|"log" }
function api.plot(spec)
  if type(spec) ~= "table" then
    fail(2, "bad argument #1 to 'plot' (table expected, got %s)", type(spec))
  end
  if spec._kind ~= nil and spec._kind ~= "plot" then
    fail(2, "plot: unknown field '_kind'")
  end
  return setmetatable(check_plot(spec, 2), Plot)
end

-- The plot description v is, or nil (v is not one); raises for a table
-- that says it is a plot but is malformed.
local function as_plot(v)
  if type(v) ~= "table" or rawget(v, "_kind") ~= "plot" then return nil end
  return setmetatable(check_plot(v, 2), Plot)   -- checked: not again when drawn
end

-- render_plot(p, note): the SVG of a plot (made by lupine.plot, or its
-- stored description), with a note under it if given; lupine.chart draws it
-- (required here, not above: it requires this module).
function M.render_plot(p, note)
  if getmetatable(p) ~= Plot then p = check_plot(p, 2) end
  return require("lupine.chart").svg(p, note)
end
local render_plot = M.render_plot

-- ---- tables ----

local TABLE_CSS = "body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#222}"
  .. "table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:3px 8px;"
  .. "text-align:left;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}"
  .. "th{background:#f4f4f4}p.note{color:#666;margin:4px 0}"

local function html_doc(title, body)
  return '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>' .. esc(title)
    .. "</title><style>" .. TABLE_CSS .. "</style></head><body>\n" .. body .. "</body></html>\n"
end

local function is_scalar(v)
  local t = type(v)
  return t == "string" or t == "number" or t == "boolean"
end

local function cell_text(v)
  if type(v) == "number" then return num_text(v) end
  return tostring(v)
end

-- The columns and rows of v if it is tabular: an array of records with the
-- same string keys, or a map of names to equal-length arrays (columns);
-- values are scalars. Columns in byte order of their names.
local function tabular(v, seq, n)
  if n == 0 then return nil end
  local cols = {}
  if seq then
    cols = core.record_columns(v, n)
    if not cols then return nil end
    table.sort(cols)
    return cols, v, n
  end
  -- columns: every value a non-empty array of scalars, all of one length
  local len
  cols, len = require("lupine.shapes").column_map(v)
  if not cols then return nil end
  local rows = setmetatable({}, { __index = function(t, i)
    if math.type(i) ~= "integer" or i < 1 or i > len then return nil end
    local row = {}
    for _, c in ipairs(cols) do row[c] = v[c][i] end
    rawset(t, i, row)
    return row
  end })
  return cols, rows, len
end

-- ---- tables whose columns have an order ----

local Table = { __name = "lupine.Table" }
Table.__index = Table
Table.__tostring = function(t)
  return string.format("<table: %s>", table.concat(t.columns, ", "))
end

local function quoted(k) return "'" .. shorten(clean(tostring(k)), 40) .. "'" end

-- Why rows, a non-empty table that tabular refused, is not a table: its
-- first culprit.
local function not_tabular(rows, seq, n)
  local function bad_value(where, x)
    return string.format("%s is a %s, not a string, number or boolean", where, type(x))
  end
  if seq then
    local first = rows[1]
    if type(first) ~= "table" then return string.format("rows[1] is not a record (got %s)", type(first)) end
    if next(first) == nil then return "rows[1] has no columns" end
    for i = 1, n do
      local r = rows[i]
      if type(r) ~= "table" then return string.format("rows[%d] is not a record (got %s)", i, type(r)) end
      for k, x in pairs(r) do
        if type(k) ~= "string" then return string.format("rows[%d] has a key that is not a string", i) end
        if first[k] == nil then return string.format("rows[%d] has %s, which rows[1] has not", i, quoted(k)) end
        if not is_scalar(x) then return bad_value(string.format("rows[%d].%s", i, k), x) end
      end
      for k in pairs(first) do
        if r[k] == nil then return string.format("rows[%d] has no %s", i, quoted(k)) end
      end
    end
  end
  local len, name
  for k, col in pairs(rows) do
    if type(k) ~= "string" then
      return "rows must be a list of records or a map of column names to lists of values"
    end
    local s, m = false, 0
    if type(col) == "table" then s, m = is_seq(col) end
    if not s or m == 0 then return string.format("rows.%s is not a non-empty list of values", k) end
    if len and m ~= len then
      return string.format("rows.%s has %d values but rows.%s has %d", k, m, name, len)
    end
    for i = 1, m do
      if not is_scalar(col[i]) then return bad_value(string.format("rows.%s[%d]", k, i), col[i]) end
    end
    len, name = m, k
  end
  return "rows is not a table"   -- (tabular took it, then)
end

-- The checked table { _kind = "table", columns, rows } of spec, its columns
-- in order (those given first, the others after them in byte order), and
-- the rows as records (a view, for a map of columns) and their count.
local function check_table(spec, level)
  for k in pairs(spec) do
    if k ~= "_kind" and k ~= "columns" and k ~= "rows" and k ~= 1 then
      fail(level + 1, "table: unknown field %s", quoted(k))
    end
  end
  local data = spec.rows
  if data ~= nil and spec[1] ~= nil then
    fail(level + 1, "table: give the rows once (rows = ..., or first in the table)")
  end
  data = data or spec[1]
  if type(data) ~= "table" then
    fail(level + 1, "table: rows must be a list of records or a map of column names to lists "
      .. "of values (got %s)", type(data))
  end
  local given = spec.columns
  if type(given) ~= "table" or not is_seq(given) or #given == 0 then
    fail(level + 1, "table: columns must be a non-empty list of column names (got %s)",
      type(given) == "table" and "a table with other keys" or type(given))
  end
  local seq, count = is_seq(data)
  local cols, rows, n = tabular(data, seq, count)
  if count > 0 and not cols then fail(level + 1, "table: %s", not_tabular(data, seq, count)) end
  local known, seen, order = {}, {}, {}
  for _, c in ipairs(cols or {}) do known[c] = true end
  for i, c in ipairs(given) do
    if type(c) ~= "string" then fail(level + 1, "table: columns[%d] is not a name (got %s)", i, type(c)) end
    if seen[c] then fail(level + 1, "table: columns[%d] %s is given twice", i, quoted(c)) end
    if cols and not known[c] then
      fail(level + 1, "table: columns[%d] %s is not a column of the rows (they have %s)", i, quoted(c),
        table.concat(cols, ", "))
    end
    seen[c] = true
    order[i] = c
  end
  for _, c in ipairs(cols or {}) do
    if not seen[c] then order[#order + 1] = c end
  end
  return { _kind = "table", columns = order, rows = data }, order, rows or {}, cols and n or 0
end

-- table { columns = { name, ... }, rows }: rows (a list of records, or a map
-- of column names to lists of values) whose columns come in the order given.
function api.table(spec)
  if type(spec) ~= "table" then
    fail(2, "bad argument #1 to 'table' (table expected, got %s)", type(spec))
  end
  if spec._kind ~= nil then fail(2, "table: unknown field '_kind'") end
  return setmetatable((check_table(spec, 2)), Table)
end

local function table_html(cols, rows, n)
  local out = { "<table>\n<thead><tr><th></th>" }
  for _, c in ipairs(cols) do out[#out + 1] = "<th>" .. esc(c) .. "</th>" end
  out[#out + 1] = "</tr></thead>\n<tbody>\n"
  local shown = math.min(n, M.TABLE_ROWS)
  for i = 1, shown do
    local row = rows[i]
    out[#out + 1] = "<tr><th>" .. (i - 1) .. "</th>"   -- 0-based, as a DataFrame's index
    for _, c in ipairs(cols) do
      local x = row[c]
      out[#out + 1] = (type(x) == "number" and '<td class="num">' or "<td>")
        .. esc(shorten(cell_text(x), M.CELL_CHARS)) .. "</td>"
    end
    out[#out + 1] = "</tr>\n"
  end
  out[#out + 1] = "</tbody></table>\n"
  out[#out + 1] = string.format('<p class="note">%s%d row%s, %d column%s</p>\n',
    shown < n and string.format("showing the first %d of ", shown) or "", n, n == 1 and "" or "s",
    #cols, #cols == 1 and "" or "s")
  return html_doc("table", table.concat(out))
end

-- All rows as CSV (RFC 4180 quoting, "\n" line ends, a header row; see
-- core.csv), cut with a note past MAX_BYTES: whole rows that fit, then the
-- note.
local function table_csv(cols, rows, n)
  local note = string.format("\n… cut: %d rows are over the limit of %d bytes; "
    .. "the first %%d are above\n", n, M.MAX_BYTES)
  local text, kept = core.csv(rows, cols, n, M.MAX_BYTES, M.MAX_BYTES - #note - 12)
  if kept == n then return text end
  return text .. note:format(kept)
end

-- pandas' describe() of the numbers xs (NaN left out): count, mean, std
-- (sample, n - 1), min, 25%, 50%, 75% (linear interpolation), max.
local describe = core.describe
M.describe = describe

local STATS = { "count", "mean", "std", "min", "25%", "50%", "75%", "max" }

local function summary_html(cols, rows, n)
  local numeric = {}
  for _, c in ipairs(cols) do
    local all = true
    for i = 1, n do
      if type(rows[i][c]) ~= "number" then all = false; break end
    end
    if all then numeric[#numeric + 1] = c end
  end
  if #numeric == 0 then return nil end
  local stats = {}
  for k, c in ipairs(numeric) do
    local xs = {}
    for i = 1, n do xs[i] = rows[i][c] end
    stats[k] = describe(xs)
  end
  local out = { "<table>\n<thead><tr><th></th>" }
  for _, c in ipairs(numeric) do out[#out + 1] = "<th>" .. esc(c) .. "</th>" end
  out[#out + 1] = "</tr></thead>\n<tbody>\n"
  for _, s in ipairs(STATS) do
    out[#out + 1] = "<tr><th>" .. s .. "</th>"
    for k = 1, #numeric do
      local x = stats[k][s]
      out[#out + 1] = '<td class="num">' .. (s == "count" and string.format("%d", x) or short_num(x)) .. "</td>"
    end
    out[#out + 1] = "</tr>\n"
  end
  out[#out + 1] = "</tbody></table>\n"
  out[#out + 1] = string.format('<p class="note">summary of %d numeric column%s</p>\n', #numeric,
    #numeric == 1 and "" or "s")
  return html_doc("summary", table.concat(out))
end

-- ---- compute ----

M.MAP_BARS = 50   -- bars of a map of numbers drawn by value: the largest ones

-- The bar chart of v, a map of names to numbers (keys, its names), in an
-- order that means something: by time if every name is an ISO 8601 time,
-- by number if every name is a decimal number, else from the largest
-- number down (NaN last, ties by name), the first MAP_BARS only.
local function map_chart(v, keys)
  local rank, by_time, by_number = {}, true, true
  for _, k in ipairs(keys) do
    if by_time then
      rank[k] = time_of(k)
      by_time = rank[k] ~= nil
    end
    if not by_time then break end
  end
  if not by_time then
    for _, k in ipairs(keys) do
      rank[k] = k:find("^[+-]?%d*%.?%d+$") and tonumber(k) or k:find("^[+-]?%d+%.$") and tonumber(k)
      if not rank[k] then by_number = false; break end
    end
  end
  local note
  if by_time or by_number then
    table.sort(keys, function(a, b)
      if rank[a] ~= rank[b] then return rank[a] < rank[b] end
      return a < b
    end)
  else
    local function before(a, b)
      local x, y = v[a], v[b]
      if (x ~= x) ~= (y ~= y) then return y ~= y end
      if x == x and x ~= y then return x > y end
      return a < b
    end
    local n, top = #keys, {}
    -- the largest MAP_BARS, kept in order as they come: most are smaller
    -- than the last kept, and cost one comparison
    for _, k in ipairs(keys) do
      if #top < M.MAP_BARS or before(k, top[#top]) then
        local i = #top + 1
        while i > 1 and before(k, top[i - 1]) do i = i - 1 end
        table.insert(top, i, k)
        top[M.MAP_BARS + 1] = nil
      end
    end
    keys = top
    if n > #top then note = string.format("the %d largest of %d numbers", #top, n) end
  end
  local ys = {}
  for i, k in ipairs(keys) do ys[i] = v[k] end
  return render_plot({ kind = "bar", x = keys, y = ys }, note)
end

-- The three visualizations of a table: the first rows as HTML, all of them
-- as CSV, a summary of its numeric columns.
local function table_visualizations(cols, rows, n)
  local list = { { "html", table_html(cols, rows, n) }, { "csv", table_csv(cols, rows, n) } }
  local summary = n > 0 and summary_html(cols, rows, n)
  if summary then list[3] = { "html", summary } end
  return list
end

local function compute(v)
  local kind = explicit_kind(v)
  if kind then return { { kind, v.text } } end
  local p = as_plot(v)
  if p then return { { "svg", render_plot(p) } } end
  local t = type(v)
  if t == "string" then
    if utf8.len(v) then return { { "text", v } } end
    return {}
  end
  if t ~= "table" then return {} end
  if rawget(v, "_kind") == "table" then
    local _, cols, rows, n = check_table(v, 1)
    return table_visualizations(cols, rows, n)
  end
  local seq, count = is_seq(v)
  local cols, rows, n = tabular(v, seq, count)
  if cols then return table_visualizations(cols, rows, n) end
  if count == 0 then return {} end
  if seq then
    local chart = require "lupine.chart"
    if count > chart.LINE_POINTS then
      -- decimating compares every value: that is the check that all are numbers
      local ok, xs, ys = pcall(chart.decimate, nil, v)
      if not ok then return {} end
      return { { "svg", render_plot { kind = "line", x = xs, y = ys } } }
    end
    for i = 1, count do
      if type(v[i]) ~= "number" then return {} end
    end
    return { { "svg", render_plot { kind = "line", y = v } } }   -- checked above
  end
  local keys = {}
  for k, x in pairs(v) do
    if type(k) ~= "string" or type(x) ~= "number" then return {} end
    keys[#keys + 1] = k
  end
  return { { "svg", map_chart(v, keys) } }
end

-- compute(value) -> { { type, bytes }, ... }: the visualizations of a value
-- (see the top of this file), each at most MAX_BYTES. It never raises: a
-- value it cannot visualize gets a text visualization saying why.
function M.compute(value)
  local ok, list = pcall(compute, value)
  if not ok then
    list = { { "text", "no visualization: " .. tostring(list):gsub("^[^\n:]+%.lua:%d+: ", "") } }
  end
  for _, item in ipairs(list) do item[2] = limited(item[1], item[2]) end
  return list
end

-- ---- the visualizations of a version ----

local Visualization = { __name = "lupine.Visualization" }
Visualization.__index = Visualization

-- v:read() -> the visualization's bytes (checked against its hash), or nil
-- and a message if its object is gone.
function Visualization:read()
  return core.read_object(self.hash, self.size)
end

Visualization.__tostring = function(v)
  return string.format("<Visualization %d %s (%d bytes) %s>", v.position, v.type, v.size, v.hash)
end

-- av.visualizations: { { position, type, hash, uri, size }, ... } in order.
client.getters[client.classes.ArtifactVersion].visualizations = function(av)
  local list = {}
  for i, row in ipairs(core.query("visualizations_of", av.id)) do
    list[i] = setmetatable({ position = row.position, type = row.type, hash = row.content_hash,
      uri = core.object_path(row.content_hash), size = row.size }, Visualization)
  end
  return list
end

-- ---- showing visualizations in a page ----

-- The rows of a CSV text (at most max of them) and whether there are more.
local function parse_csv(s, max)
  local rows, pos, n = {}, 1, #s
  while pos <= n and #rows < max do
    local row = {}
    while true do
      if s:sub(pos, pos) == '"' then
        local buf, p = {}, pos + 1
        while true do
          local q = s:find('"', p, true)
          if not q then buf[#buf + 1] = s:sub(p); pos = n + 1; break end
          buf[#buf + 1] = s:sub(p, q - 1)
          if s:sub(q + 1, q + 1) == '"' then
            buf[#buf + 1], p = '"', q + 2
          else
            pos = q + 1
            break
          end
        end
        row[#row + 1] = table.concat(buf)
        pos = s:find("[,\n]", pos) or n + 1
      else
        local e = s:find("[,\n]", pos) or n + 1
        row[#row + 1] = (s:sub(pos, e - 1):gsub("\r$", ""))
        pos = e
      end
      local sep = s:sub(pos, pos)
      pos = pos + 1
      if sep ~= "," then break end
    end
    rows[#rows + 1] = row
  end
  return rows, pos <= n
end
M.parse_csv = parse_csv

-- Markdown as HTML: md4c renders it (runtime/visual.c), raw HTML in it
-- written as text and links kept only to safe URLs; text that is not
-- valid UTF-8 is made so first.
function M.markdown(text)
  return core.markdown(clean(text))
end

-- Rough height in pixels for an HTML visualization in its frame (no script
-- may measure it): rows of tables, lines of text.
local function frame_height(html)
  local _, rows = html:gsub("<tr", "")
  local _, lines = html:gsub("<br", "")
  local _, paras = html:gsub("<p[ >]", "")
  local _, heads = html:gsub("<h%d", "")
  local h = 24 + 22 * rows + 20 * lines + 22 * paras + 36 * heads
  if rows + lines + paras + heads == 0 then h = 120 + math.min(400, #html // 20) end
  return math.max(60, math.min(h, 640))
end

-- fragment(type, bytes) -> HTML to put in a page, safe whatever bytes hold:
-- user HTML goes into a sandboxed frame (no scripts, no same origin), SVG
-- into an <img> (which runs no script and loads nothing), CSV becomes an
-- escaped table, markdown HTML (see M.markdown), text a <pre>.
function M.fragment(t, bytes)
  if t == "html" then
    return string.format('<iframe class="viz-html" sandbox="" referrerpolicy="no-referrer" '
      .. 'title="HTML visualization" style="height:%dpx" srcdoc="%s"></iframe>',
      frame_height(bytes), esc(bytes))
  elseif t == "svg" then
    return '<img class="viz-svg" alt="SVG visualization" src="data:image/svg+xml;base64,'
      .. base64(clean(bytes)) .. '">'
  elseif t == "csv" then
    local rows, more = parse_csv(bytes, M.TABLE_ROWS + 1)
    local out = { '<div class="viz-csv"><table>' }
    for i, row in ipairs(rows) do
      local tag = i == 1 and "th" or "td"
      out[#out + 1] = "<tr>"
      for _, f in ipairs(row) do
        out[#out + 1] = "<" .. tag .. ">" .. esc(shorten(f, M.CELL_CHARS)) .. "</" .. tag .. ">"
      end
      out[#out + 1] = "</tr>"
    end
    out[#out + 1] = "</table>"
    if more then
      out[#out + 1] = string.format('<p class="note">the first %d rows of the CSV</p>', M.TABLE_ROWS)
    end
    out[#out + 1] = "</div>"
    return table.concat(out)
  elseif t == "markdown" then
    return '<div class="viz-markdown">' .. M.markdown(bytes) .. "</div>"
  end
  return '<pre class="viz-text">' .. esc(bytes) .. "</pre>"
end

local function size_text(n)
  if n < 1024 then return n .. " B" end
  if n < 1024 * 1024 then return string.format("%.1f KiB", n / 1024) end
  return string.format("%.1f MiB", n / 1024 / 1024)
end
M.size_text = size_text

-- The visualizations of av as HTML sections (for the dashboard and for
-- `lupine artifact visualize`).
function M.sections(av)
  local out = {}
  local list = av.visualizations
  if #list == 0 then return '<p class="note">This version has no visualizations.</p>' end
  for _, v in ipairs(list) do
    local bytes, msg = v:read()
    out[#out + 1] = string.format('<section class="viz" id="viz-%d"><h3>%d. %s <span class="note">%s · %s</span></h3>',
      v.position, v.position, esc(v.type), size_text(v.size), esc(v.hash:sub(1, 19)))
    out[#out + 1] = bytes and M.fragment(v.type, bytes)
      or ('<p class="error">cannot read it: ' .. esc(msg) .. "</p>")
    out[#out + 1] = "</section>"
  end
  return table.concat(out, "\n")
end

-- The style of the pages: the dashboard's and the visualize command's.
M.CSS = [[
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#2d2a4a;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#e8e4ff;text-decoration:none;font-weight:600}header .brand{font-size:17px;color:#fff}
main{padding:16px 24px;max-width:1400px}
h1{font-size:22px;margin:8px 0 12px}h2{font-size:17px;margin:22px 0 8px}h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #e0e0e0;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f2f2f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
[align=right]{text-align:right}[align=center]{text-align:center}
a{color:#3a3ab8}.note{color:#6e6e73;font-weight:normal}.error{color:#b00020;white-space:pre-wrap}
pre{background:#f4f4f6;border:1px solid #e0e0e0;padding:8px;overflow:auto;max-height:420px;white-space:pre-wrap}
.status{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff;background:#888}
.s-completed{background:#2e7d32}.s-cached{background:#1565c0}.s-failed{background:#c62828}.s-running{background:#ef8f00}
.s-skipped{background:#9e9e9e}.s-stopped{background:#6d4c41}
.tag{display:inline-block;background:#ece9ff;color:#2d2a4a;border-radius:4px;padding:0 6px;margin:0 3px 2px 0;font-size:12px}
iframe.viz-html{width:100%;border:1px solid #e0e0e0;background:#fff;resize:vertical}
img.viz-svg{max-width:100%;border:1px solid #e0e0e0;background:#fff}
section.viz{margin-bottom:18px}.graph{overflow:auto;background:#fff;border:1px solid #e0e0e0}
form.filters{display:flex;gap:10px;align-items:end;margin:8px 0 14px}form.filters label{display:flex;flex-direction:column;font-size:12px;color:#555}
dl.fields{display:grid;grid-template-columns:max-content auto;gap:3px 14px;margin:0}dl.fields dt{color:#6e6e73}dl.fields dd{margin:0;word-break:break-all}
]]

-- A whole page: title, CSS, body. No script, no external resource.
function M.page(title, body, head)
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
    .. '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    .. "style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'\">\n"
    .. '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    .. (head or "") .. "<title>" .. esc(title) .. "</title>\n<style>" .. M.CSS .. "</style></head>\n"
    .. "<body>\n" .. body .. "\n</body></html>\n"
end

-- document(av) -> one self-contained HTML page with av's visualizations.
function M.document(av)
  local body = string.format('<main><h1>%s <span class="note">version %s</span></h1>\n'
    .. '<p class="note">%s · %s · %s · created %s</p>\n%s</main>',
    esc(av.name), esc(av.version), esc(av.id), esc(av.type), esc(av.data_type), esc(av.created),
    M.sections(av))
  return M.page(av.name .. ":" .. av.version, body)
end

return M
