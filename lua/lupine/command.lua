-- SPDX-License-Identifier: MIT
-- lupine.command: the command line of the `lupine` program. One grammar,
-- getopt_long's, for every command (see "parsing" below), each command's
-- --help, and the commands that do rather than read: run, repl, ui, help.
-- The catalog commands are lupine.cli's, loaded only when one is asked for
-- (or the help that lists them all), so that `lupine run` starts without
-- its thousand lines.
--
-- main(args, { tty = ..., stdin_tty = ..., stderr_tty = ..., columns = ... })
-- parses args and runs the command. A catalog command returns its exit
-- status (0 ok, 1 not found or an operational failure, 2 a usage error);
-- `lupine run`, `repl` and `ui` return what runtime/programs/main.c is to do: run
-- the script, its events drawn by a lupine.progress view, or start a
-- helper program. It writes with io.write and io.stderr:write and never
-- exits: it is library code, and a host may call it too.
--
-- A command is { summary, args = { operands }, options = { ... }, run };
-- a group { summary, sub = { name = command, ... }, order = { names } }.
-- A command's operands: args names them as its help shows them (optional
-- ones in brackets, the last ones: `optional` counts them; `rest`: any
-- number more, and the first operand ends the options, as the script of
-- `lupine run` takes its own). run(ctx) gives the exit status, or what
-- runtime/programs/main.c is to do. catalog: nil (the command reads the catalog,
-- which must exist), "create" (it may make one) or "none" (it needs none).
-- An option: { "--long", short = "-s", arg = "PLACEHOLDER", int = true,
-- min = n, max = n, choices = { ... }, check = fn(value) -> ok, why,
-- multi = true (repeatable: a list), help = "..." }.

local core = require "lupine.core"
local lupine = require "lupine"
local names = require "lupine.names"
local query = require "lupine.query"   -- the page sizes

local M = {}

-- ---- errors ----

-- A usage error (exit 2): the message, and the command whose help to try.
local Usage = {}

function M.usage(cmd, fmt, ...)
  error(setmetatable({ cmd = cmd, message = string.format(fmt, ...) }, Usage), 0)
end
local usage = M.usage

-- An operational error (exit 1) raised by the command line itself.
function M.fail(fmt, ...)
  error(string.format(fmt, ...), 0)
end
local fail = M.fail

-- An error the Client raised on a command's behalf carries the position
-- of the command's call, in Lupine's own code: drop it.
local function clean(msg)
  msg = tostring(msg)
  return (msg:gsub("^[^\n]-lupine/[%w_]+%.lua:%d+: ", "", 1))
end

-- KEY, as a command's operand: an artifact version.
M.KEY = "NAME[:VERSION]|ID"
local KEY = M.KEY

-- ---- options ----

M.PAGE_OPTIONS = {
  { "--page", arg = "N", int = true, help = "show page N (default 1)" },
  { "--size", arg = "N", int = true, max = query.MAX_SIZE,
    help = "N rows per page (default " .. query.DEFAULT_SIZE .. ", at most " .. query.MAX_SIZE
      .. ")" },
}

local JSON_OPTION = { "--json", help = "print JSON (shapes in runtime/README.md)" }
local HELP_OPTION = { "--help", short = "-h", help = "show this help" }

