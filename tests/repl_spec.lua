-- SPDX-License-Identifier: MIT
-- lupine repl (runtime/programs/repl.c) and lupine.pretty: sessions driven through a
-- pipe (no prompts: what stdout gets is exactly the printed values), and on
-- a pseudo-terminal in tmux for line editing, completion, Ctrl-C and history.
local H = require "helper"
local lupine = require "lupine"
local pretty = require "lupine.pretty"

-- Run `lupine repl ARGS` with input on stdin; returns stdout, stderr, status.
local function repl(home, input, args)
  local file = H.write(H.tmpdir() .. "/input.txt", input)
  local out, err, code = H.lupine(home, "repl " .. (args or "") .. " < " .. H.quote(file))
  H.rm(file:match("^(.*)/"))
  return out, err, code
end

local PIPELINE = [[
make = lupine.step { name = "make", outputs = { "dataset" }, function() return { 1, 2, 3 } end }
double = lupine.step { name = "double", outputs = { "trained_model" }, function(d)
  local out = {}
  for i, x in ipairs(d) do out[i] = x * 2 end
  return out
end }
p = lupine.pipeline { name = "sess", enable_cache = false, function() double(make()) end }
]]

-- A nested table with a cycle, and levels below the depth limit (3).
local NESTED = [[t = { name = "a", list = { 1, 2.5, { x = { y = { z = 1 } } } },
  ["two words"] = true, [10] = "ten", flags = {} }
t.self = t
t]]
local NESTED_TEXT = [[{
  [10] = "ten",
  flags = {},
  list = { 1, 2.5, { x = {...} } },
  name = "a",
  self = <cycle>,
  ["two words"] = true,
}]]

