-- SPDX-License-Identifier: MIT
-- Clean-up: delete_artifact_version, prune_artifacts and gc, alone and
-- while other processes run pipelines.
local H = require "helper"
local lupine = require "lupine"
local lineage = require "lupine.lineage"
local step, pipeline = lupine.step, lupine.pipeline

local load_data = step { name = "load_data", outputs = { "dataset" },
  function() return { values = { 1, 2, 3 } } end }
local process_data = step {
  name = "process_data",
  outputs = { lupine.ArtifactConfig { name = "processed", tags = { "gold" },
    run_metadata = { score = 1 } } },
  function(dataset)
    local out = {}
    for i, x in ipairs(dataset.values) do out[i] = x * 2 end
    return out
  end }
local ml = pipeline { name = "ml_pipeline", function() process_data(load_data()) end }
local sum = step("sum", function(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s
end)

local function count(home, sql)
  local out, err = H.sqlite(home, sql)
  return assert(tonumber(out), err)
end

-- Rows in each table that a version deletion touches.
local function counts(home)
  local c = {}
  for _, t in ipairs { "artifacts", "artifact_versions", "tag_links", "run_metadata",
    "step_run_artifacts", "step_runs" } do
    c[t] = count(home, "SELECT count(*) FROM " .. t)
  end
  return c
end

-- Rows attached to version id, table by table.
local function attached(home, id)
  local q = "'" .. id .. "'"
  return {
    version = count(home, "SELECT count(*) FROM artifact_versions WHERE id = " .. q),
    tags = count(home, "SELECT count(*) FROM tag_links WHERE entity = 'artifact_version'"
      .. " AND entity_id = " .. q),
    metadata = count(home, "SELECT count(*) FROM run_metadata WHERE entity = 'artifact_version'"
      .. " AND entity_id = " .. q),
    links = count(home, "SELECT count(*) FROM step_run_artifacts WHERE artifact_version_id = " .. q),
  }
end

-- The object files of the store: path -> size.
local function objects(home)
  local out = H.sh("find " .. H.quote(home .. "/artifacts/objects") .. " -type f -printf '%s %p\\n'")
  local files = {}
  for size, path in out:gmatch("(%d+) ([^\n]+)") do files[path] = tonumber(size) end
  return files
end

local function size_of(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- A trigger that makes deleting from table fail, to check that a clean-up
-- is one transaction.
local function block_deletes(home, tbl)
  H.block(home, "DELETE", tbl)
end

describe("delete_artifact_version", function()
  local home, client, processed
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    ml:with_options { run_name = "ml-1" }()
    processed = client:get_artifact_version("processed")
    pipeline { name = "reuse", function() sum(processed) end }:with_options { run_name = "reuse-1" }()
  end)

  it("leaves a name without versions, which lookups say, suggesting no name", function()
    local av = lupine.save_artifact(1, "solo")
    client:delete_artifact_version(av.id)
    assert.equal("artifact 'solo' has no versions",
      H.err(function() client:get_artifact_version("solo") end))
    assert.equal("artifact 'soloo' not found; did you mean 'solo'?",
      H.err(function() client:get_artifact_version("soloo") end))
  end)

  it("refuses a version a step run produced or consumed, naming it and the step runs", function()
    local before = counts(home)
    assert.equal("delete_artifact_version: artifact version processed:v1 (" .. processed.id
      .. ") is output 'processed' of step run 'process_data' (run 'ml-1') and input 'xs' of"
      .. " step run 'sum' (run 'reuse-1'); pass { force = true } to delete it anyway",
      H.err(function() client:delete_artifact_version(processed) end))
    assert.same(before, counts(home))
    pipeline { name = "reuse", function() sum(processed) end }:with_options { run_name = "reuse-2" }()
    assert.matches("of step run 'sum' %(run 'reuse%-1'%) and 1 more; pass",
      H.err(function() client:delete_artifact_version("processed", "1") end))
    assert.matches("is output 'dataset' of step run 'load_data' %(run 'ml%-1'%) and input "
      .. "'dataset' of step run 'process_data' %(run 'ml%-1'%); pass",
      H.err(function() client:delete_artifact_version("dataset", 1, { force = false }) end))
    -- produced and never used (but by reuse-2's cache hit): still what runs made
    local sum_out = client:get_artifact_version("reuse::sum::output")
    assert.equal("delete_artifact_version: artifact version reuse::sum::output:v1 ("
      .. sum_out.id .. ") is output 'output' of step run 'sum' (run 'reuse-1') and 1 more; pass"
      .. " { force = true } to delete it anyway",
      H.err(function() client:delete_artifact_version(sum_out) end))
    -- saved by hand and consumed
    local loose = lupine.save_artifact({ 1 }, "loose")
    pipeline { name = "reuse", function() sum(loose) end }:with_options { run_name = "reuse-3" }()
    assert.equal("delete_artifact_version: artifact version loose:v1 (" .. loose.id .. ") is"
      .. " input 'xs' of step run 'sum' (run 'reuse-3'); pass { force = true } to delete it"
      .. " anyway", H.err(function() client:delete_artifact_version(loose) end))
    assert.same(before.step_runs + 2, counts(home).step_runs)
  end)

  it("with force: deletes the version, its tags and metadata, not the artifact", function()
    assert.same({ version = 1, tags = 1, metadata = 1, links = 2 }, attached(home, processed.id))
    local before = counts(home)
    local deleted = client:delete_artifact_version(processed, { force = true })
    assert.equal(processed.id, deleted.id)
    assert.equal("processed", deleted.name)
    -- the runs' links stay: they say what the runs made and used
    assert.same({ version = 0, tags = 0, metadata = 0, links = 2 }, attached(home, processed.id))
    local after = counts(home)
    assert.equal(before.artifact_versions - 1, after.artifact_versions)
    assert.equal(before.step_run_artifacts, after.step_run_artifacts)
    assert.equal(before.artifacts, after.artifacts)      -- prune removes empty artifacts
    assert.equal(before.step_runs, after.step_runs)
    assert.truthy(H.read(processed.uri), "the object stays until gc")
    assert.equal("delete_artifact_version: artifact version " .. processed.id .. " not found",
      H.err(function() client:delete_artifact_version(processed, { force = true }) end))
  end)

  it("takes an ArtifactVersion, an id, an id prefix, or a name and a version", function()
    local function new() return lupine.save_artifact({ math.random() }, "loose") end
    local a, b, c, d = new(), new(), new(), new()
    assert.equal(a.id, client:delete_artifact_version(a).id)
    assert.equal(b.id, client:delete_artifact_version(b.id).id)
    assert.equal(c.id, client:delete_artifact_version(c.id:sub(1, 8)).id)
    assert.equal(d.id, client:delete_artifact_version("loose", 4).id)
    local e = new()
    assert.equal("1", e.version)   -- numbering goes on from the highest version left
    assert.equal(e.id, client:delete_artifact_version("loose", "1", { force = false }).id)
    assert.equal(0, count(home, "SELECT count(*) FROM artifact_versions v JOIN artifacts a"
      .. " ON a.id = v.artifact_id WHERE a.name = 'loose'"))
  end)

  it("refuses a bare name, and says what is wrong with its arguments", function()
    assert.equal("delete_artifact_version: 'processed' is an artifact name; say which version"
      .. " to delete (delete_artifact_version('processed', '<version>'))",
      H.err(function() client:delete_artifact_version("processed") end))
    assert.equal("delete_artifact_version: artifact version 'nope' not found",
      H.err(function() client:delete_artifact_version("nope") end))
    assert.equal("artifact 'processed' has no version '9' (it has 1)",
      H.err(function() client:delete_artifact_version("processed", "9") end))
    assert.equal("bad argument #1 to 'delete_artifact_version' (ArtifactVersion or string"
      .. " expected, got number)", H.err(function() client:delete_artifact_version(1) end))
    assert.equal("bad argument #2 to 'delete_artifact_version' (string or integer expected,"
      .. " got boolean)", H.err(function() client:delete_artifact_version("processed", true) end))
    assert.equal("delete_artifact_version: unknown option 'forced'",
      H.err(function() client:delete_artifact_version(processed, { forced = true }) end))
    assert.equal("delete_artifact_version: option 'force' must be a boolean (got string)",
      H.err(function() client:delete_artifact_version(processed, { force = "yes" }) end))
    assert.equal(1, attached(home, processed.id).version)
  end)

  it("is one transaction: a failure half-way changes nothing", function()
    block_deletes(home, "artifact_versions")   -- the last of its deletes
    local before = counts(home)
    assert.matches("blocked by test",
      H.err(function() client:delete_artifact_version(processed, { force = true }) end))
    assert.same(before, counts(home))
    assert.same({ version = 1, tags = 1, metadata = 1, links = 2 }, attached(home, processed.id))
  end)
end)

describe("prune_artifacts", function()
  local home, client
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    ml:with_options { run_name = "ml-1" }()
    -- saved outside any step, never used: prunable
    lupine.save_artifact({ 1 }, "loose", { tags = { "t" }, run_metadata = { m = 1 } })
    lupine.save_artifact({ 2 }, "loose")
    lupine.save_artifact({ 5 }, "processed")          -- v2 of a produced artifact
    -- saved outside a step, then consumed by a run: kept
    local input = lupine.save_artifact({ 7 }, "kept_input")
    pipeline { name = "reuse", function() sum(input) end } ()
  end)

  local function report(r)
    local out = {}
    for i, v in ipairs(r.versions) do out[i] = v.name .. ":" .. v.version end
    return { versions = out, artifacts = r.artifacts }
  end

  it("dry_run: reports what it would delete and deletes nothing", function()
    local before = counts(home)
    local r = client:prune_artifacts { dry_run = true }
    assert.same({ versions = { "loose:1", "loose:2", "processed:2" }, artifacts = { "loose" } },
      report(r))
    assert.equal("numbers", r.versions[1].data_type)
    assert.same({ 1 }, r.versions[1]:load())
    assert.same(before, counts(home))
  end)

  it("deletes unproduced, unconsumed versions and the artifacts left empty", function()
    local loose1 = client:get_artifact_version("loose", "1")
    local before = counts(home)
    local r = client:prune_artifacts()
    assert.same({ versions = { "loose:1", "loose:2", "processed:2" }, artifacts = { "loose" } },
      report(r))
    local after = counts(home)
    assert.equal(before.artifact_versions - 3, after.artifact_versions)
    assert.equal(before.artifacts - 1, after.artifacts)
    assert.equal(before.tag_links - 1, after.tag_links)
    assert.equal(before.run_metadata - 1, after.run_metadata)
    assert.same({ version = 0, tags = 0, metadata = 0, links = 0 }, attached(home, loose1.id))
    assert.equal(0, count(home, "SELECT count(*) FROM artifacts WHERE name = 'loose'"))
    -- what stays still loads, and "latest" is the produced version again
    assert.same({ 2, 4, 6 }, client:get_artifact_version("processed"):load())
    assert.same({ 7 }, client:get_artifact_version("kept_input"):load())
    assert.same({ versions = {}, artifacts = {} }, report(client:prune_artifacts()))
    assert.same({ versions = {}, artifacts = {} }, report(client:prune_artifacts {}))
  end)

  it("removes an artifact whose last version was deleted", function()
    client:delete_artifact_version("reuse::sum::output", "1", { force = true })
    assert.same({ "loose", "reuse::sum::output" }, client:prune_artifacts().artifacts)
    assert.equal(0, count(home, "SELECT count(*) FROM artifacts WHERE name = 'reuse::sum::output'"))
  end)

  it("deletes only the versions given, never one saved after the plan", function()
    local plan = client:prune_artifacts { dry_run = true }
    local later = lupine.save_artifact({ 3 }, "loose")
    assert.same({ versions = { "loose:3" }, artifacts = {} },
      report(client:prune_artifacts { dry_run = true, versions = { later.id } }))
    local r = client:prune_artifacts { versions = plan.versions }
    -- loose keeps its version 3, so it stays
    assert.same({ versions = { "loose:1", "loose:2", "processed:2" }, artifacts = {} }, report(r))
    assert.same({ 3 }, client:get_artifact_version(later.id):load())
    assert.same({ versions = { "loose:3" }, artifacts = { "loose" } },
      report(client:prune_artifacts { versions = { later } }))
    assert.equal("prune_artifacts: versions[2] is not an ArtifactVersion or a version id",
      H.err(function() client:prune_artifacts { versions = { later.id, 3 } } end))
  end)

  it("is one transaction: a failure half-way changes nothing", function()
    block_deletes(home, "artifacts")   -- after the versions are deleted
    local before = counts(home)
    assert.matches("blocked by test", H.err(function() client:prune_artifacts() end))
    assert.same(before, counts(home))
  end)

  it("refuses unknown or mistyped options", function()
    assert.equal("prune_artifacts: unknown option 'dryrun'",
      H.err(function() client:prune_artifacts { dryrun = true } end))
    assert.equal("prune_artifacts: option 'dry_run' must be a boolean (got string)",
      H.err(function() client:prune_artifacts { dry_run = "yes" } end))
    assert.equal("bad argument #1 to 'prune_artifacts' (table expected, got boolean)",
      H.err(function() client:prune_artifacts(true) end))
  end)
end)

describe("gc", function()
  local home, client
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
  end)

  it("removes the objects no version references, and reports the bytes freed", function()
    ml()
    local garbage = {}
    for i = 1, 3 do
      local av = lupine.save_artifact({ i, string.rep("x", 100 * i) }, "loose")
      garbage[av.uri] = true
    end
    client:prune_artifacts()
    local before = objects(home)
    -- dataset: its value, a table, a CSV and a summary; processed: its value
    -- and a line chart; three loose values (which have no visualization)
    assert.equal(9, size_of(before))
    local dry = client:gc { dry_run = true, grace = 0 }
    assert.same(before, objects(home))
    local r = client:gc { grace = 0 }
    local after = objects(home)
    local removed, bytes = 0, 0
    for path, size in pairs(before) do
      if not after[path] then
        removed, bytes = removed + 1, bytes + size
        assert.is_true(garbage[path], path)
      end
    end
    assert.equal(3, removed)
    assert.same({ objects = removed, bytes = bytes, kept = 6, recent = 0, skipped = {},
      copies = 0, copy_bytes = 0 }, r)
    assert.same(r, dry)
    assert.same({ objects = 0, bytes = 0, kept = 6, recent = 0, skipped = {}, copies = 0,
      copy_bytes = 0 }, client:gc { grace = 0 })
    -- every version still loads, its hash checked
    for _, av in ipairs(client:list_artifact_versions()) do
      assert.is_table(av:load())
    end
  end)

  it("never removes an object some version references", function()
    local uncached = ml:with_options { enable_cache = false }
    uncached(); uncached()                             -- versions share objects
    local av = lupine.save_artifact({ values = { 1, 2, 3 } }, "copy")  -- same bytes as dataset
    local dataset = client:get_artifact_version("dataset")
    assert.equal(dataset.content_hash, av.content_hash)
    client:delete_artifact_version(av)
    assert.same({ objects = 0, bytes = 0, kept = 6, recent = 0, skipped = {}, copies = 0,
      copy_bytes = 0 }, client:gc { grace = 0 })
    for _, v in ipairs(client:list_artifact_versions()) do v:load() end
    assert.equal(4, #client:list_artifact_versions())
  end)

  it("leaves alone tmp/ and anything that is not a well-formed object", function()
    lupine.save_artifact({ 1 }, "loose")
    client:delete_artifact_version("loose", "1")
    local store = home .. "/artifacts"
    local hex = string.rep("ab", 31)
    local strays = { store .. "/tmp/obj-inprogress", store .. "/objects/zz/" .. hex .. ".zst",
      store .. "/objects/ab/" .. hex .. ".txt", store .. "/objects/ab/" .. hex:upper() .. ".zst",
      store .. "/objects/ab/" .. hex .. "a.zst", store .. "/objects/notes.txt" }
    assert(os.execute("mkdir -p " .. H.quote(store .. "/objects/zz") .. " "
      .. H.quote(store .. "/objects/ab/" .. hex:sub(3) .. "cd.zst")))
    for _, path in ipairs(strays) do H.write(path, "not an object") end
    -- force: the catalog has no version left
    local r = client:gc { grace = 0, force = true }
    assert.equal(2, r.objects)   -- the value and its line chart
    for _, path in ipairs(strays) do assert.equal("not an object", H.read(path), path) end
    assert.equal(0, select(3, H.sh("test -d " .. H.quote(store .. "/objects/ab/" .. hex:sub(3)
      .. "cd.zst"))))
  end)

  it("keeps the objects written within the grace period (an hour by default)", function()
    ml()
    local loose = lupine.save_artifact({ "garbage" }, "loose")
    client:delete_artifact_version(loose)
    assert.same({ objects = 0, bytes = 0, kept = 6, recent = 1, skipped = {}, copies = 0,
      copy_bytes = 0 }, client:gc())
    assert.same({ objects = 0, bytes = 0, kept = 6, recent = 1, skipped = {}, copies = 0,
      copy_bytes = 0 },
      client:gc { grace = 600 })
    assert.truthy(H.read(loose.uri))
    assert(os.execute("touch -d '-61 minutes' " .. H.quote(loose.uri)))
    assert.same({ objects = 1, bytes = loose.stored_size, kept = 6, recent = 0, skipped = {},
      copies = 0, copy_bytes = 0 },
      client:gc())
    assert.is_nil(H.read(loose.uri))
  end)

  it("refuses to empty a store when the catalog records no version, unless forced #sqlite", function()
    ml()
    local store = home .. "/artifacts"
    local before = objects(home)
    -- the catalog is lost, and a new one made in its place
    lupine.set_home(home)   -- closes it
    assert(os.execute("rm " .. H.quote(home) .. "/catalog.db*"))
    local want = "gc: the catalog records no artifact version, yet the store at " .. store
      .. " holds objects: refusing to remove them all; if every version was deleted on "
      .. "purpose, force it (lupine gc --force, or force = true)"
    assert.equal(want, H.err(function() client:gc { grace = 0 } end))
    assert.equal(want, H.err(function() client:gc { grace = 0, dry_run = true } end))
    assert.same(before, objects(home))
    -- within the grace period nothing is removed anyway: nothing to refuse
    assert.same({ objects = 0, bytes = 0, kept = 0, recent = 6, skipped = {}, copies = 0,
      copy_bytes = 0 }, client:gc())
    local r = client:gc { grace = 0, force = true }
    assert.equal(6, r.objects)
    assert.same({}, objects(home))
  end)

  it("refuses unknown or mistyped options", function()
    assert.equal("gc: unknown option 'dry'", H.err(function() client:gc { dry = true } end))
    assert.equal("gc: option 'dry_run' must be a boolean (got number)",
      H.err(function() client:gc { dry_run = 1 } end))
    assert.equal("gc: option 'grace' must be a number of seconds, at least 0 (got -1)",
      H.err(function() client:gc { grace = -1 } end))
    assert.equal("gc: option 'grace' must be a number of seconds, at least 0 (got nan)",
      H.err(function() client:gc { grace = 0 / 0 } end))
    assert.equal("gc: option 'force' must be a boolean (got string)",
      H.err(function() client:gc { force = "yes" } end))
  end)
end)

-- "A cache or another process running at the same time must never lose an
-- object it still needs." These run `lupine run` processes side by side.
describe("gc while other processes write", function()
  local home, dir
  before_each(function()
    dir = H.tmpdir()
    home = dir .. "/home"
    lupine.set_home(home)
    -- create the catalog now: the processes below open it at the same time
    lupine.home()
  end)
  after_each(function() H.rm(dir) end)

  -- Run a shell script in dir with $cli, $home and $dir set.
  local function shell(script)
    local cli = H.cli:sub(1, 1) == "/" and H.cli or (H.root .. "/" .. H.cli)
    local file = H.write(dir .. "/test.sh", "set -u\ncli=" .. H.quote(cli) .. "\nhome="
      .. H.quote(home) .. "\ndir=" .. H.quote(dir) .. "\nexport LUPINE_HOME=\"$home\"\n"
      .. "cd \"$dir\"\n"
      -- wait_for FILE: up to 20 s
      .. "wait_for() { i=0; while [ ! -e \"$1\" ] && [ $i -lt 400 ]; do sleep 0.05;"
      .. " i=$((i+1)); done; [ -e \"$1\" ]; }\n" .. script)
    return H.sh("sh " .. H.quote(file))
  end

  -- A process (the sqlite3 shell) that, once the file `after` exists, takes
  -- the catalog's write lock, writes 'locked', and holds the lock until
  -- 'release' exists; then, still holding it, runs shell command held.
  local function locker(after, held)
    local wait = "i=0; while [ ! -e %s ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"
    return "printf '.timeout 20000\\n.shell " .. wait:format(after) .. "\\nBEGIN IMMEDIATE;\\n"
      .. ".shell touch locked; " .. wait:format("release") .. "; " .. held
      .. "\\nCOMMIT;\\n' | sqlite3 \"$home/catalog.db\" &\n"
  end

  it("gc removes nothing while a writer holds the write lock #sqlite", function()
    local av = lupine.save_artifact({ "garbage" }, "loose")
    lupine.Client():delete_artifact_version(av)
    H.write(dir .. "/gc.lua", [[
      local r = require("lupine").Client():gc { grace = 0, force = true }
      print("gc", r.objects, r.bytes)
    ]])
    local out, err = shell(locker(".", "true") .. [[
wait_for locked || echo "never locked"
"$cli" run gc.lua > gc.out 2>&1 &
sleep 1
[ -e ]] .. H.quote(av.uri) .. [[ ] && echo "kept while locked"
touch release
wait
[ -e ]] .. H.quote(av.uri) .. [[ ] || echo "removed after"
cat gc.out
]])
    assert.equal("kept while locked\nremoved after\ngc\t1\t" .. av.stored_size .. "\n", out, err)
  end)

  it("a writer whose object gc removed before it recorded the version puts it back #sqlite", function()
    -- The object of { 42 } exists, unreferenced: garbage.
    local garbage = lupine.save_artifact({ 42 }, "seed")
    lupine.Client():delete_artifact_version(garbage)
    assert.truthy(H.read(garbage.uri))
    -- While the step runs, the locker takes the write lock; when the step
    -- returns, the executor puts { 42 } (it is there: nothing is written) and
    -- waits for the lock. Holding it, as gc would, the locker removes the
    -- object; the executor must put it back before recording the version.
    H.write(dir .. "/writer.lua", [[
      local lupine = require "lupine"
      local function wait_for(file)
        for _ = 1, 400 do
          local f = io.open(file)
          if f then f:close(); return end
          os.execute("sleep 0.05")
        end
        error("timed out waiting for " .. file)
      end
      local s = lupine.step { name = "answer", outputs = { "answer" }, function()
        io.open("in-step", "w"):close()
        wait_for("locked")
        io.open("returning", "w"):close()
        return { 42 }
      end }
      local run = lupine.pipeline { name = "w", function() s() end } ()
      print("loaded", run.steps.answer.output:load()[1])
    ]])
    local out, err = shell(locker("in-step", "rm -f " .. garbage.uri) .. [[
"$cli" run writer.lua > writer.out 2>&1 &
wait_for returning || echo "the step never returned"
sleep 0.5
[ -e ]] .. H.quote(garbage.uri) .. [[ ] && echo "still there before the locker removes it"
touch release
wait
[ -e ]] .. H.quote(garbage.uri) .. [[ ] && echo "put back"
cat writer.out
]])
    assert.matches("^still there before the locker removes it\nput back\n", out)
    assert.matches("\nloaded\t42\n$", out)
    assert.equal("", err)
    local av = lupine.Client():get_artifact_version("answer")
    assert.equal(garbage.content_hash, av.content_hash)
    assert.same({ 42 }, av:load())
  end)

  it("pipelines running in a loop never lose an object to a concurrent gc", function()
    -- Each run writes an object that the previous run's deletion made
    -- garbage (same bytes), next to a new one (a put that takes a while):
    -- gc running meanwhile may remove the first before the run records it.
    H.write(dir .. "/writer.lua", [[
      local lupine = require "lupine"
      local make = lupine.step { name = "make", outputs = { "recycled", "fresh" },
        function(i) return { k = i % 3 }, { n = i, pad = string.rep("x", 4000) } end }
      local p = lupine.pipeline { name = "churn", function(i) make(i) end }
      local client, n = lupine.Client(), tonumber(arg[1])
      for i = 1, n do
        local run = p(i)
        local av = run.steps.make.outputs.recycled
        assert(av:load().k == i % 3, "wrong value")
        assert(run.steps.make.outputs.fresh:load().n == i, "wrong value")
        if i < n then client:delete_artifact_version(av, { force = true }) end
      end
      io.open("writer.done", "w"):close()
      print("writer done")
    ]])
    H.write(dir .. "/gc.lua", [[
      local lupine = require "lupine"
      local client, runs, removed = lupine.Client(), 0, 0
      local deadline = os.time() + 120
      -- (before the writer's first version, the catalog records none while
      -- the store holds its objects: gc rightly refuses to empty the store)
      while client:list_artifact_versions().total == 0 and os.time() < deadline do
        os.execute("sleep 0.01")
      end
      repeat
        removed = removed + client:gc { grace = 0 }.objects
        runs = runs + 1
        os.execute("sleep 0.01")
      until io.open("writer.done") or os.time() > deadline
      print("gc runs", runs, "removed", removed)
    ]])
    local out, err = shell([[
"$cli" run writer.lua 40 > writer.out 2>&1 &
w=$!
"$cli" run gc.lua > gc.out 2>&1 &
g=$!
wait $w; echo "writer exit $?"
wait $g; echo "gc exit $?"
cat writer.out gc.out
]])
    assert.matches("writer exit 0\ngc exit 0\n", out, 1, true)
    assert.matches("\nwriter done\n", out, 1, true)
    local runs, removed = out:match("gc runs\t(%d+)\tremoved\t(%d+)")
    assert.truthy(runs, out .. err)
    assert.is_true(tonumber(runs) > 1, out)
    assert.is_true(tonumber(removed) > 0, "gc removed nothing: it did not run alongside\n" .. out)
    -- every version in the catalog loads, its hash verified
    local versions = lupine.Client():list_artifact_versions()
    assert.equal(41, #versions)
    for _, av in ipairs(versions) do av:load() end
  end)
end)

-- What runs made or used stays named after it is deleted: the step runs'
-- links keep it, lineage, the step runs' inputs and outputs, the command
-- line and the dashboard show it as deleted.
describe("a deleted version in what runs made and used", function()
  local home, client, processed, dataset
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    ml:with_options { run_name = "ml-1" }()
    processed = client:get_artifact_version("processed")
    dataset = client:get_artifact_version("dataset")
    pipeline { name = "reuse", function() sum(processed) end }:with_options { run_name = "reuse-1" }()
    client:delete_artifact_version(processed, { force = true })
  end)

  it("a step run's inputs and outputs show it as deleted, and it does not load", function()
    local tomb = client:get_pipeline_run("reuse-1").steps.sum.inputs.xs
    assert.same({ processed.id, "processed", "1" }, { tomb.id, tomb.name, tomb.version })
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", tomb.deleted)
    assert.equal("artifact version processed:v1 (" .. processed.id .. ") was deleted ("
      .. tomb.deleted .. ")", H.err(function() tomb:load() end))
    assert.equal("<ArtifactVersion processed v1 (deleted " .. tomb.deleted .. ") " .. processed.id
      .. ">", tostring(tomb))
    local made = client:get_pipeline_run("ml-1").steps.process_data
    assert.equal(processed.id, made.output.id)
    assert.equal(tomb.deleted, made.outputs.processed.deleted)
    assert.is_nil(made.inputs.dataset.deleted)
    assert.same({ processed.id, "processed", "1" }, { H.sqlite(home, "SELECT id, artifact_name,"
      .. " version FROM deleted_versions"):match("^([^|]+)|([^|]+)|([^\n]+)\n$") })
  end)

  it("a version saved by hand in a step stays apart from its outputs once deleted", function()
    local worker = step { name = "worker", function()
      lupine.save_artifact({ extra = true }, "side_output")
      return "main"
    end }
    local run = pipeline { name = "saves", function() worker() end }()
    local side = run.steps.worker.manual_outputs.side_output
    client:delete_artifact_version(side, { force = true })
    local sr = client:get_pipeline_run(run.name).steps.worker
    assert.equal("main", sr.output:load())
    assert.same({ side.id, true }, { sr.manual_outputs.side_output.id,
      sr.manual_outputs.side_output.deleted ~= nil })
    assert.equal("manual", sr.manual_outputs.side_output.save_type)
  end)

  it("lineage shows it as deleted, and goes no further through it", function()
    local g = client:get_lineage("reuse::sum::output", { direction = "upstream" })
    local labels = {}
    for i, n in ipairs(g.nodes) do labels[i] = n.label end
    assert.same({ "reuse::sum::output:v1", "sum (run reuse-1)", "processed:v1 (deleted)" }, labels)
    assert.matches("Z$", g.nodes[3].deleted)
    assert.is_nil(g.nodes[1].deleted)
    assert.equal("input", g.edges[2].kind)
    local down = client:get_lineage(dataset, { direction = "downstream" })
    assert.equal("dataset:v1\n  consumed by process_data (run ml-1) [completed] as 'dataset'\n"
      .. "    output 'processed': processed:v1 (deleted)\n", lineage.format(down, "text"))
    assert.matches('"label": "processed:v1 %(deleted%)", "name": "processed", "version": "1", '
      .. '"deleted": "[%d%-T:.]+Z"}', lineage.format(down, "json"))
    assert.matches('%[label="processed:v1 %(deleted%)", color=gray, style=dashed%];',
      lineage.format(down, "dot"))
  end)

  it("a new version that takes its seq is not taken for it", function()
    -- sqlite gives a new row the largest seq again once that row is gone
    local loose = lupine.save_artifact({ 5 }, "loose")
    pipeline { name = "reuse", function() sum(loose) end }:with_options { run_name = "reuse-2" }()
    client:delete_artifact_version(loose, { force = true })
    local fresh = lupine.save_artifact({ 6 }, "fresh")
    assert.equal(count(home, "SELECT max(seq) FROM artifact_versions"),
      count(home, "SELECT seq FROM artifact_versions WHERE id = '" .. fresh.id .. "'"))
    assert.same({}, fresh:consumers())
    local xs = client:get_pipeline_run("reuse-2").steps.sum.inputs.xs
    assert.same({ loose.id, "loose", true }, { xs.id, xs.name, xs.deleted ~= nil })
    local g = client:get_lineage(fresh)
    assert.equal(1, #g.nodes)
  end)

  it("a cache hit is refused: its output is gone", function()
    local run = ml:with_options { run_name = "ml-2" }()
    assert.equal("cached", run.steps.load_data.status)
    assert.equal("completed", run.steps.process_data.status)
    -- numbering goes on from the highest version left: the number is free again
    assert.equal("1", run.steps.process_data.output.version)
    assert.not_equal(processed.id, run.steps.process_data.output.id)
    assert.equal("the outputs of the step run it would reuse are no longer stored",
      run.steps.process_data.cache_note)
  end)

  it("the command line shows it as deleted", function()
    local out, err, code = H.lupine(home, "pipeline runs describe reuse-1")
    assert.equal(0, code, err)
    assert.matches("\ninput\tsum\txs\tprocessed:1\t" .. processed.id:gsub("%-", "%%-")
      .. "\tdeleted\n", out)
    out = H.lupine(home, "pipeline runs describe reuse-1 --json")
    assert.matches('"xs":{"deleted":"[%d%-T:.]+Z","id":"' .. processed.id:gsub("%-", "%%-")
      .. '","name":"processed","version":"1"}', out)
    out = H.lupine(home, "pipeline runs describe ml-1 --json")
    assert.matches('"dataset":{"deleted":null,"id":"', out)
    out = H.lupine(home, "lineage reuse::sum::output --up")
    assert.equal("reuse::sum::output:v1\n  produced by sum (run reuse-1) [completed] as 'output'\n"
      .. "    input 'xs': processed:v1 (deleted)\n", out)
  end)

  it("the dashboard shows it as deleted, without a link to its page", function()
    local handle = require("lupine.ui").handler {}
    local sr = client:get_pipeline_run("reuse-1").steps.sum
    local status, _, body = handle("GET", "/steps/" .. sr.id)
    assert.equal(200, status)
    assert.matches('<td>processed:1 <span class="note">%(deleted%)</span></td>', body)
    assert.is_nil(body:find("/versions/" .. processed.id, 1, true))
    local _, _, api = handle("GET", "/api/steps/" .. sr.id)
    assert.matches('"xs":{"deleted":"[%d%-T:.]+Z","id":"' .. processed.id:gsub("%-", "%%-"), api)
    local run = client:get_pipeline_run("ml-1")
    _, _, body = handle("GET", "/runs/" .. run.id)
    assert.matches('processed → processed:1 <span class="note">%(deleted%)</span>', body)
    local out = client:get_artifact_version("reuse::sum::output")
    _, _, body = handle("GET", "/versions/" .. out.id)
    assert.matches(">deleted<", body)
    assert.is_nil(body:find('href="/versions/' .. processed.id, 1, true))
  end)
end)

describe("delete_artifact", function()
  local home, client
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    ml:with_options { run_name = "ml-1" }()
    ml:with_options { run_name = "ml-2", enable_cache = false }()
    client:update_artifact("processed", { add_tags = { "family" } })
  end)

  it("refuses an artifact whose versions runs produced or used, naming one", function()
    local before = counts(home)
    local v1 = client:get_artifact_version("processed", "1")
    assert.equal("delete_artifact: artifact 'processed' has 2 versions that step runs produced or"
      .. " used: processed:v1 (" .. v1.id .. ") is output 'processed' of step run 'process_data'"
      .. " (run 'ml-1'); pass { force = true } to delete it anyway",
      H.err(function() client:delete_artifact("processed") end))
    assert.same(before, counts(home))
  end)

  it("deletes an artifact no run used, without force", function()
    lupine.save_artifact({ 1 }, "loose", { tags = { "t" } })
    lupine.save_artifact({ 2 }, "loose")
    local before = counts(home)
    local deleted = client:delete_artifact("loose")
    assert.same({ "1", "2" }, { deleted[1].version, deleted[2].version })
    assert.equal("loose", deleted[1].name)
    local after = counts(home)
    assert.equal(before.artifacts - 1, after.artifacts)
    assert.equal(before.artifact_versions - 2, after.artifact_versions)
    assert.equal(before.tag_links - 1, after.tag_links)
    assert.equal(0, count(home, "SELECT count(*) FROM deleted_versions"))
  end)

  it("with force: every version, the artifact and its tags; runs show them deleted", function()
    local before = counts(home)
    local deleted = client:delete_artifact("processed", { force = true })
    assert.equal(2, #deleted)
    local after = counts(home)
    assert.equal(before.artifacts - 1, after.artifacts)
    assert.equal(before.artifact_versions - 2, after.artifact_versions)
    assert.equal(before.tag_links - 3, after.tag_links)   -- family, and gold on each version
    assert.equal(before.step_run_artifacts, after.step_run_artifacts)
    assert.equal(2, count(home, "SELECT count(*) FROM deleted_versions"))
    assert.equal(0, count(home, "SELECT count(*) FROM artifacts WHERE name = 'processed'"))
    local out = client:get_pipeline_run("ml-2").steps.process_data.output
    assert.same({ "processed", "2", true }, { out.name, out.version, out.deleted ~= nil })
    assert.truthy(H.read(deleted[1].uri), "the object stays until gc")
    assert.equal("artifact 'processed' not found",
      H.err(function() client:get_artifact_version("processed") end))
  end)

  it("is one transaction, and says what is wrong with its arguments", function()
    block_deletes(home, "artifacts")
    local before = counts(home)
    assert.matches("blocked by test",
      H.err(function() client:delete_artifact("processed", { force = true }) end))
    assert.same(before, counts(home))
    assert.equal("delete_artifact: artifact 'procesed' not found; did you mean 'processed'?",
      H.err(function() client:delete_artifact("procesed") end))
    assert.equal("bad argument #1 to 'delete_artifact' (string expected, got nil)",
      H.err(function() client:delete_artifact() end))
    assert.equal("delete_artifact: unknown option 'forced'",
      H.err(function() client:delete_artifact("processed", { forced = true }) end))
  end)
end)

describe("delete_pipeline_run", function()
  local home, client
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    ml:with_options { run_name = "ml-1" }()
    client:update_pipeline_run("ml-1", { add_tags = { "first" } })
    lupine.log_metadata { metadata = { n = 1 }, run = "ml-1" }
    lupine.log_metadata { metadata = { n = 2 }, step_name = "load_data", run = "ml-1" }
  end)

  it("deletes a run nobody used: its step runs, links, versions, tags and metadata", function()
    local outside = lupine.save_artifact({ 1, 2 }, "outside")
    pipeline { name = "reuse", function() sum(outside) end }:with_options { run_name = "reuse-1" }()
    local before = counts(home)
    local run, versions = client:delete_pipeline_run("reuse-1")
    assert.equal("reuse-1", run.name)
    assert.same({ "reuse::sum::output" }, { versions[1].name })
    assert.equal(1, #versions)
    local after = counts(home)
    assert.equal(before.step_runs - 1, after.step_runs)
    assert.equal(before.step_run_artifacts - 2, after.step_run_artifacts)
    assert.equal(before.artifact_versions - 1, after.artifact_versions)
    -- what it took from outside stays, and is used by no one now
    assert.same({}, client:get_artifact_version("outside"):consumers())
    assert.equal("pipeline run 'reuse-1' not found",
      H.err(function() client:get_pipeline_run("reuse-1") end))
    -- tags and metadata of the run and its step runs go too
    run = client:get_pipeline_run("ml-1")
    client:delete_pipeline_run(run, { force = false })
    -- (artifacts left empty stay, as after delete_artifact_version, until prune)
    assert.same({ artifacts = 4, artifact_versions = 1, tag_links = 0, run_metadata = 0,
      step_run_artifacts = 0, step_runs = 0 }, counts(home))
    assert.same({ "dataset", "outside", "processed", "reuse::sum::output" },
      client:prune_artifacts().artifacts)
    assert.equal(0, count(home, "SELECT count(*) FROM pipeline_runs"))
    assert.equal(0, count(home, "SELECT count(*) FROM deleted_versions"))
  end)

  it("refuses a run whose versions other runs used, naming one use", function()
    local processed = client:get_artifact_version("processed")
    pipeline { name = "reuse", function() sum(processed) end }:with_options { run_name = "reuse-1" }()
    local before = counts(home)
    assert.equal("delete_pipeline_run: run 'ml-1' made artifact version processed:v1 ("
      .. processed.id .. "), which is input 'xs' of step run 'sum' (run 'reuse-1'); pass"
      .. " { force = true } to delete it anyway",
      H.err(function() client:delete_pipeline_run("ml-1") end))
    -- a cache hit in another run reuses its versions as outputs
    ml:with_options { run_name = "ml-2" }()
    local dataset = client:get_artifact_version("dataset")
    assert.equal("delete_pipeline_run: run 'ml-1' made artifact version dataset:v1 ("
      .. dataset.id .. "), which is output 'dataset' of step run 'load_data' (run 'ml-2') and"
      .. " input 'dataset' of step run 'process_data' (run 'ml-2') (and 1 more of its versions"
      .. " are used by other runs); pass { force = true } to delete it anyway",
      H.err(function() client:delete_pipeline_run("ml-1") end))
    assert.equal(before.step_runs + 2, counts(home).step_runs)
  end)

  it("with force: the runs that used its versions show them deleted", function()
    local processed = client:get_artifact_version("processed")
    pipeline { name = "reuse", function() sum(processed) end }:with_options { run_name = "reuse-1" }()
    ml:with_options { run_name = "ml-2" }()               -- cache hits of ml-1's step runs
    local hit = client:get_pipeline_run("ml-2").steps.load_data
    assert.truthy(hit.cached_from)
    local _, versions = client:delete_pipeline_run("ml-1", { force = true })
    assert.equal(2, #versions)
    local xs = client:get_pipeline_run("reuse-1").steps.sum.inputs.xs
    assert.same({ processed.id, true }, { xs.id, xs.deleted ~= nil })
    hit = client:get_pipeline_run("ml-2").steps.load_data
    assert.is_nil(hit.cached_from)                         -- no id of a step run that is gone
    assert.equal("cached", hit.status)
    assert.truthy(hit.output.deleted)
    assert.equal(2, count(home, "SELECT count(*) FROM deleted_versions"))
    assert.equal(0, count(home, "SELECT count(*) FROM step_run_artifacts l WHERE NOT EXISTS"
      .. " (SELECT 1 FROM step_runs s WHERE s.id = l.step_run_id)"))
    -- deleting the last runs that named them deletes the tombstones
    client:delete_pipeline_run("ml-2")
    assert.equal(1, count(home, "SELECT count(*) FROM deleted_versions"))
    client:delete_pipeline_run("reuse-1")
    assert.equal(0, count(home, "SELECT count(*) FROM deleted_versions"))
  end)

  it("refuses a running run; is one transaction; says what is wrong with its arguments", function()
    local _, err, code = H.sqlite(home, "UPDATE pipeline_runs SET status = 'running'")
    assert(code == 0, err)
    assert.equal("delete_pipeline_run: run 'ml-1' is still running",
      H.err(function() client:delete_pipeline_run("ml-1", { force = true }) end))
    H.sqlite(home, "UPDATE pipeline_runs SET status = 'completed'")
    block_deletes(home, "pipeline_runs")
    local before = counts(home)
    assert.matches("blocked by test", H.err(function() client:delete_pipeline_run("ml-1") end))
    assert.same(before, counts(home))
    assert.equal("pipeline run 'ml-2' not found; did you mean 'ml-1'?",
      H.err(function() client:delete_pipeline_run("ml-2") end))
    assert.equal("bad argument #1 to 'delete_pipeline_run' (PipelineRun or string expected,"
      .. " got number)", H.err(function() client:delete_pipeline_run(1) end))
    assert.equal("delete_pipeline_run: option 'force' must be a boolean (got number)",
      H.err(function() client:delete_pipeline_run("ml-1", { force = 1 }) end))
  end)
end)

describe("prune while another process saves", function()
  it("every save returns the version it saved, even one pruned at once", function()
    -- save_artifact outside a step makes a version prune deletes (no step
    -- run made or took it), and so does register_artifact: prune may delete
    -- it the moment its save commits
    local dir = H.tmpdir()
    H.write(dir .. "/registered.txt", "a file\n")
    H.write(dir .. "/saver.lua", [[
      local n, failed = tonumber(arg[1]), 0
      for i = 1, n do
        local ok, av
        if i % 2 == 0 then ok, av = pcall(lupine.save_artifact, { i }, "raced")
        else ok, av = pcall(lupine.register_artifact, { path = "registered.txt", name = "raced" })
        end
        if not ok or av.name ~= "raced" or not av.id:find("^%x+%-") then
          failed = failed + 1
          io.stderr:write(tostring(av), "\n")
        end
      end
      io.open("saver.done", "w"):close()
      print("saved", n - failed, "failed", failed)
    ]])
    H.write(dir .. "/pruner.lua", [[
      local client, runs, pruned, deadline = lupine.Client(), 0, 0, os.time() + 120
      repeat
        pruned = pruned + #client:prune_artifacts().versions
        runs = runs + 1
      until io.open("saver.done") or os.time() > deadline
      print("prune runs", runs, "pruned", pruned)
    ]])
    local cli = H.quote(H.cli)
    H.write(dir .. "/open.lua", "lupine.home()\n")   -- the catalog, made before the race
    local out, err = H.sh("cd " .. H.quote(dir) .. " && export LUPINE_HOME=home && " .. cli
      .. " run open.lua >/dev/null && (" .. cli .. " run saver.lua 300 > saver.out 2>&1 & "
      .. cli .. " run pruner.lua > pruner.out 2>&1 & wait) && cat saver.out pruner.out")
    assert.matches("^saved\t300\tfailed\t0\n", out, nil, false)
    local pruned = tonumber(out:match("\tpruned\t(%d+)\n"))
    assert.is_true(pruned and pruned > 0, "prune deleted nothing: it did not run alongside\n"
      .. out .. err)
    H.rm(dir)
  end)
end)
