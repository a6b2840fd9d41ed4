-- SPDX-License-Identifier: MIT
-- The lupine command: `lupine run` (what it shows, its errors, its exit
-- status), the one grammar of every command line, --help and --version.
local H = require "helper"
local dkjson = require "dkjson"
require "lupine"   -- its embedded modules, lupine.cli among them

local PIPELINE = [[
local lupine = require "lupine"
local load_data = lupine.step { name = "load_data", outputs = { "dataset" },
  function() return { values = { 1, 2, 3, 4, 5 } } end }
local process_data = lupine.step { name = "process_data", outputs = { "processed" },
  function(dataset)
    local out = {}
    for i, x in ipairs(dataset.values) do out[i] = x * (tonumber(arg[1]) or 2) end
    return out
  end }
local ml = lupine.pipeline { name = "ml_pipeline", function()
  process_data(load_data())
end }
local run = ml()
print("status", run.status, select("#", ...), ...)
]]

-- s with what changes from run to run made fixed: durations ("12 ms",
-- "0.4 ms", "6.0 s", "2 min 05 s") as <t>, a run name's date and time as
-- <when> (with the -2, -3 of a name taken in the same second), a temporary
-- folder as <tmp>.
local function fixed(s)
  local when = "%-%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d"
  return (s:gsub("%d+ min %d%d s", "<t>"):gsub("%d+%.%d s", "<t>"):gsub("%d+%.?%d* ms", "<t>")
    :gsub(when .. "%-%d+'", "-<when>'"):gsub(when, "-<when>")
    :gsub("/tmp/lupine%-test%.%w+", "<tmp>"))
end

-- `lupine ARGS` on a pseudo-terminal; what it showed (\r\n made \n) and
-- its exit status.
local function pty(home, args, dir)
  local cmd = "LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli) .. " " .. args
  local out, _, code = H.sh((dir and ("cd " .. H.quote(dir) .. " && ") or "") .. "script -qec "
    .. H.quote(cmd) .. " /dev/null </dev/null")
  return (out:gsub("\r\n", "\n")), code
end

local has_script = select(3, H.sh("command -v script")) == 0