describe("lupine repl through a pipe", function()
  local home
  before_each(function() home = H.tmpdir() .. "/home" end)
  after_each(function() H.rm(home:match("^(.*)/")) end)

  it("prints the values of expressions as lua -i does", function()
    local out, err, code = repl(home, '1+1\n1, nil, "s"\n"a string"\n=2^10\nnil\n'
      .. 'x = 5\nx * 2\nreturn\nprint("printed")\n')
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("2\n1\tnil\ts\na string\n1024.0\nnil\n10\nprinted\n", out)
  end)

  it("reads on while a statement is incomplete, and keeps globals, not locals", function()
    local out, err = repl(home, "function f(a)\n  return a * 2\nend\nf(21)\n"
      .. "local l = 1\nl\nt = {\n  1,\n  2,\n}\n#t\nfor i = 1, 3 do\nio.write(i, ' ')\nend\n"
      .. "print()\n")
    assert.equal("", err)
    assert.equal("42\nnil\n2\n1 2 3 \n", out)
  end)

  it("reports errors with a traceback on stderr and goes on", function()
    local out, err, code = repl(home, 'error("boom")\n1+1\nx = = 1\n'
      .. 'error(setmetatable({}, { __tostring = function() return "an object" end }))\n'
      .. "error({})\n2+2\n")
    assert.equal(0, code)
    assert.equal("2\n4\n", out)
    assert.equal("stdin:1: boom\nstack traceback:\n\t[C]: in function 'error'\n"
      .. "\tstdin:1: in main chunk\n\t[C]: in ?\n"
      .. "stdin:1: unexpected symbol near '='\n"
      .. "an object\n"
      .. "(error object is a table value)\nstack traceback:\n\t[C]: in function 'error'\n"
      .. "\tstdin:1: in main chunk\n\t[C]: in ?\n", err)
  end)

  it("exits 0 at the end of input, also after an error (as lua -i)", function()
    local out, err, code = repl(home, "nosuch.call()\n")
    assert.equal("", out)
    assert.equal("stdin:1: attempt to index a nil value (global 'nosuch')\nstack traceback:\n"
      .. "\tstdin:1: in main chunk\n\t[C]: in ?\n", err)
    assert.equal(0, code)
  end)

  it("reports a statement the input ends in the middle of", function()
    local out, err, code = repl(home, "x = 1\nfor i = 1, 2 do\n  x = x + i\n")
    assert.equal("", out)
    assert.equal("stdin:2: 'end' expected (to close 'for' at line 1) near <eof>\n", err)
    assert.equal(0, code)
  end)

  it("has lupine and a ready client", function()
    local out, err = repl(home, "client\ngetmetatable(client) == getmetatable(lupine.Client())\n"
      .. "lupine.version == require('lupine').version\n")
    assert.equal("", err)
    assert.equal("<lupine.Client " .. home .. ">\ntrue\ntrue\n", out)
  end)

  it("runs a pipeline defined in the session and prints its run summary", function()
    local out, err, code = repl(home, PIPELINE .. "run = p()\nrun\nrun.status\n"
      .. "client:get_artifact_version('trained_model'):load()\nrun.steps\n")
    assert.equal("", err)
    assert.equal(0, code)
    local name, id = out:match("\n<PipelineRun (sess%-%d+%-%d+) %[completed%] ([%x%-]+)>\n")
    assert.truthy(name, out)
    assert.matches("run '" .. name:gsub("%-", "%%-") .. "' completed in [%d.]+ ms\n", out)
    assert.matches("\ncompleted\n{ 2, 4, 6 }\n", out, 1, true)
    assert.matches("\n{\n  double = <StepRun double %[completed%] [%x%-]+>,\n"
      .. "  make = <StepRun make %[completed%] [%x%-]+>,\n}\n$", out)
    assert.equal(36, #id)
  end)

  it("prints tables as depth-limited literals, with cycles marked", function()
    local out, err = repl(home, NESTED .. "\n")
    assert.equal("", err)
    assert.equal(NESTED_TEXT .. "\n", out)
  end)

  it("prints long tables one entry a line, at most 20 entries", function()
    local out = repl(home, "r = {} for i = 1, 30 do r[i] = i * 100 end\nr\n"
      .. "m = {} for i = 1, 4 do m['key' .. i] = { label = 'label ' .. i, n = i } end\nm\n")
    assert.equal("{\n"
      .. "  100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400,\n"
      .. "  1500, 1600, 1700, 1800, 1900, 2000,\n"
      .. "  ... (10 more),\n"
      .. "}\n"
      .. "{\n"
      .. '  key1 = { label = "label 1", n = 1 },\n'
      .. '  key2 = { label = "label 2", n = 2 },\n'
      .. '  key3 = { label = "label 3", n = 3 },\n'
      .. '  key4 = { label = "label 4", n = 4 },\n'
      .. "}\n", out)
  end)

  it("escapes control characters in what it prints, stored strings included", function()
    local out, err = repl(home, 'lupine.save_artifact("\\27[2J\\255", "screen", '
      .. '{ run_metadata = { note = "\\27]0;title\\7" } })\n'
      .. 'av = lupine.Client():get_artifact_version("screen")\n'
      .. 'av:load()\nav.run_metadata\n"text\\155x", "two\\nlines\\tand a tab"\n')
    assert.equal("", err)
    assert.is_nil(out:find("[\0-\8\11-\31\127\155]"), out)
    assert.equal('\\x1B[2J\\xFF\n{ note = "\\027]0;title\\a" }\ntext\\x9Bx\ttwo\nlines\tand a tab\n',
      out:match("\n(\\x1B.*)$"))
    -- and a stored name from a catalog written by another tool
    assert.equal("<Thing \\x1B[31m\\u{9B}>", pretty.repl(setmetatable({},
      { __tostring = function() return "<Thing \27[31m\u{9B}>" end })))
    assert.equal('"\\u{9B}1m"', pretty.format("\u{9B}1m"))
  end)

  it("prints artifact versions, runs and step runs as their one-line summaries", function()
    local out, err = repl(home, PIPELINE .. "run = p()\nav = run.steps.double.output\n"
      .. "{ av }\nrun.steps.make\nav.producer_step_run.pipeline_run.id == run.id\n")
    assert.equal("", err)
    assert.matches("\n{\n  <ArtifactVersion trained_model v1 %(numbers, %d+ bytes%) [%x%-]+>,\n}\n"
      .. "<StepRun make %[completed%] [%x%-]+>\ntrue\n$", out)
  end)

  it("runs a script first and keeps its globals, not its locals", function()
    local dir = H.tmpdir()
    local script = H.write(dir .. "/setup.lua",
      "g = 41\nlocal hidden = 1\nfunction twice(x) return 2 * x end\nprint('ran', ...)\n")
    local out, err, code = repl(home, "g + 1\nhidden\ntwice(g)\narg[0] == " .. string.format("%q",
      script) .. "\narg[1]\n", H.quote(script) .. " one two")
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("ran\tone\ttwo\n42\nnil\n82\ntrue\none\n", out)
    H.rm(dir)
  end)

  it("stays interactive after a script that fails, and refuses a missing one", function()
    local dir = H.tmpdir()
    local script = H.write(dir .. "/broken.lua", "before = 1\nerror('setup failed')\n")
    local out, err, code = repl(home, "before\n", H.quote(script))
    assert.equal(0, code)
    assert.equal("1\n", out)
    assert.matches("^lupine: .*broken.lua:2: setup failed\nstack traceback:\n", err)
    out, err, code = repl(home, "1\n", H.quote(dir .. "/none.lua"))
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("^lupine: cannot open .*none.lua", err)
    H.rm(dir)
  end)

  it("answers --help and refuses unknown options", function()
    local out, err, code = H.lupine(home, "repl --help")
    assert.equal(0, code, err)
    assert.matches("^usage: lupine repl %[options%] %[SCRIPT %[ARGS%.%.%.%]%]\n", out)
    out, err, code = H.lupine(home, "repl --nope")
    assert.equal(2, code)
    assert.equal("lupine: repl: unknown option '--nope'\nTry 'lupine repl --help'.\n", err)
    out = H.lupine(home, "--help")
    assert.matches("\n  repl %[SCRIPT %[ARGS%.%.%.%]%]%s+a Lua REPL", out)
  end)

  it("shows the usage, not a REPL, for a bare lupine whose stdin is not a terminal", function()
    local out, err, code = H.lupine(home, "< /dev/null")
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("^usage: lupine <command>", err)
  end)
end)

-- A catalog with CJK names: made by `lupine run`, so that a session reading
-- it prints only what it is asked.
local CJK_PIPELINE = [[
local load = lupine.step { name = "データ読み込み",
  outputs = { lupine.ArtifactConfig { name = "訓練データ", tags = { "日本" } } },
  function() return { 1, 2, 3 } end }
local train = lupine.step { name = "train", outputs = { "model" }, function(d) return #d end }
lupine.pipeline { name = "学習", function() train(load()) end }
  :with_options { run_name = "最初" }()
]]

local function cjk_catalog()
  local dir = H.tmpdir()
  local home = dir .. "/home"
  local _, err, code = H.lupine(home, "run " .. H.quote(H.write(dir .. "/p.lua", CJK_PIPELINE)))
  assert(code == 0, err)
  return home, dir
end

-- Ids and times as constant text of the same width.
local function normalize(s)
  return (("\n" .. s):gsub("\n%x%x%x%x%x%x%x%x  ", "\nxxxxxxxx  ")
    :gsub("%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ", "YYYY-MM-DDThh:mm:ssZ")
    :gsub("%x+%-%x+%-%x+%-%x+%-%x+>", "ID>"):sub(2))
end

describe("lupine repl: pages, help and _", function()
  local home, dir
  setup(function() home, dir = cjk_catalog() end)
  teardown(function() H.rm(dir) end)

  it("prints a Page as a table of its items, aligned past CJK names, then its line", function()
    local out, err = repl(home, "client:list_artifact_versions()\n"
      .. "client:list_artifacts { size = 1 }\nclient:list_pipeline_runs()\n"
      .. "client:list_pipelines()\nclient:list_artifact_versions { name = 'nothing' }\n"
      .. "{ client:list_pipelines() }\n")
    assert.equal("", err)
    assert.equal(
      "ID        NAME        VERSION  TYPE  DATA TYPE  SIZE  CREATED               TAGS\n"
      .. "xxxxxxxx  訓練データ  1        data  numbers       4  YYYY-MM-DDThh:mm:ssZ  日本\n"
      .. "xxxxxxxx  model       1        data  number        1  YYYY-MM-DDThh:mm:ssZ\n"
      .. "<Page 1 of 1: 2 items of 2>\n"
      .. "ID        NAME   VERSIONS  LATEST  CREATED               TAGS\n"
      .. "xxxxxxxx  model         1  1       YYYY-MM-DDThh:mm:ssZ\n"
      .. "<Page 1 of 2: 1 item of 2>\n"
      .. "ID        NAME  PIPELINE  STATUS     STARTED               TAGS\n"
      .. "xxxxxxxx  最初  学習      completed  YYYY-MM-DDThh:mm:ssZ\n"
      .. "<Page 1 of 1: 1 item of 1>\n"
      .. "ID        NAME  RUNS  LATEST RUN  STATUS     CREATED\n"
      .. "xxxxxxxx  学習     1  最初        completed  YYYY-MM-DDThh:mm:ssZ\n"
      .. "<Page 1 of 1: 1 item of 1>\n"
      .. "<Page 1 of 1: 0 items of 0>\n"
      .. "{ <Page 1 of 1: 1 item of 1> }\n", normalize(out))
  end)

  it("says what the session has with help(), and what a value is with help(x)", function()
    local out, err = repl(home, "help()\nhelp(client:list_artifacts { size = 1 })\n"
      .. "help(require 'lupine.lineage')\nhelp(client.get_pipeline_run)\nhelp(42)\n"
      .. "help('abc')\nhelp(nil)\nhelp(function(a, b, ...) end)\nhelp({ x = 1, y = 's', 5 })\n"
      .. "help(string.format)\nhelp(lupine.ArtifactType)\n")
    assert.equal("", err)
    assert.equal("Lua 5.4 with Lupine. Ready in this session:\n"
      .. "  lupine    the module: steps, pipelines, artifacts (help(lupine))\n"
      .. "  client    lupine.Client() on this catalog: runs, versions, stacks (help(client))\n"
      .. "  help(x)   what x is: its fields and methods, and what each is\n"
      .. "  _         the last result: the first value a statement returned, if not nil\n"
      .. "To start: client:list_pipeline_runs(), client:list_artifact_versions(),\n"
      .. 'client:get_artifact_version("NAME"), then help(_) for what it has.\n'
      .. "Tab completes globals, fields (x.), methods (x:) and artifact names in quotes.\n"
      .. "=x prints x. Ctrl-C stops a statement or clears the line; Ctrl-D exits.\n"
      .. "lupine.Page <Page 1 of 2: 1 item of 2>\n"
      .. "A page of a listing: an array of items with the page's numbers.\n"
      .. "fields:\n"
      .. "  page         integer\n"
      .. "  size         integer\n"
      .. "  total        integer  Matches on all pages (counted when first read).\n"
      .. "  total_pages  integer  At least 1.\n"
      .. "lupine.lineage\n"
      .. "functions:\n"
      .. "  lupine.lineage.format(graph, format?) -> string\n"
      .. "      A lineage graph (client:get_lineage) as text, Graphviz dot, a Mermaid "
      .. "flowchart or JSON.\n"
      .. "Client:get_pipeline_run(name_or_id) -> lupine.PipelineRun\n"
      .. "A pipeline run by name, id or unique id prefix.\n"
      .. "  name_or_id  string\n"
      .. "  returns     lupine.PipelineRun\n"
      .. "42: a number (integer)\n"
      .. "a string of 3 bytes (its methods are string's: help(string))\n"
      .. "nil: no value\n"
      .. "a function (a, b, ...), defined at stdin:1\n"
      .. "a table with 2 fields and 1 other key\n"
      .. "  x  number\n"
      .. "  y  string\n"
      .. "string.format: a function written in C (the Lua manual tells what it does)\n"
      .. "lupine.ArtifactType\n"
      .. "The type of an artifact, stored as the lower-case string (`av.type == \"model\"`).\n"
      .. "fields:\n"
      .. '  DATA           "data"\n'
      .. '  MODEL          "model"\n'
      .. '  DATA_ANALYSIS  "data_analysis"\n'
      .. '  SCHEMA         "schema"\n'
      .. '  STATISTICS     "statistics"\n'
      .. '  SERVICE        "service"\n'
      .. '  BASE           "base"\n', out)
  end)

  it("lists an object's fields, also those read when first used, and its methods", function()
    local out, err = repl(home, "av = client:get_artifact_version('model')\nhelp(av)\n"
      .. "help(av.producer_step_run)\n")
    assert.equal("", err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal("lupine.ArtifactVersion <ArtifactVersion model v1 (number, 1 bytes) ID>",
      normalize(lines[1]))
    assert.equal("fields:", lines[2])
    assert.equal("  id                    string                                    A random UUID.",
      lines[3])
    for _, want in ipairs {
      "  producer_step_run     lupine.StepRun?                           The step run that "
        .. "made it (read when first used).",
      "  tags                  string[]                                  Sorted (read when "
        .. "first used).",
      "  run_metadata          table<string, any>                        (read when first used)",
      "  save_type             \"step_output\"|\"manual\"|\"external\"|\"regi…  How it was made.",
      "methods:",
      "  :load(options?) -> any",
      "      The value (a file's or folder's: the path of a read-only copy).",
      "  :consumers() -> lupine.Consumer[]",
      "lupine.StepRun <StepRun train [completed] ID>",
      "  pipeline_run    lupine.PipelineRun                        (read when first used)",
    } do
      local found = false
      for _, l in ipairs(lines) do found = found or normalize(l) == want end
      assert(found, "no line '" .. want .. "' in:\n" .. out)
    end
  end)

  it("keeps the last result in _", function()
    local out, err = repl(home, "1 + 1\n_ * 10\nprint('printed')\n_\nnil\n_\nx = 3\n_\n"
      .. "'a', 'b'\n_\nclient:get_artifact_version('model')\n_.name\n")
    assert.equal("", err)
    assert.equal("2\n20\nprinted\n20\nnil\n20\n20\na\tb\na\n"
      .. "<ArtifactVersion model v1 (number, 1 bytes) ID>\nmodel\n", normalize(out))
  end)
end)

describe("lupine.pretty", function()
  it("formats the REPL's nested table in-process the same way", function()
    local t = { name = "a", list = { 1, 2.5, { x = { y = { z = 1 } } } },
      ["two words"] = true, [10] = "ten", flags = {} }
    t.self = t
    assert.equal(NESTED_TEXT, pretty.format(t))
  end)

  it("quotes strings as Lua reads them back and writes special numbers as Lua", function()
    local s = pretty.format { "tab\there", 'q"\\', "\0\1\127", "\255bin", "naïve",
      0 / 0, math.huge, -math.huge, 2 ^ 53, math.mininteger }
    assert.equal('{\n  "tab\\there", "q\\"\\\\", "\\000\\001\\127", "\\xFFbin", "naïve", 0/0, '
      .. "math.huge,\n  -math.huge, 9.007199254741e+15, -9223372036854775808,\n}", s)
    local back = load("return " .. s)()
    assert.equal("tab\there", back[1])
    assert.equal('q"\\', back[2])
    assert.equal("\0\1\127", back[3])
    assert.equal("\255bin", back[4])
  end)

  it("sorts keys: numbers, strings, booleans, then the rest; quotes non-identifiers", function()
    assert.equal('{ "a", "b", [4] = 4, [5.5] = 5, _x = 1, ["and"] = 2, ["b c"] = 3, z = 0, '
      .. "[false] = 0, [true] = 1 }", pretty.format({ "a", "b", [4] = 4, [5.5] = 5, z = 0,
        _x = 1, ["and"] = 2, ["b c"] = 3, [true] = 1, [false] = 0 }, { width = 120 }))
    assert.equal('{\n  "a", "b",\n  [4] = 4,\n  [false] = 0,\n}',
      pretty.format({ "a", "b", [4] = 4, [false] = 0 }, { width = 20 }))
  end)

  it("takes depth, items and width", function()
    local t = { a = { b = { c = { d = {} } } } }
    assert.equal("{ a = {...} }", pretty.format(t, { depth = 1 }))
    assert.equal("{ a = { b = { c = { d = {} } } } }", pretty.format(t, { depth = 4 }))
    assert.equal("{ 1, 2, ... (3 more) }", pretty.format({ 1, 2, 3, 4, 5 }, { items = 2 }))
    assert.equal("{\n  1, 2, 3,\n  4, 5,\n}", pretty.format({ 1, 2, 3, 4, 5 }, { width = 10 }))
    assert.equal("bad argument #2 to 'format' (table expected, got number)",
      H.err(pretty.format, {}, 3))
    assert.equal("format: option 'depth' must be a positive integer (got 0)",
      H.err(pretty.format, {}, { depth = 0 }))
  end)

  it("prints objects with __tostring as their summary, functions in brackets", function()
    local obj = setmetatable({}, { __tostring = function() return "<Thing 1>" end })
    local bad = setmetatable({}, { __tostring = function() error("no", 0) end })
    local s = pretty.format { obj, bad, print }
    assert.matches("^{ <Thing 1>, <error in __tostring: no>, <function: [^>]+> }$", s)
  end)

  it("gives lua -i's line for the REPL", function()
    assert.equal("1\tnil\ts\t{ 1 }\t2.5\t<Thing>", pretty.repl(1, nil, "s", { 1 }, 2.5,
      setmetatable({}, { __tostring = function() return "<Thing>" end })))
    assert.equal("", pretty.repl())
  end)
end)

describe("lupine.help", function()
  local help = require "lupine.help"

  it("offers every field of Lupine's objects, without reading those read when first used", function()
    H.fresh(lupine)
    local s = lupine.step { name = "s", outputs = { lupine.ArtifactConfig { name = "out",
      tags = { "t" } } }, function() return 1 end }
    local av = lupine.pipeline { name = "hp", function() s() end }().steps.s.output
    local f = help.fields(av)
    assert.same({ "string", "string", "field", "field", "field", "field", "field", "function",
      "function" }, { f.type, f.name, f.tags, f.run_metadata, f.producer_step_run,
      f.visualizations, f.artifact_store, f.load, f.consumers })
    assert.is_nil(rawget(av, "tags"))   -- listed, not read
    assert.same({ "t" }, av.tags)
    assert.equal("table", help.fields(av).tags)
    local c = lupine.Client()
    assert.same({ "field", "function" },
      { help.fields(c).active_stack, help.fields(c).get_artifact_version })
    assert.same({ a = "number" }, help.fields { a = 1 })
    assert.equal("function", help.fields("x").upper)
    -- what the annotations call internal is not offered
    local config = lupine.ArtifactConfig { name = "x" }
    assert.is_not_nil(rawget(config, "metadata_rows"))
    assert.is_nil(help.fields(config).metadata_rows)
    assert.equal("field", help.fields(config).version)   -- declared, not set
  end)
end)

-- ---- on a terminal ----

-- A tmux server of its own (socket in a fresh folder) running cmd on a
-- 150x50 pseudo-terminal; the pane stays after cmd exits, and shows its
-- exit status. (The shell around cmd gets Ctrl-C too: it must not die of it.)
local function terminal(cmd)
  local dir = H.tmpdir()
  local T = { dir = dir }
  local function tmux(args)
    return H.sh("tmux -S " .. H.quote(dir .. "/sock") .. " " .. args)
  end
  local _, err, code = tmux("new-session -d -x 150 -y 50 "
    .. H.quote("sh -c " .. H.quote("trap : INT; " .. cmd .. '; echo "[exit $?]"; sleep 60')))
  assert(code == 0, err)
  function T.type(text) tmux("send-keys -l " .. H.quote(text)) end
  function T.key(...) tmux("send-keys " .. table.concat({ ... }, " ")) end
  function T.screen() return (tmux("capture-pane -p -J -S -")) end
  -- Wait (up to 30 s) until the screen has pattern; returns the screen.
  function T.wait(pattern, plain)
    local screen
    for _ = 1, 300 do
      screen = T.screen()
      if screen:find(pattern, 1, plain) then return screen end
      os.execute("sleep 0.1")
    end
    error("timed out waiting for " .. pattern .. " on the screen:\n" .. screen, 2)
  end
  function T.close()
    tmux("kill-server")
    H.rm(dir)
  end
  return T
end

-- The command that starts the REPL in home, sanitizer settings as H.sh's.
local function repl_cmd(home, args)
  return "env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=1 LUPINE_HOME=" .. H.quote(home)
    .. " " .. H.quote(H.cli) .. (args or " repl")
end

describe("lupine repl on a terminal", function()
  local home, T
  before_each(function() home = H.tmpdir() .. "/home" end)
  after_each(function()
    if T then T.close() end
    T = nil
    H.rm(home:match("^(.*)/"))
  end)

  it("completes names, stops statements on Ctrl-C, clears the line, keeps history", function()
    T = terminal(repl_cmd(home))
    T.wait("Ctrl-D exits.\n> ", true)
    for line in PIPELINE:gmatch("[^\n]+") do T.type(line) T.key("Enter") end
    T.type("p()") T.key("Enter")
    T.wait("[completed]", true)
    -- globals, fields, methods, artifact names inside the string argument
    T.type("clie") T.key("Tab")
    T.type(":get_art") T.key("Tab")
    T.wait("> client:get_artifact_version(", true)
    T.type('"tra') T.key("Tab")
    T.wait('> client:get_artifact_version("trained_model"', true)
    T.type(")") T.key("Enter")
    T.wait("\n<ArtifactVersion trained_model v1 ")
    T.type("string.upp") T.key("Tab")
    T.type("'ok')") T.key("Enter")
    T.wait("\nOK\n", true)
    -- Ctrl-C stops a pipeline run, then plain Lua code, and the REPL goes on
    T.type('slow = lupine.pipeline { name = "slow", enable_cache = false, function() '
      .. 'lupine.step { name = "nap", function() os.execute("sleep 20") end }() end }')
    T.key("Enter")
    T.type("slow()") T.key("Enter")
    T.wait("> slow()\n", true)
    os.execute("sleep 1")
    T.key("C-c")
    T.wait("pipeline run 'slow%-[%d%-]+' was stopped\n> ")
    T.type("while true do end") T.key("Enter")
    os.execute("sleep 0.5")
    T.key("C-c")
    T.wait("^C\ninterrupted\nstack traceback:\n", true)
    T.type("p().status") T.key("Enter")   -- the interrupt was not left pending
    T.wait("\ncompleted\n> ", true)
    -- Ctrl-C at the prompt drops the line, and a statement left open
    T.type("undefined_thing") T.key("C-c")
    T.type("for i = 1, 2 do") T.key("Enter")
    T.wait(">> ", true)
    T.key("C-c")
    T.type("1+1") T.key("Enter")
    local screen = T.wait("> 1+1\n2\n> ", true)
    assert.falsy(screen:find("global 'undefined_thing'", 1, true))
    if os.getenv("REPL_SCREEN") then io.stderr:write(screen) end
    T.key("C-d")
    T.wait("[exit 0]", true)
    local history = H.read(home .. "/repl_history")
    assert.matches("^_HiStOrY_V2_\n", history)
    assert.matches("\nwhile\\040true\\040do\\040end\np%(%)%.status\n1%+1\n$", history)
    T.close()
    -- the next session has the history: Up, Enter runs 1+1 again
    T = terminal(repl_cmd(home))
    T.wait("> ", true)
    T.key("Up") T.key("Enter")
    T.wait("> 1+1\n2\n> ", true)
  end)

  it("completes every field of Lupine's objects, and keeps =x as typed in the history", function()
    H.rm(home:match("^(.*)/"))
    home = cjk_catalog()   -- after_each removes its folder
    T = terminal(repl_cmd(home))
    T.wait("help() for more. Ctrl-C stops a statement, Ctrl-D exits.\n> ", true)
    T.type("av = client:get_artifact_version('model')") T.key("Enter")
    -- two fields, one there and one read when first used: both offered
    T.type("av.t") T.key("Tab") T.key("Tab")
    T.wait("\nav.tags av.type\n> av.t", true)
    T.type("ags") T.key("Enter")
    T.wait("> av.tags\n{}\n> ", true)
    T.type("av.run_") T.key("Tab") T.key("Enter")
    T.wait("> av.run_metadata\n{}\n> ", true)
    -- through a field read when first used, to the fields of what it holds
    T.type("av.producer_step_run.pipeline_r") T.key("Tab")
    T.type(".na") T.key("Tab") T.key("Enter")
    T.wait("> av.producer_step_run.pipeline_run.name\n最初\n> ", true)
    T.type("=1+2") T.key("Enter")
    T.wait("> =1+2\n3\n> ", true)
    T.type("help(_)") T.key("Enter")
    T.wait("\n3: a number (integer)\n> ", true)
    T.key("C-d")
    T.wait("[exit 0]", true)
    assert.matches("\nav%.producer_step_run%.pipeline_run%.name\n=1%+2\nhelp%(_%)\n$",
      H.read(home .. "/repl_history"))
  end)

  it("starts for a bare lupine on a terminal", function()
    T = terminal(repl_cmd(home, ""))
    -- (a PostgreSQL catalog, opened, is named with its schema)
    T.wait("^Lupine %S+ on Lua 5%.4%.%d+, catalog "
      .. (H.pg and "PostgreSQL postgresql://[^\n]* schema " or home:gsub("%p", "%%%0") .. "\n"))
    T.type("client") T.key("Enter")
    T.wait("\n<lupine.Client " .. home .. ">\n> ", true)
    T.key("C-d")
    T.wait("[exit 0]", true)
  end)
end)
