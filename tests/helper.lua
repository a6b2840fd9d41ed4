-- SPDX-License-Identifier: MIT
-- Shared by the specs: fresh catalogs, running the CLI, reading files.

local H = {}

H.root = (function()
  local p = io.popen("pwd")
  local d = p:read("l")
  p:close()   -- not left a zombie child for the collector (see H.tmpdir)
  return d
end)()

-- path made absolute against the repository
function H.abs(path)
  return path:sub(1, 1) == "/" and path or (H.root .. "/" .. path)
end

H.build = H.abs(os.getenv("LUPINE_BUILD") or "build")
H.cli = H.build .. "/lupine"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.quote = quote

-- Run a shell command; returns stdout, stderr, exit code. The sanitizer
-- preload is removed (our binaries carry their own sanitizer, and other
-- programs must not get it) unless keep_preload is set: for lua5.4
-- loading the sanitized module.
function H.sh(cmd, keep_preload)
  local errfile = os.tmpname()
  local env = keep_preload and "env ASAN_OPTIONS=detect_leaks=0 "
    or "env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=1 "
  -- the Slurm commands, and lupine run, find the cluster H.slurm started
  if H.slurm_conf then env = env .. "SLURM_CONF=" .. quote(H.slurm_conf) .. " " end
  local p = io.popen(env .. "sh -c " .. quote(cmd) .. " 2>" .. errfile)
  local out = p:read("a")
  local _, _, code = p:close()
  local f = io.open(errfile)
  local err = f:read("a")
  f:close()
  os.remove(errfile)
  return out, err, code
end

