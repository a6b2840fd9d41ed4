-- SPDX-License-Identifier: MIT
-- lupine.slurm: what a run says to Slurm, through its commands (sbatch,
-- squeue, scancel; their environment finds the cluster): submit a step's
-- job, watch a run's jobs, cancel them. A run's jobs share one job name,
-- so that one squeue call sees them all and one scancel stops them all.
--
-- The queue is read by one poller per run (a shell loop started by the
-- run's process): each pass writes a snapshot file, numbered, which the
-- processes waiting for jobs read, so that a run of a hundred jobs still
-- asks squeue once per pass (5 ms each), not once per job. A snapshot
-- older than a job's submission cannot tell that the job has gone: the
-- numbers say which came after.

local core = require "lupine.core"

local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = quote

-- How often the poller asks squeue (seconds): Slurm's own scheduler
-- ticks about once a second.
M.poll_interval = 0.5

-- The slurm.conf of the cluster the commands talk to (their SLURM_CONF);
-- nil: the one their environment names, or Slurm's default. A program
-- that talks to a cluster other than its environment's sets it.
M.conf = nil

-- A command line with the cluster's configuration named.
local function cluster(cmd)
  return M.conf and ("SLURM_CONF=" .. quote(M.conf) .. " " .. cmd) or cmd
end

-- Run a command line; its output (stdout and stderr) and whether it exited 0.
local function run_cmd(cmd)
  local p = io.popen(cluster(cmd) .. " 2>&1 </dev/null")
  local out = p:read("a")
  local ok = p:close()
  return out, ok == true
end

-- The job name of every job of the run with this id.
function M.job_name(run_id)
  return "lupine-" .. run_id
end

-- Submit a job: opts = { name, comment, output (the job's log file),
-- options (sbatch options, lupine.resources), command (a list: the
-- program and its arguments) }. It works in this process's folder. Returns the job id, or nil and why not
-- (sbatch's own words).
function M.submit(opts)
  local words = { "sbatch", "--parsable", "--job-name=" .. opts.name, "--output=" .. opts.output,
    "--open-mode=append" }
  if opts.comment then words[#words + 1] = "--comment=" .. opts.comment end
  for _, o in ipairs(opts.options or {}) do words[#words + 1] = o end
  local command = {}
  for i, w in ipairs(opts.command) do command[i] = quote(w) end
  words[#words + 1] = "--wrap=exec " .. table.concat(command, " ")
  for i, w in ipairs(words) do words[i] = quote(w) end
  local out, ok = run_cmd(table.concat(words, " "))
  -- "<id>" or "<id>;<cluster>"
  local id = ok and out:match("^(%d+)[;\n]")
  if id then return id end
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line:gsub("^sbatch: error: ", "") end
  return nil, "sbatch refused the job: "
    .. (#lines > 0 and table.concat(lines, "; ") or "it printed no job id")
end

-- The squeue command that lists the jobs of a name: id|state|reason.
local function squeue(name)
  return "squeue --noheader --states=all --name=" .. quote(name) .. " --format='%i|%T|%r'"
end

-- Parse squeue's lines: { [id] = { state = "RUNNING", reason = "None" } }.
local function parse(text)
  local jobs = {}
  for id, state, reason in text:gmatch("(%d+)|([%u_]+)|([^\n]*)") do
    jobs[id] = { state = state, reason = reason }
  end
  return jobs
end

-- The jobs of a name, now: one squeue call. nil and why if it failed.
function M.queue(name)
  local out, ok = run_cmd(squeue(name))
  if not ok then return nil, "squeue failed: " .. out:gsub("%s+$", "") end
  return parse(out)
end

-- Cancel every job of a name (a run's), wherever it is.
function M.cancel(name)
  local out, ok = run_cmd("scancel --name=" .. quote(name))
  if not ok then return nil, "scancel failed: " .. out:gsub("%s+$", "") end
  return true
end

-- The states a job leaves the queue in (squeue(1), JOB STATE CODES): it
-- will not run (again) by itself.
local ended = { BOOT_FAIL = true, CANCELLED = true, COMPLETED = true, DEADLINE = true,
  FAILED = true, NODE_FAIL = true, OUT_OF_MEMORY = true, PREEMPTED = true, REVOKED = true,
  SPECIAL_EXIT = true, TIMEOUT = true }
M.ended = ended

-- Start the poller of a run's jobs: every poll_interval, squeue's list of
-- the jobs of this name goes to the file at path, after a first line that
-- numbers the pass. A pass whose squeue fails (the controller is away)
-- leaves the last snapshot as it was. It stops when the process that
-- started it ends, or when stop() is called, and removes its files.
function M.start_poller(name, path)
  local stop = path .. ".stop"
  os.remove(stop)
  -- $PPID: the shell os.execute runs is this process's child
  local loop = string.format("n=0; while kill -0 $coordinator 2>/dev/null && [ ! -e %s ]; do "
    .. "n=$((n + 1)); if { echo $n; %s; } > %s.tmp 2>/dev/null; then mv %s.tmp %s; fi; "
    .. "sleep %s; done; rm -f %s.tmp %s %s", quote(stop), cluster(squeue(name)), quote(path),
    quote(path), quote(path), M.poll_interval, quote(path), quote(path), quote(stop))
  os.execute("coordinator=$PPID; (" .. loop .. ") </dev/null >/dev/null 2>&1 &")
  return function()
    local f = io.open(stop, "w")
    if f then f:close() end
  end
end

-- A file's whole text, or nil.
local function read(path)
  local f <close> = io.open(path, "rb")
  return f and f:read("a")
end

-- The last snapshot at path: its number and its jobs, or nil if there is
-- none yet.
function M.snapshot(path)
  local n, rest = (read(path) or ""):match("^(%d+)\n(.*)$")
  if not n then return nil end
  return tonumber(n), parse(rest)
end

-- Why a job ended without a result, in Slurm's words: its state and reason
-- as squeue last showed them, or that it left the queue unseen.
function M.ending(id, job)
  if not job then
    return string.format("its Slurm job %s left the queue without writing a result", id)
  end
  local reason = job.reason ~= "None" and job.reason ~= "" and (", reason " .. job.reason) or ""
  return string.format("its Slurm job %s ended %s%s without writing a result", id, job.state,
    reason)
end

-- Wait until the file at result exists (true), or the job has been gone
-- from the queue (ended, or not listed) for grace seconds without it (nil
-- and why, in Slurm's words). snap: the poller's file; seen: the number
-- of its last snapshot before the job was submitted (nil: none). The next
-- one may have asked squeue before the job was there; from the one after,
-- a job not listed has gone. A job requeued (pending or running again) is
-- waited for again. The file is looked for every 20 ms at first (nap_max
-- if less), then less often: every nap_max seconds (default 0.1), or a
-- hundredth of the time waited so far if more (a job that runs for long
-- is looked for every 100 ms, not every 10).
function M.wait(id, result, snap, seen, grace, nap_max)
  local nap, gone, looks, waited = math.min(0.02, nap_max or 0.1), nil, 0, 0
  while true do
    local f = io.open(result)
    if f then
      f:close()
      return true
    end
    -- the snapshot changes every poll_interval: read it about as often
    -- (a hundred workers waiting would otherwise parse it all the time)
    looks = looks + 1
    local n, jobs
    if looks % 5 == 0 then n, jobs = M.snapshot(snap) end
    if n and n > (seen or 0) + 1 then
      local job = jobs[id]
      if job == nil or ended[job.state] then
        gone = gone or os.time()
        if os.time() - gone >= grace then return nil, M.ending(id, job) end
      else
        gone = nil
      end
    end
    core.sleep(nap)
    waited = waited + nap
    nap = math.min(nap * 1.5, math.max(nap_max or 0.1, math.min(waited / 100, 0.1)))
  end
end

-- Tell the job waiting at the gate at path (a job submitted ahead; nil:
-- none) word ("run", or "stop": it fails without running its step, and
-- Slurm cancels the jobs behind it), unless it was told already.
local function tell_gate(path, word)
  if not path then return end
  local f = io.open(path)
  if f then f:close() else core.write_atomic(path, word) end
end

-- ---- adopting the jobs of a run whose coordinator died ----

-- The run (name or id) `lupine run --resume RUN` names, or nil: its jobs
-- are adopted by the next run of its pipeline instead of the latest run's.
M.resume = nil

-- What makes two attempts the same work: the spec without what names the
-- run, the step run and the attempt (the seed is compared apart: a fresh
-- one differs from run to run and decides nothing when it was not fixed).
local function work_key(spec)
  return core.hash(assert(core.encode { spec.script, spec.args, spec.cwd, spec.pipeline,
    spec.node, spec.params, spec.objects, spec.timeout }))
end

-- The latest attempt of step run id in folder dir: its spec's path
-- without ".spec", or nil.
local function last_attempt(dir, id)
  local n = 1
  while io.open(dir .. "/" .. id .. "." .. n .. ".spec") do n = n + 1 end
  return n > 1 and (dir .. "/" .. id .. "." .. (n - 1)) or nil
end

-- (when there is no run to adopt)
local function none() end

-- The attempts a run of build's pipeline on orchestrator o may adopt: those
-- of the run named by M.resume if it is a run of this pipeline, else of its
-- latest run if that one's coordinator died (the catalog marked it so):
-- each step run of it that did not end well and had a job, and each job
-- submitted ahead that its coordinator had not reached yet. Returns a
-- function of a spec of this run's giving the attempt that does its work, {
-- base (its files' path without the extension), manifest, job, step_run (the
-- one its manifest names), run, seed, queued, gate }, or nil (a job
-- submitted ahead that waits at its gate for no work of this run's is told
-- to stop); the names of the jobs still queued (a list); and the gates of
-- the jobs submitted ahead, by node name, for a node that is a cache hit
-- here to stop. Raises for a --resume run not found.
local function adoptable(build, o)
  local exec = require "lupine.exec"
  local run
  if M.resume then
    local found, msg = require("lupine.client").find_run(M.resume)
    if not found then error("--resume: " .. msg, 0) end
    if found.pipeline_name ~= build.pipeline then return none, {}, {} end
    -- (a run whose process is gone was marked so as the catalog opened)
    if found.status == "running" then
      error(string.format("--resume: pipeline run '%s' is still running: its coordinator "
        .. "waits for its jobs", found.name), 0)
    end
    run = found
  else
    run = require("lupine").Client():list_pipeline_runs { pipeline_name = build.pipeline,
      size = 1 }[1]
    if not (run and run.status == "failed" and (run.error or ""):find("^the process running it"))
    then return none, {}, {} end
  end
  local dir = o.work_dir .. "/" .. run.id
  local by_key, by_name, jobs, gates = {}, {}, {}, {}
  local function add(base, job)
    local ok, spec = pcall(exec.read, base .. ".spec", "step spec", exec.SPEC_KIND)
    if not ok then return end
    local a = { base = base, manifest = spec.manifest, job = job, step_run = spec.step_run,
      run = spec.run, seed = spec.seed, gate = spec.gate }
    jobs[#jobs + 1] = job
    for _, object in pairs(spec.objects) do
      if type(object) == "table" and object.manifest then
        -- submitted ahead: its inputs are known once the manifests it names
        -- are there, which is so when its step is ready
        a.spec, by_name[spec.node.name] = spec, a
        gates[spec.node.name] = spec.gate
        return
      end
    end
    by_key[work_key(spec)] = a
  end
  local index = {}
  for j, node in ipairs(build.nodes) do index[node.name] = j end
  for _, sr in ipairs(core.query("step_runs_of_run", run.id)) do
    if sr.job and sr.status ~= "completed" and sr.status ~= "cached" then
      -- (its first attempt may be a job submitted ahead)
      local base = last_attempt(dir, sr.id)
        or index[sr.name] and dir .. "/ahead-" .. index[sr.name]
      if base then add(base, sr.job) end
    end
  end
  for j in ipairs(build.nodes) do
    local job = (read(dir .. "/ahead-" .. j .. ".job") or ""):match("^(%d+) ")
    if job then add(dir .. "/ahead-" .. j, job) end
  end
  -- The attempt of the killed run that does the work of spec (one of this
  -- run's), or nil.
  local function find(spec)
    local a = by_name[spec.node.name]
    if a then
      by_name[spec.node.name] = nil
      for k, object in pairs(a.spec.objects) do
        if type(object) == "table" and object.manifest then
          local got, m = pcall(exec.read, object.manifest, "step manifest", exec.MANIFEST_KIND)
          if not got or m.status ~= "completed" then
            tell_gate(a.gate, "stop")
            return nil
          end
          a.spec.objects[k] = exec.output_object(m, object.output)
        end
      end
      by_key[work_key(a.spec)] = a
    end
    local found = by_key[work_key(spec)]
    if a and found ~= a then tell_gate(a.gate, "stop") end
    return found
  end
  if #jobs == 0 then return find, {}, gates end
  -- the names of those still queued or running: the poller watches them too
  local names, seen, queued = {}, {}, {}
  local out, ok = run_cmd("squeue --noheader --states=PENDING,RUNNING,CONFIGURING,REQUEUED"
    .. " --jobs=" .. table.concat(jobs, ",") .. " --format='%i|%j'")
  for id, name in (ok and out or ""):gmatch("(%d+)|([^\n]+)") do
    queued[id] = true
    if not seen[name] then names[#names + 1], seen[name] = name, true end
  end
  for _, list in ipairs { by_key, by_name } do
    for _, a in pairs(list) do a.queued = queued[a.job] end
  end
  return find, names, gates
end

-- An adopted manifest (v) made for the step run and run that adopt it: every
-- value naming an id that ids maps names the new one instead (its calls').
local function rebased(v, ids)
  if type(v) == "string" then return ids[v] or v end
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = rebased(x, ids) end
  return t
end

-- ---- jobs submitted ahead ----

-- Which nodes of build may have their jobs submitted ahead, behind the job
-- of the one node they take inputs from: { [i] = { j } }. A node may if it
-- and that node run on orchestrator o, it is the only node after that one
-- (a chain: so a run still has no more jobs at once than steps running,
-- which the stack's jobs bounds), and it takes no other node's outputs, no
-- lookup and no ordering. Not when the node before it may be retried (its
-- job's failure would not be the step's), or when a failure stops the run.
-- (With caching on, a node may be a cache hit even though the node before
-- it ran now, its outputs the same bytes as before, which the coordinator
-- learns only once that node is recorded: its job waits at a gate.)
local function chains(build, o)
  local feeds, after, from = {}, {}, {}
  for _, node in ipairs(build.nodes) do
    if node.on_failure == "stop" then return feeds end
  end
  for j, node in ipairs(build.nodes) do
    local sources, n = {}, 0
    local function input(rec)
      if rec.node then sources[rec.node] = true end
    end
    for _, a in ipairs(node.args) do
      if a.name then input(a) else for _, rec in ipairs(a.inputs or {}) do input(rec) end end
    end
    for _, i in ipairs(node.after or {}) do sources[i] = true end
    for i in pairs(sources) do
      after[i], n = (after[i] or 0) + 1, n + 1
    end
    if n == 1 and not node.after and not node.lookups then from[j] = next(sources) end
  end
  for j, i in pairs(from) do
    local node, up = build.nodes[j], build.nodes[i]
    if after[i] == 1 and node.orchestrator == o.name and up.orchestrator == o.name
        and up.retries == 0 then
      feeds[i] = { j }
    end
  end
  return feeds
end

-- ---- a run's steps as Slurm jobs ----

-- The lupine program the jobs run: this process's own when it is one
-- (the CLI's), else the one on the nodes' PATH.
local function program()
  local p = io.popen("readlink /proc/$PPID/exe 2>/dev/null")
  local path = p:read("l")
  p:close()
  if path and path:match("/lupine[^/]*$") then return path end
  return "lupine"
end

-- The runner of a run's steps on a Slurm orchestrator (o, its row), for
-- the run spec's nodes of build (init.lua): { step = spec.fresh, finish =
-- called when the run has ended }. Each node that is not kept local gets
-- its sbatch options; its timeout moves into its job (`lupine exec` keeps
-- it, a job may wait in the queue for long first).
function M.runner(build, o)
  local exec = require "lupine.exec"
  local resources = require "lupine.resources"
  -- (a run's jobs are named before the run has an id: by a token of their own)
  local token = core.hash(core.now() .. tostring({}) .. math.random()):sub(8, 23)
  local name = "lupine-" .. token
  local snap = o.work_dir .. "/queue-" .. token
  local exe, grace = program(), o.grace or 10
  for _, node in ipairs(build.nodes) do
    if node.orchestrator == o.name then
      node.sbatch = resources.sbatch_options(o, node.resources)
      node.job_timeout, node.timeout = node.timeout, nil
      -- (sbatch takes the last of --requeue and --no-requeue)
      for _, option in ipairs(node.sbatch) do
        if option == "--requeue" or option == "--no-requeue" then
          node.requeue = option == "--requeue"
        end
      end
    end
  end
  -- the jobs of a run whose coordinator died, which this one adopts: the
  -- poller watches those still queued, and they are this run's to cancel
  local adopt, names, adopted_gates = adoptable(build, o)
  table.insert(names, 1, name)
  local watched = table.concat(names, ",")
  local stop_poller = M.start_poller(watched, snap)
  local feeds = chains(build, o)
  -- the nodes a job submitted ahead with a gate follows
  local gated = {}
  for i, list in pairs(feeds) do gated[i] = build.nodes[list[1]].enable_cache end
  local runner = { name = name }
  -- What the manifest m records, made in this process as a forked worker
  -- would have made it (what the step printed, its calls); its result.
  local function replay(m)
    local calls, result, logs = exec.ingest(m)
    io.stdout:write(logs or "")
    io.stdout:flush()
    core.exec_replay(calls)
    return result
  end
  -- The result of attempt a of the dead run, adopted by step run report.step_run
  -- of run run_id, once its job wrote a manifest of a completed step (waited
  -- for while the job is queued); nil if it did not (the step runs again).
  -- A job submitted ahead that waits at its gate is told to run: its step
  -- is no cache hit here either.
  local function adopted(a, report, run_id)
    if a.queued then tell_gate(a.gate, "run") end
    if not io.open(a.manifest) and not (a.queued and M.wait(a.job, a.manifest, snap, nil, grace))
    then return nil end
    local ok, m = pcall(exec.read, a.manifest, "step manifest", exec.MANIFEST_KIND)
    -- (one its coordinator wrote for a cache hit names no work of the job's)
    if not ok or m.status ~= "completed" or m.cached then return nil end
    -- the job that made it, and the seed it ran with, are this step run's
    core.write("set_step_run_job", report.step_run, a.job, a.seed)
    return replay(rebased(m, { [a.step_run] = report.step_run, [a.run.id] = run_id }))
  end
  -- The jobs of the nodes node i alone feeds (feeds), submitted now, after
  -- its job (id, whose manifest will be at manifest): each behind the one
  -- before with afterok (Slurm starts it as soon as that one ends, and
  -- cancels it if that one fails), its spec naming its inputs by that
  -- manifest, and theirs in turn. The step run is not made yet: the spec
  -- names one of its own, which the worker the coordinator starts for the
  -- node later replaces by the real one, finding the job in the file
  -- ahead-<node>.job of the run's work dir. A job of a node with caching on
  -- waits at its gate (ahead-<node>.gate) for the coordinator's cache check
  -- (runner.cached, or the worker of a node that is no hit). A job sbatch
  -- refuses is left to be submitted when its node is ready.
  local function submit_ahead(i, id, manifest, dir, run, store)
    for _, j in ipairs(feeds[i] or {}) do
      local node, base = build.nodes[j], dir .. "/ahead-" .. j
      local own = "ahead-" .. token .. "-" .. j
      -- (a fresh seed as the coordinator draws one: recorded with the job)
      local seed = node.seed or math.tointeger(tonumber(core.hash(own):sub(8, 20), 16))
      local params = {}
      for _, a in ipairs(node.args) do
        if a.param then params[a.param] = a.value end
      end
      local outputs = setmetatable({}, { __index = function(_, k)
        return { manifest = manifest, output = k }
      end })
      local spec = exec.spec(build, j, { step_run = own, params = assert(core.encode(params)),
        seed = seed }, { [i] = outputs }, run, store)
      spec.timeout, spec.requeue, spec.manifest = node.job_timeout, node.requeue,
        base .. ".manifest"
      if node.enable_cache then spec.gate = base .. ".gate" end
      core.write_atomic(base .. ".spec", assert(core.encode(spec)))
      local options = table.move(node.sbatch, 1, #node.sbatch, 1, {})
      options[#options + 1] = "--dependency=afterok:" .. id
      options[#options + 1] = "--kill-on-invalid-dep=yes"
      local seen = M.snapshot(snap) or 0
      local job = M.submit { name = name, output = base .. ".log",
        comment = string.format("lupine run=%s step=%s ahead", run.name, node.name),
        options = options, command = { exe, "exec", "--spec", base .. ".spec" } }
      if not job then return end
      core.write_atomic(base .. ".job", table.concat({ job, own, seed, seen }, " "))
      submit_ahead(j, job, spec.manifest, dir, run, store)
    end
  end
  -- The manifest m of job id, whose step `lupine exec` stopped on a signal
  -- (scancel, a time limit, preemption), with Slurm's words: the state the
  -- job ended in (awaited in the poller's snapshots for up to grace) and
  -- what Slurm wrote in its log (log), as a job that ends without a
  -- manifest gets.
  local function stopped(id, m, log)
    local job
    for _ = 1, grace * 10 do
      local _, jobs = M.snapshot(snap)
      job = jobs and jobs[id]
      if job and ended[job.state] then break end
      core.sleep(0.1)
    end
    if job and ended[job.state] then
      local reason = job.reason ~= "None" and job.reason ~= "" and (", reason " .. job.reason)
        or ""
      m.error = string.format("%s; its Slurm job %s ended %s%s", m.error, id, job.state, reason)
    end
    local said = {}
    for line in (read(log) or ""):gmatch("[^\n]+") do
      if line:find("^slurmstepd") then said[#said + 1] = line .. "\n" end
    end
    m.logs = (m.logs or "") .. table.concat(said)
    return m
  end
  -- Wait for job id's manifest (its log at log; seen: the poller's last
  -- snapshot before it was submitted); what it records, for the step run
  -- that ids maps the manifest's own to (nil: the same). failed(why): a
  -- failed result. catalog: the spec's catalog snapshot, released once the
  -- job has ended. nap: M.wait's.
  local function waited(id, manifest, log, seen, ids, failed, catalog, nap)
    local ok, why = M.wait(id, manifest, snap, seen, grace, nap)
    if catalog then core.exec_release(catalog) end
    if not ok then
      -- what Slurm and the job said (a time limit, a node's failure)
      io.stdout:write(read(log) or "")
      return failed(why)
    end
    local m = exec.read(manifest, "step manifest", exec.MANIFEST_KIND)
    if m.signal then m = stopped(id, m, log) end
    return replay(ids and rebased(m, ids) or m)
  end
  -- In the forked worker of node i: write its spec, submit its job, wait
  -- for the manifest and make the calls it records, as a forked worker
  -- would have made them; its result. nil for a node kept local.
  function runner.step(i, report, results, run_id, run_name, store)
    local node = build.nodes[i]
    if node.orchestrator ~= o.name then return nil end
    -- a job submitted ahead behind this one waits at its gate for the
    -- coordinator, which records this step once its manifest is seen:
    -- looked for every 10 ms (the next link's job starts as soon as this
    -- one ends, and would wait)
    local nap = gated[i] and 0.01 or nil
    local function failed(why)
      io.stdout:flush()
      return { kind = "result", ok = false,
        error = string.format("step '%s' (%s): %s", node.name, node.where, why) }
    end
    local dir = o.work_dir .. "/" .. run_id
    local ok, why = core.check_store_path(dir)
    if not ok then return failed("work dir: " .. why) end
    -- submitted ahead: its first attempt is that job (a retry is submitted
    -- afresh), which ran with its own seed
    local ahead = dir .. "/ahead-" .. i
    local job, own, seed, seen = (read(ahead .. ".job") or ""):match("^(%d+) (%S+) (%S+) (%d+)$")
    if job then
      -- (recorded first: a coordinator killed in between leaves the job to
      -- the next, found by one or the other)
      core.write("set_step_run_job", report.step_run, job, math.tointeger(seed))
      os.remove(ahead .. ".job")
      -- no cache hit: the job may run the step (records first)
      if node.enable_cache then core.write_atomic(ahead .. ".gate", "run") end
      -- Its job had no catalog to read (submitted before the step before it
      -- was recorded, it would have read the catalog without that step's
      -- records): a step that reads stopped at its first read, and is
      -- submitted again below, its reads answered as for any job. So is a
      -- step whose job did not run it, having waited at its gate too long.
      local done = M.wait(job, ahead .. ".manifest", snap, tonumber(seen), grace, nap)
      local m = done and exec.read(ahead .. ".manifest", "step manifest", exec.MANIFEST_KIND)
      if not done or not (m.status == "failed" and (m.gate
          or (m.error or ""):find("cannot reach the catalog", 1, true))) then
        return waited(job, ahead .. ".manifest", ahead .. ".log", tonumber(seen),
          { [own] = report.step_run }, failed, nil, nap)
      end
    end
    -- a retry is a new attempt: files of its own
    local base, n = dir .. "/" .. report.step_run, 1
    while io.open(base .. "." .. n .. ".spec") do n = n + 1 end
    base = base .. "." .. n
    local spec = exec.spec(build, i, report, results, { id = run_id, name = run_name }, store,
      dir)
    spec.timeout, spec.requeue = node.job_timeout, node.requeue
    local a = adopt(spec)
    if a and node.seed ~= nil and node.seed ~= a.seed then
      tell_gate(a.gate, "stop")
      a = nil
    end
    if a then
      local result = adopted(a, report, run_id)
      if result then return result end
    end
    spec.manifest = base .. ".manifest"
    core.write_atomic(base .. ".spec", assert(core.encode(spec)))
    local seen = M.snapshot(snap)
    local id
    id, why = M.submit { name = name, output = base .. ".log",
      comment = string.format("lupine run=%s step_run=%s step=%s", run_name, report.step_run,
        node.name),
      options = node.sbatch, command = { exe, "exec", "--spec", base .. ".spec" } }
    if not id then return failed(why) end
    core.write("set_step_run_job", report.step_run, id)
    submit_ahead(i, id, spec.manifest, dir, { id = run_id, name = run_name }, store)
    return waited(id, spec.manifest, base .. ".log", seen, nil, failed, spec.catalog, nap)
  end
  -- In the coordinator: node i is a cache hit (outputs: its results, {
  -- hash, size, kind, store } each; the run's id and store id). A job
  -- submitted ahead for it waits at its gate: the manifest the next link's
  -- job reads its inputs from is written first, naming the outputs the hit
  -- reuses as a completed job's would, and the job is told to skip the
  -- step. An output in another store than the run's (the next link's spec
  -- names the run's alone) stops the job instead, and with it the jobs
  -- behind it, whose nodes are then submitted when ready. Which nodes have
  -- no job ahead is known without looking: a chain's first, and each after
  -- a hit that had none (a chain run again hits at every step). A killed
  -- run's job submitted ahead for the node, waiting at its gate, stops.
  local fed_by, jobless = {}, {}
  for i, list in pairs(feeds) do
    for _, j in ipairs(list) do fed_by[j] = i end
  end
  local function unchain(i, dir)
    for _, j in ipairs(feeds[i] or {}) do
      os.remove(dir .. "/ahead-" .. j .. ".job")
      unchain(j, dir)
    end
  end
  function runner.cached(i, outputs, run_id, store)
    local node = build.nodes[i]
    tell_gate(adopted_gates[node.name], "stop")
    if not fed_by[i] or jobless[fed_by[i]] then
      jobless[i] = true
      return
    end
    local dir = o.work_dir .. "/" .. run_id
    local ahead = dir .. "/ahead-" .. i
    local own = (read(ahead .. ".job") or ""):match("^%d+ (%S+) ")
    if not own then
      jobless[i] = true
      return
    end
    os.remove(ahead .. ".job")
    local m = { format = exec.FORMAT, kind = exec.MANIFEST_KIND, step_run = own, store = store,
      status = "completed", cached = true, outputs = {}, calls = {}, logs = "" }
    for k, out in ipairs(outputs) do
      if (out.store or store) ~= store then
        core.write_atomic(ahead .. ".gate", "stop")
        jobless[i] = true
        return unchain(i, dir)
      end
      m.outputs[k] = { name = node.outputs[k].name, object = { hash = out.hash, size = out.size },
        value_type = out.kind }
    end
    core.write_atomic(ahead .. ".manifest", assert(core.encode(m)))
    core.write_atomic(ahead .. ".gate", "skip")
  end
  -- The run (its id, if it was made) has ended: nothing waits for its jobs
  -- any more (a job still queued belongs to a step stopped or failed), nor
  -- reads the catalog's snapshots made for them.
  function runner.finish(run_id)
    stop_poller()
    M.cancel(watched)
    if run_id then os.execute("rm -f " .. quote(o.work_dir .. "/" .. run_id) .. "/catalog.*.db") end
  end
  return runner
end

return M
