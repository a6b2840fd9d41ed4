-- SPDX-License-Identifier: MIT
-- The PostgreSQL catalog at scale, and per step: `make bench` runs this
-- against the release build, on a throwaway server (tests/services/postgresql.sh).
--
-- Lookups: a catalog of 1,000,000 artifact versions (1000 names x 1000
-- versions; production on every 100th version of each name, staging on
-- every 10th, nightly on every 2nd), generated inside the server. Each
-- lookup through the Lua API is timed against the same SQL through bare
-- libpq (tests/bench/pg_bare.c: prepared once, executed, every column of
-- every row read), both in wall time per call (the server's work is in
-- both), the median over rounds of batches cycling through many keys.
-- Targets: within 10x of bare libpq; 100 versions by tag under 2 ms.
--
-- Steps: a chain of 1000 trivial steps run by `lupine run --jobs 1` with
-- the catalog in a sqlite file and on the server, in the same run: the
-- overhead per step (wall time of the run less that of the same calls
-- made directly by lua5.4, per step) at most 1.5x sqlite's; the re-run of
-- every step cached at most 2x sqlite's.
--
-- Environment: see benchlib.lua; LUPINE_BENCH_PG_BARE (pg_bare built),
-- LUPINE_BENCH_NAMES and LUPINE_BENCH_VERSIONS (1000 and 1000),
-- LUPINE_BENCH_STEPS (1000).

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"

local NAMES = tonumber(os.getenv("LUPINE_BENCH_NAMES") or "1000")
local VERSIONS = tonumber(os.getenv("LUPINE_BENCH_VERSIONS") or "1000")
local STEPS = tonumber(os.getenv("LUPINE_BENCH_STEPS") or "1000")
local BARE = os.getenv("LUPINE_BENCH_PG_BARE") or "build/pg_bare"