describe("lupine run", function()
  local home
  before_each(function() home = H.tmpdir() .. "/home" end)

  it("shows a line when a run starts, one per step as it settles, and the run's result", function()
    local script = H.script(PIPELINE)
    local out, err, code = H.lupine(home, "run " .. script)
    assert.same({ "", 0 }, { err, code })
    assert.equal("run 'ml_pipeline-<when>' of pipeline 'ml_pipeline': 2 steps\n"
      .. "step 'load_data' completed in <t>: dataset v1\n"
      .. "step 'process_data' completed in <t>: processed v1\n"
      .. "run 'ml_pipeline-<when>' completed in <t>: 2 done\n"
      .. "status\tcompleted\t0\n", fixed(out))
    out = H.lupine(home, "run " .. script)
    assert.equal("run 'ml_pipeline-<when>' of pipeline 'ml_pipeline': 2 steps\n"
      .. "step 'load_data' cached: dataset v1\nstep 'process_data' cached: processed v1\n"
      .. "run 'ml_pipeline-<when>' completed in <t>: 2 cached\nstatus\tcompleted\t0\n",
      fixed(out))
  end)

  it("sets arg and ... as lua does", function()
    local script = H.script(PIPELINE)
    local out, err, code = H.lupine(home, "run " .. script .. " 3 x")
    assert.equal(0, code, err)
    assert.matches("status\tcompleted\t2\t3\tx\n", out)
    local check = [[
      local lupine = require "lupine"
      print(lupine.Client():get_artifact_version("processed"):load()[5])
    ]]
    out = H.lupine(home, "run " .. H.script(check))
    assert.equal("15\n", out)
    -- after the script, words are the script's, options or not
    out = H.lupine(home, "run " .. H.script("print(...)") .. " -v --json -- x")
    assert.equal("-v\t--json\t--\tx\n", out)
  end)

  it("--verbose also shows each step as it starts; --quiet only each run's result", function()
    local script = H.script(PIPELINE)
    H.lupine(home, "run " .. script)
    local out = H.lupine(home, "run --verbose --no-cache " .. script)
    assert.equal("run 'ml_pipeline-<when>' of pipeline 'ml_pipeline': 2 steps\n"
      .. "step 'load_data' started\nstep 'load_data' completed in <t>: dataset v2\n"
      .. "step 'process_data' started\nstep 'process_data' completed in <t>: processed v2\n"
      .. "run 'ml_pipeline-<when>' completed in <t>: 2 done\nstatus\tcompleted\t0\n", fixed(out))
    out = H.lupine(home, "run --quiet " .. script)
    assert.equal("run 'ml_pipeline-<when>' completed in <t>: 2 cached\nstatus\tcompleted\t0\n",
      fixed(out))
    local _, err, code = H.lupine(home, "run -vq " .. script)
    assert.same({ "lupine: run: --verbose and --quiet ask for different things\n"
      .. "Try 'lupine run --help'.\n", 2 }, { err, code })
  end)

  it("shows a failed run's error once, on stderr, and exits 1", function()
    local script = H.script([[
      local lupine = require "lupine"
      local bad = lupine.step("bad", function() error("no data today") end)
      local after = lupine.step("after", function(x) return x end)
      lupine.pipeline { name = "p", function() after(bad()) end } ()
    ]], "broken.lua")
    local out, err, code = H.lupine(home, "run " .. script)
    assert.equal(1, code)
    assert.equal("run 'p-<when>' of pipeline 'p': 2 steps\n"
      .. "step 'bad' failed after <t>\n"
      .. "step 'after' skipped\n"
      .. "run 'p-<when>' failed in <t>: 1 failed, 1 skipped\n", fixed(out))
    assert.equal("lupine: step 'bad' (<tmp>/broken.lua:2) failed: <tmp>/broken.lua:2: no data "
      .. "today\n", fixed(err))
    -- the same when the script catches the failure; --quiet keeps the error
    out, err, code = H.lupine(home, "run -q " .. H.script([[
      local lupine = require "lupine"
      local bad = lupine.step("bad", function() error("oops", 0) end)
      local p = lupine.pipeline { name = "p", function() bad() end }
      print(p:with_options { raise_on_failure = false } ().status)
    ]], "caught.lua"))
    assert.equal(1, code)
    assert.equal("run 'p-<when>' failed in <t>: 1 failed\nfailed\n", fixed(out))
    assert.equal("lupine: step 'bad' (<tmp>/caught.lua:2) failed: oops\n", fixed(err))
  end)

  it("shows a script's error at the script's line, without Lupine's own frames", function()
    local script = H.script("local x = nil\nprint(x.y)\n", "oops.lua")
    local out, err, code = H.lupine(home, "run " .. script)
    assert.same({ "", 1 }, { out, code })
    assert.equal("lupine: <tmp>/oops.lua:2: attempt to index a nil value (local 'x')\n",
      fixed(err))
    _, err, code = H.lupine(home, "run " .. H.script("x = = 1", "syntax.lua"))
    assert.equal(1, code)
    assert.equal("lupine: <tmp>/syntax.lua:1: unexpected symbol near '='\n", fixed(err))
  end)

  it("shows a typo in a pipeline body once, at its line", function()
    local script = H.script([[
local lupine = require "lupine"
local load_data = lupine.step("load_data", function() return 1 end)
local p = lupine.pipeline { name = "p", function()
  local d = lod_data()
end }
p()
]], "typo.lua")
    local out, err, code = H.lupine(home, "run " .. script)
    assert.same({ "", 1 }, { out, code })
    assert.equal("lupine: <tmp>/typo.lua:4: attempt to call a nil value (global 'lod_data')\n"
      .. "stack traceback:\n\t<tmp>/typo.lua:4: in field 'fn'\n\t<tmp>/typo.lua:6: in main chunk\n",
      fixed(err))
  end)

  it("names the user's line, not Lupine's, when the runtime refuses a run", function()
    local script = H.script([[
local lupine = require "lupine"
local s = lupine.step("s", function() return 1 end)
local p = lupine.pipeline { name = "p9", function() s() end }:with_options { run_name = "fixed" }
p()
p()
]], "twice.lua")
    local _, err, code = H.lupine(home, "run -q " .. script)
    assert.equal(1, code)
    assert.equal("lupine: <tmp>/twice.lua:5: pipeline 'p9': a run named 'fixed' already exists\n",
      fixed(err))
  end)

  it("warns of a pipeline the script defines and never calls", function()
    local script = H.script([[
local lupine = require "lupine"
local s = lupine.step("s", function() return 1 end)
local forgotten = lupine.pipeline { name = "forgotten", function() s() end }
local used = lupine.pipeline { name = "used", function() s() end }
used:with_options { run_name = "once" } ()
]], "defs.lua")
    local out, err, code = H.lupine(home, "run -q " .. script)
    assert.same({ "run 'once' completed in <t>: 1 done\n", 0 }, { fixed(out), code })
    assert.equal("lupine: warning: pipeline 'forgotten' (<tmp>/defs.lua:3) is defined but never "
      .. "called, so it did not run\n", fixed(err))
  end)

  it("--json prints the result, and nothing else, on stdout", function()
    local script = H.script([[
      local lupine = require "lupine"
      local s = lupine.step { name = "s", outputs = { "number" }, function() return 1 end }
      local bad = lupine.step("bad", function() error("no") end)
      print("the script's own output")
      lupine.pipeline { name = "ok", function() s() end }:with_options { run_name = "ok" } ()
      lupine.pipeline { name = "ko", function() bad() end }:with_options { run_name = "ko" } ()
    ]], "two.lua")
    local out, err, code = H.lupine(home, "run --json " .. script)
    assert.equal(1, code)
    assert.is_true(H.strict_json(out))
    local doc = dkjson.decode(out)
    assert.same({ false, 2 }, { doc.ok, #doc.runs })
    assert.matches("^pipeline run 'ko' failed:\nstep 'bad' %(.*two%.lua:3%) failed: "
      .. ".*two%.lua:3: no$", doc.error)
    assert.same({ "ok", "ok", "completed" }, { doc.runs[1].name, doc.runs[1].pipeline,
      doc.runs[1].status })
    assert.same({ "s", "completed", "number", "1" }, { doc.runs[1].steps[1].name,
      doc.runs[1].steps[1].status, doc.runs[1].steps[1].outputs.number.name,
      doc.runs[1].steps[1].outputs.number.version })
    assert.same({ "ko", "failed", "failed" }, { doc.runs[2].name, doc.runs[2].status,
      doc.runs[2].steps[1].status })
    -- the rest went to stderr
    assert.matches("^the script's own output\nrun 'ok' of pipeline 'ok': 1 step\n", err)
    out, _, code = H.lupine(home, "run --json " .. H.script("print(1)"))
    assert.same({ '{"error":null,"ok":true,"runs":[]}\n', 0 }, { out, code })
  end)

  it("draws a live block of the running steps on a terminal, then the summary", function()
    if not has_script then pending("util-linux script is not installed") return end
    local script = H.script([[
      local lupine = require "lupine"
      local nap = lupine.step("nap", function()
        print("zzz")
        io.stdout:flush()
        os.execute("sleep 0.4")
        return 1
      end)
      local bad = lupine.step("bad", function(x) error("no data today") end)
      lupine.pipeline { name = "live", enable_cache = false, jobs = 1, function()
        bad(nap())
      end }:with_options { run_name = "live" } ()
    ]], "live.lua")
    local out, code = pty(home, "run " .. script)
    assert.equal(1, code, out)
    -- between the run's first line and its summary: the block drawn, erased
    -- (cursor up, clear below) and drawn again with the time nap has run
    local start, block, summary = out:match("^(run 'live' of pipeline 'live': 2 steps "
      .. "%(catalog [^\n]*%)\n)(.-)(run 'live' failed in .*)$")
    assert.truthy(start, out)
    assert.equal("run 'live' of pipeline 'live': 2 steps (catalog " .. H.catalog_label(home)
      .. ")\n", start)
    block = fixed(block)
    local up, first = "\27%[1A\27%[J", "2 steps: 0 done, 0 cached, 0 failed, 0 running, 2 pending "
    local napping = "  nap  <t>\n2 steps: 0 done, 0 cached, 0 failed, 1 running, 1 pending %(<t>%)\n"
    assert.matches("^" .. first .. "%(<t>%)\n\27%[1A\27%[J", block)
    assert.matches("\27%[2A\27%[J" .. napping, block)   -- drawn again as time passes
    assert.matches("\27%[%dA\27%[J%[nap%] zzz\n", block)   -- what a step prints, above it
    -- a failure's error stays above the block; then the summary, the block gone
    assert.matches("\27%[%dA\27%[Jlupine: step 'bad' %(<tmp>/live.lua:8%) failed: "
      .. "<tmp>/live.lua:8: no data today\n"
      .. "2 steps: 1 done, 0 cached, 1 failed, 0 running, 0 pending %(<t>%)\n" .. up .. "$", block)
    -- (the durations' column is as wide as the widest, which load can change)
    assert.matches("^run 'live' failed in <t>: 1 done, 1 failed\n"
      .. "  nap  completed  +<t>  +live::nap::output v1\n"
      .. "  bad  failed     +<t>\n$", fixed(summary))
  end)
end)

describe("the command line", function()
  local home = H.tmpdir() .. "/home"
  H.lupine(home, "run " .. H.script(PIPELINE))

  -- stderr and exit status of `lupine ARGS` (stdout must be empty)
  local function refused(args)
    local out, err, code = H.lupine(home, args .. " </dev/null")
    assert.equal("", out, args)
    return err, code
  end

  it("takes --opt=value and --opt value, -jN and -j N, bundled flags, and --", function()
    local script = H.script(PIPELINE)
    for _, args in ipairs { "--jobs=2 -q", "--jobs 2 -q", "-j2 -q", "-qj 2", "-qj2",
        "-q --jobs=2 --" } do
      local out, err, code = H.lupine(home, "run " .. args .. " " .. script)
      assert.equal(0, code, args .. ": " .. err)
      assert.matches("^run 'ml_pipeline%-[%d%-]+' completed in [%d.]+ m?s: 2 cached\n", out, 1)
    end
    -- a long option may be cut to what names it alone
    assert.equal(H.lupine(home, "artifact version list --name processed"),
      H.lupine(home, "artifact version list --na processed"))
    assert.same({ "lupine: lineage: option '--d' is ambiguous (--down, --depth)\n"
      .. "Try 'lupine lineage --help'.\n", 2 }, { refused("lineage processed --d 1") })
  end)

  it("suggests the near command or option for a typo, for every command", function()
    for args, said in pairs {
      ["rnu x.lua"] = "unknown command 'rnu'; did you mean 'run'?\nTry 'lupine --help'.",
      ["run --jbos 2 x.lua"] = "run: unknown option '--jbos'; did you mean '--jobs' or "
        .. "'--json'?\nTry 'lupine run --help'.",
      ["run -x x.lua"] = "run: unknown option '-x'\nTry 'lupine run --help'.",
      ["run"] = "run: missing argument SCRIPT\nTry 'lupine run --help'.",
      ["run --jobs=0 x.lua"] = "run: option '--jobs' needs a positive integer (got '0')\n"
        .. "Try 'lupine run --help'.",
      ["run --no-cache=1 x.lua"] = "run: option '--no-cache' takes no value\n"
        .. "Try 'lupine run --help'.",
      ["ui --prot 1"] = "ui: unknown option '--prot'; did you mean '--port'?\n"
        .. "Try 'lupine ui --help'.",
      ["repl --nope"] = "repl: unknown option '--nope'\nTry 'lupine repl --help'.",
      ["stck list"] = "unknown command 'stck'; did you mean 'stack'?\nTry 'lupine --help'.",
      ["--verison"] = "unknown option '--verison'; did you mean '--version'?\n"
        .. "Try 'lupine --help'.",
      ["help artefact"] = "unknown command 'artefact'; did you mean 'artifact'?\n"
        .. "Try 'lupine --help'.",
    } do
      assert.same({ "lupine: " .. said .. "\n", 2 }, { refused(args) }, args)
    end
    local _, err, code = H.lupine(home, "run /nonexistent/x.lua")
    assert.same({ "lupine: cannot open /nonexistent/x.lua: No such file or directory\n", 2 },
      { err, code })
  end)

  it("answers --help on every command, and `lupine help COMMAND` alike", function()
    local cli = require "lupine.cli"
    local function walk(node, path)
      for _, name in ipairs(node.order) do
        local words = path .. (path == "" and "" or " ") .. name
        local out, err, code = H.lupine(home, words .. " --help")
        assert.same({ "", 0 }, { err, code }, words)
        assert.matches("^usage: lupine " .. words:gsub("%-", "%%-") .. " ", out)
        assert.equal(out, (H.lupine(home, "help " .. words)))
        if node.sub[name].sub then walk(node.sub[name], words) end
      end
    end
    walk(cli.tree, "")
    local out = H.lupine(home, "run -h")
    assert.equal("usage: lupine run [options] SCRIPT [ARGS...]\n\n"
      .. "Run a Lua pipeline script (ARGS become its `arg` and `...`).\n\n"
      .. "On a terminal, a run shows which steps are running and for how long; piped, a\n"
      .. "line per step as it settles. Exit status: 0 when every run completed, 1 when a\n"
      .. "run or the script failed, 2 for a script that cannot be read, 130 or 143 when\n"
      .. "SIGINT (Ctrl-C) or SIGTERM stopped it.\n\n"
      .. "options:\n"
      .. "  -v, --verbose            also show each step as it starts and ends\n"
      .. "  -q, --quiet              show only each run's result (and errors)\n"
      .. "  -j, --jobs N             run up to N steps at once (default: the cores)\n"
      .. "      --no-cache           run every step, reusing no earlier result\n"
      .. "      --resume RUN         adopt the Slurm jobs of RUN (a name or id), whose\n"
      .. "                           coordinator died, instead of those of its pipeline's\n"
      .. "                           latest run\n"
      .. "      --json               print the result (runs, steps, versions) as JSON on\n"
      .. "                           stdout; the rest goes to stderr\n"
      .. "  -h, --help               show this help\n", out)
  end)

  it("lists every command in lupine --help, and shows it for a bare lupine piped", function()
    local out, err, code = H.lupine(home, "--help")
    assert.same({ "", 0 }, { err, code })
    for _, cmd in ipairs { "run SCRIPT [ARGS...]", "repl [SCRIPT [ARGS...]]", "ui",
        "artifact list", "artifact version describe KEY", "stack list", "stack register NAME",
        "artifact-store list", "artifact-store copy FROM TO", "artifact-store flavor list",
        "help [COMMAND...]" } do
      assert.matches("\n  " .. cmd:gsub("[%-%[%]%.]", "%%%0") .. "  ", out)
    end
    assert.equal(out, (H.lupine(home, "help")))
    local bare_out, bare_err, bare_code = H.lupine(home, "</dev/null")
    assert.same({ "", out, 2 }, { bare_out, bare_err, bare_code })
  end)

  it("--version names lupine's version and the libraries it runs with", function()
    local out, err, code = H.lupine(home, "--version")
    assert.same({ "", 0 }, { err, code })
    assert.matches("^lupine %d+%.%d+%.%d+\nLua 5%.4%.%d+\nSQLite 3%.%d+%.%d+\nlibpq 1%d%.%d+[^\n]*\n"
      .. "zstd 1%.%d+%.%d+\nOpenSSL %d+%.%d+%.%d+%a?\ncatalog: [^\n]+\n$", out)
    -- and the catalog in use
    local catalog = out:match("\ncatalog: ([^\n]+)\n$")
    if H.pg then assert.matches("^PostgreSQL postgresql://lupine@:%d+/lupine %(socket in ", catalog)
    else assert.equal("sqlite " .. home .. "/catalog.db", catalog) end
    assert.equal(out, (H.lupine(home, "-V")))
  end)
end)

describe("commands that only read", function()
  it("make no catalog, and say where they looked and how to make one #sqlite", function()
    local dir = H.tmpdir()
    for _, args in ipairs { "pipeline list", "pipeline runs list", "artifact list",
        "artifact version list", "artifact version describe x", "lineage x", "stack list",
        "artifact-store list", "gc --dry-run", "artifact prune --dry-run" } do
      local out, err, code = H.lupine(nil, args, dir)
      assert.same({ "", "lupine: no catalog found (no .lupine folder in " .. dir .. " or any "
        .. "folder above it, and LUPINE_HOME is not set)\nA catalog is made by the first "
        .. "`lupine run SCRIPT`: in ./.lupine, or in $LUPINE_HOME when it is set.\n", 1 },
        { out, err, code }, args)
      local _, err2 = H.lupine(dir .. "/home", args)
      assert.equal("lupine: no catalog found in " .. dir .. "/home (LUPINE_HOME)\nA catalog is "
        .. "made by the first `lupine run SCRIPT`: in ./.lupine, or in $LUPINE_HOME when it is "
        .. "set.\n", err2, args)
    end
    assert.equal("", (H.sh("ls -A " .. H.quote(dir))))
    -- a .lupine folder without a catalog in it
    os.execute("mkdir " .. H.quote(dir .. "/.lupine"))
    local _, err = H.lupine(nil, "pipeline list", dir)
    assert.matches("^lupine: no catalog found in " .. dir:gsub("%p", "%%%0") .. "/%.lupine\n", err)
    assert.equal(".lupine\n", (H.sh("ls -A " .. H.quote(dir))))
    assert.equal("", (H.sh("ls -A " .. H.quote(dir .. "/.lupine"))))
    -- what needs none still works
    local out, _, code = H.lupine(nil, "artifact-store flavor list", dir)
    assert.same({ "local\ta folder on this machine's file system\n"
      .. "s3\ta bucket of Amazon S3 or of a service that speaks its protocol\n", 0 }, { out, code })
  end)
end)

describe("where the catalog lives", function()
  local script = [[print((require "lupine").home())]]

  it("is $LUPINE_HOME when set", function()
    local home = H.tmpdir() .. "/elsewhere"
    local out = H.lupine(home, "run " .. H.script(script))
    assert.equal(home .. "\n", out)
  end)

  it("is the nearest .lupine walking up, else ./.lupine #sqlite", function()
    local top = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(top .. "/a/b/c") .. " " .. H.quote(top .. "/a/.lupine"))
    local s = H.script(script)
    local out = H.lupine(nil, "run " .. s, top .. "/a/b/c")
    assert.equal(top .. "/a/.lupine\n", out)
    out = H.lupine(nil, "run " .. s, top)
    assert.equal(top .. "/.lupine\n", out)
    assert.truthy(H.read(top .. "/.lupine/catalog.db"), "created on first use")
  end)

  it("names the folder when it cannot be created, and no place inside Lupine", function()
    local _, err, code = H.lupine("/proc/lupine-home", "run " .. H.script(script, "home.lua"))
    assert.equal(1, code)
    assert.equal("lupine: cannot create catalog folder /proc/lupine-home (No such file or "
      .. "directory)\nstack traceback:\n\t<tmp>/home.lua:1: in main chunk\n", fixed(err))
  end)
end)
