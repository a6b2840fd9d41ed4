-- SPDX-License-Identifier: MIT
-- The two catalogs: what holds on both (text filters' case rules, many
-- writers numbering one artifact's versions, runs on another machine told
-- dead by their heartbeats), and what the PostgreSQL one adds (choosing
-- it, naming it without its password, a catalog per folder, copying a
-- catalog across, workers that never touch the coordinator's connection).
-- The PostgreSQL parts run in tests/run.sh's second pass, on its server.
local H = require "helper"
local lupine = require "lupine"
local core = require "lupine.core"
local search = require "lupine.search"

local function names_of(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = r.name end
  table.sort(out)
  return out
end

describe("text filters on either catalog", function()
  it("ignore the case of ASCII letters only, as sqlite's LIKE does", function()
    H.fresh(lupine)
    for _, name in ipairs { "Model_A", "model_b", "ÉTÉ", "été", "other" } do
      lupine.save_artifact(1, name)
    end
    local client = lupine.Client()
    assert.same({ "Model_A", "model_b" },
      names_of(client:list_artifact_versions { name = "contains:MODEL" }))
    assert.same({ "Model_A", "model_b" },
      names_of(client:list_artifacts { name = "startswith:mOdEl" }))
    -- É and é are not the same letter to either
    assert.same({ "ÉTÉ" }, names_of(client:list_artifact_versions { name = "contains:ÉT" }))
    assert.same({ "été" }, names_of(client:list_artifact_versions { name = "endswith:té" }))
    -- the dashboard's search box too
    assert.same({ "Model_A", "model_b" }, names_of(search.find("MODEL_").artifacts))
    assert.same({ "été" }, names_of(search.find("été").artifacts))
  end)
end)

-- A script that runs `runs` runs, each saving a version of "shared" by hand
-- inside its step (the version numbered as it is recorded).
local WRITER = [[
local lupine = require "lupine"
local save = lupine.step { name = "save", outputs = {}, function(i)
  lupine.save_artifact({ writer = arg[1], run = i }, "shared")
end }
local p = lupine.pipeline { name = "writer" .. arg[1], function(i) save(i) end }
for i = 1, tonumber(arg[2]) do p:with_options { enable_cache = false } (i) end
]]

describe("many writers on either catalog", function()
  it("number one artifact's versions 1..N, unique and gap-free: 8 processes x 25 runs", function()
    local dir = H.tmpdir()
    local home = dir .. "/home"
    local script = H.write(dir .. "/writer.lua", WRITER)
    assert.equal(0, select(3, H.lupine(home, "run " .. H.quote(script) .. " 0 1")))
    local cmd = {}
    for w = 1, 8 do
      cmd[#cmd + 1] = string.format("(LUPINE_HOME=%s %s run %s %d 25 > out.%d 2> err.%d;"
        .. " echo $? > code.%d) &", H.quote(home), H.quote(H.cli), H.quote(script), w, w, w, w)
    end
    H.sh("cd " .. H.quote(dir) .. " || exit 1\n" .. table.concat(cmd, " ") .. " wait")
    for w = 1, 8 do
      assert.equal("0\n", H.read(dir .. "/code." .. w), H.read(dir .. "/err." .. w))
      assert.equal("", H.read(dir .. "/err." .. w))
    end
    lupine.set_home(home)
    local versions = lupine.Client():list_artifact_versions { name = "shared", size = 1000 }
    assert.equal(201, versions.total)
    local seen, per_writer = {}, {}
    for _, v in ipairs(versions) do
      local n = tonumber(v.version)
      assert.is_nil(seen[n], "version " .. v.version .. " twice")
      seen[n] = true
      local value = v:load()
      per_writer[value.writer] = (per_writer[value.writer] or 0) + 1
    end
    for n = 1, 201 do assert.is_true(seen[n], "version " .. n .. " missing") end
    for w = 1, 8 do assert.equal(25, per_writer[tostring(w)]) end
    H.rm(dir)
  end)
end)

describe("a new artifact's first versions on either catalog", function()
  -- (on PostgreSQL a writer that found no artifact row to lock, another
  -- process making it meanwhile, numbered its version unlocked: duplicate
  -- numbers, or a deadlock, for 17 of 80 writers, 8 at once)
  it("are numbered 1..N by writers that all start before it exists", function()
    local dir = H.tmpdir()
    local script = H.write(dir .. "/first.lua", [[
local lupine = require "lupine"
for i = 1, 3 do lupine.save_artifact(i, "fresh") end
]])
    for trial = 1, 6 do
      local home = dir .. "/home" .. trial
      local cmd = {}
      for w = 1, 8 do
        cmd[#cmd + 1] = string.format("(LUPINE_HOME=%s %s run %s > /dev/null 2> err.%d.%d) &",
          H.quote(home), H.quote(H.cli), H.quote(script), trial, w)
      end
      H.sh("cd " .. H.quote(dir) .. " || exit 1\n" .. table.concat(cmd, " ") .. " wait")
      for w = 1, 8 do assert.equal("", H.read(dir .. "/err." .. trial .. "." .. w)) end
      lupine.set_home(home)
      local numbers = {}
      for _, v in ipairs(lupine.Client():list_artifact_versions { name = "fresh", size = 100 }) do
        numbers[#numbers + 1] = tonumber(v.version)
      end
      table.sort(numbers)
      assert.equal(24, #numbers)
      for n = 1, 24 do assert.equal(n, numbers[n]) end
    end
    H.rm(dir)
  end)
end)

describe("a cached re-run's records on either catalog", function()
  -- (on PostgreSQL the rows of a cached re-run's many INSERTs go as one
  -- statement a table, each value an array's element: text and bytes that
  -- an array's syntax quotes, or escapes, must come back as they went)
  it("keep every name and parameter exactly, and each step run's links in order", function()
    H.fresh(lupine)
    local odd = 'we"ird\\ na,me{NULL} \u{e9}'
    local split = lupine.step { name = odd, outputs = { 'o"u\\t{,}', "NULL", "{}" }, function(p, n)
      return #p, n, "" end }
    local join = lupine.step { name = "join", function(a, b, c) return a + b + #c end }
    local function run()
      return lupine.pipeline { name = "odd", function()
        for i = 1, 6 do
          local a, b, c = split('x"y\\z{1,2}\0\255' .. string.rep("\\", i), i)
          join(a, b, c)
        end
      end } ()
    end
    local first, again = run(), run()
    assert.equal("completed", again.status)
    local function links(sr)
      local out = {}
      for _, l in ipairs(core.query("step_run_artifacts", sr.id)) do
        out[#out + 1] = l.kind .. " " .. l.name .. " " .. l.artifact_version_id
      end
      return out
    end
    local n = 0
    for name, sr in pairs(again.steps) do
      local before = first.steps[name]
      assert.equal("cached", sr.status, name)
      assert.equal(before.id, sr.cached_from)
      assert.equal(before.step_name, sr.step_name)
      assert.same(before.parameters, sr.parameters)
      assert.same(links(before), links(sr))
      n = n + 1
    end
    assert.equal(12, n)
    assert.equal(odd, again.steps[odd].step_name)
    assert.equal('x"y\\z{1,2}\0\255\\\\', again.steps[odd .. "_2"].parameters.p)
    assert.equal("", again.steps[odd .. "_2"].outputs["{}"]:load())
  end)
end)

describe("a step run on either catalog", function()
  -- (each UPDATE of a row writes all of it again, and on PostgreSQL every
  -- index of its table too: a step's record is written twice, not four
  -- times, which a catalog on a server feels in every step)
  it("is written by one INSERT as its step starts and one UPDATE as it ends", function()
    local home = H.fresh(lupine)
    local p = lupine.pipeline { name = "three", function(x)
      local inc = lupine.step { name = "inc", function(v) print("at", v) return v + 1 end }
      inc(inc(inc(x)))
    end }
    p(1)
    H.sqlite(home, H.pg and [[
CREATE TABLE writes(step_run text, what text);
CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
  INSERT INTO writes VALUES (NEW.id, TG_OP);
  RETURN NULL;
END$$;
CREATE TRIGGER count_write AFTER INSERT OR UPDATE ON step_runs
  FOR EACH ROW EXECUTE FUNCTION count_write();]] or [[
CREATE TABLE writes(step_run text, what text);
CREATE TRIGGER count_insert AFTER INSERT ON step_runs BEGIN
  INSERT INTO writes VALUES (NEW.id, 'INSERT');
END;
CREATE TRIGGER count_update AFTER UPDATE ON step_runs BEGIN
  INSERT INTO writes VALUES (NEW.id, 'UPDATE');
END;]])
    local run = p(2)
    assert.equal("INSERT|3\nUPDATE|3\n",
      H.sqlite(home, "SELECT what, count(*) FROM writes GROUP BY what ORDER BY what"))
    -- with all it records: why it missed the cache, what it printed, its attempts
    local sr = core.query("step_run_by_id", run.steps.inc_3.id)[1]
    assert.equal("completed", sr.status)
    assert.equal("input 'v' changed", sr.cache_note)
    assert.equal("at\t4\n", sr.logs)
    assert.equal(1, sr.attempts)
    assert.matches("^sha256:%x+$", sr.cache_key)
    assert.equal("1\n", H.sqlite(home, "SELECT count(*) FROM step_runs WHERE id = '" .. sr.id
      .. "' AND cache_parts IS NOT NULL"))
  end)
end)

describe("a run on another machine, on either catalog", function()
  local home, client
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
  end)

  -- a run as another machine's process leaves it: running, its host and
  -- last heartbeat
  local function foreign_run(heartbeat)
    local noop = lupine.step { name = "noop", outputs = {}, function() end }
    lupine.pipeline { name = "far", function() noop() end } ()
    H.sqlite(home, "UPDATE pipeline_runs SET status = 'running', end_time = NULL, host = "
      .. "'elsewhere', pid = 4242, heartbeat = '" .. heartbeat .. "'")
    lupine.set_home(home)   -- a process that looks next
    return lupine.Client()
  end

  it("is failed, with the reason, once its heartbeat is older than LUPINE_DEAD_AFTER", function()
    client = foreign_run("2001-01-01T00:00:00.000000Z")
    local runs = client:list_pipeline_runs()
    assert.equal("failed", runs[1].status)
    assert.equal("the process running it (pid 4242 on elsewhere) sent no heartbeat for "
      .. "120 seconds (LUPINE_DEAD_AFTER), the last at 2001-01-01T00:00:00.000000Z",
      runs[1].error)
  end)

  it("stays running while its heartbeat is recent", function()
    client = foreign_run(core.now())
    assert.equal("running", client:list_pipeline_runs()[1].status)
  end)

  it("beats while its steps run: a long step's run is not taken for dead", function()
    local dir = H.tmpdir()
    local script = H.write(dir .. "/long.lua", [[
local lupine = require "lupine"
lupine.pipeline { name = "long", function()
  lupine.step { name = "wait", outputs = {}, function()
    while not io.open("]] .. dir .. [[/go") do os.execute("sleep 0.05") end
  end } ()
end } ()
]])
    local env = "LUPINE_DEAD_AFTER=1 LUPINE_HOME=" .. H.quote(home)
    -- the catalog made first: the sqlite3 looking for the run must not make an
    -- empty file where the run would make its catalog
    client:list_pipeline_runs()
    local pid = H.sh(env .. " " .. H.quote(H.cli) .. " run " .. H.quote(script)
      .. " > /dev/null 2>&1 & echo $!"):match("%d+")
    -- once it runs, it is made to look like another machine's
    local running
    for _ = 1, 200 do
      running = H.sqlite(home, "SELECT id FROM pipeline_runs WHERE status = 'running'")
      if running ~= "" then break end
      H.sh("sleep 0.05")
    end
    assert.not_equal("", running, "the run did not start")
    H.sqlite(home, "UPDATE pipeline_runs SET host = 'elsewhere'")
    H.sh("sleep 2.5")   -- beyond the limit: only its heartbeats keep it alive
    local out, err = H.sh(env .. " " .. H.quote(H.cli) .. " pipeline runs list")
    assert.truthy(out:find("running", 1, true), "runs: " .. out .. err)
    H.write(dir .. "/go", "")
    H.sh("while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.05; done")
    assert.matches("completed", (H.sh(env .. " " .. H.quote(H.cli) .. " pipeline runs list")))
    H.rm(dir)
  end)
end)

describe("a catalog target", function()
  it("that no backend takes is refused, naming it without what follows its scheme", function()
    local dir = H.tmpdir()
    local env = "LUPINE_HOME=" .. H.quote(dir) .. " LUPINE_CATALOG="
    local _, err, code = H.sh(env .. H.quote("mysql://alice:sekrit@db/lupine") .. " "
      .. H.quote(H.cli) .. " artifact list")
    assert.equal(1, code)
    assert.equal("lupine: catalog 'mysql://...': not a catalog Lupine knows: a PostgreSQL "
      .. "catalog is named by a postgresql:// URI or a key=value connection string, a sqlite "
      .. "catalog by its file's path\n", err)
    -- nothing was made where a file path would have been
    assert.equal("", (H.sh("ls " .. H.quote(dir))))
    assert.equal("set_catalog: catalog 'mysql://...': not a catalog Lupine knows: a "
      .. "PostgreSQL catalog is named by a postgresql:// URI or a key=value connection string, "
      .. "a sqlite catalog by its file's path",
      H.err(lupine.set_catalog, "mysql://alice:sekrit@db/lupine"))
    assert.equal("set_catalog: the target must be a string: a PostgreSQL URI or connection "
      .. "string, or a catalog file's path (got number)", H.err(lupine.set_catalog, 42))
    H.rm(dir)
  end)

  it("is named by the CLI's headers and the REPL's, the folder for its own file", function()
    local dir = H.tmpdir()
    H.write(dir .. "/s.lua", "lupine.pipeline { name = 'p', function()\n"
      .. "  lupine.step { name = 'one', function() return 1 end } ()\nend } ()\n")
    local out = H.sh("cd " .. H.quote(dir) .. " && unset LUPINE_HOME && printf 'os.exit()\\n' | "
      .. "script -qec " .. H.quote(H.cli .. " run s.lua && " .. H.cli .. " artifact list && "
      .. H.cli .. " repl") .. " /dev/null")
    local name = H.pg and "PostgreSQL postgresql://" or H.sh("cd " .. H.quote(dir)
      .. " && pwd -P"):gsub("\n$", "") .. "/.lupine"
    local plain = name:gsub("%p", "%%%0")
    assert.matches("%(catalog " .. plain, out)
    assert.matches("\ncatalog: " .. plain, out)
    assert.matches("Lupine [^\n]*, catalog " .. plain, out)
    H.rm(dir)
  end)
end)

if not H.pg then return end

-- The connection string of the test server, without a schema.
local server = os.getenv("LUPINE_TEST_PG_SERVER")

describe("the PostgreSQL catalog", function()
  it("numbers a version after the highest without reading the artifact's other versions",
    function()
      -- (a join took away the planner's way to a maximum by one index entry:
      -- each version read them all, a cost that grew with the artifact)
      local home = H.fresh(lupine)
      for i = 1, 30 do lupine.save_artifact(i, "many") end
      H.sqlite(home, "ANALYZE")
      H.sqlite(home, "SELECT pg_stat_reset()")
      local out, err, code = H.lupine(home, "run " .. H.quote(H.script(
        "print(lupine.save_artifact(31, 'many').version)")))
      assert.equal(0, code, err)
      assert.equal("31\n", out)
      -- the rows and index entries of versions it read (its connection ended
      -- with the process, which sends the server its counts): each version's
      -- hash once as its store opens, then one entry for the highest number
      -- and the new version read back
      local read = tonumber((H.sqlite(home, "SELECT t.seq_tup_read + (SELECT sum(idx_tup_read)"
        .. " FROM pg_stat_user_indexes i WHERE i.relid = t.relid) FROM pg_stat_user_tables t"
        .. " WHERE t.schemaname = current_schema() AND t.relname = 'artifact_versions'")))
      assert.is_true(read <= 31 + 2, read .. " read, for 31 versions")
    end)

  it("finds the latest earlier run of a step, for its cache note, without reading the others",
    function()
      -- (the planner read every earlier run of the step and sorted them: a
      -- cost that grew with the catalog's history, where walking the step's
      -- runs by name from the latest reads one)
      local home = H.fresh(lupine)
      local body = [[
local s = lupine.step("s", function(x) return x + 1 end)
local p = lupine.pipeline { name = "walk", function(x) for _ = 1, 20 do x = s(x) end end }
]]
      local p = assert(load(body .. "return p", "=walk", "t", setmetatable({ lupine = lupine },
        { __index = _G })))()
      for i = 1, 10 do p(i * 100) end   -- 20 steps, each with 10 earlier runs
      H.sqlite(home, "ANALYZE")
      H.sqlite(home, "SELECT pg_stat_reset()")
      local out, err, code = H.lupine(home, "run " .. H.quote(H.script(body .. "p(5000)")))
      assert.equal(0, code, out .. err)
      assert.equal("input 'x' changed", (H.sqlite(home,
        "SELECT cache_note FROM step_runs WHERE name = 's_20' ORDER BY seq DESC LIMIT 1"):gsub("\n$", "")))
      -- (its connection ended with the process, which sends the server its counts)
      local read = H.sqlite(home, "SELECT idx_tup_read FROM pg_stat_user_indexes"
        .. " WHERE schemaname = current_schema() AND indexrelname = 'step_runs_by_name'")
      assert.is_true(tonumber(read) <= 2 * 20, "index entries read for 20 steps: " .. read)
    end)

  it("is chosen by LUPINE_CATALOG, a URI or key=value, and named without its password", function()
    local dir = H.tmpdir()
    local host, port = server:match("host=(%S+) port=(%d+)")
    H.sh("psql -X -q " .. H.quote(server) .. " -c 'DROP SCHEMA IF EXISTS uri_test CASCADE'")
    local uri = "postgresql://lupine:sekrit@/lupine?host=" .. host .. "&port=" .. port
      .. "&options=-csearch_path%3Duri_test"
    local script = H.script([[print(lupine.save_artifact(7, "seven").version)]])
    local env = "LUPINE_HOME=" .. H.quote(dir .. "/home") .. " LUPINE_CATALOG=" .. H.quote(uri)
    local out, err = H.sh(env .. " " .. H.quote(H.cli) .. " run " .. H.quote(script))
    assert.equal("1\n", out, err)
    out = H.sh(env .. " " .. H.quote(H.cli) .. " stack describe")
    assert.matches("\ncatalog\tPostgreSQL postgresql://lupine@:" .. port
      .. "/lupine schema uri_test %(socket in " .. host:gsub("%p", "%%%0") .. "%)\n", out)
    assert.not_matches("sekrit", out)
    out = H.sh(env .. " " .. H.quote(H.cli) .. " --version")
    assert.matches("\ncatalog: PostgreSQL postgresql://lupine@:" .. port .. "/lupine", out)
    assert.not_matches("sekrit", out)
    -- nor when it cannot connect
    local bad = "postgresql://lupine:sekrit@" .. "/lupine?host=" .. dir .. "&port=1"
    out, err = H.sh("LUPINE_HOME=" .. H.quote(dir .. "/home") .. " LUPINE_CATALOG="
      .. H.quote(bad) .. " " .. H.quote(H.cli) .. " artifact list")
    assert.matches("^lupine: catalog postgresql://lupine@:1/lupine %(socket in "
      .. dir:gsub("%p", "%%%0") .. "%): cannot connect %(", err)
    assert.not_matches("sekrit", err)
    -- the same catalog from the API, by set_catalog; nil goes back
    lupine.set_home(dir .. "/other")
    lupine.set_catalog(uri)
    assert.equal("seven", lupine.Client():get_artifact_version("seven").name)
    lupine.set_catalog(nil)
    assert.equal("set_catalog: an empty target names no catalog (give none for the default)",
      H.err(lupine.set_catalog, ""))
    H.rm(dir)
  end)

  it("keeps a password out of what libpq says of a target it cannot read", function()
    local dir = H.tmpdir()
    local env = "LUPINE_HOME=" .. H.quote(dir) .. " LUPINE_CATALOG="
    local function fails(target)
      local _, err, code = H.sh(env .. H.quote(target) .. " " .. H.quote(H.cli) .. " artifact list")
      assert.equal(1, code)
      assert.not_matches("sekrit", err)
      return err
    end
    assert.equal('lupine: catalog (a connection string libpq cannot read): cannot connect (end '
      .. 'of string reached when looking for matching "]" in IPv6 host address in URI: "the '
      .. 'connection string")\n', fails("postgresql://alice:sekrit@[::1/lupine"))
    assert.equal('lupine: catalog (a connection string libpq cannot read): cannot connect '
      .. '(invalid connection option "bogus")\n',
      fails("host=/nowhere user=alice password=sekrit dbname=lupine bogus=1"))
    -- a key=value string libpq cannot read is still not taken for a file's path
    assert.equal("", (H.sh("ls " .. H.quote(dir))))
    H.rm(dir)
  end)

  it("is not copied into itself: LUPINE_CATALOG names what is copied", function()
    local _, err = H.sh("LUPINE_HOME=" .. H.quote(H.tmpdir()) .. " LUPINE_CATALOG="
      .. H.quote(server) .. " " .. H.quote(H.cli) .. " catalog copy --to " .. H.quote(server))
    assert.matches("^lupine: catalog copy: postgresql://[^\n]* is the catalog in use, which is "
      .. "what is copied; to fill it from a catalog folder's file, copy with LUPINE_CATALOG "
      .. "unset %(LUPINE_CATALOG= lupine catalog copy %-%-to %.%.%.%)\n$", err)
  end)

  it("says libpq cannot be loaded when the first PostgreSQL catalog opens", function()
    local dir = H.tmpdir()
    -- LUPINE_LIBPQ names the library to load instead of libpq.so.5
    local env = "LUPINE_HOME=" .. H.quote(dir) .. " LUPINE_CATALOG=" .. H.quote(server)
    local _, err, code = H.sh(env .. " LUPINE_LIBPQ=libpq-absent.so.5 " .. H.quote(H.cli)
      .. " artifact list")
    assert.not_equal(0, code)
    assert.equal("lupine: a PostgreSQL catalog needs libpq (libpq-absent.so.5: cannot open shared "
      .. "object file: No such file or directory); install it (Debian: apt-get install libpq5)\n",
      err)
    -- a library that is not libpq
    _, err = H.sh(env .. " LUPINE_LIBPQ=libzstd.so.1 " .. H.quote(H.cli) .. " artifact list")
    assert.equal("lupine: a PostgreSQL catalog needs libpq (libzstd.so.1 has no PQclear: libpq 14 "
      .. "or newer is needed); install it (Debian: apt-get install libpq5)\n", err)
    -- what is not about the catalog still works, and says what it could not load
    local out = H.sh(env .. " LUPINE_LIBPQ=libpq-absent.so.5 " .. H.quote(H.cli) .. " --version")
    assert.matches("\ncatalog: PostgreSQL %(libpq could not be loaded%)\n", out)
    H.rm(dir)
  end)

  it("keeps a schema_version table, and a catalog per folder in one database", function()
    local a = H.fresh(lupine)
    lupine.save_artifact(1, "in_a")
    assert.equal(core.schema_version .. "\n",
      (H.sqlite(a, "SELECT version FROM schema_version")))
    H.fresh(lupine)
    local client = lupine.Client()
    assert.equal(0, client:list_artifacts().total)
    assert.equal("1\n", (H.sqlite(a, "SELECT count(*) FROM artifacts")))
  end)

  it("is copied from a sqlite catalog, whole, and back, each table checked", function()
    local dir = H.tmpdir()
    local home = dir .. "/home"
    local sq = "env -u LUPINE_CATALOG LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
    for _, example in ipairs { "quickstart", "lineage", "promotion", "versioning" } do
      local _, err, code = H.sh("cd " .. H.quote(dir) .. " && " .. sq .. " run "
        .. H.quote(H.root .. "/examples/" .. example .. ".lua"))
      assert.equal(0, code, err)
    end
    local target = H.pg_target(home)
    local out, err, code = H.sh(sq .. " catalog copy --to " .. H.quote(target))
    assert.equal(0, code, err)
    assert.matches("^copied " .. home:gsub("%p", "%%%0") .. "/catalog.db into postgresql://", out)
    assert.matches("\n  artifact_versions +%d+\n", out)
    -- the same answers from both
    local pg = "LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
    for _, args in ipairs { "artifact version list --json", "pipeline runs list --json",
        "tag list", "lineage processed --json", "stack list" } do
      local a, b = H.sh(sq .. " " .. args), H.sh(pg .. " " .. args)
      assert.equal(a, b, args)
    end
    -- a catalog that is not empty is refused, and left as it was
    _, err, code = H.sh(sq .. " catalog copy --to " .. H.quote(target))
    assert.equal(1, code)
    assert.matches("catalog copy: the catalog postgresql://lupine@:%d+/lupine schema lupine_%x+ "
      .. "%(socket in [^)]+%) is not empty %(pipelines has %d+ rows%); copy into a new one", err)
    -- and back, into a new file: the same rows as the original
    out, err, code = H.sh(pg .. " catalog copy --to " .. H.quote(dir .. "/back.db"))
    assert.equal(0, code, err)
    assert.equal(H.sh("sqlite3 " .. H.quote(home .. "/catalog.db") .. " .dump"),
      H.sh("sqlite3 " .. H.quote(dir .. "/back.db") .. " .dump"))
    H.rm(dir)
  end)

  it("is never used by a worker: steps reading the catalog at once all get their answers", function()
    local home = H.fresh(lupine)
    for i = 1, 20 do lupine.save_artifact(i, "n" .. i) end
    local read = lupine.step { name = "read", outputs = { "sum" }, function(k)
      local s = 0
      for i = 1, 20 do s = s + lupine.load_artifact("n" .. i) end
      return s + k
    end }
    local run = lupine.pipeline { name = "readers", function()
      for k = 1, 8 do read(k) end
    end } :with_options { jobs = 4 } ()
    assert.equal("completed", run.status)
    local sums = {}
    for _, v in ipairs(lupine.Client():list_artifact_versions { name = "sum" }) do
      sums[#sums + 1] = v:load()
    end
    table.sort(sums)
    assert.same({ 211, 212, 213, 214, 215, 216, 217, 218 }, sums)
    -- the coordinator's connection still answers, and one connection per process
    assert.equal("20\n", (H.sqlite(home, "SELECT count(*) FROM artifacts WHERE name LIKE 'n%'")))
  end)
end)
