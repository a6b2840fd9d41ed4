-- SPDX-License-Identifier: MIT
-- Text in terminal columns: the width of UTF-8 text (CJK characters take
-- two columns, combining marks none), and the tables that count with it:
-- the CLI's lists on a terminal, a run's summary, lupine.pretty.columns.
local H = require "helper"
require "lupine"
local core = require "lupine.core"
local pretty = require "lupine.pretty"

-- A pipeline with CJK step and artifact names, and names longer than a
-- column's default width.
local PIPELINE = [[
local load = lupine.step { name = "データ読み込み",
  outputs = { lupine.ArtifactConfig { name = "訓練データ", tags = { "日本" } } },
  function() return { 1, 2, 3 } end }
local long = lupine.step { name = "a_step_whose_name_is_longer_than_the_name_column",
  outputs = { "a_very_long_artifact_name_that_goes_on_and_on_and_on" }, function(d) return d end }
local train = lupine.step { name = "train", outputs = { "model" }, function(d) return #d end }
lupine.pipeline { name = "学習", function() train(long(load())) end }
  :with_options { run_name = "最初" }()
]]

-- What varies from run to run, made constant (and as wide as it was): ids,
-- times, durations.
local function normalize(s)
  return (s:gsub("\r\n", "\n"):gsub("\n%x%x%x%x%x%x%x%x  ", "\nxxxxxxxx  ")
    :gsub("%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d", "YYYY-MM-DD hh:mm:ss")
    :gsub("in [%d.]+ ms", "in N ms")
    :gsub(" +[%d.]+ ms", function(d) return string.rep(" ", #d - 6) .. "9.9 ms" end))
end

-- a run's summary with its durations' column made one width: load on the
-- machine changes how wide the durations are, and so the columns after
local function durations_fixed(s)
  return (s:gsub("  +%d[%d.]* m?s  +", "  9.9 ms  "):gsub("  +%d+ min %d+ s  +", "  9.9 ms  "))
end

describe("text width", function()
  it("counts terminal columns: CJK two, combining marks and controls none", function()
    local cases = {
      { "", 0 }, { "abc", 3 }, { "訓練データ", 10 }, { "한국어", 6 }, { "e\u{301}", 1 },
      { "\u{1F600}", 2 }, { "\u{FF21}", 2 }, { "\u{FF71}", 1 }, { "a\u{200D}b", 2 },
      { "\u{AD}", 1 }, { "a\tb\n", 2 }, { "\u{302A}", 0 }, { "\u{1100}\u{1161}", 2 },
      -- the edges of a few ranges
      { "\u{115F}", 2 }, { "\u{1160}", 0 }, { "\u{11FF}", 0 }, { "\u{1200}", 1 },
      { "\u{4DBF}", 2 }, { "\u{4DC0}", 1 }, { "\u{9FFF}", 2 }, { "\u{A4C6}", 2 },
      { "\u{A4D0}", 1 }, { "\u{20000}", 2 }, { "\u{3FFFD}", 2 }, { "\u{E0001}", 0 },
      -- bytes that are not UTF-8: a column each, as the replacement character
      { "\xff", 1 }, { "\xE8\xA8", 2 }, { "\xC0\xAF", 2 }, { "\xED\xA0\x80", 3 },
    }
    for _, c in ipairs(cases) do
      assert.equal(c[2], core.text_width(c[1]), string.format("%q", c[1]))
      assert.equal(c[2], pretty.width(c[1]), string.format("%q", c[1]))
    end
  end)

  it("gives the longest prefix that fits, with the marks that follow it", function()
    assert.same({ 10, 6 }, { core.text_width("訓練データ", 5) })
    assert.same({ 10, 6 }, { core.text_width("訓練データ", 4) })
    assert.same({ 3, 4 }, { core.text_width("ae\u{301}b", 2) })
    assert.same({ 3, 3 }, { core.text_width("abc", 3) })
    assert.same({ 3, 0 }, { core.text_width("abc", 0) })
  end)

  it("cuts text to a width, ending it with …", function()
    assert.equal("訓練…", pretty.truncate("訓練データ", 6))
    assert.equal("訓練…", pretty.truncate("訓練データ", 5))
    assert.equal("訓練データ", pretty.truncate("訓練データ", 10))
    assert.equal("abc…", pretty.truncate("abcdef", 4))
    assert.equal("…", pretty.truncate("abcdef", 1))
    assert.equal("bad argument #2 to 'truncate' (positive integer expected, got 0)",
      H.err(pretty.truncate, "x", 0))
    assert.equal("bad argument #1 to 'width' (string expected, got number)",
      H.err(pretty.width, 1))
  end)

  it("aligns pretty.columns in terminal columns", function()
    assert.equal("NAME         N  TAGS\n"
      .. "訓練データ   1  日本\n"
      .. "model       12\n"
      .. "abcdefghi…   3  x",
      pretty.columns({ { title = "NAME", max = 10 }, { title = "N", right = true },
        { title = "TAGS" } }, { { "訓練データ", 1, "日本" }, { "model", 12 },
        { "abcdefghijkl", 3, "x" } }))
    assert.equal("a    b\nccc", pretty.columns({ {}, {} }, { { "a", "b" }, { "ccc" } }))
    assert.equal("columns: column 1's max must be a positive integer (got 0)",
      H.err(pretty.columns, { { max = 0 } }, {}))
    assert.equal("bad argument #2 to 'columns' (table expected, got nil)",
      H.err(pretty.columns, {}))
  end)
end)

describe("the CLI's tables", function()
  local home, dir
  setup(function()
    dir = H.tmpdir()
    home = dir .. "/home"
  end)
  teardown(function() H.rm(dir) end)

  it("align a run's summary past CJK and long step names, cut to the terminal", function()
    -- on a terminal 100 columns wide
    local cmd = "stty cols 100; LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
      .. " run " .. H.quote(H.write(dir .. "/p.lua", PIPELINE))
    local out, err, code = H.sh("script -qec " .. H.quote(cmd) .. " /dev/null < /dev/null")
    assert.equal(0, code, err)
    -- the summary, after the live block (cursor up, clear below)
    -- (the long artifact name is cut where the terminal ends, which depends on
    -- how wide the durations are)
    local summary = durations_fixed(out:gsub("\r\n", "\n"):match("\27%[J(run '最初' completed.*)$"))
    assert.matches("^run '最初' completed in [^:]+: 3 done\n"
      .. "  データ読み込み                                    completed  9%.9 ms  訓練データ v1\n"
      .. "  a_step_whose_name_is_longer_than_the_name_column  completed  9%.9 ms  "
      .. "a_very_long_artifact_name_[%w_]*…\n"
      .. "  train                                             completed  9%.9 ms  model v1\n$",
      summary)
    local long = out:match("\n(  a_step_whose[^\r\n]*)")
    assert.equal(99, #long - 2)   -- cut within 100 columns: … is 3 bytes, 1 column
  end)

  it("align lists on a terminal past CJK names, cutting long ones", function()
    local cmd = "LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
    local out, err, code = H.sh("script -qec " .. H.quote(cmd .. " artifact list")
      .. " /dev/null < /dev/null")
    assert.equal(0, code, err)
    assert.equal("ID        NAME                                      VERSIONS  LATEST  CREATED"
      .. "              TAGS\n"
      .. "xxxxxxxx  model                                            1  1       "
      .. "YYYY-MM-DD hh:mm:ss\n"
      .. "xxxxxxxx  a_very_long_artifact_name_that_goes_on_…         1  1       "
      .. "YYYY-MM-DD hh:mm:ss\n"
      .. "xxxxxxxx  訓練データ                                       1  1       "
      .. "YYYY-MM-DD hh:mm:ss  日本\n", normalize("\n" .. out):sub(2):gsub("^catalog: [^\n]*\n", ""))
  end)
end)
