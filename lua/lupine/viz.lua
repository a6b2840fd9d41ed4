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
--   a map of names to numbers: an SVG bar chart;
--   a string (valid UTF-8): text. Markdown is never guessed.
-- Explicit kinds: lupine.HTMLString(s), MarkdownString, CSVString, SVGString
-- make the table { _kind = "html", text = s } (with a metatable whose
-- __tostring gives s); stored, it is that plain table, and compute knows it
-- by its shape, so the kind survives the round trip with no codec support.
-- lupine.plot { ... } makes { _kind = "plot", kind = ..., ... }, rendered to
-- SVG here.
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
M.TYPES = { html = true, svg = true, csv = true, markdown = true, text = true }

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

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

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
  xlabel = true, ylabel = true, bins = true }
local SERIES_FIELDS = { name = true, x = true, y = true }
local PLOT_KINDS = { "bar", "hist", "line", "scatter" }
M.PLOT_MAX_BINS = 1000

local is_seq = core.is_sequence   -- is_seq(t) -> t is a sequence, its number of keys

-- A copy of list, checked: a sequence whose items pass ok.
local function check_list(list, what, expected, ok, level)
  if type(list) ~= "table" then
    fail(level + 1, "plot: %s must be a list of %s (got %s)", what, expected, type(list))
  end
  if not is_seq(list) then fail(level + 1, "plot: %s must be a list of %s (it has other keys)", what, expected) end
  local out = {}
  for i = 1, #list do
    if not ok(list[i]) then
      fail(level + 1, "plot: %s[%d] is not a %s (got %s)", what, i,
        expected:gsub("s$", ""), type(list[i]))
    end
    out[i] = list[i]
  end
  return out
end

local function is_number(v) return type(v) == "number" end
local function is_label(v) return type(v) == "number" or type(v) == "string" end

local function check_string(p, k, level)
  if p[k] ~= nil and type(p[k]) ~= "string" then
    fail(level + 1, "plot: %s must be a string (got %s)", k, type(p[k]))
  end
  return p[k]
end

-- The checked description of a plot (see README, "Plots"); raises naming
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
  if spec.bins ~= nil then
    if kind ~= "hist" then fail(level + 1, "plot: bins is for kind 'hist'") end
    if math.type(spec.bins) ~= "integer" or spec.bins < 1 or spec.bins > M.PLOT_MAX_BINS then
      fail(level + 1, "plot: bins must be an integer from 1 to %d (got %s)", M.PLOT_MAX_BINS,
        tostring(spec.bins))
    end
    p.bins = spec.bins
  end
  local xok, xwhat = is_number, "numbers"
  if kind == "bar" then xok, xwhat = is_label, "labels" end
  -- one series: its x and y checked against each other; what names it
  local function series(s, what, default_x)
    local out = { name = s.name }
    if kind == "hist" then
      if s.y ~= nil then fail(level + 2, "plot: a hist takes its values in %sx, not y", what) end
      if s.x == nil then fail(level + 2, "plot: %sx is missing", what) end
      out.x = check_list(s.x, what .. "x", "numbers", is_number, level + 2)
      return out
    end
    if s.y == nil then fail(level + 2, "plot: %sy is missing", what) end
    out.y = check_list(s.y, what .. "y", "numbers", is_number, level + 2)
    local x = s.x or default_x
    if x ~= nil then
      local xname = s.x and (what .. "x") or "x"
      out.x = check_list(x, xname, xwhat, xok, level + 2)
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
    if spec.x ~= nil then p.x = check_list(spec.x, "x", xwhat, xok, level + 1) end
  else
    local one = series(spec, "", nil)
    p.x, p.y = one.x, one.y
  end
  return p
end

-- plot { kind = "line"|"bar"|"scatter"|"hist", x = {...}, y = {...},
--        series = { { name, x, y }, ... }, title, xlabel, ylabel, bins }
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
  return check_plot(v, 2)
end

-- ---- SVG rendering ----