-- Every option of cmd: its own, paging for lists, --json unless it says
-- otherwise (json = false), --help.
local function options_of(cmd)
  local list = {}
  for _, o in ipairs(cmd.options or {}) do list[#list + 1] = o end
  if cmd.paged then
    for _, o in ipairs(M.PAGE_OPTIONS) do list[#list + 1] = o end
  end
  if cmd.json ~= false then list[#list + 1] = JSON_OPTION end
  list[#list + 1] = HELP_OPTION
  return list
end

local function sentence(s)
  return s:sub(1, 1):upper() .. s:sub(2) .. (s:find("%.$") and "" or ".")
end

-- text cut into lines of at most width columns, each starting with indent.
local function wrap(text, width, indent)
  local lines, line = {}, indent
  for word in text:gmatch("%S+") do
    if #line > #indent and #line + 1 + #word > width then
      lines[#lines + 1], line = line, indent
    end
    line = line .. (#line > #indent and " " or "") .. word
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

-- The operands of cmd as its usage shows them (short: KEY for a version's).
local function synopsis(cmd, short)
  local args = cmd.synopsis or table.concat(cmd.args or {}, " ")
  if short then args = args:gsub(KEY:gsub("%p", "%%%0"), "KEY") end
  return args
end

-- Two columns, gap spaces apart: the first as wide as its widest cell (at
-- least min), the second wrapped to 80 columns.
local function two_columns(rows, gap, min)
  local width, out = min or 0, {}
  for _, r in ipairs(rows) do width = math.max(width, #r[1]) end
  for i, r in ipairs(rows) do
    local indent = string.rep(" ", 2 + width + gap)
    out[i] = "  " .. r[1] .. string.rep(" ", width - #r[1] + gap)
      .. wrap(r[2], 80, indent):sub(#indent + 1)
  end
  return table.concat(out, "\n")
end

-- "  command ARGS   summary" for each command under node (groups walked;
-- short: KEY for a version's operand).
local function command_rows(node, short)
  local rows = {}
  local function walk(p, n)
    for _, name in ipairs(n.order) do
      local sub = n.sub[name]
      if sub.sub then walk(p .. name .. " ", sub)
      else
        local args = synopsis(sub, short)
        rows[#rows + 1] = { p .. name .. (args ~= "" and (" " .. args) or ""), sub.summary }
      end
    end
  end
  walk("", node)
  return two_columns(rows, 3)
end

-- `lupine --help`: every command of the tree, and what they share.
local function top_help(tree)
  return "usage: lupine <command> [options]\n\n" .. wrap(sentence(tree.summary), 80, "")
    .. "\n\ncommands:\n"
    .. command_rows(tree, true) .. "\n\noptions:\n"
    .. "  -h, --help               show this help (`lupine COMMAND --help`: a command's)\n"
    .. "  -V, --version            show the versions of lupine and of the libraries it uses\n\n"
    .. "KEY is NAME (the latest version), NAME:VERSION, an id or a unique id prefix.\n"
    .. "Every command takes --help; catalog commands take --json (machine-readable output),\n"
    .. "lists --page N and --size N. Options go before or after operands (but after\n"
    .. "SCRIPT, words are the script's); --opt=VALUE or --opt VALUE, -jN or -j N, -vq.\n\n"
    .. "The catalog lives in $LUPINE_HOME, else the nearest .lupine folder found walking up\n"
    .. "from the current directory, else ./.lupine (made by the first run). Commands that\n"
    .. "only read never make one. $LUPINE_CATALOG names a shared PostgreSQL catalog instead\n"
    .. "(postgresql://user@host/db); the folder still holds the artifacts.\n"
    .. "Exit status: 0 ok, 1 a run or the script failed, or not found, 2 usage error,\n"
    .. "130 or 143 stopped by SIGINT or SIGTERM.\n"
end

local function help_text(path, cmd)
  if path == "" then return top_help(cmd) end
  local out = {}
  if cmd.sub then
    return string.format("usage: lupine %s <command> [options]\n\n%s\n\ncommands:\n%s\n\n"
      .. "Try 'lupine %s <command> --help' for its options.\n", path, sentence(cmd.summary),
      command_rows(cmd, false), path)
  end
  local args = synopsis(cmd)
  if args == "" then
    out[1] = string.format("usage: lupine %s [options]", path)
  elseif cmd.rest then   -- options first: after the first operand, words are operands
    out[1] = string.format("usage: lupine %s [options] %s", path, args)
  else
    out[1] = string.format("usage: lupine %s %s [options]", path, args)
  end
  out[2] = "\n" .. sentence(cmd.summary)
  if cmd.description then out[3] = "\n" .. wrap(cmd.description, 80, "") end
  out[#out + 1] = "\noptions:"
  local rows = {}
  for i, o in ipairs(options_of(cmd)) do
    local flags = (o.short and (o.short .. ", ") or "    ") .. o[1]
    rows[i] = { flags .. (o.arg and (" " .. o.arg) or ""), o.help }
  end
  out[#out + 1] = two_columns(rows, 1, 24)
  return table.concat(out, "\n") .. "\n"
end

-- ---- parsing: getopt_long's conventions ----
--
-- --name=VALUE or --name VALUE; a long name may be cut to any prefix that
-- names one option; -n VALUE or -nVALUE; flags bundled (-vq, -vj2); "--"
-- ends the options; "-" is an operand. Options may follow operands, but
-- for a command with `rest` (run, repl), whose first operand ends them.

-- The option a long flag names: exactly, or as the one option it begins.
local function long_option(ctx, list, flag)
  local found = {}
  for _, o in ipairs(list) do
    if o[1] == flag then return o end
    if o[1]:sub(1, #flag) == flag then found[#found + 1] = o[1] end
  end
  if #found == 1 then return long_option(ctx, list, found[1]) end
  if #found > 1 then
    usage(ctx.path, "option '%s' is ambiguous (%s)", flag, table.concat(found, ", "))
  end
  local longs = {}
  for i, o in ipairs(list) do longs[i] = o[1] end
  usage(ctx.path, "unknown option '%s'%s", flag, names.suggest(flag, longs))
end

local function short_option(ctx, list, flag)
  for _, o in ipairs(list) do
    if o.short == flag then return o end
  end
  usage(ctx.path, "unknown option '%s'", flag)
end

local function check_int(path, flag, s, min, max)
  local n = s:find("^%d+$") and math.tointeger(tonumber(s))
  if not n or n < min then
    usage(path, "option '%s' needs a %s integer (got '%s')", flag,
      min == 0 and "non-negative" or "positive", s)
  end
  if max and n > max then usage(path, "option '%s' is at most %d (got %d)", flag, max, n) end
  return n
end

-- Check value for option o (as flag gave it) and keep it in opts.
local function take(ctx, opts, o, flag, value)
  local key = o[1]:sub(3)
  if o.int then value = check_int(ctx.path, flag, value, o.min or 1, o.max) end
  if o.choices then
    local ok = false
    for _, c in ipairs(o.choices) do ok = ok or c == value end
    if not ok then
      usage(ctx.path, "option '%s': unknown value '%s'%s (one of: %s)", flag, value,
        names.suggest(value, o.choices), table.concat(o.choices, ", "))
    end
  end
  if o.check then
    local ok, why = o.check(value)
    if not ok then usage(ctx.path, "option '%s' %s (got '%s')", flag, why, value) end
  end
  if o.multi then table.insert(opts[key], value) else opts[key] = value end
end

-- Parse argv[i..] for cmd: options into ctx.opts, operands into ctx.args.
-- false if --help was asked for (and shown).
local function parse(ctx, cmd, argv, i)
  local list = options_of(cmd)
  local opts = { page = 1, size = query.DEFAULT_SIZE }
  for _, o in ipairs(list) do
    if o.multi then opts[o[1]:sub(3)] = {} end
  end
  local args, operands_only = {}, false
  -- o was given as flag; value is what came attached (--o=v, -ov), if anything
  local function given(o, flag, value)
    if o == HELP_OPTION then
      io.write(help_text(ctx.path, cmd))
      return false
    end
    if o.arg then
      if value == nil then
        i = i + 1
        value = argv[i]
        if value == nil then usage(ctx.path, "option '%s' needs a value (%s)", flag, o.arg) end
      end
      take(ctx, opts, o, flag, value)
    else
      opts[o[1]:sub(3)] = true
    end
    return true
  end
  while i <= #argv do
    local a = argv[i]
    if operands_only or a == "-" or a:sub(1, 1) ~= "-" then
      args[#args + 1] = a
      operands_only = operands_only or cmd.rest
    elseif a == "--" then
      operands_only = true
    elseif a:sub(1, 2) == "--" then
      local flag, value = a:match("^(%-%-[^=]+)=(.*)$")
      flag = flag or a
      local o = long_option(ctx, list, flag)
      if value ~= nil and not o.arg then usage(ctx.path, "option '%s' takes no value", o[1]) end
      if not given(o, flag, value) then return false end
    else   -- one or more short options: flags, the last may take a value
      local k = 2
      while k <= #a do
        local flag = "-" .. a:sub(k, k)
        local o = short_option(ctx, list, flag)
        local rest = a:sub(k + 1)
        if o.arg then
          if not given(o, flag, rest ~= "" and rest or nil) then return false end
          break
        end
        if not given(o, flag) then return false end
        k = k + 1
      end
    end
    i = i + 1
  end
  local want = cmd.args or {}
  if #args < #want - (cmd.optional or 0) then
    usage(ctx.path, "missing argument %s", want[#args + 1])
  end
  if #args > #want and not cmd.rest then
    usage(ctx.path, "unexpected argument '%s'", args[#want + 1])
  end
  ctx.opts, ctx.args = opts, args
  return true
end

-- ---- the catalog a command reads ----

-- Where the catalog was looked for, and how to make one, for a command
-- that reads one where there is none.
local function no_catalog(home)
  local env = os.getenv("LUPINE_HOME")
  local where
  if env and env ~= "" then
    where = string.format("in %s (LUPINE_HOME)", home)
  elseif os.rename(home, home) then   -- the folder is there, its catalog.db is not
    where = "in " .. home
  else
    where = string.format("(no .lupine folder in %s or any folder above it, and "
      .. "LUPINE_HOME is not set)", home:match("^(.*)/%.lupine$") or home)
  end
  fail("no catalog found %s\nA catalog is made by the first `lupine run SCRIPT`: in ./.lupine, "
    .. "or in $LUPINE_HOME when it is set.", where)
end

-- Before a command that reads the catalog: there must be one (reading
-- never makes one); on a terminal, say which one.
local function open_catalog(ctx, cmd)
  if cmd.catalog == "none" then return end
  local home, exists = core.locate()
  if not exists and cmd.catalog ~= "create" then no_catalog(home) end
  if ctx.tty and not ctx.opts.json then
    io.stderr:write("catalog: ", names.visible(core.catalog_name()), "\n")
  end
end

-- ---- lupine run, repl, ui ----

local progress = require "lupine.progress"

local LUPINE_OK, LUPINE_IO = 0, 4   -- lupine.h's result codes, as lupine_exec_file gives them

-- A script's error as its author should see it: the message, and of its
-- traceback only the frames of their code (Lupine's own modules and the C
-- functions between them are the machinery, not the place to look).
local function user_error(msg)
  local head, trace = msg:match("^(.-)\nstack traceback:\n(.*)$")
  if not head then return msg end
  local frames = {}
  for line in trace:gmatch("[^\n]+") do
    if not (line:find("^%s*%[C%]:") or line:find("^%s*lupine/[%w_]+%.lua:")
        or line:find("^%s*%(%.%.%.tail calls%.%.%.%)")) then
      frames[#frames + 1] = line
    end
  end
  -- one frame, the line the message already names, says nothing more
  local only = #frames == 1 and frames[1]:match("^%s*(.-:%d+):")
  if #frames == 0 or (only and head:sub(1, #only + 1) == only .. ":") then return head end
  return head .. "\nstack traceback:\n" .. table.concat(frames, "\n")
end

-- Pipelines the script itself defined and never called: probably a
-- forgotten call, since nothing of theirs ran.
local function warn_not_called(script)
  for _, p in ipairs(require("lupine.client").defined_pipelines) do
    if not p.called and p.source == "@" .. script then
      io.stderr:write(string.format("lupine: warning: pipeline '%s' (%s) is defined but never "
        .. "called, so it did not run\n", p.name, p.where))
    end
  end
end

-- The result of `lupine run --json`: whether all went well, the error, and
-- each run as `pipeline runs describe --json` shows it.
local function print_run_result(ctx, view, ok, msg)
  local records, json = require "lupine.records", require "lupine.json"
  local runs = {}
  for i, shown in ipairs(view:shown()) do
    runs[i] = records.run_record(ctx.client:get_pipeline_run(shown.id))
  end
  io.write(json.encode(json.object { ok = ok,
    error = msg and (msg:gsub("\nstack traceback:\n.*", "")) or json.null,
    runs = json.array(runs) }), "\n")
end

-- After the script: its error (unless the view showed it already: a run's
-- failure), the warnings, the JSON; the exit status. rc and msg are
-- lupine_exec_file's, sig the signal that stopped it (0: none).
local function finish_run(ctx, view, script, rc, msg, sig)
  if msg and not view:told(msg) then
    -- stopped by a signal: why is known, where it was is not the point
    io.stderr:write("lupine: ", sig ~= 0 and (msg:gsub("\nstack traceback:\n.*", ""))
      or user_error(msg), "\n")
  end
  if rc == LUPINE_OK then warn_not_called(script) end
  if ctx.opts.json then print_run_result(ctx, view, rc == LUPINE_OK and sig == 0, msg) end
  io.stdout:flush()
  if sig ~= 0 then return 128 + sig end   -- as a shell reports a command a signal ended
  if rc == LUPINE_OK then return 0 end
  return rc == LUPINE_IO and 2 or 1
end

-- lupine run: set the overrides, and hand runtime/programs/main.c the script with
-- the view that draws its events.
local function cmd_run(ctx)
  local o = ctx.opts
  if o.verbose and o.quiet then
    usage(ctx.path, "--verbose and --quiet ask for different things")
  end
  if o["no-cache"] then lupine.overrides.enable_cache = false end
  if o.jobs then lupine.overrides.jobs = o.jobs end
  if o.resume then require("lupine.slurm").resume = o.resume end
  local located = pcall(core.locate)
  local tty = ctx.tty   -- where the progress goes: stdout, but for --json stderr
  if o.json then tty = ctx.stderr_tty end
  local view = progress.new { tty = tty, verbose = o.verbose, quiet = o.quiet,
    columns = ctx.columns, catalog = located and core.catalog_name() or nil }
  local script = ctx.args[1]
  return { script = script, args = table.move(ctx.args, 2, #ctx.args, 1, {}), json = o.json,
    event = function(e) view:event(e) end, warn = function(msg) view:warn(msg) end,
    output_begin = function(at) return view:output_begin(at) end,
    output_end = function(at) return view:output_end(at) end,
    finish = function(rc, msg, sig) return finish_run(ctx, view, script, rc, msg, sig) end }
end

-- lupine repl: the lupine-repl helper, with the script (after "--", so that
-- a name starting with "-" is still a script).
local function cmd_repl(ctx)
  if #ctx.args == 0 then return { exec = "repl", args = {} } end
  return { exec = "repl", args = table.move(ctx.args, 1, #ctx.args, 2, { "--" }) }
end

-- lupine ui: the lupine-ui helper, with the options checked here, each
-- written out in full.
local function cmd_ui(ctx)
  local o, args = ctx.opts, {}
  for _, k in ipairs { "host", "port" } do
    if o[k] then args[#args + 1], args[#args + 2] = "--" .. k, tostring(o[k]) end
  end
  for _, name in ipairs(o["allowed-host"]) do
    args[#args + 1], args[#args + 2] = "--allowed-host", name
  end
  return { exec = "ui", args = args }
end

local function host_name(s)
  if s:find("^[%w%.%-_]+$") then return true end
  return false, "takes a host name: letters, digits, '.', '-' and '_'"
end

-- lupine exec: run one step from its spec; 0 if it completed (or its gate
-- said skip), 1 if it failed (the manifest says why either way).
local function cmd_exec(ctx)
  if not ctx.opts.spec then usage(ctx.path, "missing option --spec FILE") end
  local ok, m = pcall(require("lupine.exec").run, ctx.opts.spec, ctx.opts.manifest)
  if not ok then
    io.stderr:write("lupine: exec: ", tostring(m), "\n")
    return 2
  end
  if m.status == "completed" or m.status == "skipped" then return 0 end
  io.stderr:write("lupine: ", (m.error:gsub("\nstack traceback:\n.*", "")), "\n")
  return 1
end

-- The commands of this file, in lupine.cli's tree too.
M.commands = {
  run = {
    summary = "run a Lua pipeline script (ARGS become its `arg` and `...`)",
    description = "On a terminal, a run shows which steps are running and for how long; "
      .. "piped, a line per step as it settles. Exit status: 0 when every run completed, "
      .. "1 when a run or the script failed, 2 for a script that cannot be read, 130 or "
      .. "143 when SIGINT (Ctrl-C) or SIGTERM stopped it.",
    args = { "SCRIPT", "[ARGS...]" }, optional = 1, rest = true, catalog = "none",
    options = { { "--verbose", short = "-v", help = "also show each step as it starts and ends" },
      { "--quiet", short = "-q", help = "show only each run's result (and errors)" },
      { "--jobs", short = "-j", arg = "N", int = true, max = 64,
        help = "run up to N steps at once (default: the cores)" },
      { "--no-cache", help = "run every step, reusing no earlier result" },
      { "--resume", arg = "RUN", help = "adopt the Slurm jobs of RUN (a name or id), whose "
        .. "coordinator died, instead of those of its pipeline's latest run" },
      { "--json", help = "print the result (runs, steps, versions) as JSON on stdout; "
        .. "the rest goes to stderr" } },
    json = false, run = cmd_run,
  },
  repl = {
    summary = "a Lua REPL with `lupine` and `client` ready (after running SCRIPT)",
    description = "With SCRIPT, runs it first (ARGS become its `arg`) and keeps its globals. "
      .. "In the session, help() tells what it has, help(x) what x is, and `_` is the last "
      .. "result. Ctrl-C stops the statement running (or clears the line), Ctrl-D exits. "
      .. "History is kept in the catalog folder, in repl_history. Reads plain lines, without "
      .. "prompts, when stdin is not a terminal. `lupine` alone on a terminal starts it too.",
    args = { "[SCRIPT]", "[ARGS...]" }, synopsis = "[SCRIPT [ARGS...]]", optional = 2,
    rest = true, catalog = "none", json = false, run = cmd_repl,
  },
  ui = {
    summary = "serve a read-only dashboard of the catalog (default 127.0.0.1:8237)",
    description = "A search box over everything, pipelines and runs, each run's graph and "
      .. "plan, steps, artifacts and their versions with metadata as columns and charts, "
      .. "versions and runs compared, lineage, visualizations and downloads, and the same data "
      .. "as JSON under /api/. Ctrl-C or SIGTERM stops it. By default only requests under an "
      .. "IP address or localhost are answered, so that a web page cannot reach it through a "
      .. "name that points here.",
    catalog = "none", json = false,
    options = { { "--host", arg = "HOST",
        help = "listen on this address (default 127.0.0.1: this machine only)" },
      { "--port", arg = "PORT", int = true, min = 0, max = 65535,
        help = "listen on this port (default 8237; 0: any free port, printed)" },
      { "--allowed-host", arg = "NAME", multi = true, check = host_name,
        help = "answer requests whose Host header is NAME too (repeatable)" } },
    run = cmd_ui,
  },
  exec = {
    summary = "run one step from a step spec and write its manifest (a cluster job's work)",
    description = "What a coordinator runs where a step is to run (a cluster's job): the "
      .. "script named in the spec is loaded for its step definitions (its pipelines are not "
      .. "run), the step is refused if its code's fingerprint differs from the spec's, its "
      .. "inputs are read from the artifact stores, its outputs written there, and what it "
      .. "did is written to the manifest (atomically), which the coordinator records. The "
      .. "catalog is never opened. Both formats are in the runtime's README, \"Step spec and "
      .. "manifest\". Exit status: 0 when the step completed (or, a job submitted ahead, its "
      .. "coordinator said to skip it: a cache hit), 1 when it failed (the manifest says why), 2 when the spec cannot be read or the manifest cannot be written.",
    catalog = "none", json = false,
    options = { { "--spec", arg = "FILE", help = "the step spec to run (required)" },
      { "--manifest", arg = "FILE",
        help = "where to write the manifest (default: the spec's manifest field)" } },
    run = cmd_exec,
  },
  help = {
    summary = "show the help of a command (`lupine help artifact list`)",
    args = { "[COMMAND...]" }, optional = 1, rest = true, catalog = "none", json = false,
    run = function(ctx) return ctx.help(ctx.args) end,
  },
}

-- ---- running a command ----

-- The tree of every command (the catalog commands are lupine.cli's).
local function full_tree()
  return require("lupine.cli").tree
end

-- The node of tree the words name, the path to it, the index of the first
-- word after them; a usage error for a word that names none.
local function find_command(tree, words, i)
  local node, path = tree, {}
  while node.sub do
    local word = words[i]
    if word == nil or word:sub(1, 1) == "-" then break end
    local sub = node.sub[word]
    if not sub then
      local here = #path > 0 and table.concat(path, " ") or nil
      usage(here, "unknown command '%s'%s", word, names.suggest(word, node.order))
    end
    path[#path + 1] = word
    node, i = sub, i + 1
  end
  return node, table.concat(path, " "), i
end

local function print_version()
  io.write("lupine ", lupine.version, "\n")
  for _, lib in ipairs(core.libraries()) do io.write(lib[1], " ", lib[2], "\n") end
  local ok, backend, where = pcall(core.catalog)
  if ok then io.write("catalog: ", backend, " ", where, "\n") end
  return 0
end

-- The commands that need no other: `lupine run` is parsed without loading
-- lupine.cli.
local FAST = { sub = { run = M.commands.run, repl = M.commands.repl, ui = M.commands.ui,
  exec = M.commands.exec } }

-- Walk the command tree along argv; run the command found.
local function dispatch(ctx, argv)
  if #argv == 0 then
    -- `lupine` alone: the REPL on a terminal, else how to use it
    if ctx.stdin_tty then return cmd_repl({ args = {} }) end
    io.stderr:write(top_help(full_tree()))
    return 2
  end
  if argv[1] == "-V" or argv[1] == "--version" then return print_version() end
  local tree = FAST.sub[argv[1]] and FAST or full_tree()
  local node, path, i = find_command(tree, argv, 1)
  ctx.path = path
  ctx.help = function(words)   -- `lupine help COMMAND...`
    local target, target_path = find_command(full_tree(), words, 1)
    io.write(help_text(target_path, target))
    return 0
  end
  if node.sub then
    local word = argv[i]
    if word == "-h" or word == "--help" then
      io.write(help_text(path, node))
      return 0
    end
    if path == "" then
      usage(nil, "unknown option '%s'%s", word, names.suggest(word, { "--help", "--version" }))
    end
    if word == nil then
      usage(path, "missing command (one of: %s)", table.concat(node.order, ", "))
    end
    usage(path, "unknown option '%s'", word)
  end
  if not parse(ctx, node, argv, i) then return 0 end
  open_catalog(ctx, node)
  return node.run(ctx)
end

-- main(args, { tty, stdin_tty, stderr_tty = which streams are terminals,
-- columns = the terminal's width }): the exit status, or (`lupine run`,
-- repl, ui) a table saying what runtime/programs/main.c is to do.
function M.main(args, options)
  if type(args) ~= "table" then
    error("bad argument #1 to 'main' (table expected, got " .. type(args) .. ")", 2)
  end
  if args[1] == "__complete" then   -- for the shell's completion, not listed
    return require("lupine.complete").main(require("lupine.cli"),
      table.move(args, 2, #args, 1, {}))
  end
  options = options or {}
  local ctx = { tty = options.tty == true, stdin_tty = options.stdin_tty == true,
    stderr_tty = options.stderr_tty == true, columns = options.columns,
    client = lupine.Client() }
  local ok, status = xpcall(dispatch, function(e)
    if getmetatable(e) == Usage then return e end
    -- an error the Client raised names us as the caller: keep its text
    -- only; a fault in the command line keeps its position and a traceback
    local msg = tostring(e)
    local text = clean(msg)
    if text ~= msg and (text:find("^attempt to ") or text:find("^bad argument")) then
      return debug.traceback(msg, 2)
    end
    return text
  end, ctx, args)
  io.stdout:flush()
  if ok then return status end
  if getmetatable(status) == Usage then
    io.stderr:write("lupine: ", status.cmd and (status.cmd .. ": ") or "", status.message,
      "\nTry 'lupine ", status.cmd and (status.cmd .. " ") or "", "--help'.\n")
    return 2
  end
  io.stderr:write("lupine: ", tostring(status), "\n")
  return 1
end

M.options_of, M.help_text = options_of, help_text

return M
