-- SPDX-License-Identifier: MIT
-- Caching, parallel workers and faults.
local H = require "helper"
local lupine = require "lupine"
local step, pipeline = lupine.step, lupine.pipeline

-- A fresh scratch folder the steps can leave marks in (steps run in their
-- own processes: files are how a test sees what they did).
local function scratch() return H.tmpdir() end

local function count_lines(path)
  local s = H.read(path) or ""
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n
end

local load_data = step { name = "load_data", outputs = { "dataset" },
  function() return { values = { 1, 2, 3, 4, 5 } } end }
local scale = step { name = "scale", outputs = { "scaled" }, function(dataset, factor)
  local out = {}
  for i, x in ipairs(dataset.values) do out[i] = x * factor end
  return out
end }
local scaling = pipeline { name = "scaling", function(factor) scale(load_data(), factor) end }

describe("caching", function()
  local client
  before_each(function()
    H.fresh(lupine)
    client = lupine.Client()
  end)

  it("reuses completed step runs: status cached, the same versions, nothing new stored", function()
    local first = scaling(2)
    local second = scaling(2)
    assert.equal("completed", second.status)
    for _, name in ipairs { "load_data", "scale" } do
      local a, b = first.steps[name], second.steps[name]
      assert.equal("cached", b.status)
      assert.equal(a.id, b.cached_from)
      assert.equal(a.output.id, b.output.id)
    end
    assert.equal(1, client:list_artifact_versions { name = "scaled" }.total)
    assert.equal(first.steps.load_data.output.id, second.steps.scale.inputs.dataset.id)
  end)

  it("reuses the newest completed step run with the key, among many older ones", function()
    -- what a run reads at its start for its hits must give what asking for each would
    local runs = {}
    for i = 1, 3 do runs[i] = scaling:with_options { enable_cache = false } (2) end
    for _ = 1, 3 do scaling(3) end   -- newer step runs with other keys
    local again = scaling(2)
    for _, name in ipairs { "load_data", "scale" } do
      assert.equal("cached", again.steps[name].status)
      assert.equal(runs[3].steps[name].id, again.steps[name].cached_from)
      assert.equal(runs[3].steps[name].output.id, again.steps[name].output.id)
    end
  end)

  it("reuses the newest step run with the key when an older run's hits are read", function()
    -- a hit not among those read at the start brings the rest of its
    -- pipeline run's, but only the step runs still the newest with their key
    local fresh_scale = false
    local p = pipeline { name = "scaling", function(factor)
      scale:with_options { enable_cache = not fresh_scale } (load_data(), factor)
    end }
    local old = p(2)
    fresh_scale = true
    local newer = p(2)   -- load_data cached from old, scale run again: newer
    assert.equal(old.steps.load_data.id, newer.steps.load_data.cached_from)
    assert.equal("completed", newer.steps.scale.status)
    fresh_scale = false
    for f = 3, 6 do p(f) end   -- both out of what a run reads at its start
    local again = p(2)
    assert.equal(old.steps.load_data.id, again.steps.load_data.cached_from)
    assert.equal(newer.steps.scale.id, again.steps.scale.cached_from)
  end)

  it("links every output of the step run it reuses, what the step saved itself too", function()
    local saves = step { name = "saves", outputs = { "o" }, function()
      lupine.save_artifact({ 1, 2 }, "extra_art")
      return 3
    end }
    local p = pipeline { name = "saving", function() saves() end }
    local first, second = p(), p()
    assert.equal("cached", second.steps.saves.status)
    local function links(sr)
      local out = {}
      for _, l in ipairs(require("lupine.core").query("step_run_artifacts", sr.id)) do
        out[#out + 1] = l.kind .. " " .. l.name .. " " .. l.artifact_version_id
      end
      return out
    end
    assert.equal(2, #links(first.steps.saves))
    assert.same(links(first.steps.saves), links(second.steps.saves))   -- in the same order
    assert.equal(first.steps.saves.manual_outputs.extra_art.id,
      second.steps.saves.manual_outputs.extra_art.id)
  end)

  it("makes a step called again with the same inputs a hit of the first, right after it ran",
    function()
      -- one job: the second call starts as soon as the first has its result,
      -- before that is recorded (which waits for the next step's question to
      -- the catalog, executor.c: record_later), and finds it all the same
      local twice = step { name = "twice", outputs = { "o" }, function(x) return x + 1 end }
      local run = pipeline { name = "twice", jobs = 1, function() twice(1) twice(1) end } ()
      assert.equal("completed", run.steps.twice.status)
      assert.equal("cached", run.steps.twice_2.status)
      assert.equal(run.steps.twice.id, run.steps.twice_2.cached_from)
      assert.equal(run.steps.twice.output.id, run.steps.twice_2.output.id)
    end)

  it("says why a step ran: never before, or which part of its key changed", function()
    local run = scaling(2)
    assert.equal("it never ran before", run.steps.scale.cache_note)
    run = scaling(3)
    assert.equal("cached", run.steps.load_data.status)
    assert.equal("completed", run.steps.scale.status)
    assert.equal("parameter 'factor' changed", run.steps.scale.cache_note)
    local other_data = step { name = "load_data", outputs = { "dataset" },
      function() return { values = { 9 } } end }
    run = pipeline { name = "scaling", function(f) scale(other_data(), f) end } (3)
    assert.equal("its code changed", run.steps.load_data.cache_note)
    assert.equal("input 'dataset' changed", run.steps.scale.cache_note)
  end)

  it("follows code through upvalues but not through comments or layout", function()
    local function make(src)
      return step { name = "s", outputs = { "o" }, assert(load(src))() }
    end
    local p = function(s) return pipeline { name = "code", function() s() end } () end
    p(make("return function() return 1 end"))
    local moved = p(make("\n\n-- a comment\nreturn function()\n  -- another\n  return 1\nend"))
    assert.equal("cached", moved.steps.s.status)
    local changed = p(make("return function() return 2 end"))
    assert.equal("its code changed", changed.steps.s.cache_note)
    local k = 10
    local helper = function() return k end
    local uses = step { name = "u", function() return helper() end }
    local q = pipeline { name = "upvalues", function() uses() end }
    q()
    assert.equal("cached", q().steps.u.status)
    k = 11
    assert.equal("its code changed", q().steps.u.cache_note)
    helper = function() return k + 1 end
    assert.equal("its code changed", q().steps.u.cache_note)
  end)

  it("lets a downstream step hit when an upstream re-run makes identical bytes", function()
    local fresh = step { name = "fresh", enable_cache = false, function() return { 1, 2 } end }
    local sum = step { name = "sum", function(xs) return xs[1] + xs[2] end }
    local p = pipeline { name = "identical", function() sum(fresh()) end }
    p()
    local run = p()
    assert.equal("completed", run.steps.fresh.status)
    assert.equal("caching is off for this step", run.steps.fresh.cache_note)
    assert.equal("cached", run.steps.sum.status)
  end)

  it("takes the output configuration and cache_key into the key", function()
    local function p(outputs, key)
      local s = step { name = "s", outputs = outputs, cache_key = key, function() return 1 end }
      return pipeline { name = "config", function() s() end } ()
    end
    p({ "a" })
    assert.equal("cached", p({ "a" }).steps.s.status)
    assert.equal("its cache_key changed", p({ "a" }, "v2").steps.s.cache_note)
    assert.equal("its output configuration changed",
      p({ lupine.ArtifactConfig { name = "a", tags = { "t" } } }, "v2").steps.s.cache_note)
  end)

  it("runs a step again when the objects of its cached versions are gone", function()
    local first = scaling(2)
    os.remove(first.steps.scale.output.uri)
    local run = scaling(2)
    assert.equal("cached", run.steps.load_data.status)
    assert.equal("completed", run.steps.scale.status)
    assert.equal("the outputs of the step run it would reuse are no longer stored",
      run.steps.scale.cache_note)
    assert.same({ 2, 4, 6, 8, 10 }, run.steps.scale.output:load())
  end)

  it("refuses a hit once a Client lookup of a latest version would find another", function()
    lupine.save_artifact("m1", "production_model")
    local compare = step { name = "compare", function(x)
      return { x = x, production = lupine.Client():get_artifact_version("production_model"):load() }
    end }
    local p = pipeline { name = "cmp", function() compare(1) end }
    local first = p().steps.compare
    assert.equal("1", first.lookups.production_model.version)
    local second = p().steps.compare
    assert.equal("cached", second.status)
    assert.equal(first.id, second.cached_from)
    assert.equal("1", second.lookups.production_model.version)   -- carried by the hit
    lupine.save_artifact("m2", "production_model")
    local third = p().steps.compare
    assert.equal("completed", third.status)
    assert.equal("artifact 'production_model' has a newer version (2, was 1)", third.cache_note)
    assert.same({ x = 1, production = "m2" }, third.output:load())
    assert.equal("2", third.lookups.production_model.version)
    assert.equal("cached", p().steps.compare.status)
  end)

  it("records lookups through load_artifact and log_metadata too, not by version or id", function()
    local first = lupine.save_artifact(1, "a")
    lupine.save_artifact(1, "b"); lupine.save_artifact(1, "c")
    local s = step { name = "s", function()
      local client = lupine.Client()
      lupine.load_artifact("a")
      lupine.log_metadata { metadata = { seen = true }, artifact_name = "b" }
      client:get_artifact_version("c", "1")
      client:get_artifact_version(first.id)
      client:get_artifact_version { name_id_or_prefix = "c", version = 1 }
      return 1
    end }
    local p = pipeline { name = "reads", function() s() end }
    local sr = p().steps.s
    local names = {}
    for name, av in pairs(sr.lookups) do names[#names + 1] = name .. ":" .. av.version end
    table.sort(names)
    assert.same({ "a:1", "b:1" }, names)
    lupine.save_artifact(2, "c")
    assert.equal("cached", p().steps.s.status)
    lupine.save_artifact(2, "b")
    assert.equal("artifact 'b' has a newer version (2, was 1)", p().steps.s.cache_note)
  end)

  it("records the lookups of a step that stores nothing", function()
    lupine.save_artifact("v1", "config")
    local check = step { name = "check", outputs = {}, function()
      assert(lupine.Client():get_artifact_version("config"):load())
    end }
    local quiet = step { name = "quiet", function() lupine.load_artifact("config") end }
    local p = pipeline { name = "checking", function() check(); quiet() end }
    local first = p()
    assert.equal("1", first.steps.check.lookups.config.version)
    assert.equal("1", first.steps.quiet.lookups.config.version)
    local second = p()
    assert.equal("cached", second.steps.check.status)
    assert.equal("cached", second.steps.quiet.status)
    lupine.save_artifact("v2", "config")
    local third = p()
    assert.equal("artifact 'config' has a newer version (2, was 1)", third.steps.check.cache_note)
    assert.equal("artifact 'config' has a newer version (2, was 1)", third.steps.quiet.cache_note)
  end)

  it("runs again a step whose lookup the step before it in the run has just made stale",
    function()
      -- (that step's record waits for this one's question to the catalog,
      -- executor.c: record_later; the question whether the lookup is stale
      -- comes after it all the same)
      local make = step { name = "make", outputs = { "m" }, function(x) return x end }
      local use = step { name = "use", function()
        return lupine.Client():get_artifact_version("m"):load()
      end }
      local p = pipeline { name = "make_use", jobs = 1,
        function(x) use:after(make(x))() end }
      assert.equal(1, p(1).steps.use.output:load())
      assert.equal("cached", p(1).steps.use.status)
      local run = p(2)
      assert.equal("completed", run.steps.use.status)
      assert.equal("artifact 'm' has a newer version (2, was 1)", run.steps.use.cache_note)
      assert.equal(2, run.steps.use.output:load())
    end)

  it("keeps a hit whose step saved the newer version itself", function()
    lupine.save_artifact(1, "champion")
    local promote = step { name = "promote", function()
      local current = lupine.Client():get_artifact_version("champion"):load()
      lupine.save_artifact(current + 1, "champion")
      return current
    end }
    local p = pipeline { name = "promotion", function() promote() end }
    assert.equal("completed", p().steps.promote.status)
    assert.equal("2", client:get_artifact_version("champion").version)
    assert.equal("cached", p().steps.promote.status)
    lupine.save_artifact(10, "champion")
    local run = p()
    assert.equal("artifact 'champion' has a newer version (3, was 1)", run.steps.promote.cache_note)
    assert.equal(10, run.steps.promote.outputs.output:load())
  end)

  it("refuses a hit when the version a lookup found is gone", function()
    lupine.save_artifact("old", "m")
    lupine.save_artifact("new", "m")
    local s = step { name = "s", function() return lupine.load_artifact("m") end }
    local p = pipeline { name = "gone", function() s() end }
    assert.equal("new", p().steps.s.output:load())
    client:delete_artifact_version("m", "2", { force = true })   -- the step loaded it
    local run = p()
    -- (its tombstone names the version it was)
    assert.equal("artifact 'm' has another latest version (1, was 2)", run.steps.s.cache_note)
    assert.equal("old", run.steps.s.output:load())
  end)

  it("is turned off by a step, a pipeline, a run or lupine.overrides", function()
    scaling(2)
    local off = pipeline { name = "scaling", enable_cache = false, function(f) scale(load_data(), f) end }
    assert.equal("completed", off(2).steps.scale.status)
    assert.equal("completed", scaling:with_options { enable_cache = false } (2).steps.load_data.status)
    lupine.overrides.enable_cache = false
    local ok, run = pcall(scaling, 2)
    lupine.overrides.enable_cache = nil
    assert.is_true(ok, run)
    assert.equal("completed", run.steps.load_data.status)
    assert.equal("cached", scaling(2).steps.load_data.status)
    assert.equal("pipeline 'scaling': enable_cache must be a boolean (got yes)",
      H.err(function() scaling:with_options { enable_cache = "yes" } end))
  end)

  it("never makes a duplicate of a custom version", function()
    local s = step { name = "s", outputs = { lupine.ArtifactConfig { name = "m", version = 42 } },
      function() return 1 end }
    local p = pipeline { name = "custom", function() s() end }
    p()
    local run = p()
    assert.equal("cached", run.steps.s.status)
    assert.equal("42", run.steps.s.output.version)
  end)

  it("resumes a failed run: what completed is cached, the failed step runs again", function()
    local dir = scratch()
    local flaky = step { name = "flaky", function(x)
      if not io.open(dir .. "/fixed") then error("not yet") end
      return x + 1
    end }
    local count = step { name = "count", function()
      local f = io.open(dir .. "/count", "a"); f:write("x\n"); f:close()
      return 1
    end }
    local p = pipeline { name = "resume", function() flaky(count()) end }
    assert.equal("failed", p:with_options { raise_on_failure = false } ().status)
    H.write(dir .. "/fixed", "")
    local run = p()
    assert.equal("cached", run.steps.count.status)
    assert.equal("completed", run.steps.flaky.status)
    assert.equal(1, count_lines(dir .. "/count"))
  end)
end)

describe("parallel workers", function()
  before_each(function() H.fresh(lupine) end)

  it("run independent steps at the same time", function()
    local dir = scratch()
    -- each waits (up to 20 s) to see the other's mark: only possible if both run at once
    local function meet(me, other) return step { name = me, H.meet(dir, me, other, 2000) } end
    local a, b = meet("a", "b"), meet("b", "a")
    local run = pipeline { name = "meet", jobs = 2, function() a(); b() end } ()
    assert.is_true(run.steps.a.output:load())
    assert.is_true(run.steps.b.output:load())
  end)

  it("give the same versions and contents whatever the number of jobs", function()
    local function versions(jobs)
      H.fresh(lupine)
      local part = step { name = "part", outputs = { "shard" }, function(i)
        local t = {}
        for k = 1, 50 + 10 * i do t[k] = k * i end
        return t
      end }
      local merge = step { name = "merge", outputs = { "merged" }, function(a, b, c, d, e, f, g, h)
        local n = 0
        for _, t in ipairs { a, b, c, d, e, f, g, h } do n = n + #t end
        return n
      end }
      local p = pipeline { name = "fan", enable_cache = false, function()
        local shards = {}
        for i = 1, 8 do shards[i] = part(i) end
        merge(table.unpack(shards))
      end }
      p:with_options { jobs = jobs } ()
      local out = {}
      for _, v in ipairs(lupine.Client():list_artifact_versions { size = 100, sort_by = "name" }) do
        out[#out + 1] = v.name .. ":" .. v.version .. ":" .. v.content_hash
      end
      table.sort(out)
      return out
    end
    local one, eight = versions(1), versions(8)
    assert.equal(9, #one)
    assert.same(one, eight)
  end)

  it("each run a step in a process of its own and leave none behind", function()
    -- the pid and parent pid of the process that reads /proc/self/stat
    local function ids()
      local stat = H.read("/proc/self/stat")
      local pid, ppid = stat:match("^(%d+) %b() %a (%d+)")
      return { pid = tonumber(pid), ppid = tonumber(ppid) }
    end
    local first = step { name = "first", function()
      LEFT_BY_FIRST = true
      return ids()
    end }
    local second = step { name = "second", outputs = { "ids", "saw_global" }, function(_)
      return ids(), LEFT_BY_FIRST == true
    end }
    local me = ids().pid
    local function children()
      local set = {}
      for c in H.read("/proc/" .. me .. "/task/" .. me .. "/children"):gmatch("%d+") do
        set[c] = true
      end
      return set
    end
    local before = children()
    local run = pipeline { name = "isolated", enable_cache = false, function()
      second(first())
    end } ()
    local a, b = run.steps.first.output:load(), run.steps.second.outputs.ids:load()
    assert.are_not.equal(a.pid, b.pid)
    assert.are_not.equal(me, a.pid)
    assert.are_not.equal(me, b.pid)
    assert.is_false(run.steps.second.outputs.saw_global:load())
    -- the workers and the process that forks them are all gone
    assert.same(before, children())
  end)

  it("reuse the memory a step frees, whatever it allocates", function()
    -- 2,000,000 short-lived tables and strings (some 300 MB if nothing were
    -- reused), one big table, strings grown one byte at a time
    -- a field of /proc/self/status, in kB
    local function status(field)
      for line in io.lines("/proc/self/status") do
        local kb = line:match("^" .. field .. ":%s*(%d+)")
        if kb then return tonumber(kb) end
      end
    end
    local churn = step { name = "churn", function(n)
      local start = status("VmRSS")   -- what the worker shares with the process it is a fork of
      local sum, big, s = 0, {}, ""
      for i = 1, n do
        local t = { i, tostring(i), { x = i } }
        sum = sum + #t[2] + t[3].x
      end
      for i = 1, 100000 do big[i] = i * 0.5 end
      for _ = 1, 3000 do s = s .. "x" end
      return { sum = sum, big = big[100000], len = #s, growth_kb = status("VmHWM") - start }
    end }
    local out = pipeline { name = "churn", enable_cache = false, function() churn(2000000) end } ()
      .steps.churn.output:load()
    local digits = 0
    for i = 1, 2000000 do digits = digits + #tostring(i) end
    assert.equal(digits + 2000000 * 2000001 // 2, out.sum)
    assert.equal(50000.0, out.big)
    assert.equal(3000, out.len)
    -- how far the worker grew (about 30 MB under the sanitizers): far under
    -- what the tables would take if freed memory were not reused
    assert.is_true(out.growth_kb < 200 * 1024, "grew " .. out.growth_kb .. " kB")
  end)

  it("capture what a step prints, on its step run", function()
    local s = step { name = "talk", function()
      print("hello from the step")
      io.stderr:write("and on stderr\n")
      io.write("and a last line without its newline")
      return 1
    end }
    local run = pipeline { name = "talk", function() s() end } ()
    assert.equal("hello from the step\nand on stderr\nand a last line without its newline\n",
      run.steps.talk.logs)
  end)

  -- Run a step with this body through `lupine run` (what it prints goes to
  -- /dev/null); returns the step run's logs, and the peak resident memory
  -- in kB of lupine run or of a process it waited for (its spawner, and
  -- through it the worker), whichever is largest.
  local function loud(body)
    local dir = H.tmpdir()
    H.write(dir .. "/loud.lua", "local loud = lupine.step { name = 'loud', function()\n"
      .. body .. "\nend }\nlupine.pipeline { name = 'loud', function() loud() end } ()\n")
    local _, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=home /usr/bin/time -o rss "
      .. "-f %M " .. H.quote(H.cli) .. " run loud.lua >/dev/null 2>&1")
    assert.equal(0, code, err)
    local kb = tonumber(H.read(dir .. "/rss"))
    lupine.set_home(dir .. "/home")
    local logs = lupine.Client():list_pipeline_runs()[1].steps.loud.logs
    H.rm(dir)
    return logs, kb
  end

  it("cost the coordinator bounded memory whatever a step prints: 1 GiB, no newline", function()
    -- handed on in 64 KiB pieces; the first 1 MiB kept on the step run
    local logs, kb = loud("local mib = ('x'):rep(1 << 20) for _ = 1, 1024 do io.write(mib) end")
    assert.is_true(kb < 64 * 1024, "peak resident memory " .. kb .. " kB")
    local piece = ("x"):rep(64 * 1024) .. " [line split at 64 KiB]\n"
    local kept = piece:rep(15)
    assert.equal(kept .. ("x"):rep(1024 * 1024 - #kept) .. "\n[output cut at 1 MiB]\n", logs)
  end)

  it("keep the first 1 MiB of many short lines, in time linear in them", function()
    local t0 = os.time()
    local logs = loud("for i = 1, 200000 do io.write(i, '\\n') end")
    local want = {}
    for i = 1, 200000 do want[i] = i .. "\n" end
    want = table.concat(want)
    assert.equal(want:sub(1, 1024 * 1024) .. "\n[output cut at 1 MiB]\n", logs)
    assert.is_true(os.time() - t0 < 10, "took " .. os.time() - t0 .. " s")
  end)
end)

describe("a step that goes wrong", function()
  before_each(function() H.fresh(lupine) end)

  local function fails(fn, opts)
    local spec = { name = "bad", fn }
    for k, v in pairs(opts or {}) do spec[k] = v end
    local s = step(spec)
    local fine = step { name = "fine", function() return "ok" end }
    local run = pipeline { name = "faults", function() s(); fine() end }
      :with_options { raise_on_failure = false } ()
    assert.equal("failed", run.status)
    assert.equal("completed", run.steps.fine.status)
    assert.equal("failed", run.steps.bad.status)
    return run.steps.bad.error
  end

  it("calling os.exit says so", function()
    assert.matches("^step 'bad' %(tests/execution_spec.lua:%d+%) failed: called os.exit%(3%)$",
      fails(function() os.exit(3) end))
  end)

  it("crashing in C says so", function()
    assert.matches("^step 'bad' %(tests/execution_spec.lua:%d+%): its process crashed "
      .. "%(segmentation fault, signal 11%)$",
      fails(function() require("crash").segfault() end))
  end)

  it("being killed says so", function()
    assert.matches("its process was killed %(killed, signal 9%)$",
      fails(function() os.execute("kill -9 $PPID"); os.execute("sleep 5") end))
  end)

  it("running past its timeout says so", function()
    assert.matches("^step 'bad' %(tests/execution_spec.lua:%d+%): ran past its timeout of "
      .. "0.3 s and was stopped$", fails(function() while true do end end, { timeout = 0.3 }))
  end)

  it("takes a timeout of math.huge as none, and a huge one without stalling records", function()
    -- the coordinator commits what finished every 10 ms while a step runs;
    -- the slow step waits until another process sees the fast one's record
    local home = lupine.home()
    local function sees(name)
      return function()
        for _ = 1, 300 do
          local n = tonumber((H.sqlite(home, "SELECT count(*) FROM step_runs WHERE name = '"
            .. name .. "' AND status = 'completed'")))
          if n == 1 then return true end
          os.execute("sleep 0.01")
        end
        return false
      end
    end
    for i, timeout in ipairs { math.huge, 3e6, 1e300 } do
      local fast = step { name = "fast" .. i, function() return 1 end }
      local slow = step { name = "slow", enable_cache = false, timeout = timeout,
        sees("fast" .. i) }
      local run = pipeline { name = "huge", jobs = 2, function() fast(); slow() end } ()
      assert.is_true(run.steps.slow.output:load(), "timeout " .. timeout)
    end
  end)

  it("takes retries and jobs of math.maxinteger as many", function()
    local dir = scratch()
    local s = step { name = "flaky", retries = math.maxinteger, function()
      local f = io.open(dir .. "/tries", "a"); f:write("x\n"); f:close()
      if count_lines(dir .. "/tries") < 2 then error("try again") end
      return "second time"
    end }
    local run = pipeline { name = "many_retries", function() s() end } ()
    assert.equal("second time", run.steps.flaky.output:load())
    local function meet(me, other) return step { name = me, H.meet(dir, me, other, 2000) } end
    local a, b = meet("a", "b"), meet("b", "a")
    run = pipeline { name = "many_jobs", jobs = math.maxinteger, function() a(); b() end } ()
    assert.is_true(run.steps.a.output:load() and run.steps.b.output:load())
  end)

  it("is tried again with retries", function()
    local dir = scratch()
    local s = step { name = "flaky", retries = 2, function()
      local f = io.open(dir .. "/tries", "a"); f:write("x\n"); f:close()
      if count_lines(dir .. "/tries") < 3 then error("try again") end
      return "third time"
    end }
    local run = pipeline { name = "retry", function() s() end } ()
    assert.equal("third time", run.steps.flaky.output:load())
    assert.equal(3, run.steps.flaky.attempts)
    local bad = step { name = "always", retries = 1, function() error("never") end }
    run = pipeline { name = "retry2", function() bad() end }
      :with_options { raise_on_failure = false } ()
    assert.equal(2, run.steps.always.attempts)
  end)

  it("stops the run at the first failure with on_failure = stop", function()
    local bad = step { name = "bad", function() error("no") end }
    local later = step { name = "later", function() return 1 end }
    local run = pipeline { name = "stop", on_failure = "stop", jobs = 1,
      function() bad(); later() end }:with_options { raise_on_failure = false } ()
    assert.equal("failed", run.steps.bad.status)
    assert.equal("skipped", run.steps.later.status)
  end)

  it("refuses bad settings, naming them", function()
    assert.equal("step 's': timeout must be a number of seconds above 0 (got 0)",
      H.err(function() step { name = "s", timeout = 0, function() end } end))
    assert.equal("step 's': retries must be an integer from 0 (got 1.5)",
      H.err(function() step { name = "s", retries = 1.5, function() end } end))
    assert.equal('pipeline \'p\': on_failure must be "continue" or "stop" (got halt)',
      H.err(function() pipeline { name = "p", on_failure = "halt", function() end } end))
  end)
end)

describe("the runner", function()
  local SLOW = [[
    local lupine = require "lupine"
    local slow = lupine.step { name = "slow", function()
      print("started")
      io.stdout:flush()
      os.execute("sleep 37")
      return 1
    end }
    lupine.pipeline { name = "slow", function() slow() end } ()
  ]]

  -- Start `lupine run` in the background; wait for "started" in its output.
  -- Returns the folder of its files and the pid of the lupine process.
  local function start(home, code)
    local dir = H.tmpdir()
    local script = H.write(dir .. "/slow.lua", code)
    H.write(dir .. "/run.sh", "cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " run slow.lua > out 2> err; echo $? > status\n")
    H.sh("sh " .. H.quote(dir .. "/run.sh") .. " > /dev/null 2>&1 & echo $! > " .. H.quote(dir .. "/pid"))
    for _ = 1, 3000 do
      if (H.read(dir .. "/out") or ""):find("started") then break end
      os.execute("sleep 0.01")
    end
    local sh_pid = H.read(dir .. "/pid"):match("%d+")
    return dir, H.sh("pgrep -P " .. sh_pid):match("%d+")
  end

  local function wait_status(dir)
    for _ = 1, 3000 do
      local st = H.read(dir .. "/status")
      if st and st ~= "" then return tonumber(st) end
      os.execute("sleep 0.01")
    end
  end

  it("stops a run on SIGTERM: workers end, the run is marked stopped", function()
    local home = H.tmpdir() .. "/home"
    local dir, pid = start(home, SLOW)
    os.execute("sleep 0.2")
    H.sh("kill -TERM " .. pid)
    assert.equal(143, wait_status(dir))   -- 128 + 15, as a shell says a signal ended it
    lupine.set_home(home)
    local run = lupine.Client():list_pipeline_runs()[1]
    assert.equal("stopped", run.status)
    assert.equal("stopped", run.steps.slow.status)
    -- how long the step ran before it was stopped; the run's line says it
    -- was stopped, once (no error after it)
    assert.matches("\nstep 'slow' stopped after [%d.]+ m?s\nrun 'slow%-[%d%-]+' stopped in "
      .. "[%d.]+ m?s: 1 stopped\n$", H.read(dir .. "/out"))
    local ms = tonumber(H.read(dir .. "/out"):match("stopped after ([%d.]+) ms"))
      or 1000 * tonumber(H.read(dir .. "/out"):match("stopped after ([%d.]+) s"))
    assert.is_true(ms >= 200, ms)
    assert.equal("", H.read(dir .. "/err"))
    assert.equal("", (H.sh("pgrep -f 'slee[p] 37'")))
  end)

  it("stops a run on SIGINT, exiting 130", function()
    local home = H.tmpdir() .. "/home"
    local dir, pid = start(home, SLOW)
    H.sh("kill -INT " .. pid)
    assert.equal(130, wait_status(dir))
    assert.matches("\nrun 'slow%-[%d%-]+' stopped in [%d.]+ m?s: 1 stopped\n$", H.read(dir .. "/out"))
    assert.equal("", (H.sh("pgrep -f 'slee[p] 37'")))
  end)

  it("killed with SIGKILL leaves a run the next process marks failed", function()
    local home = H.tmpdir() .. "/home"
    local dir, pid = start(home, SLOW)
    H.sh("kill -KILL " .. pid)
    wait_status(dir)
    H.sh("pkill -f 'slee[p] 37'")
    lupine.set_home(home)
    local run = lupine.Client():list_pipeline_runs()[1]
    assert.equal("failed", run.status)
    assert.matches("^the process running it %(pid %d+%) ended before the run did$", run.error)
    assert.equal("failed", run.steps.slow.status)
  end)

  it("lets several processes run on one catalog: versions stay unique and gap-free", function()
    local home = H.tmpdir() .. "/home"
    local script = H.script([[
      local lupine = require "lupine"
      local s = lupine.step { name = "s", outputs = { "shared" }, function(i) return i end }
      local p = lupine.pipeline { name = "busy", enable_cache = false, function(i) s(i) end }
      for i = 1, 10 do p(i) end
    ]])
    local cmd = "LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli) .. " run " .. H.quote(script)
    local _, err, code = H.sh("for i in 1 2 3 4; do (" .. cmd .. " > /dev/null || echo FAIL >&2) & done; wait")
    assert.equal(0, code)
    assert.equal("", err)
    lupine.set_home(home)
    local seen = {}
    for _, v in ipairs(lupine.Client():list_artifact_versions { name = "shared", size = 100 }) do
      assert.is_nil(seen[v.version])
      seen[v.version] = true
    end
    for i = 1, 40 do assert.is_true(seen[tostring(i)], "version " .. i) end
  end)
end)