-- (the pipe is closed at once: left to the collector, its process stays a
-- zombie child until then, which tests that count children would see)
function H.tmpdir()
  local p = io.popen("mktemp -d /tmp/lupine-test.XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

function H.rm(path)
  os.execute("rm -rf " .. quote(path))
end

-- A fresh catalog folder for the in-process module; returns its path.
function H.fresh(lupine)
  local home = H.tmpdir() .. "/home"
  lupine.set_home(home)
  return home
end

-- Write text to path (creating it), return path.
function H.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- The body of a step named me that marks its arrival in dir, then waits
-- (tries x 10 ms) for the mark of the step named other: it returns true only
-- if the two ran at the same time.
function H.meet(dir, me, other, tries)
  return function()
    H.write(dir .. "/" .. me, "")
    for _ = 1, tries do
      if io.open(dir .. "/" .. other) then return true end
      os.execute("sleep 0.01")
    end
    return false
  end
end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Run `lupine ARGS` with LUPINE_HOME=home in directory dir (default: the
-- repository); returns stdout, stderr, exit code.
function H.lupine(home, args, dir)
  local cli = H.cli
  local env = home and ("LUPINE_HOME=" .. quote(home) .. " ") or "env -u LUPINE_HOME "
  return H.sh((dir and ("cd " .. quote(dir) .. " && ") or "") .. env .. quote(cli) .. " " .. args)
end

-- A script file with this Lua code in a fresh folder; returns its path.
function H.script(code, name)
  return H.write(H.tmpdir() .. "/" .. (name or "pipeline.lua"), code)
end

-- The PostgreSQL catalogs' connection string when the suite runs on
-- PostgreSQL (tests/run.sh's second pass), else nil. Its "{home}" gives
-- each catalog folder a schema of its own, so each test's fresh folder
-- has a fresh catalog; specs tagged #sqlite look at the sqlite file itself
-- and run only in the first pass.
H.pg = os.getenv("LUPINE_CATALOG")
if H.pg == "" then H.pg = nil end

-- The catalog of home as the CLI's headers name it before it opens: the
-- folder for its own file; with LUPINE_CATALOG, its kind and where it is
-- (as `lupine --version` says it).
function H.catalog_label(home)
  if not H.pg then return home end
  return (H.sh("LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli) .. " --version")
    :match("\ncatalog: ([^\n]+)"))
end

-- The connection string of home's catalog on PostgreSQL (its schema).
function H.pg_target(home)
  local p = io.popen("printf '%s' " .. quote(home) .. " | sha256sum")
  local hash = p:read("l"):sub(1, 16)
  p:close()
  return (H.pg:gsub("{home}", "lupine_" .. hash))
end

-- Query the catalog database of home: with the sqlite3 shell, or psql on
-- PostgreSQL (the same output: columns split by |, no header; foreign keys
-- unchecked, as the sqlite3 shell leaves them).
function H.sqlite(home, sql)
  if H.pg then
    return H.sh("psql -X -q -At -F '|' " .. quote(H.pg_target(home)) .. " -c "
      .. quote("SET session_replication_role = replica; " .. sql))
  end
  return H.sh("sqlite3 " .. quote(home .. "/catalog.db") .. " " .. quote(sql))
end

-- The names of the examples (examples/NAME.lua), every one of them.
function H.examples()
  local names = {}
  for f in H.sh("ls " .. quote(H.root .. "/examples")):gmatch("([%w_]+)%.lua\n") do
    names[#names + 1] = f
  end
  assert(#names >= 13, "examples missing")
  return names
end

-- What a catalog records of its runs, without ids, times and where steps
-- ran: step runs (with their logs and errors), versions, links, metadata,
-- tags, lookups: a run on Slurm or through `lupine exec` records what a
-- local run records (in PostgreSQL's words there: encode for sqlite's hex).
H.RECORDS = [[
SELECT r.status, s.name, s.status, coalesce(s.error, ''), coalesce(s.output, ''), s.attempts,
  s.cache_key, s.seed, s.output_count FROM step_runs s JOIN pipeline_runs r ON r.id = s.run_id
  ORDER BY r.seq, s.name;
SELECT a.name, v.version, v.data_type, v.content_hash, v.save_type FROM artifact_versions v
  JOIN artifacts a ON a.id = v.artifact_id ORDER BY a.name, v.version;
SELECT s.name, l.kind, l.name, a.name, v.version FROM step_run_artifacts l
  JOIN step_runs s ON s.id = l.step_run_id JOIN artifact_versions v ON v.seq = l.version_seq
  JOIN artifacts a ON a.id = v.artifact_id ORDER BY s.seq, 2, 3;
SELECT entity, key, hex(value) FROM run_metadata ORDER BY 1, 2, 3;
SELECT t.name, l.entity FROM tag_links l JOIN tags t ON t.seq = l.tag_seq ORDER BY 1, 2;
SELECT s.name, l.artifact_name, a.name, v.version FROM step_run_lookups l
  JOIN step_runs s ON s.id = l.step_run_id JOIN artifact_versions v ON v.id = l.artifact_version_id
  JOIN artifacts a ON a.id = v.artifact_id ORDER BY s.seq, 2;
]]
if H.pg then H.RECORDS = H.RECORDS:gsub("hex%(([%w_.]+)%)", "upper(encode(%1, 'hex'))") end

-- A trigger that makes every `what` (INSERT, DELETE) on table tbl of home's
-- catalog fail with "blocked by test", in the catalog's own dialect.
function H.block(home, what, tbl)
  local sql = H.pg and ("CREATE FUNCTION block() RETURNS trigger LANGUAGE plpgsql AS "
      .. "$$BEGIN RAISE EXCEPTION 'blocked by test'; END$$; CREATE TRIGGER block BEFORE "
      .. what .. " ON " .. tbl .. " FOR EACH ROW EXECUTE FUNCTION block()")
    or ("CREATE TRIGGER block BEFORE " .. what .. " ON " .. tbl
      .. " BEGIN SELECT RAISE(ABORT, 'blocked by test'); END")
  local _, err, code = H.sqlite(home, sql)
  assert(code == 0 and err == "", err)
end

-- Whether s is JSON for a strict reader: UTF-8, no raw control characters
-- in strings, no NaN or Infinity (Python's json module, so not ours);
-- false and the reader's complaint if not.
function H.strict_json(s)
  local file = H.write(os.tmpname(), s)
  local _, err, code = H.sh("python3 -c " .. quote("import json, sys\n"
    .. "def no(c): raise ValueError('not JSON: ' + c)\n"
    .. "json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'), parse_constant=no)")
    .. " " .. quote(file))
  os.remove(file)
  return code == 0, err
end

-- The message fn raises, without the "file:line: " prefix error() adds
-- (the culprit's own position, when the message names one, stays).
function H.err(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error, got none")
  if type(e) ~= "string" then return e end
  return (e:gsub("^[^\n:]+%.lua:%d+: ", "", 1))
end

-- The path of a Chromium to drive headless, or nil.
function H.chromium()
  for _, name in ipairs { "chromium", "chromium-browser" } do
    local path = H.sh("command -v " .. name):match("[^\n]+")
    if path then return path end
  end
end

-- Load url in headless Chromium: the DOM once its scripts ran, or with a
-- screenshot file, that file (of the window size "W,H", default 1280,900).
function H.browse(url, screenshot, size)
  local profile = H.tmpdir()
  local flags = "--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
    .. "--disable-component-update --disable-sync --hide-scrollbars --user-data-dir=" .. quote(profile)
  local cmd = "timeout 120 " .. quote(H.chromium()) .. " " .. flags .. " "
    .. (screenshot and ("--screenshot=" .. quote(screenshot) .. " --window-size=" .. (size or "1280,900"))
      or "--dump-dom") .. " " .. quote(url)
  local out, err, code = H.sh(cmd)
  H.rm(profile)
  assert(code == 0, err)
  return out
end

-- A real one-node Slurm cluster (tests/services/slurm.sh) of this test
-- run's own, in a fresh folder; returns that folder and a function that
-- stops it. Until then, the commands H.sh runs find it (SLURM_CONF; for
-- lupine.slurm in this process, set its conf to H.slurm_conf).
function H.slurm()
  local dir = H.tmpdir()
  local _, err, code = H.sh("sh " .. quote(H.root .. "/tests/services/slurm.sh") .. " start "
    .. quote(dir))
  assert(code == 0, err)
  H.slurm_conf = dir .. "/slurm.conf"
  return dir, function()
    H.slurm_conf = nil
    H.sh("sh " .. quote(H.root .. "/tests/services/slurm.sh") .. " stop " .. quote(dir))
    H.rm(dir)
  end
end

return H
