-- SPDX-License-Identifier: MIT
-- Stacks and artifact stores: two local stores, switching between runs,
-- loading from both, refusals, a lost store, verify, an interrupted copy.
local H = require "helper"
local lupine = require "lupine"

local function quiet_pipeline(name, value)
  local s = lupine.step { name = name .. "_step", outputs = { name }, enable_cache = false,
    function() return value end }
  return lupine.pipeline { name = name, enable_cache = false, function() s() end }
end

describe("stacks and artifact stores", function()
  local home, client, fast
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    fast = H.tmpdir() .. "/fast"
    client:register_artifact_store("fast", { flavor = "local", path = fast })
    client:register_stack("fast_disk", { artifact_store = "fast" })
  end)

  it("starts with the active default stack and its store in the catalog folder", function()
    local c = lupine.Client()
    local k = c.active_stack
    assert.equal("default", k.name)
    assert.equal("default", k.artifact_store.name)
    assert.equal("local", k.artifact_store.flavor)
    assert.equal(home .. "/artifacts", k.artifact_store.path)
    local names = {}
    for _, s in ipairs(c:list_stacks()) do names[#names + 1] = s.name end
    assert.same({ "default", "fast_disk" }, names)
    assert.equal(2, #c:list_artifact_stores())
  end)

  it("switches stacks between runs and loads versions from both stores", function()
    local p = quiet_pipeline("a", { n = 1 })
    local r1 = p()
    client:set_active_stack("fast_disk")
    local r2 = quiet_pipeline("a", { n = 2 })()
    local v1, v2 = r1.steps.a_step.output, r2.steps.a_step.output
    assert.equal("default", v1.artifact_store.name)
    assert.equal("fast", v2.artifact_store.name)
    assert.truthy(v2.uri:find(fast, 1, true) == 1)
    assert.equal(1, client:get_artifact_version("a", "1"):load().n)
    assert.equal(2, client:get_artifact_version("a", "2"):load().n)
    assert.equal("fast_disk", H.sqlite(home, "SELECT stack FROM pipeline_runs WHERE id = '"
      .. r2.id .. "'"):match("[^\n]+"))
    client:set_active_stack("default")
  end)

  it("collects garbage in every store, or the one named, and skips unreachable ones", function()
    local r = quiet_pipeline("g", { "in fast" }):with_options { stack = "fast_disk" } ()
    local v = r.steps.g_step.output
    client:delete_artifact_version(v, { force = true })
    -- force: that was the catalog's only version
    local dry = client:gc { dry_run = true, grace = 0, force = true }
    assert.is_true(dry.objects >= 1)
    assert.equal(0, client:gc { store = "default", grace = 0, force = true }.objects)
    local freed = client:gc { grace = 0, force = true }
    assert.equal(dry.objects, freed.objects)
    assert.is_nil(io.open(v.uri))
    assert.same({}, freed.skipped)
    H.rm(fast)
    assert.same({ "fast" }, client:gc { grace = 0, force = true }.skipped)
    assert.equal("artifact store 'nope' not found", H.err(function() client:gc { store = "nope" } end))
  end)

  it("runs as many steps at once as its orchestrator's jobs setting says", function()
    local k = client:register_stack("serial", { artifact_store = "default", jobs = 1 })
    assert.equal(1, k.jobs)
    assert.equal("Stack(name=serial, artifact_store=default, orchestrator=local, jobs=1)",
      tostring(k))
    -- two steps that could only finish together if they ran at once; alone,
    -- one waits out its 200 tries, each a `sleep` process: seconds under ASan
    -- on a busy machine, hence the generous timeout
    local dir = H.tmpdir()
    local function meet(me, other)
      return lupine.step { name = me, enable_cache = false, timeout = 60,
        H.meet(dir, me, other, 200) }
    end
    local a, b = meet("a", "b"), meet("b", "a")
    local p = lupine.pipeline { name = "meet", function() a(); b() end }
    local r = p:with_options { stack = "serial" } ()
    assert.is_false(r.steps.a.output:load(), "jobs = 1: one step at a time")
    assert.equal("stack 'x': jobs must be an integer from 1 (got 0)",
      H.err(function() client:register_stack("x", { artifact_store = "default", jobs = 0 }) end))
  end)

  it("pins a stack for one run with with_options", function()
    local p = quiet_pipeline("b", "x")
    local r = p:with_options { stack = "fast_disk" }()
    assert.equal("fast", r.steps.b_step.output.artifact_store.name)
    assert.equal("default", lupine.Client().active_stack.name)
    assert.equal("default", p().steps.b_step.output.artifact_store.name)
    assert.equal("stack 'nope' not found",
      H.err(function() p:with_options { stack = "nope" }() end))
  end)

  it("refuses to delete a store in use, the active stack, and a bad path", function()
    assert.equal("artifact store 'fast' is used by stack 'fast_disk'",
      H.err(function() client:delete_artifact_store("fast") end))
    quiet_pipeline("c", 1):with_options { stack = "fast_disk" }()
    client:delete_stack("fast_disk")
    assert.equal("artifact store 'fast' holds 1 artifact version (copy them elsewhere with "
      .. "'lupine artifact-store copy' first)",
      H.err(function() client:delete_artifact_store("fast") end))
    assert.equal("stack 'default' is the active stack; set another one first "
      .. "('lupine stack set NAME')", H.err(function() client:delete_stack("default") end))
    assert.equal("artifact store 'bad': cannot create '/proc/nope/x': No such file or directory",
      H.err(function() client:register_artifact_store("bad", { path = "/proc/nope/x" }) end))
    assert.equal("unknown artifact store flavor 'tape' (known flavors: local, s3)",
      H.err(function() client:register_artifact_store("s", { flavor = "tape", path = fast }) end))
  end)

  it("names the artifact, store, flavor and path when the store's folder is gone", function()
    local r = quiet_pipeline("d", 5):with_options { stack = "fast_disk" }()
    local av = r.steps.d_step.output
    H.rm(fast)
    lupine.set_home(home)   -- a new process, as it were: nothing opened yet
    local msg = H.err(function() return lupine.Client():get_artifact_version("d"):load() end)
    assert.equal(string.format("cannot load artifact 'd' version 1 (%s): artifact store 'fast' "
      .. "(flavor local, path %s) is unreachable: No such file or directory", av.id, fast), msg)
  end)

  it("verify finds a missing and a corrupt object, with the versions using them", function()
    local p = quiet_pipeline("e", nil)
    local runs = {}
    for i = 1, 3 do
      runs[i] = lupine.pipeline { name = "e" .. i, enable_cache = false, function()
        lupine.step { name = "s", outputs = { "e" .. i }, enable_cache = false,
          function() return { i = i } end }()
      end }:with_options { stack = "fast_disk" }()
    end
    local _ = p
    local out, _, code = H.lupine(home, "artifact-store verify fast")
    assert.equal(0, code)
    assert.matches("objects checked in 'fast': 0 missing or corrupt", out)
    local v1, v2 = runs[1].steps.s.output, runs[2].steps.s.output
    os.remove(v1.uri)
    local f = assert(io.open(v2.uri, "r+b")); f:seek("set", 20); f:write("XXXX"); f:close()
    out, _, code = H.lupine(home, "artifact-store verify fast")
    assert.equal(1, code)
    assert.matches("missing\tvalue\t" .. v1.content_hash .. "\te1:1\n", out, 1, true)
    assert.matches("corrupt\tvalue\t" .. v2.content_hash .. "\te2:1\n", out, 1, true)
    out, _, code = H.lupine(home, "artifact-store verify fast --json")
    assert.equal(1, code)
    assert.matches('"status":"missing"', out, 1, true)
  end)

  it("verify --repair writes damaged objects again from another store that holds them", function()
    local function make(stack, only)
      return lupine.pipeline { name = "r", enable_cache = false, function()
        lupine.step { name = "s", outputs = { "r" }, enable_cache = false,
          function() return { kept = "in both stores" } end }()
        if only then
          lupine.step { name = "t", outputs = { "only" }, enable_cache = false,
            function() return { kept = "in fast alone" } end }()
        end
      end }:with_options { stack = stack }()
    end
    make("default")
    local run = make("fast_disk", true)
    local r2, only = run.steps.s.output, run.steps.t.output
    local good = H.read(r2.uri)
    local f = assert(io.open(r2.uri, "r+b")); f:seek("set", 20); f:write("XXXX"); f:close()
    os.remove(only.uri)
    local out, err, code = H.lupine(home, "artifact-store verify fast --repair")
    assert.equal(1, code, err)
    local lines = { "corrupt\tvalue\t" .. r2.content_hash .. "\tr:2\trepaired from 'default'\n",
      "missing\tvalue\t" .. only.content_hash .. "\tonly:1\tnot repaired: no other artifact "
        .. "store holds it intact\n" }
    if only.content_hash < r2.content_hash then lines[1], lines[2] = lines[2], lines[1] end
    assert.equal(table.concat(lines), out)   -- by hash
    assert.matches("^lupine: store '" .. fast:gsub("%p", "%%%0") .. "': object "
      .. r2.content_hash .. " is corrupt: [^\n]*; replaced it with the bytes being saved\n$", err)
    assert.equal(good, H.read(r2.uri))
    lupine.set_home(home)
    assert.same({ kept = "in both stores" }, lupine.Client():get_artifact_version("r", "2"):load())
    out, err, code = H.lupine(home, "artifact-store verify fast --json")
    assert.equal(1, code, err)
    assert.matches('"status":"missing"', out, 1, true)
    assert.not_matches('"status":"corrupt"', out, 1, true)
  end)

  it("copies objects and re-points versions; a killed copy leaves all loadable", function()
    local slow = H.tmpdir() .. "/slow"
    client:register_artifact_store("slow", { path = slow })
    lupine.pipeline { name = "many", enable_cache = false, function()
      for i = 1, 60 do
        lupine.step { name = "s" .. i, outputs = { "m" .. i }, enable_cache = false,
          function() return { i = i, pad = string.rep(tostring(i), 2000) } end }()
      end
    end }:with_options { stack = "fast_disk", jobs = 4 }()
    -- kill the copy part-way: whatever it did, every version still loads
    H.sh("LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
      .. " artifact-store copy fast slow & pid=$!; sleep 0.0" .. math.random(1, 9)
      .. "; kill -9 $pid; wait $pid")
    lupine.set_home(home)
    local c = lupine.Client()
    local stores = {}
    for i = 1, 60 do
      local av = c:get_artifact_version("m" .. i)
      assert.equal(i, av:load().i)
      stores[av.artifact_store.name] = true
    end
    local s1 = H.sqlite(home, "SELECT count(DISTINCT artifact_store_id) FROM artifact_versions"
      .. " WHERE artifact_store_id != '00000000-0000-4000-8000-000000000001'")
    assert.equal("1", s1:match("%d+"))   -- all in one store: one transaction
    local out, err, code = H.lupine(home, "artifact-store copy fast slow")
    assert.equal(0, code, err)
    if stores.fast then assert.matches("moved 60 versions", out) end
    lupine.set_home(home)
    c = lupine.Client()
    for i = 1, 60 do
      local av = c:get_artifact_version("m" .. i)
      assert.equal("slow", av.artifact_store.name)
      assert.equal(i, av:load().i)
    end
    H.rm(fast)   -- retired: nothing needs it any more
    lupine.set_home(home)
    assert.equal(7, lupine.Client():get_artifact_version("m7"):load().i)
  end)

  it("copies only the versions of one name, or with one tag", function()
    client:register_artifact_store("slow", { path = H.tmpdir() .. "/slow" })
    client:set_active_stack("fast_disk")
    lupine.set_home(home)
    lupine.save_artifact(1, "a")
    lupine.save_artifact(2, "a", { tags = { "keep" } })
    lupine.save_artifact(3, "b", { tags = { "keep" } })
    lupine.save_artifact(4, "b")
    local c = lupine.Client()
    local function where()
      local out = {}
      for _, k in ipairs { { "a", 1 }, { "a", 2 }, { "b", 1 }, { "b", 2 } } do
        out[#out + 1] = c:get_artifact_version(k[1], k[2]).artifact_store.name
      end
      return table.concat(out, " ")
    end
    assert.equal(2, c:copy_artifact_store("fast", "slow", { name = "a" }).versions)
    assert.equal("slow slow fast fast", where())
    assert.equal(1, c:copy_artifact_store("fast", "slow", { tag = "keep" }).versions)
    assert.equal("slow slow slow fast", where())
    assert.equal("copy_artifact_store: option 'name' must be a string (got number)",
      H.err(function() c:copy_artifact_store("fast", "slow", { name = 1 }) end))
  end)

  it("has CLI commands for stacks and stores, with --json and exit codes", function()
    local out, err, code = H.lupine(home, "stack list --json")
    assert.equal(0, code, err)
    assert.matches('"name":"fast_disk"', out, 1, true)
    out, err, code = H.lupine(home, "stack set fast_disk")
    assert.equal(0, code, err)
    out = H.lupine(home, "stack describe")
    assert.matches("name\tfast_disk\n", out, 1, true)
    assert.matches("artifact_store_path\t" .. fast .. "\n", out, 1, true)
    out, err, code = H.lupine(home, "stack delete fast_disk")
    assert.equal(1, code)
    assert.equal("lupine: stack 'fast_disk' is the active stack; set another one first "
      .. "('lupine stack set NAME')\n", err)
    out, err, code = H.lupine(home, "artifact-store register z --flavor=tape --path=/tmp/z")
    assert.equal(2, code)
    assert.matches("unknown flavor 'tape' %(known flavors: local, s3%)", err)
    out, err, code = H.lupine(home, "stack describe nope")
    assert.equal(1, code)
    assert.equal("lupine: stack 'nope' not found\n", err)
    out, err, code = H.lupine(home, "artifact-store flavor list --json")
    assert.equal(0, code, err)
    assert.matches('"name":"local"', out, 1, true)
    out, err, code = H.lupine(home, "artifact-store describe fast")
    assert.equal(0, code, err)
    assert.matches("flavor\tlocal\n", out, 1, true)
  end)

  it("resolves a relative store path against the working directory, not $PWD", function()
    local dir = H.tmpdir()
    H.sh("mkdir " .. H.quote(dir .. "/real") .. " " .. H.quote(dir .. "/stale"))
    local out, err, code = H.lupine(home, "artifact-store register rel --path in/here",
      dir .. "/real")
    assert.equal(0, code, err)
    -- a made-up $PWD, as a program that changed directory without updating it leaves
    out, err, code = H.sh("cd " .. H.quote(dir .. "/real") .. " && PWD=" .. H.quote(dir .. "/stale")
      .. " LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
      .. " artifact-store register rel2 --path in/there")
    assert.equal(0, code, err)
    assert.equal("registered artifact store 'rel2' (local, " .. dir .. "/real/in/there)\n", out)
    lupine.set_home(home)
    assert.equal(dir .. "/real/in/here", lupine.Client():artifact_store("rel").path)
    assert.equal(dir .. "/real/in/there", lupine.Client():artifact_store("rel2").path)
    assert.equal(nil, io.open(dir .. "/stale/in"))
    H.rm(dir)
  end)
end)
