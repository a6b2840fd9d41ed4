-- SPDX-License-Identifier: MIT
-- lupine.chart: a plot drawn as SVG (the description lupine.plot checks in
-- lua/lupine/viz.lua).
--
-- Everything is placed before it is drawn: the axes' ticks and their labels
-- first, then the margins that hold them, so that no text reaches past the
-- image's edge. Text cannot be measured where the SVG is made, so its width
-- is estimated from above (text_w). Ticks are "nice": 1, 2 or 5 times a
-- power of ten, decades on a log scale, whole seconds, minutes, hours,
-- days, weeks, months or years on a time axis, and no more of them than
-- keeps their labels apart. Bars whose labels do not fit side by side get
-- their labels turned, or are laid on their side.

local core = require "lupine.core"
local viz = require "lupine.viz"

local esc, clean, num_text, time_of = viz.esc, viz.clean, viz.num_text, viz.time_of

local M = {}

local W, H = 640, 400   -- the image; horizontal bars and turned labels make it taller
local COLORS = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf" }
M.LINE_POINTS, M.SCATTER_POINTS = 1200, 5000   -- the plot is about 550 px wide
local HBARS_MAX = 60      -- categories drawn as horizontal bars at most
local TURNED_MAX = 170    -- px: the longest label turned by 45 degrees
local SIDE_MAX = 290      -- px: the longest label beside a horizontal bar
local DAY = 86400

local function f1(x) return (string.format("%.1f", x):gsub("%.0$", "")) end
local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end
local function log10(x) return math.log(x, 10) end

-- ---- text ----

