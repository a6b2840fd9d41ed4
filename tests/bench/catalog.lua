-- SPDX-License-Identifier: MIT
-- Catalog lookups at scale: `make bench` runs this against the release build.
--
-- Builds a catalog of 1,000,000 artifact versions (1000 names x 1000
-- versions, interleaved in time; tags on some versions: production on every
-- 100th version of each name, staging on every 10th, nightly on every 2nd,
-- rare on 50 versions), then times lookups through the Lua API against the
-- same lookup made with the bare sqlite3 C API in the same run.
--
-- Baselines: "bare sqlite" is tests/bench/sqlite_bare.c (built by make
-- bench): the same SQL prepared once, then per call bind, step every row
-- reading every column, reset; it is the floor any binding can reach.
-- "core" is the same statement through lupine.core (core.query of the
-- named statement, core.list of the listing's description: the catalog's
-- checks and bindings, one Lua table per row), which shows how the time
-- splits between the catalog and the Lua code above it. Every figure is
-- the median, over rounds, of the CPU time per call of a batch of calls
-- cycling through many keys.
--
-- Environment: LUPINE_BENCH_BARE (the sqlite_bare binary; without it the
-- bare figures are left out), LUPINE_BENCH_DIR (where to build; default a
-- fresh folder in /tmp, removed at the end; a catalog already in a
-- LUPINE_BENCH_DIR is reused, not rebuilt), LUPINE_BENCH_NAMES and
-- LUPINE_BENCH_VERSIONS (1000 and 1000).

local lupine = require "lupine"
local core = require "lupine.core"
local query = require "lupine.query"

local NAMES = tonumber(os.getenv("LUPINE_BENCH_NAMES") or "1000")
local VERSIONS = tonumber(os.getenv("LUPINE_BENCH_VERSIONS") or "1000")
local BARE = os.getenv("LUPINE_BENCH_BARE")
if BARE == "" then BARE = nil end

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then error("command failed (" .. tostring(code) .. "): " .. cmd .. "\n" .. out) end
  return out
end

-- Wall-clock seconds (for the build, which runs in another process).
local function wall()
  local s = core.now()   -- YYYY-MM-DDTHH:MM:SS.ffffffZ
  return os.time { year = tonumber(s:sub(1, 4)), month = tonumber(s:sub(6, 7)),
    day = tonumber(s:sub(9, 10)), hour = tonumber(s:sub(12, 13)), min = tonumber(s:sub(15, 16)),
    sec = tonumber(s:sub(18, 19)) } + tonumber("0" .. s:sub(20, 26))
end

local dir = os.getenv("LUPINE_BENCH_DIR")
local own_dir = dir == nil
if own_dir then dir = sh("mktemp -d /tmp/lupine-bench.XXXXXX"):gsub("%s+$", "") end
local home = dir .. "/home"
local db = home .. "/catalog.db"