B.check_lupine()
local dir = B.scratch()
-- (in /tmp itself: the server runs as the postgres user, who may not
-- enter the scratch folder)
local server = B.sh("mktemp -u /tmp/lupine-bench-pg.XXXXXX"):gsub("%s+$", "")
local conn = B.sh("sh tests/services/postgresql.sh start " .. B.quote(server)):gsub("%s+$", "")
local ok, err = pcall(function()
  local target = conn .. " options='-csearch_path=bench'"
  local function psql(sql)
    return B.sh("psql -X -q -At " .. B.quote(target) .. " -c " .. B.quote(sql))
  end
  print(string.format("%s; PostgreSQL %s", B.machine(),
    psql("SHOW server_version"):gsub("%s+$", "")))

  -- ---- the catalog: the schema from Lupine, the rows made by the server ----
  local lupine = require "lupine"
  local core = require "lupine.core"
  lupine.set_home(dir .. "/home")
  lupine.set_catalog(target)
  local seed = lupine.save_artifact({ 1, 2, 3 }, "bench_seed")
  local total = NAMES * VERSIONS
  local t0 = B.wall()
  psql(string.format([[
INSERT INTO artifacts(id, name, created) SELECT lpad(to_hex(i), 8, '0') || '-0000-4000-8000-'
  || lpad(to_hex(i), 12, '0'), 'artifact_' || lpad(i::text, 4, '0'), '2026-01-01T00:00:00.000000Z'
  FROM generate_series(0, %d) i;
INSERT INTO artifact_versions(id, artifact_id, version, version_number, type, data_type,
    content_hash, size, stored_size, uri, codec_version, created)
  SELECT gen_random_uuid()::text, lpad(to_hex(i %% %d), 8, '0') || '-0000-4000-8000-'
    || lpad(to_hex(i %% %d), 12, '0'), (i / %d + 1)::text, i / %d + 1,
    CASE WHEN i %% 7 = 0 THEN 'model' ELSE 'data' END, 'table', '%s', %d, %d, '%s', 1,
    to_char(timestamp '2026-01-01' + i * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS')
    || '.000000Z' FROM generate_series(0, %d) i;
INSERT INTO tags(name) VALUES ('production'), ('staging'), ('nightly') ON CONFLICT DO NOTHING;
INSERT INTO tag_links(entity, entity_id, tag_seq, version_seq)
  SELECT 'artifact_version', v.id, t.seq, v.seq FROM artifact_versions v, tags t
  WHERE v.seq > 1 AND ((t.name = 'production' AND v.version_number %% 100 = 0)
    OR (t.name = 'staging' AND v.version_number %% 10 = 0)
    OR (t.name = 'nightly' AND v.version_number %% 2 = 0));
ANALYZE;]], NAMES - 1, NAMES, NAMES, NAMES, NAMES, seed.content_hash, seed.size,
    seed.stored_size, seed.uri, total - 1))
  print(string.format("catalog: %d artifact versions of %d names, made in %.1f s",
    core.list("artifact_versions", {}, "count"), NAMES + 1, B.wall() - t0))

  -- ---- lookups ----
  math.randomseed(42)
  local client = lupine.Client()
  local names, ids = {}, {}
  for i = 1, 500 do names[i] = string.format("artifact_%04d", math.random(0, NAMES - 1)) end
  for id in psql("SELECT id FROM artifact_versions ORDER BY random() LIMIT 500"):gmatch("%S+") do
    ids[#ids + 1] = id
  end

  -- median wall seconds per call of fn over rounds batches, cycling keys
  local function measure(fn, keys, batch, rounds)
    local k, times = 0, {}
    for r = 0, rounds do
      local start = B.wall()
      for _ = 1, batch do
        k = k % #keys + 1
        fn(keys[k])
      end
      if r > 0 then times[r] = (B.wall() - start) / batch end
    end
    return B.median(times)
  end
  local function bare(sql, keys, batch, rounds)
    local file = B.write(dir .. "/keys.txt", table.concat(keys, "\n") .. "\n")
    local out = B.sh(B.quote(BARE) .. " " .. B.quote(target) .. " " .. B.quote(sql) .. " "
      .. B.quote(file) .. " " .. batch .. " " .. rounds)
    return tonumber(out:match("^(%d+)")) / 1e9
  end
  local function us(s) return string.format("%.1f us", s * 1e6) end
  local function compare(label, api, sql, keys, bare_keys, opts)
    local t_api = measure(api, keys, opts.batch, opts.rounds)
    local t_bare = bare(sql, bare_keys or keys, opts.batch, opts.rounds)
    local line = string.format("%s: %s median (bare libpq %s, ratio %.1fx; target 10x%s)", label,
      us(t_api), us(t_bare), t_api / t_bare, opts.under and (", under " .. us(opts.under)) or "")
    B.verdict(line, t_api / t_bare <= 10 and (not opts.under or t_api <= opts.under))
  end
  local VERSION_COLUMNS = "SELECT v.id, a.name, v.version, v.type, v.data_type, v.content_hash,"
    .. " v.size, v.stored_size, v.uri, v.codec_version, v.created, v.producer_step_run_id,"
    .. " v.artifact_store_id, v.save_type"
    .. " FROM artifact_versions v JOIN artifacts a ON a.id = v.artifact_id"
  compare("latest-version lookup", function(k) client:get_artifact_version(k) end,
    VERSION_COLUMNS .. " WHERE a.name = $1 ORDER BY v.seq DESC LIMIT 1", names, nil,
    { batch = 100, rounds = 21 })
  compare("id lookup", function(k) client:get_artifact_version(k) end,
    VERSION_COLUMNS .. " WHERE v.id = $1", ids, nil, { batch = 100, rounds = 21 })
  -- the listing's own statement, as the catalog builds it
  local by_tag = function(t) return { tag = t, size = 100, sort_by = "desc:created" } end
  local _, sql = require("lupine.query").explain("artifact_versions", by_tag("production"))
  local tags, tag_keys = { "production", "staging", "nightly" }, {}
  for i, t in ipairs(tags) do tag_keys[i] = t .. "\t100\t0" end
  compare("list 100 by tag (10,000 to 500,000 tagged)",
    function(t) client:list_artifact_versions(by_tag(t)) end, sql, tags, tag_keys,
    { batch = 10, rounds = 21, under = 2e-3 })
  lupine.set_home(dir .. "/unused")
  lupine.set_catalog(nil)

  -- ---- steps: the same chain with each catalog ----
  local prelude = "local N = tonumber(os.getenv('LUPINE_BENCH_STEPS'))\n"
    .. "local base = math.tointeger(os.getenv('LUPINE_BENCH_BASE')\n"
    .. "  or os.getenv('LUPINE_BENCH_SERIES') + os.getenv('LUPINE_BENCH_REP')) * 1000000\n"
  local direct = B.write(dir .. "/direct.lua", prelude
    .. "local function inc(x) return x + 1 end\nlocal x = base\nfor _ = 1, N do x = inc(x) end\n")
  local script = B.write(dir .. "/chain.lua", "local lupine = require 'lupine'\n" .. prelude
    .. "local inc = lupine.step('inc', function(x) return x + 1 end)\n"
    .. "lupine.pipeline { name = 'chain', function()\nlocal x = base\n"
    .. "for _ = 1, N do x = inc(x) end\nend }()\n")
  local vars = { LUPINE_BENCH_STEPS = STEPS, LUPINE_BENCH_SERIES = 0 }
  local t_direct = B.timeit(B.rounds(11), 1, { "lua5.4", direct }, vars)
  local per, cached = {}, {}
  for i, catalog in ipairs { "sqlite", "PostgreSQL" } do
    vars.LUPINE_HOME = dir .. "/steps_" .. i
    vars.LUPINE_CATALOG = catalog == "PostgreSQL" and (conn .. " options='-csearch_path=steps'")
      or ""
    vars.LUPINE_BENCH_SERIES = i * 1000
    local t = B.timeit(B.rounds(3), 1, { B.lupine, "run", "--jobs", 1, script }, vars)
    per[catalog] = (t - t_direct) / STEPS
    vars.LUPINE_BENCH_BASE = i * 1000 + 1   -- a run that completed: every step cached
    cached[catalog] = B.timeit(B.rounds(5), 1, { B.lupine, "run", "--jobs", 1, script }, vars)
    vars.LUPINE_BENCH_BASE = nil
    print(string.format("chain of %d steps, %s catalog: %s median, %.3f ms/step overhead; "
      .. "re-run all cached %s", STEPS, catalog, B.ms(t), per[catalog] * 1e3,
      B.ms(cached[catalog])))
  end
  local r = per.PostgreSQL / per.sqlite
  B.verdict(string.format("per-step overhead with PostgreSQL: %.2fx sqlite's (target 1.5x)", r),
    r <= 1.5)
  r = cached.PostgreSQL / cached.sqlite
  B.verdict(string.format("cached re-run with PostgreSQL: %.2fx sqlite's (target 2x)", r), r <= 2)
end)
B.sh("sh tests/services/postgresql.sh stop " .. B.quote(server))
if not ok then error(err, 0) end
B.finish()
