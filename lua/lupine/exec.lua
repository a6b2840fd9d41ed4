-- SPDX-License-Identifier: MIT
-- lupine.exec: one step run in a process of its own, from a step spec
-- (`lupine exec --spec FILE`), and the coordinator's side of it: the spec
-- of a step that is ready to run (M.spec), and the manifest taken in
-- (M.ingest), which gives the calls and the result a forked worker would
-- have sent, so that the run records the same either way. The formats are
-- in runtime/README.md, "Step spec and manifest"; runtime/exec.c is the
-- process around the step.
--
-- With LUPINE_EXEC set to the path of the lupine program, every step of a
-- run is run this way (M.fresh): each in a fresh process that replays the
-- script's top level to find its step, as a job on a cluster would.

local core = require "lupine.core"
local client_mod = require "lupine.client"
require "lupine"   -- sets client_mod.exec
local hooks = client_mod.exec

local M = {}

M.FORMAT = 1
M.SPEC_KIND, M.MANIFEST_KIND = "lupine step spec", "lupine step manifest"

local function fail(fmt, ...)
  error(string.format(fmt, ...), 0)
end

-- The table decoded from the CBOR file at path, a what of this format.
function M.read(path, what, kind)
  local f, err = io.open(path, "rb")
  if not f then fail("cannot read %s %s", what, err) end
  local bytes = f:read("a")
  f:close()
  local ok, t = pcall(core.decode, bytes)
  if not ok or type(t) ~= "table" or t.kind ~= kind then
    fail("%s %s: not a %s (CBOR, kind = \"%s\")", what, path, what, kind)
  end
  if t.format ~= M.FORMAT then
    fail("%s %s: format %s, but this lupine reads format %d", what, path, tostring(t.format),
      M.FORMAT)
  end
  return t
end

-- Check that field k of t (at path, for the message) has Lua type ty.
local function need(t, k, ty, path)
  if type(t[k]) ~= ty then
    fail("step spec: %s%s must be a %s (got %s)", path, k, ty, type(t[k]))
  end
  return t[k]
end

-- ---- running a step from its spec ----

-- The step of the spec among those the script defines: by name, with the
-- spec's fingerprint; a step of that name whose code changed is refused.
local function find_step(spec, steps)
  local node, other = spec.node, nil
  for _, s in ipairs(steps) do
    if s.name == node.step then
      if core.code_hash(s.fn) == node.code then return s end
      other = other or s
    end
  end
  if other then
    fail("step '%s' (%s): its code changed since the step spec was written (fingerprint %s "
      .. "in the spec, %s now): refusing to run it", node.name, other.where, node.code,
      core.code_hash(other.fn))
  end
  fail("script %s defines no step '%s' (only steps its top level defines before the call "
    .. "that runs them are seen, not those made inside a pipeline body or a function)",
    spec.script, node.step)
end

-- The object of output k of the completed step run whose manifest is m, as
-- a spec's objects name it; false for a default output that stored nothing.
function M.output_object(m, k)
  local out = m.outputs[k]
  if not out then return false end
  return { hash = out.object.hash, size = out.object.size, kind = out.value_type,
    store = m.store }
end

-- How long the manifest an input is named by may take to show up (a job
-- submitted ahead starts as soon as the one before it ended, whose manifest
-- a slow shared file system may show a little later), in seconds.
local MANIFEST_WAIT = 10

-- The object of output k of the step run whose manifest is at path (an
-- input named by the manifest of the step it comes from: the job was
-- submitted before that step had run); false for a default output that
-- stored nothing.
local function manifest_object(path, k, name)
  for _ = 1, MANIFEST_WAIT * 10 do
    local f = io.open(path)
    if f then
      f:close()
      break
    end
    core.sleep(0.1)
  end
  local ok, m = pcall(M.read, path, "step manifest", M.MANIFEST_KIND)
  if not ok then fail("input '%s': %s", name, m) end
  if m.status ~= "completed" then
    fail("input '%s': the step it comes from did not complete (%s)", name, path)
  end
  return M.output_object(m, k)