local W, H = 640, 400
local COLORS = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf" }
local LINE_POINTS, SCATTER_POINTS = 1200, 5000   -- the plot is about 550 px wide

local function f1(x) return (string.format("%.1f", x):gsub("%.0$", "")) end

-- Ticks inside [lo, hi], about n "nice" steps apart (1, 2 or 5 times a
-- power of 10), and the axis range: [lo, hi] widened by pad of its length
-- at the ends pad_lo and pad_hi say (a single value gets a range around it).
local function ticks(lo, hi, n, pad_lo, pad_hi)
  if lo == hi then
    local d = lo == 0 and 1 or math.abs(lo) / 2
    lo, hi = lo - d, hi + d
  else
    local d = (hi - lo) * 0.05
    if pad_lo then lo = lo - d end
    if pad_hi then hi = hi + d end
  end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs { 1, 2, 5, 10 } do
    if m * mag >= raw then step = m * mag; break end
  end
  local list = {}
  for k = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) do list[#list + 1] = k * step end
  return list, lo, hi
end

local function tick_text(v)
  if math.abs(v) < 1e-12 then return "0" end
  return (string.format("%.6g", v))
end

-- Estimated width in pixels of text at font size 12.
local function text_w(s) return 7 * (utf8.len(s) or #s) end

-- The points of a line (xs nil: 1, 2, ...) decimated to about LINE_POINTS:
-- the lowest and highest point of each bucket, in order, so the shape is
-- kept. Always returns an xs list.
local function decimate(xs, ys)
  local n = #ys
  if n <= LINE_POINTS then
    if xs then return xs, ys end
    local ix = {}
    for k = 1, n do ix[k] = k end
    return ix, ys
  end
  local bx, by = {}, {}
  for k, i in ipairs(core.extremes(ys, LINE_POINTS // 2)) do   -- never NaN or an infinity
    bx[k], by[k] = xs and xs[i] or i, ys[i]
  end
  return bx, by
end

-- Every stride-th point of a scatter (xs nil: 1, 2, ...).
local function sample(xs, ys, stride)
  local bx, by = {}, {}
  for k = 1, #ys, stride do bx[#bx + 1], by[#by + 1] = xs and xs[k] or k, ys[k] end
  return bx, by
end

local function series_list(p)
  if p.series then return p.series end
  return { { x = p.x, y = p.y } }
end

-- Render a checked plot description as an SVG document.
local function render_plot(p)
  local out = {}
  local function add(s) out[#out + 1] = s end
  local series = series_list(p)
  local legend = #series > 1 or series[1].name ~= nil
  local lw = 0   -- the legend's width: it goes right of the plot
  if legend then
    for i, s in ipairs(series) do lw = math.max(lw, text_w(shorten(s.name or ("series " .. i), 24))) end
    lw = lw + 34
  end
  local ml, mr, mt, mb = p.ylabel and 78 or 62, legend and lw + 24 or 20, p.title and 42 or 20,
    p.xlabel and 56 or 38
  local pw, ph = W - ml - mr, H - mt - mb
  add(string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="sans-serif" font-size="12" role="img">', W, H, W, H))
  add("<title>" .. esc(p.title or (p.kind .. " plot")) .. "</title>")
  add(string.format('<rect width="%d" height="%d" fill="#fff"/>', W, H))
  if p.title then
    add(string.format('<text x="%s" y="26" text-anchor="middle" font-size="15" font-weight="bold">%s</text>',
      f1(ml + pw / 2), esc(p.title)))
  end
  if p.xlabel then
    add(string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', f1(ml + pw / 2), H - 12,
      esc(p.xlabel)))
  end
  if p.ylabel then
    add(string.format('<text transform="translate(18 %s) rotate(-90)" text-anchor="middle">%s</text>',
      f1(mt + ph / 2), esc(p.ylabel)))
  end
  local note
  -- the y axis: grid lines and labels for ticks over [ylo, yhi]
  local function y_axis(ylo, yhi, pad_lo, pad_hi)
    local list, lo, hi = ticks(ylo, yhi, 5, pad_lo, pad_hi)
    local function Y(v) return mt + ph - (v - lo) / (hi - lo) * ph end
    for _, t in ipairs(list) do
      add(string.format('<line x1="%d" x2="%d" y1="%s" y2="%s" stroke="#e5e5e5"/>', ml, ml + pw,
        f1(Y(t)), f1(Y(t))))
      add(string.format('<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>',
        ml - 6, f1(Y(t)), tick_text(t)))
    end
    return Y
  end
  local function x_axis_numeric(xlo, xhi, pad)
    local list, lo, hi = ticks(xlo, xhi, 6, pad, pad)
    local function X(v) return ml + (v - lo) / (hi - lo) * pw end
    for _, t in ipairs(list) do
      add(string.format('<line x1="%s" x2="%s" y1="%d" y2="%d" stroke="#333"/>', f1(X(t)), f1(X(t)),
        mt + ph, mt + ph + 5))
      add(string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', f1(X(t)), mt + ph + 18,
        tick_text(t)))
    end
    return X
  end
  local function frame()
    add(string.format('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>', ml, ml + pw, mt + ph, mt + ph))
    add(string.format('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>', ml, ml, mt, mt + ph))
  end
  local function range(lists, lo, hi)
    for _, l in ipairs(lists) do
      for _, v in ipairs(l) do
        if finite(v) then
          if not lo or v < lo then lo = v end
          if not hi or v > hi then hi = v end
        end
      end
    end
    return lo, hi
  end
  local function no_data()
    frame()
    add(string.format('<text x="%s" y="%s" text-anchor="middle" fill="#666">no data</text>',
      f1(ml + pw / 2), f1(mt + ph / 2)))
  end

  if p.kind == "line" or p.kind == "scatter" then
    local xs_all, ys_all = {}, {}
    for i, s in ipairs(series) do
      if p.kind == "line" then
        xs_all[i], ys_all[i] = decimate(s.x, s.y)
      else
        local stride = math.max(1, math.ceil(#s.y / SCATTER_POINTS))
        if stride > 1 then note = string.format("showing every %dth of %d points", stride, #s.y) end
        xs_all[i], ys_all[i] = sample(s.x, s.y, stride)
      end
    end
    local xlo, xhi = range(xs_all)
    local ylo, yhi = range(ys_all)
    if not xlo or not ylo then no_data() else
      local Y = y_axis(ylo, yhi, true, true)
      local X = x_axis_numeric(xlo, xhi, true)
      frame()
      for i = 1, #series do
        local color = COLORS[(i - 1) % #COLORS + 1]
        local xs, ys = xs_all[i], ys_all[i]
        if p.kind == "line" then
          local pts = {}
          local function flush()
            if #pts > 0 then
              add(string.format('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>',
                color, table.concat(pts, " ")))
            end
            pts = {}
          end
          for k = 1, #ys do
            if finite(xs[k]) and finite(ys[k]) then pts[#pts + 1] = f1(X(xs[k])) .. "," .. f1(Y(ys[k]))
            else flush() end
          end
          flush()
          if #ys <= 50 then
            for k = 1, #ys do
              if finite(xs[k]) and finite(ys[k]) then
                add(string.format('<circle cx="%s" cy="%s" r="3" fill="%s"/>', f1(X(xs[k])), f1(Y(ys[k])), color))
              end
            end
          end
        else
          for k = 1, #ys do
            if finite(xs[k]) and finite(ys[k]) then
              add(string.format('<circle cx="%s" cy="%s" r="3" fill="%s" fill-opacity="0.75"/>',
                f1(X(xs[k])), f1(Y(ys[k])), color))
            end
          end
        end
      end
    end
  elseif p.kind == "bar" then
    local labels = p.x
    local n = 0
    for _, s in ipairs(series) do n = math.max(n, #s.y) end
    if not labels then
      labels = {}
      for k = 1, n do labels[k] = k end
    end
    local lists = {}
    for i, s in ipairs(series) do lists[i] = s.y end
    local ylo, yhi = range(lists, 0, 0)
    if n == 0 then no_data() else
      local Y = y_axis(ylo, yhi, ylo < 0, yhi > 0)
      local group = pw / n
      local bw = group * 0.8 / #series
      local every = math.max(1, math.ceil(n * 60 / pw))   -- labels at least 60 px apart
      for k = 1, n do
        if (k - 1) % every == 0 then
          local label = shorten(type(labels[k]) == "number" and num_text(labels[k]) or labels[k],
            math.max(3, math.floor(group * every / 7)))
          add(string.format('<text x="%s" y="%d" text-anchor="middle">%s</text>', f1(ml + group * (k - 0.5)),
            mt + ph + 18, esc(label)))
        end
      end
      for i, s in ipairs(series) do
        local color = COLORS[(i - 1) % #COLORS + 1]
        for k = 1, #s.y do
          local v = s.y[k]
          if finite(v) then
            local x = ml + group * (k - 1) + group * 0.1 + bw * (i - 1)
            local y0, y1 = Y(0), Y(v)
            add(string.format('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s: %s</title></rect>',
              f1(x), f1(math.min(y0, y1)), f1(math.max(bw - 1, 1)), f1(math.abs(y1 - y0)), color,
              esc(type(labels[k]) == "number" and num_text(labels[k]) or tostring(labels[k] or k)),
              esc(num_text(v))))
          end
        end
      end
      frame()
    end
  else   -- hist
    local lists = {}
    for i, s in ipairs(series) do lists[i] = s.x end
    local lo, hi = range(lists)
    if not lo then no_data() else
      local bins = p.bins or 10
      if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
      local width = (hi - lo) / bins
      local counts, top = {}, 0
      for i, s in ipairs(series) do
        local c = {}
        for b = 1, bins do c[b] = 0 end
        for _, v in ipairs(s.x) do
          if finite(v) then
            local b = math.min(bins, math.floor((v - lo) / width) + 1)
            c[b] = c[b] + 1
            if c[b] > top then top = c[b] end
          end
        end
        counts[i] = c
      end
      local Y = y_axis(0, top, false, true)
      local X = x_axis_numeric(lo, hi, false)
      for i, c in ipairs(counts) do
        local color = COLORS[(i - 1) % #COLORS + 1]
        for b = 1, bins do
          if c[b] > 0 then
            local x0, x1 = X(lo + (b - 1) * width), X(lo + b * width)
            add(string.format('<rect x="%s" y="%s" width="%s" height="%s" fill="%s" fill-opacity="%s" '
              .. 'stroke="#fff"><title>%s to %s: %d</title></rect>', f1(x0), f1(Y(c[b])), f1(x1 - x0),
              f1(Y(0) - Y(c[b])), color, #series > 1 and "0.55" or "1",
              tick_text(lo + (b - 1) * width), tick_text(lo + b * width), c[b]))
          end
        end
      end
      frame()
    end
  end
  if legend then
    local lh = 8 + 18 * #series
    local lx, ly = W - lw - 10, mt
    add(string.format('<g class="legend"><rect x="%s" y="%d" width="%s" height="%d" fill="#fff" '
      .. 'fill-opacity="0.9" stroke="#ccc"/>', f1(lx), ly, f1(lw), lh))
    for i, s in ipairs(series) do
      local y = ly + 4 + 18 * (i - 1)
      add(string.format('<rect x="%s" y="%d" width="14" height="10" fill="%s"/>', f1(lx + 8), y + 3,
        COLORS[(i - 1) % #COLORS + 1]))
      add(string.format('<text x="%s" y="%d">%s</text>', f1(lx + 28), y + 12,
        esc(shorten(s.name or ("series " .. i), 24))))
    end
    add("</g>")
  end
  if note then
    add(string.format('<text x="%d" y="%d" text-anchor="end" fill="#666" font-size="11">%s</text>',
      W - mr, H - 4, esc(note)))
  end
  add("</svg>")
  return table.concat(out, "\n")
end

-- render_plot(p): the SVG of a plot (made by lupine.plot, or its stored
-- description).
function M.render_plot(p)
  if getmetatable(p) ~= Plot then p = check_plot(p, 2) end
  return render_plot(p)
end

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
  table.sort(cols)
  local rows = setmetatable({}, { __index = function(t, i)
    if math.type(i) ~= "integer" or i < 1 or i > len then return nil end
    local row = {}
    for _, c in ipairs(cols) do row[c] = v[c][i] end
    rawset(t, i, row)
    return row
  end })
  return cols, rows, len
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
  local seq, count = is_seq(v)
  local cols, rows, n = tabular(v, seq, count)
  if cols then
    local list = { { "html", table_html(cols, rows, n) }, { "csv", table_csv(cols, rows, n) } }
    local summary = summary_html(cols, rows, n)
    if summary then list[3] = { "html", summary } end
    return list
  end
  if count == 0 then return {} end
  if seq then
    if count > LINE_POINTS then
      -- decimating compares every value: that is the check that all are numbers
      local ok, xs, ys = pcall(decimate, nil, v)
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
  table.sort(keys)
  local ys = {}
  for i, k in ipairs(keys) do ys[i] = v[k] end
  return { { "svg", render_plot { kind = "bar", x = keys, y = ys } } }
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

-- Markdown, a small safe subset: headings, paragraphs, lists, fenced code,
-- `code`, **bold**, *italic* and [links](http...). Everything is escaped
-- first; no HTML passes through.
local function inline_md(s)
  s = esc(s)
  local codes = {}
  s = s:gsub("`([^`]+)`", function(c)
    codes[#codes + 1] = "<code>" .. c .. "</code>"
    return "\0" .. #codes .. "\0"
  end)
  s = s:gsub("%*%*(.-)%*%*", "<strong>%1</strong>")
  s = s:gsub("%*([^%*]+)%*", "<em>%1</em>")
  s = s:gsub("%[([^%]]+)%]%((https?://[^%s%)]+)%)", '<a href="%2" rel="noopener noreferrer">%1</a>')
  return (s:gsub("%z(%d+)%z", function(k) return codes[tonumber(k)] end))
end

function M.markdown(text)
  local out, para, list, code = {}, {}, nil, nil
  local function flush()
    if #para > 0 then out[#out + 1] = "<p>" .. inline_md(table.concat(para, " ")) .. "</p>" end
    para = {}
    if list then out[#out + 1] = "</" .. list .. ">"; list = nil end
  end
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    if code then
      if line:find("^```") then
        out[#out + 1] = "<pre><code>" .. esc(table.concat(code, "\n")) .. "</code></pre>"
        code = nil
      else
        code[#code + 1] = line
      end
    elseif line:find("^```") then
      flush()
      code = {}
    elseif line:find("^#+%s") and #line:match("^#+") <= 6 then
      flush()
      local level = #line:match("^#+")
      out[#out + 1] = string.format("<h%d>%s</h%d>", level, inline_md(line:match("^#+%s+(.-)%s*#*$")), level)
    elseif line:find("^%s*[-*+]%s") or line:find("^%s*%d+[.)]%s") then
      local tag = line:find("^%s*%d") and "ol" or "ul"
      if #para > 0 then out[#out + 1] = "<p>" .. inline_md(table.concat(para, " ")) .. "</p>"; para = {} end
      if list ~= tag then
        if list then out[#out + 1] = "</" .. list .. ">" end
        out[#out + 1] = "<" .. tag .. ">"
        list = tag
      end
      out[#out + 1] = "<li>" .. inline_md(line:gsub("^%s*[-*+%d]+[.)]?%s+", "", 1)) .. "</li>"
    elseif line:find("^%s*$") then
      flush()
    else
      if list then out[#out + 1] = "</" .. list .. ">"; list = nil end
      para[#para + 1] = line
    end
  end
  if code then out[#out + 1] = "<pre><code>" .. esc(table.concat(code, "\n")) .. "</code></pre>" end
  flush()
  return table.concat(out, "\n")
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
-- escaped table, markdown the escaped subset above, text a <pre>.
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