-- Widths in pixels at font size 12 of the printable ASCII characters (32 to
-- 126): the larger of DejaVu Sans's and Liberation Sans's (Arial's
-- metrics), the widest and the most common sans-serif fonts, rounded up.
local ASCII_W = {
  3.9, 4.9, 5.6, 10.1, 7.7, 11.4, 9.4, 3.3, 4.7, 4.7, 6, 10.1, 3.9, 4.4, 3.9, 4.1,  --  !"#$%&'()*+,-./
  7.7, 7.7, 7.7, 7.7, 7.7, 7.7, 7.7, 7.7, 7.7, 7.7, 4.1, 4.1, 10.1, 10.1, 10.1, 6.7,  -- 0-9:;<=>?
  12.2, 8.3, 8.3, 8.7, 9.3, 8, 7.4, 9.4, 9.1, 3.6, 6, 8, 6.7, 10.4, 9, 9.5,  -- @A-O
  8, 9.5, 8.7, 8, 7.4, 8.8, 8.3, 11.9, 8.3, 8, 8.3, 4.7, 4.1, 4.7, 10.1, 6.7,  -- P-Z[\]^_
  6, 7.4, 7.7, 6.6, 7.7, 7.4, 4.3, 7.7, 7.7, 3.4, 3.4, 7, 3.4, 11.7, 7.7, 7.4,  -- `a-o
  7.7, 7.7, 5, 6.3, 4.8, 7.7, 7.1, 9.9, 7.1, 7.1, 6.3, 7.7, 4.1, 7.7, 10.1,  -- p-z{|}~
}
local BOLD = 1.15   -- bold text is at most this much wider

-- The width of the (clean) text s at font size size (default 12),
-- estimated from above: ASCII by the table, any other character as an em
-- (a CJK character's width; most others are narrower).
local function text_w(s, size)
  local w = 0
  for i = 1, #s do
    local b = s:byte(i)
    if b >= 32 and b < 127 then w = w + ASCII_W[b - 31]
    elseif b >= 0xC0 then w = w + 12 end
  end
  return w * (size or 12) / 12
end
M.text_w = text_w

-- s (any bytes) made clean, and cut with "…" to at most px wide; and
-- whether it was cut.
local function fit(s, px, size)
  s = clean(s)
  if text_w(s, size) <= px then return s, false end
  local room, out, w = px - text_w("…", size), {}, 0
  for _, c in utf8.codes(s) do
    local ch = utf8.char(c)
    w = w + text_w(ch, size)
    if w > room then break end
    out[#out + 1] = ch
  end
  return table.concat(out) .. "…", true
end

-- ---- numbers ----

local SI = { "k", "M", "G", "T", "P", "E" }

-- x with decimals digits after the point and "," between thousands; the
-- sign only if x does not show as zero.
local function grouped(x, decimals)
  local s = string.format("%." .. decimals .. "f", math.abs(x))
  local int, frac = s:match("^(%d+)(.*)$")
  int = int:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return ((x < 0 and s:find("[1-9]")) and "-" or "") .. int .. frac
end

-- The labels of ticks step apart (step: 1, 2 or 5 times 10^e): as many
-- decimals as the step has; on an axis reaching 10,000, from 1,000 up with
-- an SI prefix ("500", "1k", "1.5k"; "3.5M", "1.76G") when that takes at
-- most two decimals, else thousands grouped ("1,765,000,020"); in e
-- notation past 10^21 and below 10^-9.
local function number_labels(list, step)
  local top = 0
  for _, v in ipairs(list) do top = math.max(top, math.abs(v)) end
  local e = math.floor(log10(step) + 1e-9)
  local out = {}
  if top >= 1e4 and top < 1e21 and 3 * math.min(#SI, math.floor(log10(top) / 3 + 1e-9)) - e <= 2 then
    for i, v in ipairs(list) do
      local k = v == 0 and 0 or math.max(0, math.min(#SI, math.floor(log10(math.abs(v)) / 3 + 1e-9)))
      local text = grouped(v / 1000 ^ k, math.max(0, 3 * k - e))
      if k > 0 then
        if text:find(".", 1, true) then text = text:gsub("0+$", ""):gsub("%.$", "") end
        text = text .. SI[k]
      end
      out[i] = text
    end
    return out
  end
  if top >= 1e21 or -e > 9 then
    local digits = math.max(0, math.floor(log10(top) + 1e-9) - e)
    for i, v in ipairs(list) do out[i] = v == 0 and "0" or string.format("%." .. digits .. "e", v) end
    return out
  end
  for i, v in ipairs(list) do out[i] = grouped(v, math.max(0, -e)) end
  return out
end
M.number_labels = number_labels

-- ---- scales ----
-- A scale places values along an axis: pos(v) is 0 at lo and 1 at hi; its
-- ticks have labels, and on a time axis with ticks under a day, the date
-- under the first tick of each day (dates[i], or false).

-- Ticks about n nice steps apart inside [lo, hi], widened by 5% at the ends
-- pad_lo and pad_hi say (a single value gets a range around it); integer:
-- no step under 1 (counts, positions 1, 2, ...).
local function linear(lo, hi, n, pad_lo, pad_hi, integer)
  if lo == hi then
    local d = lo == 0 and 1 or math.abs(lo) / 2
    lo, hi = lo - d, hi + d
  else
    local d = (hi - lo) * 0.05
    if pad_lo then lo = lo - d end
    if pad_hi then hi = hi + d end
  end
  -- the 1, 2, 5 or 10 times a power of ten nearest (by ratio) to 1/n of it
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(log10(raw))
  local r = raw / mag
  local step = mag * (r >= math.sqrt(50) and 10 or r >= math.sqrt(10) and 5 or r >= math.sqrt(2) and 2 or 1)
  if integer and step < 1 then step = 1 end
  local ticks = {}
  if finite(step) and step > 0 and (hi - lo) / step <= 100 then
    for k = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) do ticks[#ticks + 1] = k * step end
  end
  return { lo = lo, hi = hi, ticks = ticks, labels = number_labels(ticks, step),
    pos = function(v) return (v - lo) / (hi - lo) end }
end

-- Decades from the one at or below lo to the one at or above hi, with a
-- tick at each (every other one, or fewer, past 8), and at 2 and 5 times
-- them over two decades or fewer. bars: the smallest value stands above
-- the axis, so that its bar shows; counts: no ticks under 1.
local function logarithmic(lo, hi, bars, counts)
  local a, b = math.floor(log10(lo) + 1e-9), math.ceil(log10(hi) - 1e-9)
  if bars and 10 ^ a >= lo then a = a - 1 end
  if b <= a then b = a + 1 end
  local ticks, labels = {}, {}
  local every = math.ceil((b - a) / 8)
  for e = a, b, every do
    for _, m in ipairs(b - a <= 2 and { 1, 2, 5 } or { 1 }) do
      if (m == 1 or e < b) and not (counts and m * 10.0 ^ e < 1) then
        ticks[#ticks + 1] = m * 10.0 ^ e
        labels[#ticks] = number_labels({ m * 10.0 ^ e }, 10.0 ^ e)[1]
      end
    end
  end
  return { lo = 10.0 ^ a, hi = 10.0 ^ b, ticks = ticks, labels = labels, log = true,
    pos = function(v) return (log10(v) - a) / (b - a) end }
end

local TIME_STEPS = { 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
  21600, 43200, DAY, 2 * DAY, 7 * DAY }
local MONTH_STEPS = { 1, 2, 3, 6 }

local function utc(fmt, t) return os.date("!" .. fmt, math.floor(t)) end

-- Times in seconds since 1970 (UTC): ticks at whole seconds, minutes,
-- hours, days, weeks (from a Monday), months or years, about n of them in
-- [lo, hi] (widened by 5% at both ends if pad); labels say what the step
-- needs: "2025", "2025-03", "2025-03-14", "09:30" (the date under the
-- first tick of each day), "09:30:15".
local function timeline(lo, hi, n, pad)
  if lo == hi then lo, hi = lo - DAY / 2, hi + DAY / 2
  elseif pad then
    local d = (hi - lo) * 0.05
    lo, hi = lo - d, hi + d
  end
  local span, ticks, step = hi - lo, {}, nil
  for _, s in ipairs(TIME_STEPS) do
    if span / s <= n then step = s; break end
  end
  local fmt
  if step then
    local origin = step == 7 * DAY and 4 * DAY or 0   -- 1970-01-05 was a Monday
    for k = math.ceil((lo - origin) / step), math.floor((hi - origin) / step) do
      ticks[#ticks + 1] = origin + k * step
    end
    fmt = step >= DAY and "%Y-%m-%d" or step >= 60 and "%H:%M" or "%H:%M:%S"
  else
    local months
    for _, m in ipairs(MONTH_STEPS) do
      if span / (m * 30.44 * DAY) <= n then months = m; break end
    end
    if not months then   -- years: 1, 2 or 5 times a power of ten
      local years = 1
      while span / (years * 365.25 * DAY) > n do
        local mag = 10 ^ math.floor(log10(years))
        years = years == mag and 2 * mag or years == 2 * mag and 5 * mag or 10 * mag
      end
      months = math.floor(years) * 12
    end
    local first = os.date("!*t", math.floor(lo))
    local m = first.year * 12 + first.month - 1   -- months since the year 0
    m = -(-m // months) * months
    while true do
      local t = viz.days_from_civil(m // 12, m % 12 + 1, 1) * DAY
      if t > hi then break end
      if t >= lo then ticks[#ticks + 1] = t end
      m = m + months
    end
    fmt = months % 12 == 0 and "%Y" or "%Y-%m"
  end
  local labels, dates = {}, nil
  for i, t in ipairs(ticks) do labels[i] = utc(fmt, t) end
  if step and step < DAY then
    dates = {}
    for i, t in ipairs(ticks) do
      local day = utc("%Y-%m-%d", t)
      dates[i] = (i == 1 or day ~= utc("%Y-%m-%d", ticks[i - 1])) and day
    end
  end
  return { lo = lo, hi = hi, ticks = ticks, labels = labels, dates = dates, time = true,
    pos = function(v) return (v - lo) / (hi - lo) end }
end

-- Do the labels of scale s keep 20 px apart along an axis len px long?
local function apart(s, len)
  local prev
  for i, t in ipairs(s.ticks) do
    local x = s.pos(t) * len
    local w = math.max(text_w(s.labels[i]), s.dates and s.dates[i] and text_w(s.dates[i]) or 0)
    if prev and x - w / 2 < prev + 20 then return false end
    prev = x + w / 2
  end
  return true
end

-- The scale make(n) with the most ticks (n from 10 down) whose labels keep
-- apart along len px.
local function fitted(make, len)
  local s
  for n = 10, 2, -1 do
    s = make(n)
    if apart(s, len) then return s end
  end
  return s
end

-- ---- data ----

-- The points of a line (xs nil: 1, 2, ...) decimated to about LINE_POINTS:
-- the lowest and highest point of each bucket, in order, so the shape is
-- kept. Always returns an xs list.
local function decimate(xs, ys)
  local n = #ys
  if n <= M.LINE_POINTS then
    if xs then return xs, ys end
    local ix = {}
    for k = 1, n do ix[k] = k end
    return ix, ys
  end
  local bx, by = {}, {}
  for k, i in ipairs(core.extremes(ys, M.LINE_POINTS // 2)) do   -- never NaN or an infinity
    bx[k], by[k] = xs and xs[i] or i, ys[i]
  end
  return bx, by
end
M.decimate = decimate

-- Every stride-th point of a scatter (xs nil: 1, 2, ...).
local function sample(xs, ys, stride)
  local bx, by = {}, {}
  for k = 1, #ys, stride do bx[#bx + 1], by[#by + 1] = xs and xs[k] or k, ys[k] end
  return bx, by
end

-- The smallest and largest finite numbers of the lists (positive ones
-- only if positive), starting from lo and hi; and how many were left out
-- for not being positive.
local function range(lists, positive, lo, hi)
  local dropped = 0
  for _, l in ipairs(lists) do
    for _, v in ipairs(l) do
      if finite(v) then
        if positive and v <= 0 then dropped = dropped + 1
        else
          if not lo or v < lo then lo = v end
          if not hi or v > hi then hi = v end
        end
      end
    end
  end
  return lo, hi, dropped
end

-- ---- the picture ----

-- A chart being drawn: its elements in order, the margins around the plot
-- and what goes in them.
local Canvas = {}
Canvas.__index = Canvas

local function canvas(p, series)
  local c = setmetatable({ out = {}, p = p, series = series, notes = {}, h = H }, Canvas)
  c.legend = #series > 1 or series[1].name ~= nil
  c.lw = 0   -- the legend's width: it goes right of the plot
  if c.legend then
    c.names = {}
    for i, s in ipairs(series) do
      c.names[i] = fit(s.name or ("series " .. i), 190)
      c.lw = math.max(c.lw, text_w(c.names[i]) + 36)
    end
  end
  c.mt = p.title and 40 or 16
  c.mr = c.legend and c.lw + 18 or 16
  return c
end

function Canvas:add(fmt, ...) self.out[#self.out + 1] = string.format(fmt, ...) end

function Canvas:note(s) self.notes[#self.notes + 1] = s end

-- The y axis's labels, right-aligned at x, and grid lines across the plot.
function Canvas:y_axis(s, Y, x0, x1)
  self:add('<g class="y-axis">')
  for i, t in ipairs(s.ticks) do
    local y = f1(Y(t))
    self:add('<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#e5e5e5"/>', f1(x0), f1(x1), y, y)
    self:add('<text x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>',
      f1(x0 - 6), y, esc(s.labels[i]))
  end
  self:add("</g>")
end

-- The x axis's ticks and labels (and dates) under y0; grid lines up to y1
-- if grid.
function Canvas:x_axis(s, X, y0, y1, grid)
  self:add('<g class="x-axis">')
  for i, t in ipairs(s.ticks) do
    local x = f1(X(t))
    if grid then
      self:add('<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#e5e5e5"/>', x, x, f1(y1), f1(y0))
    end
    self:add('<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/>', x, x, f1(y0), f1(y0 + 5))
    self:add('<text x="%s" y="%s" text-anchor="middle">%s</text>', x, f1(y0 + 18), esc(s.labels[i]))
    if s.dates and s.dates[i] then
      self:add('<text x="%s" y="%s" text-anchor="middle" fill="#555">%s</text>', x, f1(y0 + 32),
        esc(s.dates[i]))
    end
  end
  self:add("</g>")
end

-- The widest label of scale s (its dates too).
local function widest(s)
  local w = 0
  for i, l in ipairs(s.labels) do
    w = math.max(w, text_w(l), s.dates and s.dates[i] and text_w(s.dates[i]) or 0)
  end
  return w
end

-- The plot's frame: the x axis at y0, the y axis at x0.
function Canvas:frame(x0, x1, y0, y1)
  self:add('<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/>', f1(x0), f1(x1), f1(y0), f1(y0))
  self:add('<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#333"/>', f1(x0), f1(x0), f1(y1), f1(y0))
end

-- The labels of the axes: under the plot (at y, centred on x0..x1) and
-- turned left of it (centred on top..base), each cut to what its place
-- holds.
function Canvas:axis_labels(bottom, left, x0, x1, y, top, base)
  if bottom then
    local x = (x0 + x1) / 2
    self:add('<text x="%s" y="%s" text-anchor="middle">%s</text>', f1(x), f1(y),
      esc(fit(bottom, 2 * math.min(x, W - x) - 12)))
  end
  if left then
    self:add('<text transform="translate(18 %s) rotate(-90)" text-anchor="middle">%s</text>',
      f1((top + base) / 2), esc(fit(left, base - top)))
  end
end

-- The whole document: the header, the title, what was drawn, the legend
-- and the notes.
function Canvas:finish()
  local p, head = self.p, {}
  local function add(fmt, ...) head[#head + 1] = string.format(fmt, ...) end
  local h = math.ceil(self.h)
  if self.legend then h = math.max(h, self.mt + 12 + 18 * #self.series) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="sans-serif" font-size="12" role="img">', W, h, W, h)
  add("<title>%s</title>", esc(p.title or (p.kind .. " plot")))
  add('<rect width="%d" height="%d" fill="#fff"/>', W, h)
  if p.title then
    local t = fit(p.title, W - 20, 15 * BOLD)
    add('<text x="%d" y="26" text-anchor="middle" font-size="15" font-weight="bold">%s</text>',
      W // 2, esc(t))
  end
  table.move(self.out, 1, #self.out, #head + 1, head)
  if self.legend then
    local lx, ly = W - self.lw - 8, self.mt
    add('<g class="legend"><rect x="%s" y="%d" width="%s" height="%d" fill="#fff" '
      .. 'fill-opacity="0.9" stroke="#ccc"/>', f1(lx), ly, f1(self.lw), 8 + 18 * #self.series)
    for i in ipairs(self.series) do
      local y = ly + 4 + 18 * (i - 1)
      add('<rect x="%s" y="%d" width="14" height="10" fill="%s"/>', f1(lx + 8), y + 3,
        COLORS[(i - 1) % #COLORS + 1])
      add('<text x="%s" y="%d">%s</text>', f1(lx + 28), y + 12, esc(self.names[i]))
    end
    add("</g>")
  end
  if #self.notes > 0 then
    add('<text x="6" y="%d" fill="#666" font-size="11">%s</text>', h - 5,
      esc(fit(table.concat(self.notes, "; "), W - 12, 11)))
  end
  add("</svg>")
  return table.concat(head, "\n")
end

-- The space under the plot: ticks and their labels (a second line for
-- dates), the axis label, the notes.
local function bottom_space(c, s, label)
  return 24 + (s and s.dates and 14 or 0) + (label and 20 or 0) + (#c.notes > 0 and 14 or 0)
end

local function no_data(c)
  local ml, mb = 40, 24
  local x1, y1 = W - c.mr, H - mb
  c:frame(ml, x1, y1, c.mt)
  c:add('<text x="%s" y="%s" text-anchor="middle" fill="#666">no data</text>', f1((ml + x1) / 2),
    f1((c.mt + y1) / 2))
  return c:finish()
end

-- The positions on the x axis as numbers (ISO 8601 times as seconds), and
-- whether they are times: xscale "time", or unset and any is a string or
-- all are in the years 2000 to 2099 as seconds since 1970.
local function positions(p, lists)
  local strings, epoch, any = false, true, false
  for _, l in ipairs(lists) do
    for _, v in ipairs(l) do
      if type(v) == "string" then strings = true
      elseif finite(v) then
        any = true
        if v < viz.EPOCH_FROM or v >= viz.EPOCH_TO then epoch = false end
      end
    end
  end
  local time = p.xscale == "time" or (p.xscale == nil and (strings or (any and epoch)))
  if strings then
    for i, l in ipairs(lists) do
      local out = {}
      for k, v in ipairs(l) do out[k] = type(v) == "string" and time_of(v) or v end
      lists[i] = out
    end
  end
  return time
end

-- Line, scatter and histogram: numbers (or times) on both axes.
local function xy_chart(c, p, series)
  local xs_all, ys_all = {}, {}
  local ylog, xlog = p.yscale == "log", p.xscale == "log"
  local counts, bins, blo, width
  if p.kind == "hist" then
    for i, s in ipairs(series) do xs_all[i] = s.x end
    local time = positions(p, xs_all)
    local lo, hi = range(xs_all)
    if not lo then return no_data(c) end
    bins = p.bins or 10
    if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
    blo, width = lo, (hi - lo) / bins
    counts = {}
    for i in ipairs(series) do
      local cs = {}
      for b = 1, bins do cs[b] = 0 end
      for _, v in ipairs(xs_all[i]) do
        if finite(v) then
          local b = math.min(bins, math.floor((v - lo) / width) + 1)
          cs[b] = cs[b] + 1
        end
      end
      counts[i] = cs
    end
    xs_all, ys_all = { { lo, hi } }, counts
    c.time = time
  else
    for i, s in ipairs(series) do
      if p.kind == "line" then
        xs_all[i], ys_all[i] = decimate(s.x, s.y)
      else
        local stride = math.max(1, math.ceil(#s.y / M.SCATTER_POINTS))
        if stride > 1 then c:note(string.format("showing every %dth of %d points", stride, #s.y)) end
        xs_all[i], ys_all[i] = sample(s.x, s.y, stride)
      end
    end
    c.time = positions(p, xs_all)
  end
  local xlo, xhi, xdropped = range(xs_all, xlog)
  local ylo, yhi, ydropped = range(ys_all, ylog and p.kind ~= "hist")   -- (empty bins are no values)
  if p.kind == "hist" then ylo = 0 end
  if xdropped + ydropped > 0 then
    c:note(string.format("%d value%s at or below 0 left out of the log scale", xdropped + ydropped,
      xdropped + ydropped == 1 and "" or "s"))
  end
  if not xlo or not ylo or not yhi or (ylog and yhi <= 0) then return no_data(c) end
  local ys
  if ylog then ys = logarithmic(p.kind == "hist" and 1 or ylo, yhi, p.kind == "hist", p.kind == "hist")
  else ys = linear(ylo, yhi, 5, p.kind ~= "hist", true, p.kind == "hist") end
  local ml = (p.ylabel and 28 or 6) + widest(ys) + 8
  local integer = not c.time and not xlog and p.kind ~= "hist"
  if integer then
    for _, l in ipairs(xs_all) do
      for _, v in ipairs(l) do
        if finite(v) and v ~= math.floor(v) then integer = false; break end
      end
    end
  end
  local function make(n)
    if c.time then return timeline(xlo, xhi, n, p.kind ~= "hist") end
    if xlog then return logarithmic(xlo, xhi) end
    return linear(xlo, xhi, n, p.kind ~= "hist", p.kind ~= "hist", integer)
  end
  local xs = fitted(make, W - ml - c.mr)
  -- the first and last x labels (and dates) stay inside the image
  local n = #xs.ticks
  local function half(i)
    return math.max(text_w(xs.labels[i]), xs.dates and xs.dates[i] and text_w(xs.dates[i]) or 0) / 2
  end
  for _ = 1, 3 do
    local pw = W - ml - c.mr
    if n > 0 then
      ml = math.max(ml, half(1) + 4 - xs.pos(xs.ticks[1]) * pw)
      c.mr = math.max(c.mr, half(n) + 4 - (1 - xs.pos(xs.ticks[n])) * pw)
    end
  end
  local label = p.xlabel or (c.time and "time (UTC)")
  local mb = bottom_space(c, xs, label)
  local x0, x1, y0, y1 = ml, W - c.mr, H - mb, c.mt
  local pw, ph = x1 - x0, y0 - y1
  local function X(v) return x0 + xs.pos(v) * pw end
  local function Y(v) return y0 - ys.pos(v) * ph end
  c:y_axis(ys, Y, x0, x1)
  if p.kind == "hist" then
    for i, cs in ipairs(counts) do
      local color = COLORS[(i - 1) % #COLORS + 1]
      for b = 1, bins do
        if cs[b] > 0 then
          local a, z = blo + (b - 1) * width, blo + b * width
          local top, base = Y(cs[b]), ylog and y0 or Y(0)
          c:add('<rect x="%s" y="%s" width="%s" height="%s" fill="%s" fill-opacity="%s" '
            .. 'stroke="#fff"><title>%s to %s: %d</title></rect>', f1(X(a)), f1(top), f1(X(z) - X(a)),
            f1(base - top), color, #series > 1 and "0.55" or "1",
            esc(c.time and utc("%Y-%m-%dT%H:%M:%SZ", a) or string.format("%.6g", a)),
            esc(c.time and utc("%Y-%m-%dT%H:%M:%SZ", z) or string.format("%.6g", z)), cs[b])
        end
      end
    end
  else
    local function shown(x, y)
      return finite(x) and finite(y) and (not xlog or x > 0) and (not ylog or y > 0)
    end
    for i = 1, #series do
      local color = COLORS[(i - 1) % #COLORS + 1]
      local xv, yv = xs_all[i], ys_all[i]
      if p.kind == "line" then
        local pts = {}
        local function flush()
          if #pts > 0 then
            c:add('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>', color,
              table.concat(pts, " "))
          end
          pts = {}
        end
        for k = 1, #yv do
          if shown(xv[k], yv[k]) then pts[#pts + 1] = f1(X(xv[k])) .. "," .. f1(Y(yv[k]))
          else flush() end
        end
        flush()
      end
      if p.kind == "scatter" or #yv <= 50 then
        for k = 1, #yv do
          if shown(xv[k], yv[k]) then
            c:add('<circle cx="%s" cy="%s" r="3" fill="%s"%s/>', f1(X(xv[k])), f1(Y(yv[k])), color,
              p.kind == "scatter" and ' fill-opacity="0.75"' or "")
          end
        end
      end
    end
  end
  c:frame(x0, x1, y0, y1)
  c:x_axis(xs, X, y0, y1)
  c:axis_labels(label, p.ylabel, x0, x1, H - 8 - (#c.notes > 0 and 14 or 0), y1, y0)
  return c:finish()
end

-- How the categories of a bar chart are laid out: "flat" labels under
-- upright bars if they fit side by side; "turned" by 45 degrees if they
-- are short enough and not too many; "side" (horizontal bars, labels left
-- of them) for up to HBARS_MAX; else "down" (turned by 90 degrees, every
-- k-th).
local function bar_layout(labels, pw)
  local n, w = #labels, 0
  for _, l in ipairs(labels) do w = math.max(w, text_w(l)) end
  local group = pw / n
  if w + 6 <= group then return "flat" end
  if group >= 16 and w <= TURNED_MAX then return "turned" end
  if n <= HBARS_MAX then return "side" end
  return "down"
end

-- Bars: categories (labels) and their numbers, upright or on their side.
local function bar_chart(c, p, series)
  local n = 0
  for _, s in ipairs(series) do n = math.max(n, #s.y) end
  if n == 0 then return no_data(c) end
  local labels, full = {}, {}
  for k = 1, n do
    local l = p.x and p.x[k]
    full[k] = clean(l == nil and tostring(k) or type(l) == "number" and num_text(l) or l)
  end
  local lists = {}
  for i, s in ipairs(series) do lists[i] = s.y end
  local ylog = p.yscale == "log"
  local lo, hi, dropped = range(lists, ylog, not ylog and 0 or nil, not ylog and 0 or nil)
  if dropped > 0 then
    c:note(string.format("%d value%s at or below 0 left out of the log scale", dropped,
      dropped == 1 and "" or "s"))
  end
  if not lo then return no_data(c) end
  local function scale(n_ticks)
    if ylog then return logarithmic(lo, hi, true) end
    return linear(lo, hi, n_ticks, lo < 0, hi > 0)
  end
  local nseries = #series
  -- a bar's title: its label, its series' name, its number as it is
  local function bar(x, y, w, h, color, k, i, v)
    c:add('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s%s: %s</title></rect>',
      f1(x), f1(y), f1(math.max(w, 1)), f1(h), color, esc(full[k]),
      series[i].name and (" (" .. esc(series[i].name) .. ")") or "", esc(num_text(v)))
  end
  -- a category's label, placed by attrs, its whole text in a tooltip if cut
  local function label(k, attrs)
    c:add("<text %s>%s%s</text>", attrs, esc(labels[k]),
      labels[k] ~= full[k] and ("<title>" .. esc(full[k]) .. "</title>") or "")
  end
  local ys = scale(5)
  local ml = (p.ylabel and 28 or 6) + widest(ys) + 8
  local layout = bar_layout(full, W - ml - c.mr)
  if layout == "side" then
    -- categories down the left, numbers along the bottom
    local wl = 0
    for k = 1, n do
      labels[k] = fit(full[k], SIDE_MAX)
      wl = math.max(wl, text_w(labels[k]))
    end
    ml = (p.xlabel and 28 or 6) + wl + 8
    local xs = fitted(scale, W - ml - c.mr)
    local last = xs.ticks[#xs.ticks]
    if last then
      c.mr = math.max(c.mr, text_w(xs.labels[#xs.ticks]) / 2 + 4 - (1 - xs.pos(last)) * (W - ml - c.mr))
    end
    local row = math.max(22, 6 + 14 * nseries)
    local mb = bottom_space(c, xs, p.ylabel)
    local x0, x1, y1 = ml, W - c.mr, c.mt
    local y0 = y1 + row * n
    c.h = y0 + mb
    local pw = x1 - x0
    local function X(v) return x0 + xs.pos(v) * pw end
    c:x_axis(xs, X, y0, y1, true)
    local base = ylog and x0 or X(0)
    local band = (row - 6) / nseries
    for i, s in ipairs(series) do
      local color = COLORS[(i - 1) % #COLORS + 1]
      for k = 1, #s.y do
        local v = s.y[k]
        if finite(v) and (not ylog or v > 0) then
          local xv = X(v)
          bar(math.min(base, xv), y1 + row * (k - 1) + 3 + band * (i - 1), math.abs(xv - base), band - 1,
            color, k, i, v)
        end
      end
    end
    c:add('<g class="categories">')
    for k = 1, n do
      label(k, string.format('x="%s" y="%s" text-anchor="end" dominant-baseline="middle"', f1(x0 - 6),
        f1(y1 + row * (k - 0.5))))
    end
    c:add("</g>")
    c:frame(x0, x1, y0, y1)
    c:axis_labels(p.ylabel, p.xlabel, x0, x1, c.h - 8 - (#c.notes > 0 and 14 or 0), y1, y0)
    return c:finish()
  end
  -- upright bars; labels under them flat, turned, or every k-th turned down
  local every, extra = 1, 0
  if layout == "flat" then
    for k = 1, n do labels[k] = full[k] end
  elseif layout == "turned" then
    for k = 1, n do
      labels[k] = fit(full[k], TURNED_MAX)
      extra = math.max(extra, text_w(labels[k]) * 0.71)
    end
    -- a label reaches left of its bar by its length: the first ones must
    -- not reach past the image's edge
    for _ = 1, 3 do
      local group = (W - ml - c.mr) / n
      for k = 1, n do
        ml = math.max(ml, text_w(labels[k]) * 0.71 - (k - 0.5) * group + 8)
      end
    end
  else
    every = math.ceil(16 / ((W - ml - c.mr) / n))
    for k = 1, n do
      labels[k] = fit(full[k], TURNED_MAX)
      extra = math.max(extra, text_w(labels[k]))
    end
  end
  local mb = bottom_space(c, nil, p.xlabel) + extra
  local x0, x1, y1 = ml, W - c.mr, c.mt
  c.h = H + extra
  local y0 = c.h - mb
  local pw, ph = x1 - x0, y0 - y1
  local function Y(v) return y0 - ys.pos(v) * ph end
  c:y_axis(ys, Y, x0, x1)
  local group = pw / n
  local bw = group * 0.8 / nseries
  local base = ylog and y0 or Y(0)
  for i, s in ipairs(series) do
    local color = COLORS[(i - 1) % #COLORS + 1]
    for k = 1, #s.y do
      local v = s.y[k]
      if finite(v) and (not ylog or v > 0) then
        local yv = Y(v)
        bar(x0 + group * (k - 1) + group * 0.1 + bw * (i - 1), math.min(base, yv), bw - 1,
          math.abs(yv - base), color, k, i, v)
      end
    end
  end
  c:add('<g class="categories">')
  for k = 1, n, every do
    local x = x0 + group * (k - 0.5)
    if layout == "flat" then
      label(k, string.format('x="%s" y="%s" text-anchor="middle"', f1(x), f1(y0 + 18)))
    elseif layout == "turned" then
      label(k, string.format('transform="translate(%s %s) rotate(-45)" text-anchor="end"', f1(x + 4),
        f1(y0 + 12)))
    else
      label(k, string.format('transform="translate(%s %s) rotate(-90)" text-anchor="end" '
        .. 'dominant-baseline="middle"', f1(x), f1(y0 + 8)))
    end
  end
  c:add("</g>")
  c:frame(x0, x1, y0, y1)
  c:axis_labels(p.xlabel, p.ylabel, x0, x1, c.h - 8 - (#c.notes > 0 and 14 or 0), y1, y0)
  return c:finish()
end

-- svg(p, note) -> the SVG document of the checked plot description p;
-- note: a line to add under it (what the caller left out).
function M.svg(p, note)
  local series = p.series or { { x = p.x, y = p.y } }
  local c = canvas(p, series)
  if note then c:note(note) end
  if p.kind == "bar" then return bar_chart(c, p, series) end
  return xy_chart(c, p, series)
end

return M