end

-- How long a job submitted ahead waits at its gate for its coordinator's
-- word (seconds), unless its spec says (gate_wait): a job whose coordinator
-- died gives its slot back then.
M.GATE_WAIT = 600

-- Wait at the spec's gate: a file its coordinator writes once it knows
-- whether the step is to run (a job submitted ahead, with caching on: the
-- step may be a cache hit, which the coordinator learns only once the step
-- before it is recorded). true for "run", false for "skip"; raises for
-- "stop", or when no word came within gate_wait. The nap grows from 5 ms to
-- 50 ms, slowly (by a tenth: 50 ms after half a second), as the word most
-- often comes within tens of milliseconds: a shared file system tells no
-- other node of a new file.
local function gate(spec)
  local path = need(spec, "gate", "string", "")
  local wait, waited, nap = tonumber(spec.gate_wait) or M.GATE_WAIT, 0, 0.005
  local node = spec.node
  while true do
    local f = io.open(path, "rb")
    local word = f and f:read("a")
    if f then f:close() end
    if word == "run" then return true end
    if word == "skip" then return false end
    if word == "stop" then
      error({ gate = "stop", message = string.format("step '%s' (%s): its coordinator stopped "
        .. "its job before the step ran (%s says stop): it runs the step otherwise",
        node.name, node.where, path) }, 0)
    end
    if waited >= wait then
      error({ gate = "timeout", message = string.format("step '%s' (%s): no word from its "
        .. "coordinator in %g s whether to run the step (%s was not written): its "
        .. "coordinator may have died; `lupine run` of the script again adopts or reruns it",
        node.name, node.where, wait, path) }, 0)
    end
    core.sleep(nap)
    waited = waited + nap
    nap = math.min(nap * 1.1, 0.05)
  end
end

-- The run spec, results and report of lp_worker_main for the spec's node:
-- each input becomes the output of a node of its own whose result is its
-- object.
local function worker_tables(spec, s)
  local node, results, args = spec.node, {}, {}
  local function input(rec, path)
    local j = rec.object
    if math.type(j) ~= "integer" then fail("step spec: %sobject must be an integer", path) end
    local object = spec.objects[j]
    if type(object) == "table" and object.manifest then
      need(object, "output", "number", "objects[" .. j .. "].")
      object = manifest_object(object.manifest, object.output, rec.name)
    end
    if object ~= nil and object ~= false then
      need(object, "hash", "string", "objects[" .. j .. "].")
      need(object, "kind", "string", "objects[" .. j .. "].")
    end
    results[j] = { object or nil }
    return { name = rec.name, keys = rec.keys, node = j, output = 1 }
  end
  for i, a in ipairs(need(node, "args", "table", "node.")) do
    local path = "node.args[" .. i .. "]."
    if a.name then args[i] = input(a, path)
    else
      local inputs
      if a.inputs then
        inputs = {}
        for k, rec in ipairs(a.inputs) do inputs[k] = input(rec, path .. "inputs[" .. k .. "].") end
      end
      args[i] = { param = need(a, "param", "string", path), inputs = inputs }
    end
  end
  local outputs = {}
  for k, o in ipairs(need(node, "outputs", "table", "node.")) do
    outputs[k] = { name = o.name, template = o.template,
      config = { tags = o.tags or {}, run_metadata = o.run_metadata } }
  end
  local rnode = { name = node.name, step = node.step, where = s.where, fn = s.fn, args = args,
    outputs = outputs, default_output = node.default_output == true, substitutions = {} }
  local build = { pipeline = spec.pipeline, builtin = spec.substitutions or {},
    substitutions = {}, run_substitutions = {}, nodes = { rnode } }
  local run = spec.run or {}
  local report = { { step_run = spec.step_run, params = spec.params, seed = spec.seed,
    run_id = run.id, run_name = run.name } }
  return { nodes = { rnode }, invoke = hooks.invoker(build) }, results, report, rnode
end

