-- SPDX-License-Identifier: MIT
-- Runs on a stack whose orchestrator is Slurm, on a real one-node cluster
-- (tests/services/slurm.sh): each step a job running `lupine exec`. They
-- record what a local run records (versions, values, lineage, metadata,
-- tags, logs, the cache); retries resubmit; a job that ends without a
-- result fails its step with Slurm's reason (cancelled from outside, its
-- node down, its Slurm time limit); a requeued job still gives its
-- result; Ctrl-C cancels the run's jobs; the step's own timeout holds; one
-- squeue call a pass serves the whole run.
local H = require "helper"

local SCRIPT = [[
local lupine = require "lupine"
local make = lupine.step("make", function(n)
  print("making " .. n)
  local xs = {}
  for i = 1, n do xs[i] = i * i end
  return xs
end)
local double = lupine.step { name = "double", outputs = { "doubled", "count" },
  resources = { cpus = 1, mem = 64 }, function(xs, scale)
  local ctx = lupine.get_step_context()
  ctx:add_output_tags("doubled", { "fresh" })
  lupine.save_artifact({ scale = scale }, "settings")
  local out = {}
  for i = #xs, 1, -1 do out[#out + 1] = scale * xs[i] end
  ctx:add_output_metadata("doubled", { size = #out })
  lupine.log_metadata { metadata = { note = "hi" } }
  return out, #out + math.random(1000)
end }
local sum = lupine.step("sum", function(xs, k)
  local s = k
  for _, x in ipairs(xs) do s = s + x end
  return s
end)
local small = lupine.step { name = "small", orchestrator = "local", function(a, b, c)
  return a + b + c
end }
lupine.pipeline("p", function(n)
  local d = double(make(n), 2)
  small(sum(d, 1), sum(d, 2), sum(d, 3))
end):with_options { seed = 7 }(5)
]]

-- A step that marks its start, then waits (and waits again if what it
-- waits with is stopped: only its own end ends it).
local HOLD = [[
local lupine = require "lupine"
local hold = lupine.step("hold", function()
  io.open("started", "w"):close()
  while true do os.execute("sleep 60") end
end)
]]

-- The start of a script whose steps mark(name) in the file "marks" when they run.
local MARKS = [[
local lupine = require "lupine"
local function mark(name)
  local f = io.open("marks", "a")
  f:write(name, "\n")
  f:close()
end
]]

-- The five steps after the step `first` of a chain of six (the script
-- defines first before, after MARKS).
local CHAIN = [[
local next_ = lupine.step("next", function(x, k)
  mark("next")
  lupine.log_metadata { metadata = { k = k } }
  return { type(x) == "table" and x[1] + k or x + k }
end)
lupine.pipeline("chain", function()
  local x = first()
  for k = 1, 5 do x = next_(x, k) end
end)()
]]

local RECORDS = H.RECORDS

-- The sqlite3 shell's output of the query on home's catalog (psql's on
-- PostgreSQL, in its words: encode for sqlite's hex).
local function sql(home, query)
  if H.pg then query = query:gsub("hex%(([%w_.]+)%)", "upper(encode(%1, 'hex'))") end
  local out, err, code = H.sqlite(home, query)
  return code == 0 and out or error(err)
end

-- A folder with this script, and a catalog whose active stack runs steps on
-- the cluster (orch: more options of the orchestrator, as CLI flags).
local function cluster_home(script, orch)
  local dir = H.tmpdir()
  H.write(dir .. "/pipeline.lua", script)
  local home = dir .. "/home"
  for _, cmd in ipairs { "orchestrator register hpc --flavor slurm --work-dir "
      .. H.quote(dir .. "/work") .. " " .. (orch or ""),
    "stack register cluster -a default -o hpc", "stack set cluster" } do
    local _, err, code = H.lupine(home, cmd)
    assert(code == 0, err)
  end
  return dir, home
end

-- Run the script of dir with `lupine run`; stdout, stderr, status.
local function run(dir, home)
  return H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home) .. " "
    .. H.quote(H.cli) .. " run pipeline.lua")
end

-- Start the script of dir with `lupine run` in the background; the shell
-- lines that follow (with $pid the coordinator's) run meanwhile; then it is
-- waited for. Returns the coordinator's stdout and stderr, and the output
-- of the lines.
local function run_while(dir, home, lines)
  local out, err = H.sh("cd " .. H.quote(dir) .. " && { LUPINE_HOME=" .. H.quote(home) .. " "
    .. H.quote(H.cli) .. " run pipeline.lua > coordinator.out 2> coordinator.err & pid=$!; "
    .. "until [ -e started ] || ! kill -0 $pid 2>/dev/null; do sleep 0.05; done; " .. lines
    .. "; wait $pid; }")
  return H.read(dir .. "/coordinator.out"), H.read(dir .. "/coordinator.err"), out .. err
end

-- The step runs of the script's last run: name -> { status, error, attempts, job }.
local function steps(home)
  local list = {}
  for line in sql(home, "SELECT name, status, coalesce(error, ''), attempts, coalesce(job, ''),"
      .. " coalesce(orchestrator, '') FROM step_runs WHERE run_id = (SELECT id FROM"
      .. " pipeline_runs ORDER BY seq DESC LIMIT 1)"):gmatch("[^\n]+") do
    local name, status, err, attempts, job, orchestrator =
      line:match("^([^|]*)|([^|]*)|(.*)|([^|]*)|([^|]*)|([^|]*)$")
    list[name] = { status = status, error = err, attempts = tonumber(attempts), job = job,
      orchestrator = orchestrator }
  end
  return list
end

-- The folder in the work dir of the last run of home (of the script of dir).
local function last_work(dir, home)
  return dir .. "/work/" .. sql(home, "SELECT id FROM pipeline_runs ORDER BY seq DESC LIMIT 1")
    :match("[^\n]+") .. "/"
end

-- The shell lines that set $jobs to the ids of the jobs still queued or
-- running in folder dir (a run's jobs work in its folder), by squeue.
local function jobs_in(dir)
  return "jobs=$(squeue -h -t PENDING,RUNNING -o '%i %Z' | awk -v d=" .. H.quote(dir)
    .. " '$2 == d { print $1 }')"
end

-- The jobs still queued or running in folder dir: their ids, a line each.
local function live_jobs(dir)
  return (H.sh(jobs_in(dir) .. "; [ -z \"$jobs\" ] || echo \"$jobs\""))
end

-- A step past its Slurm time limit: a minute at least (Slurm rounds it up),
-- then the kill: about 75 s, while the other tests run.
local TIME_LIMIT = [[
local lupine = require "lupine"
local long = lupine.step { name = "long", resources = { time = 1 }, function()
  os.execute("sleep 300")
end }
lupine.pipeline("p", function() long() end):with_options { raise_on_failure = false }()
]]

describe("a run on a Slurm orchestrator", function()
  local stop, limited
  setup(function() _, stop = H.slurm() end)
  teardown(function() stop() end)

  -- The run past its time limit goes on beside the tests that follow the
  -- first (which takes the node down: the job would end NODE_FAIL).
  local function start_time_limited()
    local dir, home = cluster_home(TIME_LIMIT, "--grace 2")
    limited = { dir = dir, home = home }
    H.sh("(cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli)
      .. " run pipeline.lua > coordinator.out 2>&1; touch ended) </dev/null >/dev/null 2>&1 &")
  end

  it("fails an attempt whose node went down, and its retry runs once the node is back",
    function()
    local dir, home = cluster_home([[
local lupine = require "lupine"
local hold = lupine.step { name = "hold", retries = 1, function()
  local first = not io.open("started")
  io.open("started", "w"):close()
  if first then os.execute("sleep 60") end
  return first
end }
lupine.pipeline("p", function() hold() end)()
]], "--grace 1")
    local node = H.sh("sinfo -h -N -o %N"):match("[^\n]+")
    local out, err, lines = run_while(dir, home, "scontrol update nodename=" .. node
      .. " state=down reason=test; until ls work/*/*.2.spec >/dev/null 2>&1; do sleep 0.1; done;"
      .. " scontrol update nodename=" .. node .. " state=resume 2>/dev/null || true")
    local s = steps(home)
    assert.equal("completed", s.hold.status, out .. err .. lines)
    assert.equal(2, s.hold.attempts)
    assert.matches("\nstep 'hold' failed %(attempt 1%), trying again in %d+ ms: step 'hold' "
      .. "%(pipeline.lua:2%): its process was stopped by SIGTERM %(signal 15%); "
      .. "its Slurm job %d+ ended NODE_FAIL, reason NodeDown\n", out)
    -- the logs keep what Slurm said
    assert.matches("CANCELLED AT [%dT:-]+ DUE TO NODE FAILURE",
      sql(home, "SELECT output FROM step_runs"))
  end)

  it("records what a local run records, and is cached the same way the second time", function()
    start_time_limited()
    local dir, home = cluster_home(SCRIPT)
    local here = H.tmpdir() .. "/home"
    for _ = 1, 2 do
      local out, err, code = run(dir, home)
      assert.equal(0, code, out .. err)
      _, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(here) .. " "
        .. H.quote(H.cli) .. " run pipeline.lua")
      assert.equal(0, code, err)
    end
    assert.equal(sql(here, RECORDS), sql(home, RECORDS))
    -- which is a whole run's worth, then a run of cache hits
    local records = sql(home, RECORDS)
    for _, row in ipairs { "\ncompleted|make|completed||making 5\n|1|", "\ncompleted|sum_3|cached|",
      "\nsettings|1|[%w_]+|sha256:%x+|manual\n", "\ndouble|output|settings|settings|1\n",
      "\nstep_run|note|", "\nartifact_version|size|", "\nfresh|artifact_version\n" } do
      assert.truthy(records:find(row), row)
    end
    -- where each ran: the jobs, and the step kept local
    local first = sql(home, "SELECT name, orchestrator, job FROM step_runs WHERE status ="
      .. " 'completed' ORDER BY seq")
    assert.matches("^make|hpc|%d+\ndouble|hpc|%d+\nsum|hpc|%d+\nsum_2|hpc|%d+\nsum_3|hpc|%d+\n"
      .. "small|local|\n$", first)
    assert.equal("", live_jobs(dir))
  end)

  it("runs every example, recording what it records locally", function()
    for _, name in ipairs(H.examples()) do
      local dir, home = cluster_home("")
      local here = dir .. "/local"
      for _, h in ipairs { home, here } do
        local out, err, code = H.sh("cd " .. H.quote(H.root) .. " && LUPINE_HOME=" .. H.quote(h)
          .. " " .. H.quote(H.cli) .. " run examples/" .. name .. ".lua")
        assert.equal(0, code, name .. ": " .. out .. err)
      end
      -- (names and values with the time of the run or an id in them differ
      -- anyway, and seeds not set are drawn afresh)
      local function records(h)
        return (sql(h, RECORDS:gsub("s%.seed, ", "")):gsub("%d%d%d%d%d%d%d%d_?%d%d%d%d%d%d",
          "<time>"):gsub("%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x+", "<id>"))
      end
      assert.equal(records(here), records(home), name)
      -- the catalog's snapshots the jobs read are gone with the run
      assert.equal("", H.sh("ls " .. H.quote(dir) .. "/work/*/catalog.* 2>/dev/null"), name)
      -- each step that ran (troubleshooting.lua runs none) was a job
      for line in sql(home, "SELECT name, orchestrator, job FROM step_runs WHERE status <>"
          .. " 'cached'"):gmatch("[^\n]+") do
        assert.matches("^[%w_]+|hpc|%d+$", line, name)
      end
    end
  end)

  it("asks squeue once a pass for all the run's jobs, not once per job", function()
    local dir, home = cluster_home([[
local lupine = require "lupine"
local nap = lupine.step("nap", function(i) os.execute("sleep 1.5") return i end)
lupine.pipeline("p", function() for i = 1, 10 do nap(i) end end)()
]])
    -- every squeue the run starts leaves a line
    H.write(dir .. "/squeue", "#!/bin/sh\necho x >> " .. H.quote(dir .. "/calls")
      .. "\nexec " .. H.sh("command -v squeue"):match("[^\n]+") .. " \"$@\"\n")
    os.execute("chmod +x " .. H.quote(dir .. "/squeue"))
    local out, err = H.sh("cd " .. H.quote(dir) .. " && t0=$(date +%s.%N) && PATH=" .. H.quote(dir)
      .. ":$PATH LUPINE_HOME=" .. H.quote(home) .. " " .. H.quote(H.cli) .. " run pipeline.lua"
      .. " >/dev/null && echo \"$(date +%s.%N) - $t0\" | bc")
    local seconds = assert(tonumber(out:match("[%d.]+")), err)
    local calls = select(2, H.read(dir .. "/calls"):gsub("\n", ""))
    -- a pass every half second (and one more that may start as the run ends)
    assert.is_true(calls >= 1 and calls <= seconds / 0.5 + 2, calls .. " calls in " .. seconds .. " s")
  end)

  it("resubmits a failing step for its retries, and fails it with the user's line", function()
    local dir, home = cluster_home([[
local lupine = require "lupine"
local flaky = lupine.step { name = "flaky", retries = 2, function()
  local f = io.open("tries", "a+")
  local n = #f:read("a") + 1
  f:write("x")
  f:close()
  if n < 3 then error("attempt " .. n .. " failed") end
  return n
end }
local broken = lupine.step("broken", function() error("never works") end)
lupine.pipeline("p", function() flaky() broken() end):with_options { raise_on_failure = false }()
]])
    local out, err, code = run(dir, home)
    assert.equal(1, code, err)
    assert.matches("1 done, 1 failed", out)
    local s = steps(home)
    assert.equal("completed", s.flaky.status)
    assert.equal(3, s.flaky.attempts)
    assert.equal("failed", s.broken.status)
    assert.equal("step 'broken' (pipeline.lua:10) failed: pipeline.lua:10: never works",
      s.broken.error)
    -- each attempt a job of its own, with its own files
    local work = H.sh("ls " .. H.quote(dir .. "/work") .. "/*/ | sort")
    assert.equal(3, select(2, work:gsub("%.spec\n", "")) - 1)
    assert.matches("%d+", s.flaky.job)
    assert.equal("xxx", H.read(dir .. "/tries"))
  end)

  it("fails a step whose job was cancelled from outside, from the manifest its job wrote",
    function()
    -- (a job that wrote none would be failed only after the grace)
    local dir, home = cluster_home(HOLD .. [[
lupine.pipeline("p", function() hold() end):with_options { raise_on_failure = false }()
]], "--grace 20")
    run_while(dir, home, jobs_in(dir) .. "; scancel $jobs")
    local s = steps(home)
    assert.equal("failed", s.hold.status)
    assert.equal("step 'hold' (pipeline.lua:2): its process was stopped by SIGTERM (signal 15); its Slurm job " .. s.hold.job .. " ended CANCELLED", s.hold.error)
    assert.matches("CANCELLED AT [%dT:-]+ %*%*%*", sql(home, "SELECT output FROM step_runs"))
  end)

  it("stops on Ctrl-C and cancels the run's jobs", function()
    local dir, home = cluster_home(HOLD .. [[
local later = lupine.step("later", function(x) return x end)
lupine.pipeline("p", function() later(hold()) end)()
]])
    local out, err = run_while(dir, home, "kill -INT $pid")
    assert.equal("stopped\n", sql(home, "SELECT status FROM pipeline_runs"), out .. err)
    assert.equal("", live_jobs(dir))
  end)

  it("adopts the jobs of a run whose coordinator was killed: no step runs twice", function()
    local script = MARKS .. [[
local first = lupine.step("first", function() mark("first") return 1 end)
local short = lupine.step("short", function(x)
  mark("short")
  os.execute("sleep 1")
  return x + 1
end)
local long = lupine.step("long", function(x)
  mark("long")
  io.open("started", "w"):close()
  os.execute("sleep 8")
  lupine.log_metadata { metadata = { slow = true } }
  return x + 2
end)
local last = lupine.step("last", function(a, b) mark("last") return a + b end)
lupine.pipeline("p", function()
  local x = first()
  last(short(x), long(x))
end)()
]]
    local dir, home = cluster_home(script)
    -- killed while both jobs run; started again once the short one has ended
    local _, _, lines = run_while(dir, home, "until [ \"$(grep -c short marks)\" = 1 ]; do "
      .. "sleep 0.05; done; kill -9 $pid; until [ \"$(ls work/*/*.manifest | wc -l)\" = 2 ]; do "
      .. "sleep 0.05; done; sleep 0.5; " .. jobs_in(dir) .. "; echo \"$jobs\"")
    assert.matches("^%d+\n$", lines)   -- the long step's job, still running
    local out, err, code = run(dir, home)
    assert.equal(0, code, out .. err)
    -- each step's body ran once
    assert.equal("first\nlong\nshort\nlast\n", (H.read(dir .. "/marks"):gsub("short\nlong",
      "long\nshort")))
    local runs = sql(home, "SELECT status, coalesce(error, '') FROM pipeline_runs ORDER BY seq")
    assert.matches("^failed|the process running it %(pid %d+%) ended before the run did\n"
      .. "completed|\n$", runs)
    local s = steps(home)
    assert.equal("cached", s.first.status)
    for _, name in ipairs { "short", "long", "last" } do
      assert.equal("completed", s[name].status, name)
    end
    -- the jobs adopted are the killed run's, with the seeds they ran with
    local old = sql(home, "SELECT s.name, s.job, s.seed FROM step_runs s JOIN pipeline_runs r"
      .. " ON r.id = s.run_id WHERE r.status = 'failed' AND s.name IN ('long', 'short')"
      .. " ORDER BY s.name")
    local new = sql(home, "SELECT s.name, s.job, s.seed FROM step_runs s JOIN pipeline_runs r"
      .. " ON r.id = s.run_id WHERE r.status = 'completed' AND s.name IN ('long', 'short')"
      .. " ORDER BY s.name")
    assert.equal(old, new)
    -- what an uninterrupted run records: versions, values, lineage, metadata
    local here = H.tmpdir() .. "/home"
    local whole = H.tmpdir()
    H.write(whole .. "/pipeline.lua", script)
    _, err, code = H.sh("cd " .. H.quote(whole) .. " && LUPINE_HOME=" .. H.quote(here) .. " "
      .. H.quote(H.cli) .. " run pipeline.lua")
    assert.equal(0, code, err)
    local function records(h)
      return sql(h, "SELECT a.name, v.version, v.content_hash FROM artifact_versions v JOIN"
        .. " artifacts a ON a.id = v.artifact_id ORDER BY 1, 2;"
        .. " SELECT s.name, l.kind, l.name, a.name, v.version FROM step_run_artifacts l"
        .. " JOIN step_runs s ON s.id = l.step_run_id JOIN artifact_versions v ON v.seq ="
        .. " l.version_seq JOIN artifacts a ON a.id = v.artifact_id JOIN pipeline_runs r ON"
        .. " r.id = s.run_id WHERE r.status = 'completed' ORDER BY 1, 2, 3;"
        .. " SELECT entity, key, hex(value) FROM run_metadata ORDER BY 1, 2")
    end
    assert.equal(records(here), records(home))
    assert.equal("", live_jobs(dir))
  end)

  it("adopts a killed run's jobs submitted ahead, which the run had not reached", function()
    local dir, home = cluster_home(MARKS .. [[
local first = lupine.step("first", function() mark("first") return 1 end)
local a = lupine.step { name = "a", enable_cache = false, function(x)
  mark("a")
  io.open("started", "w"):close()
  os.execute("sleep 3")
  return x + 1
end }
local b = lupine.step { name = "b", enable_cache = false, function(x) mark("b") return x * 10 end }
lupine.pipeline("p", function() b(a(first())) end)()
]])
    -- killed while a runs (once first has ended), b's job waiting behind
    -- it; started again at once
    run_while(dir, home, "until grep -q \"^step 'first' completed\" coordinator.out; do "
      .. "sleep 0.05; done; kill -9 $pid")
    local out, err, code = run(dir, home)
    assert.equal(0, code, out .. err)
    assert.equal("first\na\nb\n", H.read(dir .. "/marks"))
    local s = steps(home)
    -- (first's end may be shown before its records are committed: then its
    -- job is adopted too, and its step completed rather than cached)
    assert.truthy(s.first.status == "cached" or s.first.status == "completed", s.first.status)
    assert.equal("completed", s.a.status)
    assert.equal("completed", s.b.status)
    -- the killed run's jobs, b's submitted ahead
    assert.matches("^ahead%-3%.spec\n", H.sh("ls " .. H.quote(dir .. "/work") .. "/*/ | grep "
      .. "'^ahead-3.spec'"))
    assert.equal(sql(home, "SELECT job FROM step_runs WHERE name = 'a' ORDER BY seq LIMIT 1"),
      s.a.job .. "\n")
    assert.equal(tonumber(s.a.job) + 1, tonumber(s.b.job))
    assert.equal("", live_jobs(dir))
  end)

  it("adopts a killed run's job waiting at its gate (caching on), telling it to run; or to "
    .. "stop, when its step changed", function()
    local script = MARKS .. [[
local first = lupine.step("first", function() mark("first") return 1 end)
local a = lupine.step("a", function(x)
  mark("a")
  io.open("started", "w"):close()
  os.execute("sleep 3")
  return x + 1
end)
local b = lupine.step("b", function(x) mark("b") return x * 10 end)
lupine.pipeline("p", function() b(a(first())) end)()
]]
    for _, changed in ipairs { false, true } do
      local dir, home = cluster_home(script)
      -- killed while a runs, b's job waiting behind it (and then at its
      -- gate, which that coordinator never opens)
      run_while(dir, home, "until grep -q \"^step 'first' completed\" coordinator.out; do "
        .. "sleep 0.05; done; kill -9 $pid")
      local killed = H.sh("ls -d " .. H.quote(dir .. "/work") .. "/*/"):match("[^\n]+")
      assert.equal("run", H.read(killed .. "ahead-2.gate"))
      assert.is_nil(H.read(killed .. "ahead-3.gate"))
      if changed then H.write(dir .. "/pipeline.lua", (script:gsub("x %* 10", "x * 20"))) end
      local out, err, code = run(dir, home)
      assert.equal(0, code, out .. err)
      assert.equal(changed and "stop" or "run", H.read(killed .. "ahead-3.gate"))
      assert.equal("first\na\nb\n", H.read(dir .. "/marks"))
      local s = steps(home)
      assert.equal("completed", s.a.status)
      assert.equal("completed", s.b.status)
      -- (its own job, submitted when its step was ready, once a's had ended)
      assert.equal(not changed, tonumber(s.a.job) + 1 == tonumber(s.b.job))
      assert.equal("", live_jobs(dir))
    end
  end)

  it("adopts the jobs of the run --resume names, not the latest run's", function()
    local dir, home = cluster_home(MARKS .. [[
local long = lupine.step("long", function()
  mark("long")
  io.open("started", "w"):close()
  os.execute("sleep 4")
  return 2
end)
lupine.pipeline("p", function() long() end)()
]])
    run_while(dir, home, "kill -9 $pid")
    -- a run of another script of the same pipeline since then: the latest
    H.write(dir .. "/other.lua", [[
local lupine = require "lupine"
local quick = lupine.step("quick", function() return 1 end)
lupine.pipeline("p", function() quick() end)()
]])
    local _, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " run other.lua")
    assert.equal(0, code, err)
    local killed = sql(home, "SELECT name FROM pipeline_runs ORDER BY seq LIMIT 1"):match("[^\n]+")
    local out
    out, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " run --resume " .. H.quote(killed) .. " pipeline.lua")
    assert.equal(0, code, out .. err)
    assert.equal("long\n", H.read(dir .. "/marks"))
    assert.equal("completed", steps(home).long.status)
    -- a run that is not there
    out, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home) .. " "
      .. H.quote(H.cli) .. " run --resume nosuch pipeline.lua")
    assert.equal(1, code)
    assert.equal("lupine: pipeline.lua:13: --resume: pipeline run 'nosuch' not found\n", err)
    -- nor one whose coordinator is alive
    dir, home = cluster_home(HOLD .. [[
lupine.pipeline("p", function() hold() end)()
]])
    local _, _, lines = run_while(dir, home, "name=$(sed -n \"s/^run '\\([^']*\\)' of .*/\\1/p\" "
      .. "coordinator.out); LUPINE_HOME=home " .. H.quote(H.cli)
      .. " run --resume \"$name\" pipeline.lua 2>&1; kill -INT $pid")
    assert.matches("^lupine: pipeline.lua:6: %-%-resume: pipeline run 'p%-[%d-]+' is still "
      .. "running: its coordinator waits for its jobs\n$", lines)
  end)

  it("submits a chain ahead with caching off, each job behind the one before", function()
    local chain = MARKS .. [[
local first = lupine.step("first", function() return 0 end)
]] .. CHAIN
    local dir, home = cluster_home(chain)
    local out, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home)
      .. " " .. H.quote(H.cli) .. " run --no-cache pipeline.lua")
    assert.equal(0, code, out .. err)
    local here = H.tmpdir() .. "/home"
    _, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(here) .. " "
      .. H.quote(H.cli) .. " run --no-cache pipeline.lua")
    assert.equal(0, code, err)
    -- (the seeds are drawn afresh)
    local records = RECORDS:gsub("s%.seed, ", "")
    assert.equal(sql(here, records), sql(home, records))
    -- nodes 2 to 6 were submitted as node 1 was, each depending on the one before
    local work = H.sh("cd " .. H.quote(dir .. "/work") .. " && ls */ | grep ahead | sort")
    assert.equal("ahead-2.log\nahead-2.manifest\nahead-2.spec\nahead-3.log\nahead-3.manifest\n"
      .. "ahead-3.spec\nahead-4.log\nahead-4.manifest\nahead-4.spec\nahead-5.log\n"
      .. "ahead-5.manifest\nahead-5.spec\nahead-6.log\nahead-6.manifest\nahead-6.spec\n", work)
    local jobs = sql(home, "SELECT job FROM step_runs ORDER BY seq")
    local ids = {}
    for id in jobs:gmatch("%d+") do ids[#ids + 1] = tonumber(id) end
    assert.equal(6, #ids)
    for k = 2, 6 do assert.equal(ids[k - 1] + 1, ids[k]) end
    -- (no step may be a cache hit: no job waits for word of it)
    assert.equal("", H.sh("ls " .. H.quote(dir .. "/work") .. "/*/ | grep gate"))
    -- not the steps of a fan-out (all would run at once, whatever the stack's jobs)
    local dir3, home3 = cluster_home((chain:gsub("for k = 1, 5 do x = next_%(x, k%) end",
      "next_(x, 1) next_(x, 2)")))
    _, err, code = H.sh("cd " .. H.quote(dir3) .. " && LUPINE_HOME=" .. H.quote(home3) .. " "
      .. H.quote(H.cli) .. " run --no-cache pipeline.lua")
    assert.equal(0, code, err)
    assert.equal("3\n", sql(home3, "SELECT count(*) FROM step_runs WHERE status = 'completed'"))
    assert.equal("", H.sh("ls " .. H.quote(dir3 .. "/work") .. "/*/ | grep ahead"))
  end)

  it("submits a chain ahead with caching on, each job waiting at its gate for the cache check; "
    .. "run again, it runs no step", function()
    local chain = MARKS .. [[
local first = lupine.step("first", function()
  mark("first")
  io.open("started", "w"):close()
  return os.execute("sleep 1") and 0
end)
]] .. CHAIN
    local dir, home = cluster_home(chain)
    -- while the first step runs, the jobs of the five after it wait in the
    -- queue, each for the one before
    local out, err, lines = run_while(dir, home, "for i in $(seq 40); do n=$(squeue -h -t PD "
      .. "-o '%Z %r' | awk -v d=" .. H.quote(dir) .. " '$1 == d && $2 == \"Dependency\"' | "
      .. "wc -l); [ $n = 5 ] && break; sleep 0.05; done; echo $n")
    assert.equal("5\n", lines, out .. err)
    assert.matches("completed in [%d.]+ m?s: 6 done\n$", out)
    local here = H.tmpdir() .. "/home"
    local code
    _, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(here) .. " "
      .. H.quote(H.cli) .. " run pipeline.lua")
    assert.equal(0, code, err)
    local records = RECORDS:gsub("s%.seed, ", "")
    assert.equal(sql(here, records), sql(home, records))
    -- every job was submitted with the first, each behind the one before,
    -- and told to run once its step was found no cache hit
    local ids = {}
    for id in sql(home, "SELECT job FROM step_runs ORDER BY seq"):gmatch("%d+") do
      ids[#ids + 1] = tonumber(id)
    end
    assert.equal(6, #ids)
    for k = 2, 6 do assert.equal(ids[k - 1] + 1, ids[k]) end
    local work = H.sh("ls -d " .. H.quote(dir .. "/work") .. "/*/"):match("[^\n]+")
    for k = 2, 6 do assert.equal("run", H.read(work .. "ahead-" .. k .. ".gate")) end
    -- (and the local run's)
    local marks = ("first\nnext\nnext\nnext\nnext\nnext\n"):rep(2)
    assert.equal(marks, H.read(dir .. "/marks"))
    -- run again: every step a cache hit, no job, no step run
    H.rm(dir .. "/started")
    out, err, code = run(dir, home)
    assert.equal(0, code, out .. err)
    for name, s in pairs(steps(home)) do
      assert.equal("cached", s.status, name)
      assert.equal("", s.job, name)
    end
    assert.equal(marks, H.read(dir .. "/marks"))
    assert.equal("", live_jobs(dir))
  end)

  it("tells the jobs submitted ahead of cache hits to skip their steps, the job after them "
    .. "reading what the hits reuse", function()
    local script = MARKS .. [[
local first = lupine.step { name = "first", enable_cache = false, function()
  mark("first")
  return 1
end }
local next_ = lupine.step("next", function(x)
  mark("next")
  return { (type(x) == "table" and x[1] or x) + 1 }
end)
local last = lupine.step("last", function(x, k) mark("last") return x[1] * k end)
lupine.pipeline("chain", function() last(next_(next_(first())), K) end)()
]]
    local dir, home = cluster_home((script:gsub("K%)", "10)")))
    local here = H.tmpdir() .. "/home"
    for _, k in ipairs { "10", "100" } do
      H.write(dir .. "/pipeline.lua", (script:gsub("K%)", k .. ")")))
      for _, h in ipairs { home, here } do
        local out, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(h)
          .. " " .. H.quote(H.cli) .. " run pipeline.lua")
        assert.equal(0, code, out .. err)
      end
    end
    local records = RECORDS:gsub("s%.seed, ", "")
    assert.equal(sql(here, records), sql(home, records))
    local s = steps(home)
    assert.equal("completed", s.first.status)
    assert.equal("cached", s.next.status)
    assert.equal("cached", s.next_2.status)
    assert.equal("completed", s.last.status)
    -- the first run's four bodies and the local run's, then first and last twice
    assert.equal("first\nnext\nnext\nlast\nfirst\nnext\nnext\nlast\nfirst\nlast\nfirst\n"
      .. "last\n", H.read(dir .. "/marks"))
    -- the second run: its jobs submitted ahead of next and next_2 skipped theirs, and that
    -- of last ran, behind them
    local work = last_work(dir, home)
    assert.equal("skip", H.read(work .. "ahead-2.gate"))
    assert.equal("skip", H.read(work .. "ahead-3.gate"))
    assert.equal("", live_jobs(dir))
    -- (last's job, the fourth submitted with first's)
    assert.equal(tonumber(s.first.job) + 3, tonumber(s.last.job))
    assert.equal("run", H.read(work .. "ahead-4.gate"))
  end)

  it("stops the job submitted ahead of a cache hit whose outputs are in another store, and "
    .. "submits the steps after it when ready", function()
    local script = MARKS .. [[
local first = lupine.step { name = "first", enable_cache = false, function() return 1 end }
local next_ = lupine.step("next", function(x) mark("next") return x + 1 end)
local last = lupine.step("last", function(x, k) mark("last") return x * k end)
lupine.pipeline("chain", function() last(next_(first()), K) end)()
]]
    local dir, home = cluster_home((script:gsub("K%)", "10)")))
    local out, err, code = run(dir, home)
    assert.equal(0, code, out .. err)
    -- the same orchestrator, another store: next's hit reuses the first one's version
    for _, cmd in ipairs { "artifact-store register other --flavor local --path "
        .. H.quote(dir .. "/other"), "stack register moved -a other -o hpc", "stack set moved" } do
      _, err, code = H.lupine(home, cmd)
      assert.equal(0, code, err)
    end
    H.write(dir .. "/pipeline.lua", (script:gsub("K%)", "100)")))
    out, err, code = run(dir, home)
    assert.equal(0, code, out .. err)
    local s = steps(home)
    assert.same({ "completed", "cached", "completed" },
      { s.first.status, s.next.status, s.last.status })
    assert.equal("next\nlast\nlast\n", H.read(dir .. "/marks"))
    local work = last_work(dir, home)
    assert.equal("stop", H.read(work .. "ahead-2.gate"))
    -- last's job was submitted when its step was ready, not ahead (then cancelled by Slurm)
    assert.is_nil(H.read(work .. "ahead-3.gate"))
    assert.truthy(tonumber(s.last.job) > tonumber(s.first.job) + 2)
    H.write(dir .. "/show.lua", "print(require('lupine').load_artifact('chain::last::output'))")
    assert.equal("200\n", H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home)
      .. " " .. H.quote(H.cli) .. " run show.lua"))
    assert.equal("", live_jobs(dir))
  end)

  it("submits again a step submitted ahead that reads the catalog, its reads answered",
    function()
    local script = [[
local lupine = require "lupine"
local first = lupine.step("first", function() return 1 end)
local reader = lupine.step("reader", function(x)
  return x + lupine.Client():get_artifact_version("chain::first::output").version
end)
lupine.pipeline("chain", function() reader(first()) end)()
]]
    local dir, home = cluster_home(script)
    local here = H.tmpdir() .. "/home"
    for _, h in ipairs { home, here } do
      local out, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(h)
        .. " " .. H.quote(H.cli) .. " run --no-cache pipeline.lua")
      assert.equal(0, code, out .. err)
    end
    local records = RECORDS:gsub("s%.seed, ", "")
    assert.equal(sql(here, records), sql(home, records))
    assert.matches("ahead%-2%.spec", H.sh("ls " .. H.quote(dir .. "/work") .. "/*/"))
    assert.equal(1, steps(home).reader.attempts)
  end)

  it("cancels the jobs submitted ahead of a step that fails, and skips their steps", function()
    local dir, home = cluster_home(MARKS .. [[
local first = lupine.step("first", function()
  mark("first")
  os.execute("sleep 1")
  error("no good")
end)
local next_ = lupine.step("next", function(x) mark("next") return x + 1 end)
lupine.pipeline("chain", function() next_(next_(first())) end)
  :with_options { raise_on_failure = false }()
]], "--grace 30")
    local out, err, code = H.sh("cd " .. H.quote(dir) .. " && LUPINE_HOME=" .. H.quote(home)
      .. " " .. H.quote(H.cli) .. " run --no-cache pipeline.lua")
    assert.equal(1, code, out .. err)
    local s = steps(home)
    assert.equal("failed", s.first.status)
    assert.equal("skipped", s.next.status)
    assert.equal("skipped", s.next_2.status)
    assert.equal("first\n", H.read(dir .. "/marks"))
    -- both jobs were submitted, and Slurm cancelled them
    local states = H.sh("squeue -h -t all -o '%j %T %r' | grep " .. H.quote(H.sh("squeue -h -t all"
      .. " -o %j -j " .. s.first.job):match("[^\n]+")) .. " | sort")
    assert.equal(3, select(2, states:gsub("\n", "")), states)
    assert.equal(2, select(2, states:gsub("CANCELLED", "")), states)
    assert.equal("", live_jobs(dir))
  end)

  it("holds the step's own timeout", function()
    local dir, home = cluster_home([[
local lupine = require "lupine"
local slow = lupine.step { name = "slow", timeout = 0.5, function() os.execute("sleep 30") end }
lupine.pipeline("p", function() slow() end):with_options { raise_on_failure = false }()
]])
    run(dir, home)
    assert.equal("step 'slow' (pipeline.lua:2): ran past its timeout of 0.5 s and was stopped",
      steps(home).slow.error)
  end)

  it("gets the result of a job requeued while it ran (--requeue)", function()
    local dir, home = cluster_home([[
local lupine = require "lupine"
local once = lupine.step("once", function()
  local restarts = os.getenv("SLURM_RESTART_COUNT") or "0"
  io.open("started", "w"):close()
  if restarts == "0" then os.execute("sleep 60") end
  return tonumber(restarts)
end)
lupine.pipeline("p", function() once() end)()
]], "--requeue")
    local out, err = run_while(dir, home, jobs_in(dir) .. "; scontrol requeue $jobs")
    local s = steps(home)
    assert.equal("completed", s.once.status, out .. err)
    assert.equal(1, s.once.attempts)
    assert.equal("1\n", sql(home, "SELECT count(*) FROM artifact_versions"))
  end)

  it("fails a step past its Slurm time limit, in Slurm's words (started first)", function()
    local dir = limited.dir
    H.sh("until [ -e " .. H.quote(dir .. "/ended") .. " ]; do sleep 0.5; done")
    local s = steps(limited.home)
    assert.equal("step 'long' (pipeline.lua:2): its process was stopped by SIGTERM (signal 15); its Slurm job " .. s.long.job .. " ended TIMEOUT, reason "
      .. "TimeLimit", s.long.error,
      H.read(dir .. "/coordinator.out"))
    assert.matches("CANCELLED AT [%dT:-]+ DUE TO TIME LIMIT", sql(limited.home,
      "SELECT output FROM step_runs"))
  end)
end)