-- The rows of a query by the sqlite3 shell, each a list of its columns
-- (the bench reads the file directly: the catalog has no statement for
-- what only a benchmark asks).
local function sqlite(sql)
  local rows = {}
  local out = sh("sqlite3 -batch -noheader -separator \"$(printf '\\037')\""
    .. " -newline \"$(printf '\\036')\" "
    .. sh_quote(db) .. " " .. sh_quote(sql))
  for line in out:gmatch("([^\30]*)\30") do
    local row = {}
    for col in (line .. "\31"):gmatch("([^\31]*)\31") do row[#row + 1] = col end
    rows[#rows + 1] = row
  end
  return rows
end

-- ---- building the catalog ----

-- The schema comes from Lupine itself (one real version, whose object the
-- generated versions share); the rows are generated inside sqlite in one
-- transaction, with the indexes and triggers of the big tables dropped
-- first and created again at the end (sorting once beats 1,000,000
-- random index inserts), and tag_links.version_seq filled in directly.
local function build()
  lupine.set_home(home)
  local seed = lupine.save_artifact({ 1, 2, 3 }, "bench_seed")
  lupine.set_home(dir .. "/unused")   -- closes the catalog for the sqlite3 shell
  local saved = {}
  for i, row in ipairs(sqlite("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
      .. " AND type IN ('index', 'trigger') AND tbl_name IN ('artifact_versions', 'tag_links')")) do
    saved[i] = { type = row[1], name = row[2], sql = row[3] }
  end
  local total = NAMES * VERSIONS
  local script = { "PRAGMA cache_size = -1000000;", "PRAGMA synchronous = OFF;", "BEGIN;" }
  for _, s in ipairs(saved) do
    script[#script + 1] = string.format("DROP %s %s;", s.type:upper(), s.name)
  end
  script[#script + 1] = string.format([[
INSERT INTO artifacts(id, name, created)
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
  SELECT printf('%%08x-0000-4000-8000-%%012x', i, i), printf('artifact_%%04d', i),
    '2026-01-01T00:00:00.000000Z' FROM n;
INSERT INTO artifact_versions(id, artifact_id, version, version_number, type, data_type,
    content_hash, size, stored_size, uri, codec_version, created)
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d),
    h(i, x) AS (SELECT i, lower(hex(randomblob(16))) FROM n)
  SELECT substr(x, 1, 8) || '-' || substr(x, 9, 4) || '-4' || substr(x, 14, 3) || '-'
      || substr(x, 17, 4) || '-' || substr(x, 21, 12),
    printf('%%08x-0000-4000-8000-%%012x', i %% %d, i %% %d),
    i / %d + 1, i / %d + 1, CASE WHEN i %% 7 = 0 THEN 'model' ELSE 'data' END, 'table',
    '%s', %d, %d, '%s', 1,
    strftime('%%Y-%%m-%%dT%%H:%%M:%%S', 1767225600 + i, 'unixepoch') || '.000000Z'
  FROM h;
INSERT OR IGNORE INTO tags(name) VALUES ('production'), ('staging'), ('nightly'), ('rare');
INSERT INTO tag_links(entity, entity_id, tag_seq, version_seq)
  SELECT 'artifact_version', v.id, t.seq, v.seq FROM artifact_versions v, tags t
  WHERE v.seq > 1 AND ((t.name = 'production' AND v.version_number %% 100 = 0)
    OR (t.name = 'staging' AND v.version_number %% 10 = 0)
    OR (t.name = 'nightly' AND v.version_number %% 2 = 0)
    OR (t.name = 'rare' AND v.seq %% %d = 0));
INSERT INTO run_metadata(entity, entity_id, key, value, value_number, created)
  SELECT 'artifact_version', id, 'accuracy', x'00', (seq %% 1000) / 1000.0, created
  FROM artifact_versions WHERE version_number %% 10 = 0;]],
    NAMES - 1, total - 1, NAMES, NAMES, NAMES, NAMES, seed.content_hash, seed.size,
    seed.stored_size, seed.uri, math.max(1, total // 50))
  for _, s in ipairs(saved) do script[#script + 1] = s.sql .. ";" end
  script[#script + 1] = "COMMIT;"
  local f = assert(io.open(dir .. "/build.sql", "w"))
  f:write(table.concat(script, "\n"), "\n")
  f:close()
  sh("sqlite3 " .. sh_quote(db) .. " < " .. sh_quote(dir .. "/build.sql") .. " 2>&1")
  lupine.set_home(home)
end

local t0 = wall()
local reused = not own_dir and io.open(db) ~= nil
if reused then lupine.set_home(home) else build() end
local build_time = wall() - t0
local count = core.list("artifact_versions", {}, "count")
local size_mb = sh("du -sm " .. sh_quote(home) .. " | cut -f1"):gsub("%s+$", "")
local tagged = {}
for _, row in ipairs(sqlite("SELECT t.name, count(*) AS n FROM tag_links l JOIN tags t"
    .. " ON t.seq = l.tag_seq GROUP BY t.name ORDER BY n")) do
  tagged[#tagged + 1] = row[1] .. " " .. row[2]
end
print(string.format("catalog: %d artifact versions of %d names %s (%s MB; tags: %s)",
  count, NAMES + 1, reused and "(reused)" or string.format("built in %.1f s", build_time), size_mb,
  table.concat(tagged, ", ")))

-- ---- keys ----

math.randomseed(42)
local client = lupine.Client()

local names, ids, prefixes, seqs = {}, {}, {}, {}
for i = 1, 1000 do names[i] = string.format("artifact_%04d", math.random(0, NAMES - 1)) end
for i = 1, 1000 do seqs[i] = string.format("(%d, %d)", i, math.random(2, count + 1)) end
-- the ids at those seqs, with how many ids their first 8 characters match
-- (up to 2: an ambiguous prefix is an error by design, so only unique ones
-- are kept)
for i, row in ipairs(sqlite("WITH k(i, seq) AS (VALUES " .. table.concat(seqs, ", ") .. ")"
    .. " SELECT v.id, (SELECT count(*) FROM (SELECT 1 FROM artifact_versions x"
    .. " WHERE x.id >= substr(v.id, 1, 8) AND x.id < substr(v.id, 1, 8) || '~' LIMIT 2))"
    .. " FROM k JOIN artifact_versions v ON v.seq = k.seq ORDER BY k.i")) do
  ids[i] = row[1]
  if row[2] == "1" then prefixes[#prefixes + 1] = row[1]:sub(1, 8) end
end

-- ---- timing ----

-- Median CPU seconds per call of fn over rounds batches of batch calls,
-- cycling through keys.
local function measure(fn, keys, batch, rounds)
  local k, times = 0, {}
  for r = 0, rounds do   -- round 0 warms up
    local start = os.clock()
    for _ = 1, batch do
      k = k % #keys + 1
      fn(keys[k])
    end
    if r > 0 then times[r] = (os.clock() - start) / batch end
  end
  table.sort(times)
  return times[(rounds + 1) // 2]
end

-- The bare sqlite figure for sql with these parameter lines, or nil.
local function bare(sql, lines, batch, rounds)
  if not BARE then return nil end
  local file = dir .. "/keys.txt"
  local f = assert(io.open(file, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local out = sh(sh_quote(BARE) .. " " .. sh_quote(db) .. " " .. sh_quote(sql) .. " "
    .. sh_quote(file) .. " " .. batch .. " " .. rounds)
  return tonumber(out:match("^(%d+)")) / 1e9
end

local function us(s) return string.format("%.1f us", s * 1e6) end

local missed = 0
local results = {}

-- One line: the API call against the bare query and the call to core.
local function bench(label, api, through_core, sql, keys, params, opts)
  local batch, rounds = opts.batch or 200, opts.rounds or 41
  local lines, args = {}, {}
  for i, k in ipairs(keys) do
    args[i] = params(k)
    lines[i] = table.concat(args[i], "\t")
  end
  local t_api = measure(api, keys, batch, rounds)
  local t_core = measure(through_core, keys, batch, rounds)
  local t_bare = bare(sql, lines, batch, rounds)
  local base = t_bare or t_core
  local verdict = {}
  if opts.under and t_api > opts.under then verdict[#verdict + 1] = "over " .. us(opts.under) end
  if opts.ratio and t_bare and t_api / t_bare > opts.ratio then
    verdict[#verdict + 1] = string.format("ratio over %dx", opts.ratio)
  end
  if #verdict > 0 then missed = missed + 1 end
  print(string.format("%s: %s median (%score %s, ratio %.1fx)%s", label, us(t_api),
    t_bare and ("bare sqlite " .. us(t_bare) .. ", ") or "", us(t_core), t_api / base,
    #verdict > 0 and ("  MISSED: " .. table.concat(verdict, ", ")) or ""))
  results[#results + 1] = { label = label, api = t_api, bare = t_bare }
end

-- The catalog's own statements (runtime/catalog_sqlite.c, statements[]).
local VERSION_COLUMNS = "SELECT v.id, a.name, v.version, v.type, v.data_type, v.content_hash,"
  .. " v.size, v.stored_size, v.uri, v.codec_version, v.created, v.producer_step_run_id"
  .. " FROM artifact_versions v JOIN artifacts a ON a.id = v.artifact_id"
local LATEST = VERSION_COLUMNS .. " WHERE a.name = ?1 ORDER BY v.seq DESC LIMIT 1"
local BY_ID = VERSION_COLUMNS .. " WHERE v.id = ?1"
local BY_PREFIX = VERSION_COLUMNS .. " WHERE v.id >= ?1 AND v.id < ?1 || '~' ORDER BY v.id LIMIT 11"

local function one(k) return { k } end

print()
local function api(k) client:get_artifact_version(k) end
local function named(statement) return function(k) core.query(statement, k) end end
bench("latest-version lookup", api, named("latest_version"), LATEST, names, one,
  { under = 1e-3, ratio = 10 })
bench("id lookup", api, named("version_by_id"), BY_ID, ids, one, { under = 1e-3 })
bench("id-prefix lookup (8 chars)", api, named("versions_by_id_prefix"), BY_PREFIX, prefixes,
  one, { under = 1e-3, ratio = 10 })

-- Listings: the SQL is the one the catalog builds for the filter's
-- description.
local function listing(label, filter_of, keys, opts)
  local _, sql = query.explain("artifact_versions", filter_of(keys[1]))
  local descriptions = {}
  for _, k in ipairs(keys) do
    descriptions[k] = select(3, query.explain("artifact_versions", filter_of(k)))
  end
  bench(label, function(k) client:list_artifact_versions(filter_of(k)) end,
    function(k) core.list("artifact_versions", descriptions[k]) end, sql, keys,
    function(k)
      local f = filter_of(k)
      return { f.name or f.tag, f.size, 0 }
    end, opts)
end

local tags = { "production", "staging", "nightly" }
-- the newest first, as the CLI lists them
local function by_tag(t) return { tag = t, size = 100, sort_by = "desc:created" } end
local function by_name(n) return { name = n, size = 100, sort_by = "desc:created" } end
listing("list 100 by tag (10,000 to 500,000 tagged)", by_tag, tags,
  { batch = 10, rounds = 31, under = 1e-3 })
listing("list 100 by tag 'rare' (50 tagged)", by_tag, { "rare" },
  { batch = 20, rounds = 31, under = 1e-3 })
listing("list 100 by name", by_name, names, { batch = 10, rounds = 31, under = 1e-3 })

-- What the lazy total costs when it is read (a count over every match).
local t_total = measure(function(t)
  return client:list_artifact_versions { tag = t, size = 100 }.total
end, { "production" }, 5, 21)
local t_total_name = measure(function(n)
  return client:list_artifact_versions { name = n, size = 100 }.total
end, names, 10, 21)
print(string.format("list 100 by tag 'production' and read .total (10,000 matches): %s median",
  us(t_total)))
print(string.format("list 100 by name and read .total (1,000 matches): %s median", us(t_total_name)))
local t_md = measure(function(n)
  return client:list_artifact_versions { name = n, run_metadata = { accuracy = "gte:0.9" } }
end, names, 10, 21)
print(string.format("list by name and run_metadata accuracy >= 0.9: %s median", us(t_md)))

print()
print("query plans at this size (EXPLAIN QUERY PLAN):")
for _, f in ipairs { { tag = "production" }, { name = "artifact_0001" },
    { tag = { "production", "staging" } }, { name = "artifact_0001", tag = "production" } } do
  local plan = query.explain("artifact_versions", f)
  local keys = {}
  for k, v in pairs(f) do
    keys[#keys + 1] = k .. "=" .. (type(v) == "table" and table.concat(v, "+") or v)
  end
  table.sort(keys)
  print("  " .. table.concat(keys, " ") .. ": " .. plan:gsub("\n", "; "))
end

print()
print(string.format("targets: %d of %d met", #results - missed, #results))
lupine.set_home(dir .. "/unused")
if own_dir then sh("rm -rf " .. sh_quote(dir)) end
