-- SPDX-License-Identifier: MIT
-- Visualizations: computed from a value's shape, explicit kinds, plots,
-- limits, storage and `lupine artifact visualize`.
local H = require "helper"
local lupine = require "lupine"
local core = require "lupine.core"
local viz = require "lupine.viz"
local step, pipeline = lupine.step, lupine.pipeline

-- The { type, bytes } list of a value, as { types }, { bytes }.
local function computed(v)
  local types, bytes = {}, {}
  for i, item in ipairs(viz.compute(v)) do types[i], bytes[i] = item[1], item[2] end
  return types, bytes
end

local XSS = "<script>alert(1)</script>\"'"

describe("viz.compute", function()
  it("gives a table, a CSV and a summary for an array of records", function()
    local rows = { { metric = "accuracy", value = 0.95 }, { metric = "precision", value = 0.93 },
      { metric = "recall", value = 0.96 } }
    local types, bytes = computed(rows)
    assert.same({ "html", "csv", "html" }, types)
    assert.equal("metric,value\naccuracy,0.95\nprecision,0.93\nrecall,0.96\n", bytes[2])
    assert.matches("<th>metric</th><th>value</th>", bytes[1], 1, true)
    assert.matches('<tr><th>1</th><td>precision</td><td class="num">0.93</td></tr>', bytes[1], 1, true)
    assert.matches("3 rows, 2 columns", bytes[1], 1, true)
    -- the summary covers the numeric column only
    assert.matches("<th>value</th></tr>", bytes[3], 1, true)
    assert.not_matches("<th>metric</th>", bytes[3], 1, true)
    assert.matches('<tr><th>mean</th><td class="num">0.946667</td></tr>', bytes[3], 1, true)
  end)

  it("reads a map of equal-length columns as the same table", function()
    local _, by_rows = computed { { metric = "accuracy", value = 0.95 }, { metric = "recall", value = 0.96 } }
    local types, by_cols = computed { metric = { "accuracy", "recall" }, value = { 0.95, 0.96 } }
    assert.same({ "html", "csv", "html" }, types)
    assert.same(by_rows, by_cols)
    -- columns of different lengths, or rows with different keys, are not a table
    assert.same({}, (computed { a = { 1, 2 }, b = { 1 } }))
    assert.same({}, (computed { { a = 1 }, { b = 2 } }))
    assert.same({}, (computed { { a = 1 }, { a = { 1 } } }))
  end)

  it("summarizes numeric columns as pandas' describe() does", function()
    local d = viz.describe { 1, 2, 3, 4 }
    assert.equal(4, d.count)
    assert.equal(2.5, d.mean)
    assert.near(1.2909944487358056, d.std, 1e-15)   -- sample standard deviation
    assert.same({ 1, 1.75, 2.5, 3.25, 4 }, { d.min, d["25%"], d["50%"], d["75%"], d.max })
    d = viz.describe { 10, 0 / 0, 30 }                 -- NaN is left out
    assert.same({ 2, 20.0, 15.0, 25.0 }, { d.count, d.mean, d["25%"], d["75%"] })
    assert.near(14.142135623730951, d.std, 1e-12)
    d = viz.describe { 7 }
    assert.is_true(d.std ~= d.std)                     -- NaN with one value, as pandas
    local _, bytes = computed { { x = 1, y = "a" }, { x = 2, y = "b" }, { x = 3, y = "c" }, { x = 4, y = "d" } }
    for stat, text in pairs { count = "4", mean = "2.5", std = "1.29099", min = "1", ["25%"] = "1.75",
      ["50%"] = "2.5", ["75%"] = "3.25", max = "4" } do
      assert.matches("<tr><th>" .. stat .. '</th><td class="num">' .. text .. "</td></tr>", bytes[3], 1, true)
    end
  end)

  it("writes each number as the shortest text that reads back as it", function()
    for _, case in ipairs {
      { 0.95, "0.95" }, { 3.0, "3.0" }, { 1 / 3, "0.3333333333333333" }, { 0.1 + 0.2, "0.30000000000000004" },
      { 1e300, "1e+300" }, { -0.0, "-0.0" }, { 2 ^ 53, "9007199254740992.0" },
      { math.maxinteger, "9223372036854775807" }, { -7, "-7" }, { 5e-324, "5e-324" }, { 2.5e-320, "2.5e-320" }, { 2 ^ -24, "5.960464477539063e-08" },
      { 0 / 0, "NaN" }, { math.huge, "inf" }, { -math.huge, "-inf" },
    } do
      local text = core.number_text(case[1])
      assert.equal(case[2], text)
      if math.abs(case[1]) < math.huge then assert.equal(case[1], tonumber(text)) end
    end
    -- the fewest significant digits a text reading back as x can have: of
    -- each count, the nearest text and its two neighbours are tried
    local function fewest(x)
      for n = 1, 17 do
        local m, e = string.format("%." .. (n - 1) .. "e", math.abs(x)):match("^([%d.]+)e(.+)$")
        local d = math.tointeger(tonumber((m:gsub("%.", ""))))
        for _, c in ipairs { d - 1, d, d + 1 } do
          if tonumber(c .. "e" .. (tonumber(e) - n + 1)) == math.abs(x) then return n end
        end
      end
    end
    local function digits(text)
      local significant = text:gsub("e.*", ""):gsub("%.0$", ""):gsub("[^%d]", ""):gsub("^0+", ""):gsub("0+$", "")
      return math.max(#significant, 1)   -- zero has one
    end
    -- random doubles, subnormals among them, and every power of two (above
    -- one, texts that read back reach twice as far up as down)
    local xs = {}
    math.randomseed(7)
    for i = 1, 3000 do
      local x = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
      if i % 3 == 0 then x = math.floor(x * 1e6) / 1e6 end   -- fewer digits
      if i % 5 == 0 then x = math.random(1, 2 ^ 20) * 2 ^ -1074 end   -- subnormal
      xs[#xs + 1] = x
    end
    for k = -1074, 1023 do xs[#xs + 1] = 2.0 ^ k end
    xs[#xs + 1] = -2.0 ^ -24
    for _, x in ipairs(xs) do
      local text = core.number_text(x)
      assert.equal(x, tonumber(text))
      assert.equal(fewest(x), digits(text), text)
    end
    assert.error_matches(function() core.number_text("1") end, "number expected")
  end)

  it("describes empty and bad columns clearly", function()
    local d = viz.describe {}
    assert.equal(0, d.count)
    for _, k in ipairs { "mean", "std", "min", "25%", "50%", "75%", "max" } do
      assert.is_true(d[k] ~= d[k], k)   -- NaN, as pandas
    end
    d = viz.describe { 0 / 0, 5, -1, 2 }   -- sorted for the quartiles, NaN left out
    assert.same({ 3, -1, 0.5, 2.0, 3.5, 5 }, { d.count, d.min, d["25%"], d["50%"], d["75%"], d.max })
    -- against sorting: random lists with repeats, of every length up to 60 and a long one
    math.randomseed(11)
    local function reference(xs)
      local v = {}
      for _, x in ipairs(xs) do v[#v + 1] = x end
      table.sort(v)
      local function q(p)
        local pos = (#v - 1) * p
        local lo = math.floor(pos)
        local frac = pos - lo
        return frac == 0 and v[lo + 1] or v[lo + 1] + (v[lo + 2] - v[lo + 1]) * frac
      end
      return { v[1], q(0.25), q(0.5), q(0.75), v[#v] }
    end
    for n = 1, 61 do
      local xs = {}
      for i = 1, n == 61 and 100000 or n do
        xs[i] = math.random(3) == 1 and math.random(-3, 3) or (math.random() - 0.5) * 1e6
      end
      local got = viz.describe(xs)
      assert.same(reference(xs), { got.min, got["25%"], got["50%"], got["75%"], got.max })
    end
    assert.error_matches(function() viz.describe { 1, "x" } end, "item 2 is not a number")
    assert.error_matches(function() viz.describe { 1, "3" } end, "item 2 is not a number")
    assert.error_matches(function() core.csv({ { a = {} } }, { "a" }, 1, 100, 100) end,
      "column 'a': a table is not a scalar")
    assert.equal('x,y,z,w\n1,"a ""b""",true,\n',
      (core.csv({ { x = 1, y = 'a "b"', z = true, w = 0 / 0 } }, { "x", "y", "z", "w" }, 1, 100, 100)))
    assert.equal('x,y\n"a\0,""b""",c\0d\n', (core.csv({ { x = 'a\0,"b"', y = "c\0d" } }, { "x", "y" }, 1, 100, 100)))
    assert.equal("a\0b\n1\n", (core.csv({ { ["a\0b"] = 1, a = 2 } }, { "a\0b" }, 1, 100, 100)))   -- the whole name
    -- whole up to limit bytes; past it, the header and the rows that fit in cut bytes
    local rows = { { i = 1 }, { i = 2 }, { i = 3 }, { i = 4 }, { i = 5 } }
    assert.same({ "i\n1\n2\n3\n", 3 }, { core.csv(rows, { "i" }, 3, 8, 6) })
    assert.same({ "i\n1\n2\n", 2 }, { core.csv(rows, { "i" }, 5, 8, 6) })
    assert.same({ "i\n", 0 }, { core.csv(rows, { "i" }, 5, 3, 3) })
  end)

  it("finds each stretch's extremes, records' columns and sequences in C, as the Lua did", function()
    -- 2 buckets of 3: the lowest and highest finite of each, in index order
    assert.same({ 1, 3, 5 }, core.extremes({ 5, 0 / 0, 9, math.huge, 1, 1 }, 2))
    assert.same({ 2, 3 }, core.extremes({ 4, -1, 8 }, 1))
    assert.same({}, core.extremes({ 0 / 0, -math.huge }, 1))    -- nothing to draw
    assert.same({ 1, 2 }, core.extremes({ 2, 7 }, 5))            -- more buckets than points
    assert.error_matches(function() core.extremes({ 1, "2" }, 1) end, "item 2 is not a number")
    assert.error_matches(function() core.extremes({ 1 }, 0) end, "positive number of buckets")
    local cols = core.record_columns({ { a = 1, b = "x" }, { b = "y", a = true } }, 2)
    table.sort(cols)
    assert.same({ "a", "b" }, cols)
    for _, bad in ipairs {
      { { a = 1 }, { b = 1 } }, { { a = 1 }, { a = 1, b = 2 } }, { { a = 1, b = 2 }, { a = 1 } },
      { { a = {} } }, { { [1] = 1 } }, { {} }, { 1 }, { { a = 1 }, "row" },
    } do
      assert.is_nil(core.record_columns(bad, #bad))
    end
    assert.same({ true, 3 }, { core.is_sequence { 1, 2, 3 } })
    assert.same({ false, 3 }, { core.is_sequence { 1, 2, x = 3 } })
    assert.same({ true, 0 }, { core.is_sequence {} })
  end)

  it("shows the first rows of a long table and writes all of them as CSV", function()
    local rows = {}
    for i = 1, 250 do rows[i] = { i = i, sq = i * i } end
    local _, bytes = computed(rows)
    local _, trs = bytes[1]:gsub("<tr>", "")
    assert.equal(viz.TABLE_ROWS + 1, trs)   -- the header and the first 100 rows
    assert.matches("showing the first 100 of 250 rows, 2 columns", bytes[1], 1, true)
    local _, lines = bytes[2]:gsub("\n", "")
    assert.equal(251, lines)
    assert.matches("\n250,62500\n$", bytes[2])
  end)

  it("quotes CSV fields as RFC 4180 says", function()
    local _, bytes = computed { { a = 'say "hi"', b = "x,y", c = "two\nlines", d = " pad", e = 3.0,
      f = 0 / 0, g = true } }
    assert.equal('a,b,c,d,e,f,g\n"say ""hi""","x,y","two\nlines"," pad",3.0,,true\n', bytes[2])
  end)

  it("escapes every string of a value in the HTML it makes", function()
    local _, bytes = computed { { [XSS] = XSS, n = 1 } }
    for _, b in ipairs { bytes[1], bytes[3] } do assert.not_matches("<script>", b, 1, true) end
    assert.matches("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;", bytes[1], 1, true)
    local _, svg = computed { [XSS] = 1 }
    assert.not_matches("<script>", svg[1], 1, true)
    assert.matches("&lt;script&gt;", svg[1], 1, true)
  end)

  it("draws an array of numbers as a line chart and a map of numbers as a bar chart", function()
    -- a long one is drawn with the lowest and highest point of each stretch
    local long = {}
    for i = 1, 100000 do long[i] = math.sin(i / 5000) end
    long[77777] = 7
    local svg = viz.compute(long)[1][2]
    local pts = svg:match('<polyline [^>]*points="([^"]*)"')
    local _, n = pts:gsub(",", "")
    assert.is_true(n <= 1200, n)
    assert.matches('dominant%-baseline="middle">6</text>', svg)   -- the spike at 7 is kept
    local types, bytes = computed { 3, 1, 4, 1, 5 }
    assert.same({ "svg" }, types)
    assert.matches("^<svg xmlns=\"http://www.w3.org/2000/svg\"", bytes[1])
    assert.matches("<polyline ", bytes[1], 1, true)
    local _, dots = bytes[1]:gsub("<circle ", "")
    assert.equal(5, dots)
    types, bytes = computed { accuracy = 0.95, recall = 0.96, precision = 0.93 }
    assert.same({ "svg" }, types)
    local titles = {}
    for t in bytes[1]:gmatch("<rect [^>]*><title>(.-)</title>") do titles[#titles + 1] = t end
    assert.same({ "recall: 0.96", "accuracy: 0.95", "precision: 0.93" }, titles)   -- by value
  end)

  it("gives text for a string, markdown-looking or not, and nothing for other values", function()
    assert.same({ { "text", "# Title\n*hi*" } }, viz.compute("# Title\n*hi*"))
    local long = {}
    for i = 1, 5000 do long[i] = i end
    long[5000] = "5000"   -- a long array is checked as it is drawn
    for _, v in ipairs { 42, true, {}, { 1, "a" }, { a = { b = 1 } }, "\255\254", { x = 1, 2 }, long } do
      assert.same({}, viz.compute(v))
    end
    assert.same({}, viz.compute(nil))
  end)

  it("cuts a visualization over the limit, with a note saying so", function()
    local big = string.rep("abcdefgh\n", 2 * 1024 * 1024 // 9)
    local list = viz.compute(big)
    assert.equal("text", list[1][1])
    assert.is_true(#list[1][2] <= viz.MAX_BYTES)
    assert.matches("\n… cut: this text visualization was " .. #big .. " bytes, over the limit of "
      .. viz.MAX_BYTES .. "\n$", list[1][2])
    assert.equal(big:sub(1, 1000), list[1][2]:sub(1, 1000))
    -- HTML is cut between tags; SVG, which cannot be cut, becomes a note
    local long = "<p>" .. string.rep("<b>x</b>", viz.MAX_BYTES // 4)
    local html = viz.limited("html", long)
    assert.is_true(#html <= viz.MAX_BYTES)
    local note = '>\n<p style="color:#a00;font-weight:bold">… cut: this html visualization was '
      .. #long .. " bytes, over the limit of " .. viz.MAX_BYTES .. "</p>\n"
    assert.equal(#html - #note + 1, html:find(note, 1, true))
    local svg = viz.limited("svg", "<svg>" .. string.rep(" ", viz.MAX_BYTES) .. "</svg>")
    assert.matches("^<svg .*cut: this svg visualization was %d+ bytes, over the limit of 1048576</text></svg>$", svg)
    -- a CSV keeps whole rows
    local rows, long = {}, string.rep("y", 1000)
    for i = 1, 1500 do rows[i] = { i = i, s = long } end
    local _, bytes = computed(rows)
    assert.is_true(#bytes[2] <= viz.MAX_BYTES)
    local kept = tonumber(bytes[2]:match("the first (%d+) are above\n$"))
    assert.is_true(kept > 1000 and kept < 1500)
    assert.matches("\n" .. kept .. "," .. long .. "\n\n… cut: 1500 rows are over the limit of 1048576 bytes",
      bytes[2], 1, true)
  end)
end)

describe("explicit kinds", function()
  it("HTMLString, MarkdownString, CSVString and SVGString keep their kind", function()
    for fname, kind in pairs { HTMLString = "html", MarkdownString = "markdown", CSVString = "csv",
      SVGString = "svg" } do
      local v = lupine[fname]("a,b\n1,2")
      assert.equal("a,b\n1,2", tostring(v))
      assert.equal("a,b\n1,2", v.text)
      assert.equal("x: a,b\n1,2", "x: " .. v)
      assert.same({ { kind, "a,b\n1,2" } }, viz.compute(v))
      -- the plain table it is stored as is recognized too
      assert.same({ { kind, "a,b\n1,2" } }, viz.compute { _kind = kind, text = "a,b\n1,2" })
      assert.equal("bad argument #1 to '" .. fname .. "' (string expected, got number)",
        H.err(lupine[fname], 5))
    end
    assert.same({}, viz.compute { _kind = "html", text = "x", other = 1 })
  end)
end)

describe("lupine.plot", function()
  it("checks its description, naming the culprit", function()
    local cases = {
      { nil, "bad argument #1 to 'plot' (table expected, got nil)" },
      { { kind = "pie", y = { 1 } }, "plot: kind must be one of bar, hist, line, scatter (got 'pie')" },
      { { y = { 1, "2" } }, "plot: y[2] is not a number (got string)" },
      { { x = { 1, 2 }, y = { 1, 2, 3 } }, "plot: x has 2 values but y has 3" },
      { { y = { 1 }, colour = "red" }, "plot: unknown field 'colour'" },
      { { y = { 1 }, title = 5 }, "plot: title must be a string (got number)" },
      { {}, "plot: y is missing" },
      { { kind = "hist", y = { 1 } }, "plot: a hist takes its values in x, not y" },
      { { kind = "hist", x = { 1 }, bins = 0 }, "plot: bins must be an integer from 1 to 1000 (got 0)" },
      { { y = { 1 }, series = { { y = { 2 } } } }, "plot: give either y or series, not both" },
      { { series = { { name = "a", y = { 1, {} } } } }, "plot: series[1].y[2] is not a number (got table)" },
      { { kind = "bar", x = { "a", true }, y = { 1, 2 } }, "plot: x[2] is not a label (got boolean)" },
    }
    for _, c in ipairs(cases) do assert.equal(c[2], H.err(lupine.plot, c[1])) end
  end)

  it("renders axes, labels, a legend and escaped text", function()
    local p = lupine.plot { kind = "line", title = "Loss " .. XSS, xlabel = "epoch", ylabel = "loss",
      series = { { name = "train", y = { 1, 0.5, 0.25 } }, { name = "<val>", y = { 1.2, 0.8, 0.7 } } } }
    local svg = viz.render_plot(p)
    assert.not_matches("<script", svg, 1, true)
    assert.matches('<title>Loss &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;</title>', svg, 1, true)
    assert.matches(">epoch</text>", svg, 1, true)
    assert.matches(">loss</text>", svg, 1, true)
    assert.matches('<g class="legend">.*>train</text>.*>&lt;val&gt;</text>', svg)
    local _, lines = svg:gsub("<polyline ", "")
    assert.equal(2, lines)
    -- tick labels on both axes
    assert.matches('text%-anchor="end" dominant%-baseline="middle">0%.6</text>', svg)
    assert.matches('text%-anchor="middle">2</text>', svg)
  end)

  it("counts a histogram's values into bins", function()
    local svg = viz.render_plot(lupine.plot { kind = "hist", x = { 0, 1, 1, 2, 2, 2, 3, 3, 3, 3 }, bins = 4 })
    local counts = {}
    for c in svg:gmatch("<title>[^<]- to [^<]-: (%d+)</title>") do counts[#counts + 1] = tonumber(c) end
    assert.same({ 1, 2, 3, 4 }, counts)
  end)

  it("is stored as its description and visualized as SVG", function()
    H.fresh(lupine)
    local desc = { kind = "bar", x = { "a", "b" }, y = { 1, 2 }, title = "T" }
    local av = lupine.save_artifact(lupine.plot(desc), "chart")
    local back = av:load()
    assert.same({ _kind = "plot", kind = "bar", x = { "a", "b" }, y = { 1, 2 }, title = "T" }, back)
    assert.equal(1, #av.visualizations)
    assert.equal("svg", av.visualizations[1].type)
    assert.equal(viz.render_plot(back), av.visualizations[1]:read())
    -- a table that claims to be a plot but is not one is said so
    assert.same({ { "text", "no visualization: plot: y is missing" } }, viz.compute { _kind = "plot" })
  end)
end)

-- The texts of a group of an SVG chart ("x-axis", "y-axis", "categories"):
-- with pattern, what it captures of each element.
local function texts(svg, group, pattern)
  local open = '<g class="' .. group .. '">'
  local a = svg:find(open, 1, true)
  local out = {}
  if not a then return out end
  local g = svg:sub(a + #open, svg:find("</g>", a, true) - 1)
  for t in g:gmatch(pattern or "<text[^>]*>(.-)</text>") do out[#out + 1] = t end
  return out
end

-- The x axis's tick labels, without the dates under them.
local function x_ticks(svg) return texts(svg, "x-axis", '<text [^>]*text%-anchor="middle">(.-)</text>') end
local function x_dates(svg) return texts(svg, "x-axis", '<text [^>]*fill="#555">(.-)</text>') end
local function y_ticks(svg) return texts(svg, "y-axis") end
local function height(svg) return tonumber(svg:match('^<svg [^>]*height="(%d+)"')) end

describe("charts", function()
  it("label ticks with nice numbers: SI prefixes, thousands, as many decimals as the step", function()
    local svg = viz.render_plot { y = { 1e6, 3e6, 2.5e6, 4e6, 3.2e6 } }
    assert.same({ "1M", "1.5M", "2M", "2.5M", "3M", "3.5M", "4M" }, y_ticks(svg))   -- was 1e+06 ...
    assert.same({ "1", "2", "3", "4", "5" }, x_ticks(svg))         -- positions 1, 2, ...: whole steps
    svg = viz.render_plot { kind = "bar", x = { "a", "b" }, y = { 0.4e6, 1.2e6 } }
    assert.same({ "0", "200k", "400k", "600k", "800k", "1M", "1.2M" }, y_ticks(svg))
    assert.same({ "1,000", "2,000", "3,000", "4,000", "5,000" }, y_ticks(viz.render_plot { y = { 1200, 5300 } }))
    assert.same({ "0.0", "0.2", "0.4", "0.6", "0.8", "1.0" }, y_ticks(viz.render_plot { kind = "bar", x = { "a" }, y = { 1 } }))
    assert.same({ "-0.0010", "-0.0005", "0.0000", "0.0005", "0.0010" },
      y_ticks(viz.render_plot { y = { -0.001, 0.001 } }))
    -- large numbers close together: grouped, not 1.765e+09
    svg = viz.render_plot { kind = "scatter", x = { 1765000001, 1765000099 }, y = { 1, 2 }, xscale = "linear" }
    assert.same({ "1,765,000,000", "1,765,000,020", "1,765,000,040", "1,765,000,060", "1,765,000,080",
      "1,765,000,100" }, x_ticks(svg))
    svg = viz.render_plot { kind = "scatter", x = { 1.72e9, 1.79e9 }, y = { 1, 2 }, xscale = "linear" }
    assert.same({ "1.72G", "1.73G", "1.74G", "1.75G", "1.76G", "1.77G", "1.78G", "1.79G" }, x_ticks(svg))
    assert.same({ "0", "1e+22", "2e+22", "3e+22", "4e+22" }, y_ticks(viz.render_plot { kind = "bar", x = { 1 }, y = { 4e22 } }))
  end)

  it("draw a time axis for ISO 8601 times and for epoch seconds", function()
    -- seconds since 1970 in the years 2000 to 2099: six-hourly ticks, the
    -- date under the first and under midnight
    local xs, ys = {}, {}
    for i = 0, 24 do xs[i + 1], ys[i + 1] = 1765000000 + 3600 * i, i end
    local svg = viz.render_plot { x = xs, y = ys }
    assert.same({ "06:00", "12:00", "18:00", "00:00", "06:00" }, x_ticks(svg))
    assert.same({ "2025-12-06", "2025-12-07" }, x_dates(svg))
    assert.matches(">time %(UTC%)</text>", svg)
    -- ISO 8601 strings, zones taken into account: a week apart, from a Monday
    svg = viz.render_plot { kind = "scatter", x = { "2025-03-01", "2025-03-15T08:00:00Z",
      "2025-04-02T12:00:00+02:00" }, y = { 1, 2, 3 }, xlabel = "day" }
    assert.same({ "2025-03-03", "2025-03-10", "2025-03-17", "2025-03-24", "2025-03-31" }, x_ticks(svg))
    assert.same({}, x_dates(svg))
    assert.matches(">day</text>", svg)
    assert.same({ "2000", "2005", "2010", "2015", "2020", "2025" },
      x_ticks(viz.render_plot { x = { "2001-01-01", "2010-06-01", "2024-12-31" }, y = { 1, 5, 3 } }))
    assert.same({ "2025-01", "2025-02", "2025-03", "2025-04" },
      x_ticks(viz.render_plot { x = { "2025-01-05", "2025-03-30" }, y = { 1, 5 } }))
    -- xscale says otherwise
    assert.same({ "1,765,000,000", "1,765,050,000", "1,765,100,000" },
      x_ticks(viz.render_plot { x = { 1765000000, 1765100000 }, y = { 1, 2 }, xscale = "linear" }))
    -- the times read
    for text, t in pairs { ["1970-01-01"] = 0, ["2025-03-14"] = 1741910400, ["2025-03-14T09:30"] = 1741944600,
      ["2025-03-14 09:30:15.25+01:00"] = 1741941015.25, ["2025-03-14T09:30:15Z"] = 1741944615,
      ["2024-02-29T00:00:00-0130"] = 1709170200, ["2000-01-01T00:00:00+05"] = 946666800 } do
      assert.equal(t, viz.time_of(text), text)
    end
    for _, bad in ipairs { "2025-02-29", "2025-13-01", "2025-03-14T24:00", "2025-03-14T09:60", "2025-3-14",
      "2025-03-14T09:30+1", "2025-03-14X", "14/03/2025", "2025-03-14T09:30:15.", "" } do
      assert.is_nil(viz.time_of(bad), bad)
    end
  end)

  it("draw a log scale on request, and say what it leaves out", function()
    local svg = viz.render_plot { x = { 1, 2, 3, 4, 5, 6 }, y = { 1, 10, 150, 2000, 45000, 1e6 }, yscale = "log" }
    assert.same({ "1", "10", "100", "1,000", "10k", "100k", "1M" }, y_ticks(svg))
    svg = viz.render_plot { y = { 0, 1, 10, -5, 100 }, yscale = "log" }
    assert.same({ "1", "2", "5", "10", "20", "50", "100" }, y_ticks(svg))
    assert.matches(">2 values at or below 0 left out of the log scale</text>", svg)
    svg = viz.render_plot { kind = "scatter", x = { 0.001, 0.01, 1 }, y = { 1, 2, 3 }, xscale = "log" }
    assert.same({ "0.001", "0.01", "0.1", "1" }, x_ticks(svg))
    -- bars stand on the axis: the smallest shows, a count never goes under 1
    svg = viz.render_plot { kind = "bar", x = { "a", "b" }, y = { 10, 1000 }, yscale = "log" }
    assert.same({ "1", "10", "100", "1,000" }, y_ticks(svg))
    svg = viz.render_plot { kind = "hist", x = { 1, 2, 2, 3, 3, 3, 10 }, bins = 3, yscale = "log" }
    assert.same({ "1", "2", "5", "10" }, y_ticks(svg))
    for _, c in ipairs {
      { { y = { 1 }, yscale = "ln" }, "plot: yscale must be 'linear' or 'log' (got 'ln')" },
      { { y = { 1 }, xscale = 10 }, "plot: xscale must be 'linear', 'log' or 'time' (got number)" },
      { { kind = "bar", y = { 1 }, xscale = "log" }, "plot: xscale is not for kind 'bar' (its x are labels)" },
      { { kind = "hist", x = { 1 }, xscale = "log" }, "plot: xscale 'log' is for kinds line and scatter" },
      { { x = { 1, "2025-01-01" }, y = { 1, 2 }, xscale = "log" },
        "plot: x[2] is a time, which xscale 'log' cannot place" },
      { { x = { "2025-01-01", "yesterday" }, y = { 1, 2 } },
        "plot: x[2] is not a number or an ISO 8601 time (got 'yesterday')" },
    } do
      assert.equal(c[2], H.err(lupine.plot, c[1]))
    end
  end)

  it("turn labels, or lay bars on their side, when labels do not fit", function()
    local short, long, many = {}, {}, {}
    for i = 1, 25 do short["feature_" .. i] = i end
    for i = 1, 12 do long["region number " .. i .. " of the northern territories"] = i end
    for i = 1, 200 do many[i] = "category_" .. i end
    local few = viz.compute { a = 1, b = 2 }[1][2]
    assert.same({ "b", "a" }, texts(few, "categories", '<text [^>]*text%-anchor="middle">(.-)</text>'))
    -- 25 short labels: all of them, whole, turned by 45 degrees
    local svg = viz.compute(short)[1][2]
    local turned = texts(svg, "categories", '<text transform="translate%([%d.]+ [%d.]+%) rotate%(%-45%)" '
      .. 'text%-anchor="end">(.-)</text>')
    assert.equal(25, #turned)
    assert.equal("feature_25", turned[1])
    assert.is_true(height(svg) > 400, height(svg))   -- taller, to hold them
    -- long labels: horizontal bars, one row each, the image as tall as they need
    svg = viz.compute(long)[1][2]
    local side = texts(svg, "categories", '<text x="[%d.]+" y="[%d.]+" text%-anchor="end" '
      .. 'dominant%-baseline="middle">(.-)</text>')
    assert.same({ "region number 12 of the northern territories", "region number 11 of the northern territories" },
      { side[1], side[2] })
    assert.equal(12, #side)
    assert.is_true(height(svg) > 12 * 22, height(svg))
    -- longer still: cut with "…", the whole label in its tooltip
    svg = viz.render_plot { kind = "bar", x = { string.rep("word ", 20), "b" }, y = { 1, 2 } }
    assert.matches("^word word word .-…<title>" .. string.rep("word ", 20) .. "</title>$",
      texts(svg, "categories", '<text [^>]*text%-anchor="end"[^>]*>(.-)</text>')[1])
    -- 200 bars: every k-th label, turned down
    local ys = {}
    for i = 1, 200 do ys[i] = i end
    svg = viz.render_plot { kind = "bar", x = many, y = ys }
    local down = texts(svg, "categories", '<text transform="[^"]* rotate%(%-90%)" [^>]*>(.-)</text>')
    assert.same({ "category_1", "category_7", "category_13" }, { down[1], down[2], down[3] })
    assert.equal(34, #down)
  end)

  it("draw a map of numbers by value, by time or by number, and a plot's bars as given", function()
    local function order(v) return texts(viz.compute(v)[1][2], "categories",
      '<text [^>]*>(.-)</text>') end
    assert.same({ "c", "a", "b" }, order { a = 2, b = -1, c = 5 })
    assert.same({ "a", "c", "b" }, order { a = 1, b = 0 / 0, c = 1 })     -- NaN last, ties by name
    assert.same({ "2024-12-31", "2025-01-01T00:00:00+02:00", "2025-01-01" },
      order { ["2025-01-01"] = 1, ["2024-12-31"] = 9, ["2025-01-01T00:00:00+02:00"] = 5 })
    assert.same({ "-1", "2", "10", "10.5" }, order { ["10"] = 1, ["2"] = 2, ["-1"] = 3, ["10.5"] = 0 })
    assert.same({ "b", "a", "c" }, texts(viz.render_plot { kind = "bar", x = { "b", "a", "c" }, y = { 1, 3, 2 } },
      "categories"))
    -- many: the largest
    local big = {}
    for i = 1, 1000 do big["k" .. i] = i end
    local svg = viz.compute(big)[1][2]
    local shown = texts(svg, "categories", '<text [^>]*>(.-)</text>')
    assert.equal(viz.MAP_BARS, #shown)
    assert.same({ "k1000", "k999" }, { shown[1], shown[2] })
    assert.equal("k951", shown[50])
    assert.matches(">the 50 largest of 1000 numbers</text>", svg)
  end)
end)

describe("lupine.table", function()
  it("keeps the columns in the order given, in every visualization", function()
    local rows = { { name = "a", score = 1, id = 7 }, { name = "b", score = 3, id = 8 } }
    local t = lupine.table { columns = { "name", "score" }, rows }
    assert.same({ _kind = "table", columns = { "name", "score", "id" }, rows = rows }, t)
    assert.equal("<table: name, score, id>", tostring(t))
    local types, bytes = computed(t)
    assert.same({ "html", "csv", "html" }, types)
    assert.equal("name,score,id\na,1,7\nb,3,8\n", bytes[2])
    assert.matches("<th></th><th>name</th><th>score</th><th>id</th>", bytes[1], 1, true)
    assert.matches("<th></th><th>score</th><th>id</th></tr>", bytes[3], 1, true)
    -- a map of columns, and rows = ... for the rows
    local df = lupine.table { columns = { "value", "metric" }, rows = { metric = { "acc", "f1" }, value = { 0.9, 0.8 } } }
    assert.equal("value,metric\n0.9,acc\n0.8,f1\n", select(2, computed(df))[2])
    -- no rows yet: the header
    assert.equal("b,a\n", select(2, computed(lupine.table { columns = { "b", "a" }, {} }))[2])
  end)

  it("survives storage: the order is part of the value", function()
    H.fresh(lupine)
    local av = lupine.save_artifact(lupine.table { columns = { "z", "a" }, { { a = 1, z = 2 } } }, "ordered")
    local back = av:load()
    assert.same({ _kind = "table", columns = { "z", "a" }, rows = { { a = 1, z = 2 } } }, back)
    assert.equal("z,a\n2,1\n", av.visualizations[2]:read())
    -- loaded and saved again, it keeps its order
    assert.equal("z,a\n2,1\n", select(2, computed(back))[2])
  end)

  it("names the culprit of a bad table", function()
    for _, c in ipairs {
      { nil, "bad argument #1 to 'table' (table expected, got nil)" },
      { { columns = { "a" } }, "table: rows must be a list of records or a map of column names to lists of values (got nil)" },
      { { { { a = 1 } } }, "table: columns must be a non-empty list of column names (got nil)" },
      { { columns = { "a", "b" }, { { a = 1, b = 2 }, { a = 1 } } }, "table: rows[2] has no 'b'" },
      { { columns = { "a" }, { { a = 1 }, { a = 1, c = 2 } } }, "table: rows[2] has 'c', which rows[1] has not" },
      { { columns = { "a" }, { { a = 1 }, { a = {} } } }, "table: rows[2].a is a table, not a string, number or boolean" },
      { { columns = { "a" }, { a = { 1, 2 }, b = { 1 } } }, "table: rows.%a has %d values but rows.%a has %d" },
      { { columns = { "a" }, { 1, 2 } }, "table: rows[1] is not a record (got number)" },
      { { columns = { "scroe" }, { { score = 1, name = "x" } } },
        "table: columns[1] 'scroe' is not a column of the rows (they have name, score)" },
      { { columns = { "a", "a" }, { { a = 1 } } }, "table: columns[2] 'a' is given twice" },
      { { columns = { "a" }, rows = {}, {} }, "table: give the rows once (rows = ..., or first in the table)" },
      { { columns = { "a" }, {}, colour = 1 }, "table: unknown field 'colour'" },
    } do
      local msg = H.err(lupine.table, c[1])
      if c[2]:find("%a", 1, true) then assert.matches("^" .. c[2]:gsub("%%a", "%%a"):gsub("%%d", "%%d") .. "$", msg)
      else assert.equal(c[2], msg) end
    end
    -- a stored table that is not one says so
    assert.same({ { "text", "no visualization: table: rows[2] has 'b', which rows[1] has not" } },
      viz.compute { _kind = "table", columns = { "a" }, rows = { { a = 1 }, { b = 1 } } })
  end)
end)

describe("markdown", function()
  it("renders tables, lists and code with md4c, raw HTML as text", function()
    assert.equal("<h1>Report</h1>\n<table>\n<thead>\n<tr>\n<th>metric</th>\n<th align=\"right\">value</th>\n"
      .. "</tr>\n</thead>\n<tbody>\n<tr>\n<td>accuracy</td>\n<td align=\"right\">0.95</td>\n</tr>\n</tbody>\n"
      .. "</table>\n",
      viz.markdown("# Report\n\n| metric | value |\n|---|--:|\n| accuracy | 0.95 |\n"))
    assert.equal("<ul>\n<li>one <code>&lt;b&gt;</code></li>\n<li><strong>two</strong> <del>three</del></li>\n</ul>\n",
      viz.markdown("- one `<b>`\n- **two** ~~three~~\n"))
    assert.equal("<p>&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;</p>\n",
      viz.markdown("<script>alert(1)</script> <img src=x onerror=alert(1)>"))
    assert.equal("&lt;div&gt;\n&lt;b&gt;block&lt;/b&gt;\n&lt;/div&gt;\n", viz.markdown("<div>\n<b>block</b>\n</div>"):gsub("^<p>", ""):gsub("</p>\n$", "\n"))
    assert.equal("<p>\u{FFFD}x</p>\n", viz.markdown("\255x"))
  end)

  it("keeps links and images only to safe places", function()
    assert.equal('<p><a href="https://example.org/?a=1&amp;b=2" rel="noopener noreferrer" title="t">ok</a> '
      .. '<a href="/runs/1" rel="noopener noreferrer">run</a> <a href="mailto:a@example.org" '
      .. 'rel="noopener noreferrer">mail</a></p>\n',
      viz.markdown('[ok](https://example.org/?a=1&b=2 "t") [run](/runs/1) [mail](mailto:a@example.org)'))
    assert.equal("<p><a>x</a> <a>y</a> <a>z</a> <a>w</a></p>\n",
      viz.markdown("[x](javascript:alert(1)) [y](JavaScript:alert(1)) [z](&#106;avascript:alert(1)) "
        .. "[w](data:text/html,<b>)"))
    assert.equal('<p><img src="data:image/png;base64,AAAA" alt="dot"> <img alt="svg"> <a>javascript:alert(1)</a></p>\n',
      viz.markdown("![dot](data:image/png;base64,AAAA) ![svg](file:///etc/passwd) <javascript:alert(1)>"))
  end)
end)

describe("charts in a browser", function()
  local have = H.chromium()
  local shots = H.build .. "/test-output"

  -- Every text of each chart measured by Chromium: inside its image, and
  -- clear of every other text (as drawn: turned ones too).
  local CHECK = [==[
<script>
function corners(t) {
  const b = t.getBBox(), m = t.getScreenCTM();
  return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
    .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
}
function apart(p, q) {   // separating axis: convex quadrilaterals, 1 px of slack
  for (const poly of [p, q]) for (let i = 0; i < 4; i++) {
    const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4], nx = y2 - y1, ny = x1 - x2;
    const len = Math.hypot(nx, ny), dot = ([x, y]) => (x * nx + y * ny) / len;
    const a = p.map(dot), b = q.map(dot);
    if (Math.max(...a) < Math.min(...b) + 1 || Math.max(...b) < Math.min(...a) + 1) return true;
  }
  return false;
}
const problems = [];
let count = 0;
for (const div of document.querySelectorAll('div.chart')) {
  const svg = div.querySelector('svg'), box = svg.getBoundingClientRect();
  const texts = [...svg.querySelectorAll('text')].map(t =>
    ({ name: div.id + ': "' + t.firstChild.textContent + '"', c: corners(t) }));
  for (const t of texts) {
    count++;
    if (t.c.some(([x, y]) => x < box.left - 0.5 || x > box.right + 0.5 || y < box.top - 0.5 || y > box.bottom + 0.5))
      problems.push(t.name + ' reaches past the edge');
  }
  for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++)
    if (!apart(texts[i].c, texts[j].c)) problems.push(texts[i].name + ' overlaps ' + texts[j].name);
}
document.getElementById('result').textContent = problems.length ? problems.join('\n')
  : 'checked ' + count + ' texts';
</script>]==]

  local function charts()
    local list = {}
    local function add(name, v) list[#list + 1] = { name, v } end
    local feats, short, long, big, many, my = {}, {}, {}, {}, {}, {}
    for i = 1, 25 do feats["feature_importance_" .. i] = 1 / i end
    for i = 1, 25 do short["feature_" .. i] = math.sin(i) end
    for i = 1, 10 do long["region number " .. i .. " of the northern territories"] = i * 3e6 end
    for i = 1, 1000 do big["k" .. i] = i * i end
    for i = 1, 200 do many[i], my[i] = "category_" .. i, (i * 37) % 101 end
    add("features", feats)
    add("short_labels", short)
    add("metrics", { accuracy = 0.95, recall = 0.96, precision = 0.93 })
    add("long_labels", long)
    add("top_50", big)
    add("bars_200", lupine.plot { kind = "bar", x = many, y = my, title = "Two hundred" })
    add("millions", lupine.plot { x = { 1, 2, 3, 4, 5 }, y = { 1e6, 3e6, 2.5e6, 4e6, 3.2e6 }, title = "Requests",
      ylabel = "requests per day", xlabel = "day" })
    local hours, ys = {}, {}
    for i = 1, 48 do hours[i], ys[i] = 1765000000 + i * 3600, math.sin(i / 5) * 100 end
    add("hours", lupine.plot { x = hours, y = ys, title = "Hourly" })
    add("minutes", lupine.plot { x = { "2025-03-14T23:50:00Z", "2025-03-15T00:20:00Z", "2025-03-15T01:40:00+01:00" },
      y = { 1, 5, 3 } })
    add("days", lupine.plot { kind = "scatter", x = { "2025-03-01", "2025-03-15T08:00:00Z", "2025-04-02" },
      y = { 1, 2, 3 }, xlabel = "day" })
    add("years", lupine.plot { x = { "2001-01-01", "2010-06-01", "2024-12-31" }, y = { 1, 5, 3 } })
    add("log", lupine.plot { x = { 1, 2, 3, 4, 5, 6 }, y = { 0, 10, 150, 2000, 45000, 1e6 }, yscale = "log",
      title = "Growth" })
    add("not_times", lupine.plot { kind = "scatter", x = { 1765000001, 1765000099 }, y = { 1.765e9, 1.7651e9 },
      xscale = "linear" })
    add("series", lupine.plot { kind = "bar", x = { "accuracy", "recall", "f1" }, series = {
      { name = "model A", y = { 0.95, 0.96, 0.9 } }, { name = "model B with a long name", y = { 0.9, 0.97, 0.92 } } } })
    local samples = {}
    for i = 1, 1000 do samples[i] = math.sin(i) * 1000 + i end
    add("hist", lupine.plot { kind = "hist", x = samples, bins = 20, xlabel = "value", ylabel = "count" })
    local line = {}
    for i = 1, 100000 do line[i] = math.sin(i / 5000) * 1e-3 end
    add("long_line", line)
    add("negative", { a = -3.5, b = 2, c = -0.5, d = 7 })
    add("title", lupine.plot { kind = "bar", x = { "a", "b" }, y = { 1234567.891, -98765.4321 },
      title = "A title that is rather long and goes on and on and on until it no longer fits the width" })
    add("wide", { ["東京"] = 3, ["大阪の長い名前のラベルです"] = 5, ["名古屋"] = 2, ["WWWWWWWWWWWWWWWWWW"] = 1 })
    add("long_axis_labels", lupine.plot { y = { 1, 2 }, xlabel = string.rep("the x label ", 12),
      ylabel = string.rep("the y label ", 12) })
    local sers = {}
    for i = 1, 25 do sers[i] = { name = "series number " .. i, y = { i, i + 1 } } end
    add("legend_25", lupine.plot { series = sers })
    add("dates_at_ends", lupine.plot { x = { "2025-03-14T23:59:00Z", "2025-03-16T00:01:00Z" }, y = { 1, 2 } })
    return list
  end

  it("keep every label inside the image and clear of the others, and take a screenshot", function()
    if not have then pending("chromium is not installed (make deps installs it)") return end
    local list = charts()
    local page = { "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>"
      .. "<body style=\"margin:0;background:#ddd\"><pre id=\"result\">not run</pre>" }
    for _, c in ipairs(list) do
      page[#page + 1] = '<div class="chart" id="' .. c[1] .. '" style="display:inline-block;margin:4px;'
        .. 'vertical-align:top">' .. viz.compute(c[2])[1][2] .. "</div>"
    end
    page[#page + 1] = CHECK .. "</body></html>"
    local dir = H.tmpdir()
    local file = H.write(dir .. "/charts.html", table.concat(page, "\n"))
    local dom = H.browse("file://" .. file)
    local _, n = table.concat(page):gsub("<text[ >]", "")
    assert.equal("checked " .. n .. " texts", dom:match('<pre id="result">(.-)</pre>'))
    os.execute("mkdir -p " .. H.quote(shots))
    local png = shots .. "/charts.png"
    os.remove(png)
    H.browse("file://" .. file, png, "1320,5200")
    assert.equal("\137PNG\r\n\26\n", H.read(png):sub(1, 8))
    print("# screenshot: " .. png)
    H.rm(dir)
  end)

  it("show a markdown table as a table", function()
    if not have then pending("chromium is not installed (make deps installs it)") return end
    local home = H.tmpdir() .. "/home"
    local script = H.script([[
local lupine = require "lupine"
lupine.save_artifact(lupine.MarkdownString("# Scores\n\n| model | accuracy |\n|---|--:|\n| a | 0.95 |\n"
  .. "| <b>b</b> | 0.93 |\n\n[run](javascript:alert(1))\n"), "report")
]])
    local _, err, code = H.lupine(home, "run " .. H.quote(script))
    assert.equal(0, code, err)
    local file = H.tmpdir() .. "/report.html"
    _, err, code = H.lupine(home, "artifact visualize report -o " .. H.quote(file))
    assert.equal(0, code, err)
    local dom = H.browse("file://" .. file)
    assert.matches('<div class="viz%-markdown"><h1>Scores</h1>%s*<table>%s*<thead>%s*<tr>%s*<th>model</th>%s*'
      .. '<th align="right">accuracy</th>', dom)
    assert.matches("<td>&lt;b&gt;b&lt;/b&gt;</td>", dom, 1, true)
    assert.matches("<p><a>run</a></p>", dom, 1, true)
    local png = shots .. "/markdown.png"
    os.execute("mkdir -p " .. H.quote(shots))
    H.browse("file://" .. file, png, "900,500")
    print("# screenshot: " .. png)
  end)
end)

describe("stored visualizations", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("are stored as objects and listed on the version, for step outputs", function()
    local s = step { name = "report", outputs = { "table", "curve", "note" }, function()
      return { { k = "a", v = 1 }, { k = "b", v = 2 } }, { 1, 2, 3 }, "all good"
    end }
    local run = pipeline { name = "viz", function() s() end } ()
    local outs = run.steps.report.outputs
    local list = outs.table.visualizations
    assert.equal(3, #list)
    local expect = viz.compute { { k = "a", v = 1 }, { k = "b", v = 2 } }
    for i, v in ipairs(list) do
      assert.equal(i, v.position)
      assert.equal(expect[i][1], v.type)
      local bytes = v:read()
      assert.equal(expect[i][2], bytes)
      assert.equal(#bytes, v.size)
      assert.equal(core.hash(bytes), v.hash)
      assert.equal(core.object_path(v.hash), v.uri)
      assert.is_truthy(io.open(v.uri))
    end
    assert.equal("svg", outs.curve.visualizations[1].type)
    assert.same({ "text", "all good" }, { outs.note.visualizations[1].type, outs.note.visualizations[1]:read() })
  end)

  it("are recorded for save_artifact, in a script and inside a step", function()
    local av = lupine.save_artifact(lupine.MarkdownString("# Report"), "report")
    assert.same({ "markdown", "# Report" }, { av.visualizations[1].type, av.visualizations[1]:read() })
    assert.same({ _kind = "markdown", text = "# Report" }, av:load())
    local s = step("saver", function()
      lupine.save_artifact({ a = 1, b = 2 }, "scores")
      return 1
    end)
    pipeline { name = "p", function() s() end } ()
    local scores = client:get_artifact_version("scores")
    assert.equal(1, #scores.visualizations)
    assert.equal("svg", scores.visualizations[1].type)
    assert.same({}, client:get_artifact_version("p::saver::output").visualizations)
  end)

  it("are content-addressed: the same visualization is stored once", function()
    local a = lupine.save_artifact("same text", "one")
    local b = lupine.save_artifact("same text", "two")
    assert.equal(a.visualizations[1].hash, b.visualizations[1].hash)
    local out = H.sqlite(lupine.home(), "SELECT count(*), count(DISTINCT content_hash) FROM visualizations")
    assert.equal("2|1\n", out)
  end)

  it("are deleted with their version, and gc removes objects nothing refers to", function()
    local keep = lupine.save_artifact({ 1, 2, 3 }, "keep")
    local gone = lupine.save_artifact({ 4, 5, 6, 7 }, "gone")
    local kept_uri, gone_uri = keep.visualizations[1].uri, gone.visualizations[1].uri
    assert.same({ objects = 0, bytes = 0, kept = 4, recent = 0, skipped = {}, copies = 0,
      copy_bytes = 0 }, client:gc { grace = 0 })
    client:delete_artifact_version(gone)
    assert.equal("0\n", H.sqlite(lupine.home(), "SELECT count(*) FROM visualizations WHERE "
      .. "artifact_version_id = '" .. gone.id .. "'"))
    local r = client:gc { grace = 0 }
    assert.equal(2, r.objects)   -- the value and its chart
    assert.is_nil(io.open(gone_uri))
    assert.is_truthy(io.open(kept_uri))
    assert.equal(keep.visualizations[1].size, #client:get_artifact_version("keep").visualizations[1]:read())
  end)

  it("say so when an object is gone", function()
    local av = lupine.save_artifact("text", "t")
    local v = av.visualizations[1]
    os.remove(v.uri)
    local bytes, msg = v:read()
    assert.is_nil(bytes)
    assert.matches("^object sha256:%x+ is missing", msg)
    assert.matches("cannot read it: object sha256:", viz.sections(av), 1, true)
  end)
end)

describe("lupine artifact visualize", function()
  local home
  setup(function()
    home = H.tmpdir() .. "/home"
    local script = H.script([[
local lupine = require "lupine"
lupine.save_artifact({ { name = "<script>alert(1)</script>", score = 1 }, { name = "b", score = 3 } },
  "scores", { tags = { "<b>x</b>" } })
lupine.save_artifact(lupine.HTMLString("<script>alert(2)</script><p>report</p>"), "page")
lupine.save_artifact(42, "answer")
]])
    local _, err, code = H.lupine(home, "run " .. H.quote(script))
    assert.equal(0, code, err)
  end)

  it("writes one self-contained page with every visualization", function()
    local file = H.tmpdir() .. "/scores.html"
    local out, err, code = H.lupine(home, "artifact visualize scores -o " .. H.quote(file))
    assert.equal(0, code, err)
    assert.equal("wrote 3 visualizations of scores:1 to " .. file .. "\n", out)
    local html = H.read(file)
    assert.matches("^<!DOCTYPE html>", html)
    assert.not_matches("<script", html, 1, true)
    assert.not_matches("https?://", html:gsub('xmlns="http://www.w3.org/2000/svg"', ""))
    local _, frames = html:gsub('<iframe class="viz%-html" sandbox="" ', "")
    assert.equal(2, frames)
    assert.matches('<div class="viz-csv"><table><tr><th>name</th><th>score</th></tr>'
      .. "<tr><td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>1</td></tr>", html, 1, true)
    -- to stdout, the same page
    local same = H.lupine(home, "artifact visualize scores:1")
    assert.equal(html, same)
  end)

  it("puts user HTML in a sandboxed frame, escaped", function()
    local html = H.lupine(home, "artifact visualize page")
    assert.matches('<iframe class="viz%-html" sandbox="" referrerpolicy="no%-referrer" title="HTML '
      .. 'visualization" style="height:%d+px" srcdoc="&lt;script&gt;alert%(2%)&lt;/script&gt;'
      .. '&lt;p&gt;report&lt;/p&gt;"></iframe>', html)
    assert.not_matches("<script", html, 1, true)
  end)

  it("says when a version has none, and exits 1 for an unknown one", function()
    local out, err, code = H.lupine(home, "artifact visualize answer")
    assert.equal(0, code, err)
    assert.matches("This version has no visualizations.", out, 1, true)
    out, err, code = H.lupine(home, "artifact visualize scroes")
    assert.same({ "", "lupine: artifact 'scroes' not found; did you mean 'scores'?\n", 1 }, { out, err, code })
    out, err, code = H.lupine(home, "artifact visualize")
    assert.equal(2, code)
    assert.matches("missing argument NAME%[:VERSION%]|ID", err)
  end)

  it("on a terminal, writes a file of its own and prints its path; --json reports it", function()
    local tmp = H.tmpdir()
    local env = "LUPINE_HOME=" .. H.quote(home) .. " TMPDIR=" .. H.quote(tmp) .. " "
    local out = H.sh(env .. "script -qec " .. H.quote(H.cli .. " artifact visualize scores") .. " /dev/null")
    local dir = tmp:gsub("%p", "%%%0")
    -- (after the catalog it read, named on a terminal)
    local file = out:match("^catalog: [^\r]*\r\nwrote 3 visualizations of scores:1 to ("
      .. dir .. "/lupine%-scores%-1%-%w+%.html)\r\n$")
    assert.is_truthy(file, out)
    assert.equal(H.lupine(home, "artifact visualize scores"), H.read(file))   -- the same page
    assert.equal("600", H.sh("stat -c %a " .. H.quote(file)):match("%d+"))
    -- --json, on a terminal or not: the file and what is in it
    out = H.sh(env .. H.quote(H.cli) .. " artifact visualize page --json")
    local other = out:match('^{"bytes":%d+,"file":"(' .. dir .. '/lupine%-page%-1%-%w+%.html)","id":"[%x%-]+",'
      .. '"name":"page","version":"1","visualizations":1}\n$')
    assert.is_truthy(other, out)
    assert.matches("^<!DOCTYPE html>", H.read(other))
    local gone = tmp .. "/gone"
    assert.same({ "", "lupine: cannot make a file in '" .. gone .. "' (No such file or directory)\n", 1 },
      { H.sh("LUPINE_HOME=" .. H.quote(home) .. " TMPDIR=" .. H.quote(gone) .. " " .. H.quote(H.cli)
        .. " artifact visualize page --json") })
    -- a name becomes a file name: only letters, digits and . - _ kept
    local path = assert(core.temp_file("team/model <1>", ".html"))
    assert.matches("/lupine%-team_model__1_%-%w+%.html$", path)
    os.remove(path)
    H.rm(tmp)
  end)

  it("reports what it wrote as JSON", function()
    local file = H.tmpdir() .. "/p.html"
    local out = H.lupine(home, "artifact visualize page -o " .. H.quote(file) .. " --json")
    assert.matches('^{"bytes":%d+,"file":"' .. file:gsub("%p", "%%%0") .. '","id":"[%x%-]+","name":"page",'
      .. '"version":"1","visualizations":1}\n$', out)
  end)
end)

describe("the visualization examples", function()
  it("analysis.lua stores a table, its CSV and a summary", function()
    local out, err, code = H.lupine(H.tmpdir() .. "/home", "run examples/analysis.lua")
    assert.equal(0, code, err)
    assert.matches("visualization 1: html, %d+ bytes\nvisualization 2: csv, 54 bytes\n"
      .. "visualization 3: html, %d+ bytes\n", out)
    assert.matches("metric,value\naccuracy,0.95\nprecision,0.93\nrecall,0.96\n", out, 1, true)
  end)

  it("performance_plot.lua stores a plot and its SVG", function()
    local out, err, code = H.lupine(H.tmpdir() .. "/home", "run examples/performance_plot.lua")
    assert.equal(0, code, err)
    assert.matches("performance_plot v1: a line plot, 'Model Performance', 4 points\n", out, 1, true)
    assert.matches("visualization 1: svg, %d+ bytes, Model Performance\n", out)
  end)
end)