-- The snapshot of reads, as core.exec_step takes it: request bytes -> reply.
local function snapshot(reads)
  local list = {}
  for i, r in ipairs(reads or {}) do
    local request = { r.op }
    for k = 1, (r.args.n or #r.args) do request[k + 1] = r.args[k] end
    list[i] = { assert(core.encode(request)), r.reply }
  end
  return list
end

-- The manifest of a step run that failed before its step ran (why: a
-- message, or a gate's { gate, message }).
local function failed(spec, why)
  local gated = type(why) == "table" and why.gate
  return { format = M.FORMAT, kind = M.MANIFEST_KIND, step_run = spec.step_run,
    store = spec.store, status = "failed", error = gated and why.message or tostring(why),
    gate = gated or nil, outputs = {}, calls = {}, logs = "" }
end

-- Run the step of spec (checked); return its manifest.
local function run_step(spec)
  need(spec, "script", "string", "")
  need(spec, "step_run", "string", "")
  need(spec, "params", "string", "")
  need(spec, "objects", "table", "")
  local node = need(spec, "node", "table", "")
  need(node, "name", "string", "node.")
  need(node, "step", "string", "node.")
  need(node, "code", "string", "node.")
  core.exec_begin(spec.home, need(spec, "stores", "table", ""), need(spec, "store", "string", ""),
    spec.cwd, spec.catalog)
  local chunk, err = loadfile(spec.script)
  if not chunk then fail("%s", err) end
  local args = spec.args or {}
  arg = table.move(args, 1, #args, 1, { [0] = spec.script })
  -- what the top level prints as it is replayed is not the step's output:
  -- it goes to stderr (a job's log)
  local was_print, was_output = print, io.output()
  print = function(...)
    local words = table.pack(...)
    for i = 1, words.n do words[i] = tostring(words[i]) end
    io.stderr:write(table.concat(words, "\t", 1, words.n), "\n")
  end
  io.output(io.stderr)
  local ok, steps = pcall(hooks.load, chunk, spec.replay or {}, table.unpack(args))
  print = was_print
  io.output(was_output)
  if not ok then
    fail("step '%s' (%s): the script's top level failed where `lupine exec` replays it to find "
      .. "the step (see \"Step spec and manifest\" for what a replay can do): %s", node.name,
      node.where, steps)
  end
  local s = find_step(spec, steps)
  local runspec, results, report, rnode = worker_tables(spec, s)
  -- (the script replayed and the inputs found while the coordinator decides)
  if spec.gate ~= nil and not gate(spec) then return nil end
  local result, records, logs, ended, signal = core.exec_step(runspec, results, report,
    spec.timeout, snapshot(spec.reads))
  for _, call in ipairs(records) do call.kind = nil end   -- all calls: { op, ... }
  local m = { format = M.FORMAT, kind = M.MANIFEST_KIND, step_run = spec.step_run,
    store = spec.store, outputs = {}, calls = records, logs = logs }
  if result and result.ok then
    local outs = result.outs
    local nout = #outs // 2
    m.status = "completed"
    m.lookups = outs.extras.lookups
    for k = 1, nout do
      local ex = outs.extras[k]
      m.outputs[k] = { name = rnode.outputs[k].name, artifact = ex.artifact, object = outs[k],
        value_type = outs[nout + k], data_type = ex.data_type, tags = ex.tags,
        metadata = ex.metadata, visualizations = ex.visualizations }
    end
  else
    m.status = "failed"
    m.error = result and result.error
      or string.format("step '%s' (%s): %s", rnode.name, rnode.where, ended)
    m.traceback = result and result.traceback
    m.signal = signal
  end
  return m
end

-- lupine exec: run the step of the spec at spec_path; write its manifest
-- (to manifest_path, else the spec's) whatever came of it. Returns the
-- manifest; or, when its gate said skip, { status = "skipped" } and writes
-- none (the coordinator wrote it: the step was a cache hit). A spec that
-- cannot be read raises (and no manifest is written).
function M.run(spec_path, manifest_path)
  local spec = M.read(spec_path, "step spec", M.SPEC_KIND)
  manifest_path = manifest_path or spec.manifest
  if type(manifest_path) ~= "string" then
    fail("step spec %s: it names no manifest to write (give --manifest FILE)", spec_path)
  end
  local ok, m = pcall(run_step, spec)
  if ok and m == nil then return { status = "skipped" } end
  if not ok then m = failed(spec, m) end
  -- a job that may be requeued is stopped so when it is requeued (or
  -- preempted): its next run writes the manifest, and a cancelled one is
  -- known by its leaving the queue without one
  if m.signal and spec.requeue then return m end
  core.write_atomic(manifest_path, assert(core.encode(m)))
  return m
end

-- ---- the coordinator's side ----

-- The object of a version row (version_by_id's).
local function version_object(row)
  return { hash = row.content_hash, size = row.size, kind = row.data_type,
    store = row.artifact_store_id }
end

-- A shell word for s.
local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The spec of node i of build (the run spec's nodes, init.lua), to run
-- as step run report.step_run of run (id, name); results: the results of
-- the nodes it reads (executor.c), store: the run's store id; dir: a
-- folder the step's process reads too, where a snapshot of a sqlite
-- catalog is made for it (core.exec_snapshot; nil: the step reads nothing
-- of the catalog but the spec's reads).
function M.spec(build, i, report, results, run, store, dir)
  local node = build.nodes[i]
  local objects, args, used = {}, {}, { [store] = true }
  local j = 0
  local function input(rec)
    local object
    j = j + 1
    if rec.node then
      local r = results[rec.node] and results[rec.node][rec.output]
      -- (or, for a job submitted ahead, the manifest that will name it)
      if r and r.manifest then object = { manifest = r.manifest, output = r.output, store = store }
      elseif r then
        object = { hash = r.hash, size = r.size, kind = r.kind, store = r.store or store }
      end
    else
      local id = rec.version or (report.lookups and report.lookups[j])
      local row = id and core.query("version_by_id", id)[1]
      if row then object = version_object(row) end
    end
    if object then used[object.store] = true end
    objects[j] = object or false
    return { name = rec.name, keys = rec.keys, object = j }
  end
  for k, a in ipairs(node.args) do
    if a.name then args[k] = input(a)
    else
      local inputs
      if a.inputs then
        inputs = {}
        for n, rec in ipairs(a.inputs) do inputs[n] = input(rec) end
      end
      args[k] = { param = a.param, inputs = inputs }
    end
  end
  local outputs = {}
  for k, o in ipairs(node.outputs) do
    outputs[k] = { name = o.name, template = o.template, tags = o.config.tags,
      run_metadata = o.config.run_metadata }
  end
  local stores = {}
  for id in pairs(used) do
    local row = core.query("artifact_store_by_id", id)[1]
    stores[#stores + 1] = { id = id, name = row.name, flavor = row.flavor,
      path = row.flavor == "local" and assert(core.store_root(id)) or row.path }
  end
  table.sort(stores, function(a, b) return a.id < b.id end)
  local source = debug.getinfo(node.fn, "S").source
  local made = hooks.made
  return { format = M.FORMAT, kind = M.SPEC_KIND,
    catalog = dir and core.exec_snapshot(dir),
    replay = { call = build.call, runs = table.move(made.runs, 1, build.call - 1, 1, {}),
      saves = made.saves },
    script = source:sub(1, 1) == "@" and source:sub(2) or source,
    args = arg and table.move(arg, 1, #arg, 1, {}) or {},
    pipeline = build.pipeline, run = { id = run.id, name = run.name },
    step_run = report.step_run,
    node = { name = node.name, step = node.step, where = node.where, code = node.code_hash,
      default_output = node.default_output, outputs = outputs, args = args },
    params = report.params, seed = report.seed, timeout = node.timeout,
    substitutions = hooks.output_subs(build, node, run.name),
    objects = objects, stores = stores, store = store, home = core.home(), cwd = core.cwd() }
end

-- What the manifest m records, as a forked worker sends it: the catalog
-- calls its step made, in order ({ op = "write" | "save", args = { n =
-- count, ... } }: a save's object read back from the store), and its result
-- frame (the outputs as objects already stored), and what it printed.
function M.ingest(m)
  if type(m) ~= "table" or m.kind ~= M.MANIFEST_KIND or m.format ~= M.FORMAT then
    fail("not a step manifest of format %d", M.FORMAT)
  end
  local calls = {}
  for i, c in ipairs(m.calls or {}) do
    if c.op == "write" then
      calls[i] = { op = "write", args = c.args }
    elseif c.op == "save" then
      local bytes, err = core.read_object(c.object.hash, c.object.size, m.store)
      if not bytes then fail("step manifest: saved artifact '%s': %s", c.cfg.artifact, err) end
      calls[i] = { op = "save", args = { n = 6, bytes, c.cfg, c.extra, c.producer, c.output,
        c.data_type } }
    else
      fail("step manifest: calls[%d]: unknown op '%s'", i, tostring(c.op))
    end
  end
  local result = { kind = "result", ok = m.status == "completed" }
  if result.ok then
    local outs, n = { extras = { lookups = m.lookups } }, #m.outputs
    for k, o in ipairs(m.outputs) do
      outs[k], outs[n + k] = o.object, o.value_type
      outs.extras[k] = { artifact = o.artifact, tags = o.tags, data_type = o.data_type,
        metadata = o.metadata, visualizations = o.visualizations }
    end
    result.outs = outs
  else
    result.error, result.traceback = m.error, m.traceback
  end
  return calls, result, m.logs
end

-- (node i, report[i], results, run id, run name, store id) -> the step
-- spec of node i of build: M.spec with what a worker (or C) has at hand
-- (and dir, M.spec's).
function M.spec_of(build, dir)
  return function(i, report, results, run_id, run_name, store)
    return M.spec(build, i, report, results, { id = run_id, name = run_name }, store, dir)
  end
end

-- spec.fresh of a run with LUPINE_EXEC set (exe: the lupine program): in
-- the forked worker of node i, write its spec, run `exe exec` on it (what
-- it prints is the worker's), make the calls its manifest records and
-- return its result. And the function that removes what the run's specs
-- left (the catalog's snapshots), once it has ended.
function M.fresh(build, exe)
  local dir = os.tmpname()   -- a file, made: its name is ours
  os.remove(dir)
  local ok, why = core.check_store_path(dir)
  if not ok then fail("LUPINE_EXEC: a folder for the catalog's snapshots: %s", why) end
  local spec_of = M.spec_of(build, dir)
  return function(i, report, results, run_id, run_name, store)
    local spec = spec_of(i, report, results, run_id, run_name, store)
    local spec_path, manifest_path, err_path = os.tmpname(), os.tmpname(), os.tmpname()
    local _ <close> = setmetatable({}, { __close = function()
      os.remove(spec_path)
      os.remove(manifest_path)
      os.remove(err_path)
    end })
    core.write_atomic(spec_path, assert(core.encode(spec)))
    io.stdout:flush()
    -- what the step prints comes on stdout; exec's own messages are not the
    -- step's output (the manifest has its error)
    os.execute(string.format("%s exec --spec %s --manifest %s 2>%s", quote(exe),
      quote(spec_path), quote(manifest_path), quote(err_path)))
    if spec.catalog then core.exec_release(spec.catalog) end
    local ok, m = pcall(M.read, manifest_path, "step manifest", M.MANIFEST_KIND)
    if not ok then
      local f = io.open(err_path, "rb")
      local said = f and f:read("a") or ""
      if f then f:close() end
      fail("%s exec wrote no manifest: %s", exe, said ~= "" and said:gsub("\n$", "") or m)
    end
    local calls, result = M.ingest(m)
    core.exec_replay(calls)
    return result
  end, function() os.execute("rm -rf " .. quote(dir)) end
end

return M
