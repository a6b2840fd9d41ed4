-- SPDX-License-Identifier: MIT
-- Clean-up: delete_artifact_version, prune_artifacts and gc, alone and
-- while other processes run pipelines.
local H = require "helper"
local lupine = require "lupine"
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
  local _, err, code = H.sqlite(home, "CREATE TRIGGER block BEFORE DELETE ON " .. tbl
    .. " BEGIN SELECT RAISE(ABORT, 'blocked by test'); END")
  assert(code == 0, err)
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

  it("refuses a version a step run consumed, naming it and a consumer", function()
    local before = counts(home)
    assert.equal("delete_artifact_version: artifact version processed:v1 (" .. processed.id
      .. ") is input 'xs' of step run 'sum' (run 'reuse-1'); pass { force = true } to delete"
      .. " it anyway", H.err(function() client:delete_artifact_version(processed) end))
    assert.same(before, counts(home))
    pipeline { name = "reuse", function() sum(processed) end }:with_options { run_name = "reuse-2" }()
    assert.matches("of step run 'sum' %(run 'reuse%-1'%) and 1 more; pass",
      H.err(function() client:delete_artifact_version("processed", "1") end))
    assert.matches("is input 'dataset' of step run 'process_data' %(run 'ml%-1'%)",
      H.err(function() client:delete_artifact_version("dataset", 1, { force = false }) end))
  end)

  it("with force: deletes the version, its tags, metadata and links, not the artifact", function()
    assert.same({ version = 1, tags = 1, metadata = 1, links = 2 }, attached(home, processed.id))
    local before = counts(home)
    local deleted = client:delete_artifact_version(processed, { force = true })
    assert.equal(processed.id, deleted.id)
    assert.equal("processed", deleted.name)
    assert.same({ version = 0, tags = 0, metadata = 0, links = 0 }, attached(home, processed.id))
    local after = counts(home)
    assert.equal(before.artifact_versions - 1, after.artifact_versions)
    assert.equal(before.step_run_artifacts - 2, after.step_run_artifacts)
    assert.equal(before.artifacts, after.artifacts)      -- prune removes empty artifacts
    assert.equal(before.step_runs, after.step_runs)
    assert.truthy(H.read(processed.uri), "the object stays until gc")
    assert.same({}, client:get_pipeline_run("reuse-1").steps.sum.inputs)
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
    assert.equal("table", r.versions[1].data_type)
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
    client:delete_artifact_version("reuse::sum::output", "1")
    assert.same({ "loose", "reuse::sum::output" }, client:prune_artifacts().artifacts)
    assert.equal(0, count(home, "SELECT count(*) FROM artifacts WHERE name = 'reuse::sum::output'"))
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
    local dry = client:gc { dry_run = true }
    assert.same(before, objects(home))
    local r = client:gc()
    local after = objects(home)
    local removed, bytes = 0, 0
    for path, size in pairs(before) do
      if not after[path] then
        removed, bytes = removed + 1, bytes + size
        assert.is_true(garbage[path], path)
      end
    end
    assert.equal(3, removed)
    assert.same({ objects = removed, bytes = bytes, kept = 6, skipped = {} }, r)
    assert.same(r, dry)
    assert.same({ objects = 0, bytes = 0, kept = 6, skipped = {} }, client:gc())
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
    assert.same({ objects = 0, bytes = 0, kept = 6, skipped = {} }, client:gc())
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
    local r = client:gc()
    assert.equal(2, r.objects)   -- the value and its line chart
    for _, path in ipairs(strays) do assert.equal("not an object", H.read(path), path) end
    assert.equal(0, select(3, H.sh("test -d " .. H.quote(store .. "/objects/ab/" .. hex:sub(3)
      .. "cd.zst"))))
  end)

  it("refuses unknown or mistyped options", function()
    assert.equal("gc: unknown option 'dry'", H.err(function() client:gc { dry = true } end))
    assert.equal("gc: option 'dry_run' must be a boolean (got number)",
      H.err(function() client:gc { dry_run = 1 } end))
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

  it("gc removes nothing while a writer holds the write lock", function()
    local av = lupine.save_artifact({ "garbage" }, "loose")
    lupine.Client():delete_artifact_version(av)
    H.write(dir .. "/gc.lua", [[
      local r = require("lupine").Client():gc()
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

  it("a writer whose object gc removed before it recorded the version puts it back", function()
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
        if i < n then client:delete_artifact_version(av) end
      end
      io.open("writer.done", "w"):close()
      print("writer done")
    ]])
    H.write(dir .. "/gc.lua", [[
      local lupine = require "lupine"
      local client, runs, removed = lupine.Client(), 0, 0
      local deadline = os.time() + 120
      repeat
        removed = removed + client:gc().objects
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
