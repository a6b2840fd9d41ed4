-- SPDX-License-Identifier: MIT
-- lupine exec: one step run in a fresh process from its step spec (the
-- objects a local run makes; refused when its code changed; an input whose
-- object is missing; a failure with the user's line; its timeout; the
-- manifest written whole; SIGTERM; the catalog never written; reads
-- answered from the spec, or the catalog it names, read only: a snapshot
-- made only when the catalog changed), and runs whose every step runs that
-- way (LUPINE_EXEC), which record what a local run records: reads inside
-- steps, lookups and cache hits, every example; the script's top level
-- replayed without running or writing anything, or failing at its line.
local H = require "helper"
require "lupine"
local core = require "lupine.core"

local SCRIPT = [[
local lupine = require "lupine"
local make = lupine.step("make", function(n)
  print("making " .. n)
  return { 1, 2, n }
end)
local double = lupine.step { name = "double", outputs = { "doubled", "count" }, function(xs, scale)
  local out = {}
  for i, x in ipairs(xs) do out[i] = scale * x end
  local ctx = lupine.get_step_context()
  ctx:add_output_metadata("doubled", { size = #out })
  ctx:add_output_tags("doubled", { "fresh" })
  lupine.log_metadata { metadata = { note = "hi" } }
  lupine.save_artifact({ scale = scale }, "settings")
  print("doubled " .. #out)
  return out, #out + math.random(1000)
end }
local boom = lupine.step("boom", function(x)
  error("bad " .. #x)
end)
local hold = lupine.step("hold", function(dir)
  local f = io.open(dir .. "/started", "w")
  f:close()
  while not io.open(dir .. "/go") do os.execute("sleep 0.02") end
  return dir
end)
local slow = lupine.step { name = "slow", timeout = 0.3, function()
  os.execute("sleep 5")
end }
local write = lupine.step("write", function(dir)
  local f = io.open(dir .. "/note.txt", "w")
  f:write("a note\n")
  f:close()
  return lupine.file(dir .. "/note.txt")
end)
local read = lupine.step("read", function(path)
  local f = io.open(path)
  local text = f:read("a")
  f:close()
  return text
end)
local quit = lupine.step("quit", function()
  os.exit(3)
end)
local peek = lupine.step("peek", function()
  return lupine.Client():get_artifact_version("settings").version
end)
if arg[1] == "peek" then
  lupine.pipeline("q", function() peek() end):with_options { raise_on_failure = false }()
  return
end
local p = lupine.pipeline("p", function(n, dir)
  local xs = make(n)
  double(xs, 2)
  boom(xs)
  hold(dir)
  slow()
  read(write(dir))
  quit()
end)
p:with_options { seed = 7, raise_on_failure = false }(5, arg[1])
]]

-- The line of the script where text is.
local function line_of(text)
  local n = 1
  for line in SCRIPT:gmatch("([^\n]*)\n") do
    if line:find(text, 1, true) then return n end
    n = n + 1
  end
  error("not in the script: " .. text)
end

-- What a catalog records, without ids and times: runs, step runs,
-- versions, links, metadata, tags, visualizations, lookups.
local DUMP = [[
SELECT 'run', status, coalesce(error, '') FROM pipeline_runs;
SELECT 'step', name, step_name, status, hex(parameters), coalesce(error, ''), coalesce(output, ''),
  attempts, cache_key, hex(cache_parts), coalesce(cache_note, ''), seed, output_count,
  coalesce(lookups, '') FROM step_runs ORDER BY name;
SELECT 'version', a.name, v.version, v.type, v.data_type, v.content_hash, v.size, v.stored_size,
  v.save_type, v.artifact_store_id, coalesce(s.name, '') FROM artifact_versions v
  JOIN artifacts a ON a.id = v.artifact_id LEFT JOIN step_runs s ON s.id = v.producer_step_run_id
  ORDER BY a.name, v.version;
SELECT 'link', s.name, l.kind, l.name, a.name || ':' || v.version FROM step_run_artifacts l
  JOIN step_runs s ON s.id = l.step_run_id JOIN artifact_versions v ON v.id = l.artifact_version_id
  JOIN artifacts a ON a.id = v.artifact_id ORDER BY 2, 3, 4;
SELECT 'metadata', m.entity, coalesce(s.name, a.name || ':' || v.version, 'run'), m.key,
  hex(m.value), m.value_number, m.value_text FROM run_metadata m
  LEFT JOIN step_runs s ON m.entity = 'step_run' AND s.id = m.entity_id
  LEFT JOIN artifact_versions v ON m.entity = 'artifact_version' AND v.id = m.entity_id
  LEFT JOIN artifacts a ON a.id = v.artifact_id ORDER BY 2, 3, 4;
SELECT 'tag', t.name, l.entity, coalesce(a.name || ':' || v.version, '') FROM tag_links l
  JOIN tags t ON t.seq = l.tag_seq
  LEFT JOIN artifact_versions v ON l.entity = 'artifact_version' AND v.id = l.entity_id
  LEFT JOIN artifacts a ON a.id = v.artifact_id ORDER BY 2, 3, 4;
SELECT 'visualization', a.name || ':' || v.version, z.position, z.type, z.content_hash
  FROM visualizations z JOIN artifact_versions v ON v.id = z.artifact_version_id
  JOIN artifacts a ON a.id = v.artifact_id ORDER BY 2, 3;
SELECT 'lookup', s.name, l.artifact_name, a.name || ':' || v.version FROM step_run_lookups l
  JOIN step_runs s ON s.id = l.step_run_id JOIN artifact_versions v ON v.id = l.artifact_version_id
  JOIN artifacts a ON a.id = v.artifact_id ORDER BY 2, 3;
]]
-- (in PostgreSQL's words: encode for sqlite's hex, a number made text)
if H.pg then
  DUMP = DUMP:gsub("hex%(([%w_.]+)%)", "upper(encode(%1, 'hex'))")
    :gsub("coalesce%(lookups, ''%)", "coalesce(lookups::text, '')")
end

-- The traceback of the failing step run: down to the call of its step
-- (below, the frames are the runtime's own, which differ with the process).
local TRACEBACK = "SELECT traceback FROM step_runs WHERE name = 'boom'"

local function decode_file(path)
  return core.decode(assert(H.read(path), "no file " .. path))
end

local function encode_file(path, t)
  H.write(path, assert(core.encode(t)))
  return path
end

-- One folder with the script, its catalog (home) and, for a run through
-- exec, the specs its coordinator wrote (specs/), by step.
-- hold's folder, with its go file: the same parameter for both runs.
local function setup(exec, hold)
  local dir = H.tmpdir()
  H.write(dir .. "/pipeline.lua", SCRIPT)
  os.execute("mkdir " .. H.quote(dir .. "/specs"))
  local env = ""
  if exec then
    -- the program a coordinator runs for each step, keeping a copy of its spec
    local wrapper = H.write(dir .. "/lupine-exec", "#!/bin/sh\ncp \"$3\" " .. H.quote(dir)
      .. "/specs/$$\nexec " .. H.quote(H.cli) .. " \"$@\"\n")
    os.execute("chmod +x " .. H.quote(wrapper))
    env = "LUPINE_EXEC=" .. H.quote(wrapper) .. " "
  end
  local home = dir .. "/home"
  local out, err = H.sh("cd " .. H.quote(dir) .. " && " .. env .. "LUPINE_HOME=" .. H.quote(home)
    .. " " .. H.quote(H.cli) .. " run pipeline.lua " .. H.quote(hold))
  assert(out:find("run 'p%-%d+%-%d+' failed in .*: 5 done, 3 failed"), out .. err)
  local specs = {}
  local p = io.popen("ls " .. H.quote(dir .. "/specs"))
  for name in p:lines() do
    local spec = decode_file(dir .. "/specs/" .. name)
    specs[spec.node.name] = dir .. "/specs/" .. name
  end
  p:close()
  return { dir = dir, home = home, specs = specs }
end

-- Run `lupine exec` on spec (outside the script's folder, without a
-- LUPINE_HOME); returns the manifest (or nil), stdout, stderr, status.
local function exec(spec, manifest)
  manifest = manifest or (H.tmpdir() .. "/manifest")
  local out, err, code = H.sh("cd / && env -u LUPINE_HOME " .. H.quote(H.cli) .. " exec --spec "
    .. H.quote(spec) .. " --manifest " .. H.quote(manifest))
  local m = H.read(manifest) and decode_file(manifest) or nil
  return m, out, err, code
end

local function sql(home, query)
  local out, err, code = H.sqlite(home, query)
  assert(code == 0, err)
  return out
end

local function object_file(home, hash)
  return home .. "/artifacts/objects/" .. hash:sub(8, 9) .. "/" .. hash:sub(10) .. ".zst"
end

describe("lupine exec", function()
  local here, there
  before_each(function()
    if here then return end
    local hold = H.tmpdir()
    H.write(hold .. "/go", "")
    here = setup(false, hold)    -- a local run
    there = setup(true, hold)    -- the same run, each step through lupine exec
  end)

  it("runs a step from its spec in a fresh process, making the objects a local run makes",
    function()
    local m, out, err, code = exec(there.specs.double)
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal("doubled 3\n", out)   -- what the step printed, passed on
    assert.equal("lupine step manifest", m.kind)
    assert.equal("completed", m.status)
    assert.equal("doubled 3\n", m.logs)
    local local_hash = function(name)
      return sql(here.home, "SELECT content_hash FROM artifact_versions v JOIN artifacts a ON "
        .. "a.id = v.artifact_id WHERE a.name = '" .. name .. "'"):match("[^\n]+")
    end
    assert.equal("doubled", m.outputs[1].artifact)
    assert.equal(local_hash("doubled"), m.outputs[1].object.hash)
    assert.equal("numbers", m.outputs[1].data_type)
    assert.same({ "fresh" }, m.outputs[1].tags)
    assert.equal("size", m.outputs[1].metadata[1][1])
    assert.equal(local_hash("count"), m.outputs[2].object.hash)   -- the same seed: the same draw
    -- what it did besides its outputs, for the coordinator to record
    assert.equal("write", m.calls[1].op)
    assert.equal("set_metadata", m.calls[1].args[1])
    assert.equal("note", m.calls[1].args[4])
    assert.equal("save", m.calls[2].op)
    assert.equal("settings", m.calls[2].cfg.artifact)
    assert.equal(local_hash("settings"), m.calls[2].object.hash)
    -- every object is in the store the spec names
    for _, hash in ipairs { m.outputs[1].object.hash, m.outputs[2].object.hash,
      m.calls[2].object.hash } do
      assert.truthy(H.read(object_file(there.home, hash)), hash)
    end
  end)

  it("refuses a step whose code changed since its spec was written", function()
    local spec = decode_file(there.specs.double)
    local moved = H.tmpdir()
    H.write(moved .. "/pipeline.lua",
      (SCRIPT:gsub("out%[i%] = scale %* x", "out[i] = x * scale")))
    spec.cwd = moved
    local m, _, err, code = exec(encode_file(moved .. "/spec", spec))
    assert.equal(1, code)
    local now = err:match("in the spec, (sha256:%x+) now")
    assert.truthy(now)
    assert.not_equal(spec.node.code, now)
    local want = string.format("step 'double' (pipeline.lua:%d): its code changed since the step "
      .. "spec was written (fingerprint %s in the spec, %s now): refusing to run it",
      line_of('name = "double"'), spec.node.code, now)
    assert.equal("lupine: " .. want .. "\n", err)
    assert.equal("failed", m.status)
    assert.equal(want, m.error)
    assert.same({}, m.outputs)
  end)

  it("fails naming the input whose object is missing", function()
    local spec = decode_file(there.specs.double)
    local hash = spec.objects[1].hash
    local file = object_file(there.home, hash)
    os.rename(file, file .. ".away")
    local m, _, err, code = exec(there.specs.double)
    os.rename(file .. ".away", file)
    local want = string.format("step 'double' (pipeline.lua:%d): input 'xs': object %s is missing "
      .. "(expected at %s)", line_of('name = "double"'), hash, file)
    assert.equal(1, code)
    assert.equal("lupine: " .. want .. "\n", err)
    assert.equal(want, m.error)
  end)

  it("writes the error of a failing step with the user's line and traceback", function()
    local m, _, err, code = exec(there.specs.boom)
    local want = string.format("step 'boom' (pipeline.lua:%d) failed: pipeline.lua:%d: bad 3",
      line_of('lupine.step("boom"'), line_of('error("bad "'))
    assert.equal(1, code)
    assert.equal("lupine: " .. want .. "\n", err)
    assert.equal("failed", m.status)
    assert.equal(want, m.error)
    assert.truthy(m.traceback:find("\n%s+pipeline%.lua:" .. line_of('error("bad "') .. ": in "))
  end)

  it("stops a step at its timeout", function()
    local m, _, err, code = exec(there.specs.slow)
    assert.equal(1, code, err)
    assert.equal(string.format("step 'slow' (pipeline.lua:%d): ran past its timeout of 0.3 s and "
      .. "was stopped", line_of('name = "slow"')), m.error)
  end)

  it("writes the manifest whole: the one before stays as it was until the new one replaces it",
    function()
    local spec = decode_file(there.specs.hold)
    local wait = H.tmpdir()
    spec.params = assert(core.encode({ dir = wait }))
    local dir = H.tmpdir()
    local manifest = H.write(dir .. "/manifest", "the manifest before")
    local spec_path = encode_file(H.tmpdir() .. "/spec", spec)
    os.execute("(cd / && " .. H.quote(H.cli) .. " exec --spec " .. H.quote(spec_path)
      .. " --manifest " .. H.quote(manifest) .. " >/dev/null 2>&1; touch "
      .. H.quote(wait .. "/ended") .. ") &")
    local function wait_for(file)
      for _ = 1, 1000 do
        if H.read(file) then return true end
        os.execute("sleep 0.01")
      end
    end
    assert.truthy(wait_for(wait .. "/started"))
    assert.equal("the manifest before", H.read(manifest))
    H.write(wait .. "/go", "")
    assert.truthy(wait_for(wait .. "/ended"))
    assert.equal("completed", decode_file(manifest).status)
    local p = io.popen("ls -A " .. H.quote(dir))
    assert.equal("manifest\n", p:read("a"))   -- no temporary file left
    p:close()
  end)

  it("on SIGTERM, stops its step and writes a manifest naming the signal (none if requeued)",
    function()
    for _, requeue in ipairs { false, true } do
      local spec = decode_file(there.specs.hold)
      local wait = H.tmpdir()
      spec.params, spec.requeue = assert(core.encode({ dir = wait })), requeue or nil
      local manifest = H.tmpdir() .. "/manifest"
      local spec_path = encode_file(H.tmpdir() .. "/spec", spec)
      local out, err = H.sh("cd / && { " .. H.quote(H.cli) .. " exec --spec " .. H.quote(spec_path)
        .. " --manifest " .. H.quote(manifest) .. " >/dev/null 2>&1 & pid=$!; until [ -e "
        .. H.quote(wait .. "/started") .. " ]; do sleep 0.01; done; kill -TERM $pid; wait $pid;"
        .. " echo $?; }")
      -- (the step, never told to go on, was ended with its process)
      assert.equal("1\n", out, err)
      if requeue then
        assert.is_nil(H.read(manifest))
      else
        local m = decode_file(manifest)
        assert.equal("failed", m.status)
        assert.equal(string.format("step 'hold' (pipeline.lua:%d): its process was stopped by "
          .. "SIGTERM (signal 15)", line_of('lupine.step("hold"')), m.error)
        assert.equal(15, m.signal)
      end
    end
  end)

  it("waits at its gate: runs the step on run, skips it on skip (no manifest), fails on stop "
    .. "or when no word came in time", function()
    local where = string.format("step 'double' (pipeline.lua:%d)", line_of('name = "double"'))
    local function gated(word, wait)
      local spec = decode_file(there.specs.double)
      local dir = H.tmpdir()
      spec.gate, spec.gate_wait = dir .. "/gate", wait
      if word then H.write(spec.gate, word) end
      local m, out, err, code = exec(encode_file(dir .. "/spec", spec))
      return m, out, err, code, spec.gate
    end
    -- the word written after the job came to the gate
    local spec = decode_file(there.specs.double)
    local dir = H.tmpdir()
    spec.gate = dir .. "/gate"
    local spec_path = encode_file(dir .. "/spec", spec)
    local out, err, code = H.sh("cd / && { " .. H.quote(H.cli) .. " exec --spec "
      .. H.quote(spec_path) .. " --manifest " .. H.quote(dir .. "/manifest") .. " & pid=$!; "
      .. "sleep 0.3; [ -e " .. H.quote(dir .. "/manifest") .. " ] && echo early; printf run > "
      .. H.quote(spec.gate) .. "; wait $pid; }")
    assert.equal(0, code, err)
    assert.equal("doubled 3\n", out)
    assert.equal("completed", decode_file(dir .. "/manifest").status)
    -- skip: nothing runs, and the manifest (the coordinator's) is not written
    local m
    m, out, err, code = gated("skip")
    assert.equal(0, code, err)
    assert.is_nil(m)
    assert.equal("", out)
    local gate
    m, out, err, code, gate = gated("stop")
    local want = where .. ": its coordinator stopped its job before the step ran (" .. gate
      .. " says stop): it runs the step otherwise"
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("lupine: " .. want .. "\n", err)
    assert.equal("failed", m.status)
    assert.equal("stop", m.gate)
    assert.equal(want, m.error)
    m, out, err, code, gate = gated(nil, 0.2)
    want = where .. ": no word from its coordinator in 0.2 s whether to run the step (" .. gate
      .. " was not written): its coordinator may have died; `lupine run` of the script again "
      .. "adopts or reruns it"
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("lupine: " .. want .. "\n", err)
    assert.equal("timeout", m.gate)
    assert.equal(want, m.error)
  end)

  it("never opens the catalog: the coordinator's stays as it was, and none is made", function()
    local function listing()
      local p = io.popen("ls -A " .. H.quote(there.home))
      local list = p:read("a")
      p:close()
      return list
    end
    local catalog, files = H.read(there.home .. "/catalog.db"), listing()
    local m = exec(there.specs.double)
    assert.equal("completed", m.status)
    assert.equal(catalog, H.read(there.home .. "/catalog.db"))
    assert.equal(files, listing())
    -- and with a catalog folder of its own, it makes none there either
    local spec = decode_file(there.specs.make)
    spec.home = nil
    local home = H.tmpdir() .. "/home"
    local _, err, code = H.sh("cd / && LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
      .. " exec --spec " .. H.quote(encode_file(H.tmpdir() .. "/spec", spec)) .. " --manifest "
      .. H.quote(H.tmpdir() .. "/m"))
    assert.equal(0, code, err)
    assert.is_nil(H.read(home .. "/catalog.db"))
  end)

  it("answers a step's reads from the spec's reads first, then the catalog it names, read only",
    function()
    local dir = H.tmpdir()
    H.write(dir .. "/pipeline.lua", SCRIPT)
    local wrapper = H.write(dir .. "/lupine-exec", "#!/bin/sh\ncp \"$3\" " .. H.quote(dir)
      .. "/spec\nexec " .. H.quote(H.cli) .. " \"$@\"\n")
    os.execute("chmod +x " .. H.quote(wrapper))
    local _, err = H.sh("cd " .. H.quote(dir) .. " && LUPINE_EXEC=" .. H.quote(wrapper)
      .. " LUPINE_HOME=" .. H.quote(dir .. "/home") .. " " .. H.quote(H.cli)
      .. " run pipeline.lua peek")
    -- the catalog it read (as the coordinator's step would have) has no settings
    local missing = "step 'peek' (pipeline.lua:" .. line_of('lupine.step("peek"')
      .. ") failed: pipeline.lua:" .. line_of('return lupine.Client()') .. ": artifact "
      .. "'settings' not found"
    assert.truthy(err:find(missing, 1, true), err)
    local spec = decode_file(dir .. "/spec")
    assert.is_string(spec.catalog)
    -- without a catalog to read, a read is refused
    spec.catalog = nil
    local m = exec(encode_file(dir .. "/spec", spec))
    assert.equal("step 'peek' (pipeline.lua:" .. line_of('lupine.step("peek"')
      .. ") failed: a step run by `lupine exec` cannot reach the catalog (the coordinator "
      .. "records what it does from its manifest): query 'latest_version' is not among the "
      .. "reads the step spec answers", m.error)
    spec.reads = { { op = "query", args = { n = 2, "latest_version", "settings" },
      reply = { n = 1, { { id = "an id", name = "settings", version = "7" } } } } }
    m = exec(encode_file(dir .. "/spec", spec))
    assert.equal("completed", m.status, m.error)
    assert.equal(core.hash(assert(core.encode("7"))), m.outputs[1].object.hash)
  end)

  it("says what is wrong with a spec it cannot read, and writes no manifest", function()
    local dir = H.tmpdir()
    local spec = H.write(dir .. "/spec", "not CBOR at all")
    local m, _, err, code = exec(spec, dir .. "/manifest")
    assert.equal(2, code)
    assert.is_nil(m)
    assert.equal("lupine: exec: step spec " .. spec .. ": not a step spec (CBOR, kind = "
      .. "\"lupine step spec\")\n", err)
    local _, err2, code2 = H.lupine(nil, "exec")
    assert.equal(2, code2)
    assert.equal("lupine: exec: missing option --spec FILE\nTry 'lupine exec --help'.\n", err2)
  end)

  it("loads a script up to its first pipeline call: what follows uses a run's results",
    function()
    local dir = H.tmpdir()
    H.write(dir .. "/after.lua", [[
      local lupine = require "lupine"
      local one = lupine.step("one", function() return 21 end)
      local two = lupine.step("two", function(x) return 2 * x end)
      local run = lupine.pipeline("after", function() two(one()) end)()
      print("run " .. run.status .. ": " .. run.steps.two.output:load())
    ]])
    local out, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=home LUPINE_EXEC="
      .. H.quote(H.cli) .. " " .. H.quote(H.cli) .. " run after.lua")
    assert.equal(0, code, err)
    assert.matches("\nrun completed: 42\n$", out)
  end)

  it("a run whose every step runs through it records what a local run records", function()
    local mine, theirs = sql(here.home, DUMP), sql(there.home, DUMP)
    assert.equal(mine, theirs)
    -- and that is a whole run's worth: outputs, saves, metadata, tags, failures
    for _, row in ipairs { "step|make|make|completed", "step|double|double|completed",
      "step|boom|boom|failed", "step|slow|slow|failed", "|manual|",
      "step|quit|quit|failed|80|step 'quit' (pipeline.lua:" .. line_of('lupine.step("quit"')
        .. ") failed: called os.exit(3)|",
      "metadata|step_run|double|note|", "metadata|artifact_version|doubled:1|size|",
      "tag|fresh|artifact_version|doubled:1", "link|double|output|settings|settings:1",
      "visualization|doubled:1|1|svg|", "making 5\n", "version|p::write::output|1|data|file|",
      "version|p::read::output|1|data|string|" } do
      assert.truthy(mine:find(row, 1, true), row)
    end
    local function traceback(home)
      return sql(home, TRACEBACK):match("^(.-%[C%]: in %?)")
    end
    assert.equal(traceback(here.home), traceback(there.home))
    assert.truthy(traceback(there.home):find("pipeline.lua:" .. line_of('error("bad "'), 1, true))
  end)
end)

-- What a catalog records of its runs (H.RECORDS), names with the time of
-- the run or an id in them (which differ anyway) and seeds not set (drawn
-- afresh) left out.
local function records(home)
  return (sql(home, H.RECORDS:gsub("s%.seed, ", "")):gsub("%d%d%d%d%d%d%d%d_?%d%d%d%d%d%d", "<time>")
    :gsub("%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x", "<id>"))
end

-- A new folder holding text as pipeline.lua.
local function with_script(text)
  local dir = H.tmpdir()
  H.write(dir .. "/pipeline.lua", text)
  return dir
end

-- `lupine run` of script (a path, or the text of pipeline.lua in dir) with
-- home, each step through `lupine exec` if exec; stdout, stderr, status.
local function run_in(dir, home, script, exec, args)
  return H.sh("cd " .. H.quote(dir) .. " && " .. (exec and ("LUPINE_EXEC=" .. H.quote(H.cli) .. " ")
    or "") .. "LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli) .. " run " .. script
    .. " " .. (args or ""))
end

-- Steps that read the catalog: the latest version of an output of this
-- run's (a lookup), a version saved by the top level, a listing, the
-- step context's run. Then a step defined after the first pipeline call,
-- which reads an output of the run the top level kept.
local READS = [[
local lupine = require "lupine"
local make = lupine.step { name = "make", outputs = { "model" }, function(q) return { q = q } end }
local peek = lupine.step { name = "peek", outputs = { "seen" }, function()
  local client = lupine.Client()
  local model = client:get_artifact_version("model")
  local base = lupine.load_artifact("base")
  local ctx = lupine.get_step_context()
  return { model = model.version, q = model:load().q, base = base.x,
    models = #client:list_artifact_versions { name = "model" },
    run = ctx.pipeline_run.name == ctx.run_name }
end }
if not pcall(lupine.Client().get_artifact_version, lupine.Client(), "base") then
  lupine.save_artifact({ x = 7 }, "base")
end
local p = lupine.pipeline("p", function(q) peek:after(make(q))() end)
local first = p(tonumber(arg[1]))
local seen = first.steps.peek.output:load()
print(string.format("seen: base %d, model v%s, models %d, q %s, run %s", seen.base, seen.model,
  seen.models, seen.q, seen.run))
local later = lupine.step { name = "later", outputs = { "first_q" }, function(model)
  return model.q
end }
local run = lupine.pipeline("q", function() later(first.steps.make.output) end)()
print("later: " .. run.steps.later.output:load())
]]

describe("a step run by `lupine exec` reading the catalog", function()
  it("sees what a local step sees, and records the same lookups and cache hits", function()
    local dir = with_script(READS)
    local here, there = dir .. "/here", dir .. "/there"
    local saw = {}
    for round = 1, 3 do
      if round == 3 then
        -- a newer model from outside: peek's lookup would find another, so no hit
        for _, home in ipairs { here, there } do
          local _, err, code = H.sh("cd " .. H.quote(dir) .. " && echo 'require(\"lupine\")"
            .. ".save_artifact({ q = 0 }, \"model\")' > save.lua && LUPINE_HOME=" .. H.quote(home)
            .. " " .. H.quote(H.cli) .. " run save.lua")
          assert.equal(0, code, err)
        end
      end
      for _, side in ipairs { { here, false }, { there, true } } do
        local out, err, code = run_in(dir, side[1], "pipeline.lua", side[2], "0.5")
        assert.equal(0, code, out .. err)
        saw[#saw + 1] = out:match("\n(seen: [^\n]*)\n") .. "; " .. out:match("\n(later: [^\n]*)\n")
      end
      assert.equal(saw[#saw - 1], saw[#saw])
    end
    -- this run's model (made by the step before), the top level's save;
    -- the first run, by the name the top level kept
    assert.equal("seen: base 7, model v1, models 1, q 0.5, run true; later: 0.5", saw[1])
    assert.equal("seen: base 7, model v2, models 2, q 0, run true; later: 0.5", saw[5])
    assert.equal(records(here), records(there))
    local r = records(there)
    assert.truthy(r:find("\npeek|model|model|1\n", 1, true), r)
    assert.truthy(r:find("\npeek|model|model|2\n", 1, true), r)
    local _, hits = r:gsub("|peek|cached|", "")
    local _, ran = r:gsub("|peek|completed|", "")
    assert.equal(1, hits, r)
    assert.equal(2, ran, r)
  end)
end)


describe("`lupine exec` replaying a script's top level", function()
  it("runs every example as a local run does", function()
    for _, name in ipairs(H.examples()) do
      local dir = H.tmpdir()
      local outs = {}
      for i, exec in ipairs { false, true } do
        local out, err, code = run_in(H.root, dir .. "/" .. i, "examples/" .. name .. ".lua", exec)
        assert.equal(0, code, name .. ": " .. out .. err)
        -- (run names and ids, times and paths differ anyway; steps run at
        -- once end in any order)
        local lines = {}
        for line in out:gsub("%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z", "<when>")
            :gsub("%d%d%d%d%d%d%d%d[_-]?%d%d%d%d%d%d", "<time>")
            :gsub("%x%x%x%x%x%x%x%x%-[%x%-]+", "<id>"):gsub("in [%d.]+ m?s", "in <t>")
            :gsub("/tmp/[%w_./-]+", "<path>"):gsub("<time>%-%d+", "<time>"):gmatch("[^\n]*") do
          lines[#lines + 1] = line
        end
        table.sort(lines)
        outs[i] = table.concat(lines, "\n")
      end
      assert.equal(records(dir .. "/1"), records(dir .. "/2"), name)
      assert.equal(outs[1], outs[2], name)
    end
  end)

  it("runs no pipeline body and no step again (one-step runs give their values), and writes "
    .. "nothing", function()
    local dir = with_script([[
local lupine = require "lupine"
local function note(what)
  local f = io.open("notes", "a")
  f:write(what, "\n")
  f:close()
end
local one = lupine.step("one", function() note("step one") return 1 end)
local p = lupine.pipeline("p", function()
  note("body p")
  lupine.save_artifact({ 2 }, "in_body")
  one()
end)
local top = lupine.save_artifact({ 1 }, "top")
local first = p()
lupine.Client():update_artifact_version(top.id, { add_tags = { "seen_" .. first.status } })
assert(lupine.save_artifact({ 3 }, "top_2").name == "top_2")
local forty = lupine.step("forty", function() note("step forty") return 40 end)()
local two = lupine.step("two", function(x) note("step two") return x + forty end)
local run = lupine.pipeline("q", function() note("body q") two(one()) end)()
print(first.name ~= run.name and run.steps.two.output:load())
]])
    local out, err, code = run_in(dir, dir .. "/home", "pipeline.lua", true)
    assert.equal(0, code, out .. err)
    assert.matches("\n41\n$", out)   -- forty's value as its one-step run gave it
    assert.equal("body p\nstep one\nstep forty\nbody q\nstep one\nstep two\n",
      H.read(dir .. "/notes"))
    assert.equal("top|1\n", sql(dir .. "/home", "SELECT a.name, v.version FROM artifact_versions v"
      .. " JOIN artifacts a ON a.id = v.artifact_id WHERE a.name = 'top'"))
    assert.equal("seen_completed|1\n", sql(dir .. "/home", "SELECT t.name, count(*) FROM tags t"
      .. " JOIN tag_links l ON l.tag_seq = t.seq GROUP BY t.name"))
  end)

  it("fails a step whose script's top level cannot be replayed, naming the script's line",
    function()
    local dir = with_script([[
local lupine = require "lupine"
local client = lupine.Client()
assert(#client:list_artifact_versions { name = "guard" } == 0, "guard is there already")
lupine.save_artifact(1, "guard")
local one = lupine.step("one", function() return 1 end)
lupine.pipeline("p", function() one() end):with_options { raise_on_failure = false }()
]])
    local out, err = run_in(dir, dir .. "/home", "pipeline.lua", true)
    local want = "step 'one' (pipeline.lua:5): the script's top level failed where `lupine exec` "
      .. "replays it to find the step (see \"Step spec and manifest\" for what a replay can do): "
      .. "pipeline.lua:3: guard is there already"
    assert.equal(want .. "\n", sql(dir .. "/home", "SELECT error FROM step_runs"), out .. err)
  end)
end)

describe("the catalog `lupine exec` reads", function()
  it("is read only: a write is refused, naming the catalog", function()
    local dir = H.tmpdir()
    local script = H.write(dir .. "/ro.lua", [[
local lupine = require "lupine"
local core = require "lupine.core"
lupine.set_home(arg[1])
local saved = lupine.save_artifact({ 1 }, "x")
local target = core.exec_snapshot(arg[2])
local store = saved.artifact_store_id
core.exec_begin(arg[1], { { id = store, name = "default", flavor = "local",
  path = core.store_root(store) } }, store, nil, target)
print(lupine.Client():get_artifact_version("x").version)
print(select(2, pcall(core.record_object, { hash = saved.content_hash, size = saved.size,
  stored_size = 1 }, "table", { artifact = "y", type = "data", save_type = "manual" })))
]])
    local out, err = H.sh("mkdir " .. H.quote(dir .. "/snaps") .. " && LUA_CPATH="
      .. H.quote(H.build .. "/?.so;;") .. " lua5.4 " .. H.quote(script) .. " "
      .. H.quote(dir .. "/home") .. " " .. H.quote(dir .. "/snaps"), true)
    if H.pg then
      -- the server's catalog, in a session whose transactions are read only
      assert.matches("^1\ncatalog postgresql://[^\n]+: [%w ]+ failed %(cannot execute [%u ]+ in a "
        .. "read%-only transaction%)\n$", out, err)
      assert.equal("", H.sh("ls " .. H.quote(dir .. "/snaps")))
    else
      -- a snapshot, made in the folder given
      local snap = dir .. "/snaps/catalog.1.db"
      assert.equal("1\ncatalog " .. snap .. ": starting a transaction failed (attempt to write a "
        .. "readonly database)\n", out, err)
    end
  end)

  it("is a snapshot made only when the catalog changed, removed once no step needs it",
    function()
    local dir = H.tmpdir()
    local script = H.write(dir .. "/snaps.lua", [[
local lupine = require "lupine"
local core = require "lupine.core"
lupine.set_home(arg[1])
local a, b = arg[2] .. "/a", arg[2] .. "/b"
os.execute("mkdir " .. a .. " " .. b)
local function ls(d)
  local p = io.popen("ls " .. d)
  local list = p:read("a"):gsub("\n", " ")
  p:close()
  return list
end
lupine.save_artifact(1, "x")
local one = core.exec_snapshot(a)
print(core.exec_snapshot(a) == one, ls(a))   -- unchanged: the same, for two readers
lupine.save_artifact(2, "x")
local two = core.exec_snapshot(a)
print(two ~= one, ls(a))                     -- changed: a new one; the readers of one remain
core.exec_release(one)
print(ls(a))
core.exec_release(one)
print(ls(a))                                 -- one has no reader left
print(core.exec_snapshot(b) ~= two, ls(b))   -- another folder: one there
core.exec_release(two)
print(ls(a))                                 -- two, no longer the newest, has no reader left
-- a change by another process
os.execute("LUPINE_HOME=" .. arg[1] .. " ]] .. H.cli .. [[ run " .. arg[3])
print(core.exec_snapshot(b) ~= core.exec_snapshot(a), ls(b))
]])
    H.write(dir .. "/save.lua", "require('lupine').save_artifact(3, 'x')")
    local out, err = H.sh("LUA_CPATH=" .. H.quote(H.build .. "/?.so;;") .. " lua5.4 "
      .. H.quote(script) .. " " .. H.quote(dir .. "/home") .. " " .. H.quote(dir) .. " "
      .. H.quote(dir .. "/save.lua"), true)
    if H.pg then
      -- the server itself, which steps reach: no file
      assert.equal("true\t\nfalse\t\n\n\nfalse\t\n\nfalse\t\n", out, err)
    else
      assert.equal("true\tcatalog.1.db \ntrue\tcatalog.1.db catalog.2.db \ncatalog.1.db "
        .. "catalog.2.db \ncatalog.2.db \ntrue\tcatalog.3.db \n\n"
        .. "true\tcatalog.3.db catalog.4.db \n", out, err)
      assert.equal("catalog.5.db\n", H.sh("ls " .. H.quote(dir .. "/a")))
    end
  end)

  it("keeps the catalog and folder of the spec when the script chooses its own", function()
    local dir = with_script([[
local lupine = require "lupine"
lupine.set_home(arg[1])
lupine.save_artifact({ 5 }, "five")
local one = lupine.step("one", function() return lupine.load_artifact("five")[1] end)
print(lupine.pipeline("p", function() one() end)().steps.one.output:load())
]])
    local out, err, code = run_in(dir, dir .. "/elsewhere", "pipeline.lua", true,
      H.quote(dir .. "/home"))
    assert.equal(0, code, out .. err)
    assert.matches("\n5\n$", out)
  end)
end)

