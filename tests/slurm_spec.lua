-- SPDX-License-Identifier: MIT
-- lupine.slurm against a real one-node cluster (tests/services/slurm.sh):
-- submitting jobs, one poller for a run's jobs, waiting for a result or
-- learning in Slurm's words why a job ended without one, cancelling.
local H = require "helper"
require "lupine"
local slurm = require "lupine.slurm"

describe("lupine.slurm", function()
  local stop, dir, stop_poller
  setup(function()
    _, stop = H.slurm()
    slurm.conf = H.slurm_conf
  end)
  teardown(function()
    stop()
    slurm.conf = nil
  end)
  before_each(function() dir = H.tmpdir() end)
  after_each(function()
    if stop_poller then stop_poller() end
    stop_poller = nil
  end)

  -- The poller of the jobs of this name: its snapshot file.
  local function watch(name)
    local snap = dir .. "/queue"
    stop_poller = slurm.start_poller(name, snap)
    return snap
  end

  local function job(name, command, extra)
    local opts = { name = name, output = dir .. "/" .. name .. ".log",
      command = { "sh", "-c", "cd " .. H.quote(dir) .. " && exec \"$@\"", "sh",
        table.unpack(command) }, options = { "--no-requeue" } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return slurm.submit(opts)
  end

  it("submits a job that writes its result, and waits for it", function()
    local name = "lupine-t1"
    local snap = watch(name)
    local id = assert(job(name, { "sh", "-c", "echo hello; echo done > result.tmp && "
      .. "mv result.tmp result" }, { comment = "run=r step_run=s" }))
    assert.matches("^%d+$", id)
    assert.is_true(slurm.wait(id, dir .. "/result", snap, nil, 5))
    assert.equal("done\n", H.read(dir .. "/result"))
    -- its log, appended to (a requeued job's attempts follow each other)
    assert.equal("hello\n", H.read(dir .. "/" .. name .. ".log"))
    local jobs = assert(slurm.queue(name))
    assert.truthy(jobs[id])
    assert.equal(name, H.sh("squeue -h -t all -j " .. id .. " -o %j"):match("[^\n]+"))
    assert.equal("run=r step_run=s", H.sh("squeue -h -t all -j " .. id .. " -o %k")
      :match("[^\n]+"))
  end)

  it("tells, in Slurm's words, why a job ended without a result", function()
    local name = "lupine-t2"
    local snap = watch(name)
    local id = assert(job(name, { "sh", "-c", "exit 3" }))
    local ok, why = slurm.wait(id, dir .. "/result", snap, nil, 1)
    assert.is_nil(ok)
    assert.equal("its Slurm job " .. id .. " ended FAILED, reason NonZeroExitCode without "
      .. "writing a result", why)
  end)

  it("cancels every job of a run by its name, and the waiting learns it", function()
    local name = "lupine-t3"
    local snap = watch(name)
    local a = assert(job(name, { "sleep", "30" }))
    local b = assert(job(name, { "sleep", "30" }))
    assert.is_true(slurm.cancel(name))
    for _, id in ipairs { a, b } do
      local ok, why = slurm.wait(id, dir .. "/result", snap, nil, 0)
      assert.is_nil(ok)
      -- (with the reason it was pending for, if it had not started)
      assert.matches("^its Slurm job " .. id .. " ended CANCELLED[%w ,]* without writing a "
        .. "result$", why)
    end
  end)

  it("gives sbatch's own reason when it refuses a job", function()
    local id, why = job("lupine-t4", { "true" }, { options = { "--partition=nosuch" } })
    assert.is_nil(id)
    assert.equal("sbatch refused the job: invalid partition specified: nosuch; Batch job "
      .. "submission failed: Invalid partition name specified", why)
  end)

  it("numbers the poller's snapshots, and stops it", function()
    local snap = dir .. "/queue"
    local stop_poller = slurm.start_poller("lupine-t5", snap)
    local first
    for _ = 1, 100 do
      first = slurm.snapshot(snap)
      if first then break end
      require("lupine.core").sleep(0.05)
    end
    assert.truthy(first)
    local n
    for _ = 1, 100 do
      n = slurm.snapshot(snap)
      if n > first then break end
      require("lupine.core").sleep(0.05)
    end
    assert.is_true(n > first)
    stop_poller()
    os.execute("sleep " .. slurm.poll_interval * 3)
    assert.is_nil(slurm.snapshot(snap))
    assert.is_nil(io.open(snap .. ".stop"))
  end)

  it("has a cluster of its own: another started beside it runs and stops apart", function()
    local other = H.tmpdir()
    local start = "sh " .. H.quote(H.root .. "/tests/services/slurm.sh")
    local out, err, code = H.sh(start .. " start " .. H.quote(other))
    assert.equal(0, code, err)
    local conf = other .. "/slurm.conf"
    assert.equal("SLURM_CONF=" .. conf .. "\n", out)
    local mine = H.sh("grep -h Port= " .. H.quote(H.slurm_conf))
    local theirs = H.sh("grep -h Port= " .. H.quote(conf))
    assert.matches("^SlurmctldPort=%d+\nSlurmdPort=%d+\n$", theirs)
    -- a job on each, each queue seeing its own only
    local there = H.sh("SLURM_CONF=" .. H.quote(conf) .. " sbatch --parsable -J other -o /dev/null "
      .. "--wrap 'sleep 30'"):match("%d+")
    local here = assert(job("lupine-t6", { "sleep", "30" }))
    assert.equal("other\n", H.sh("SLURM_CONF=" .. H.quote(conf) .. " squeue -h -o %j"))
    assert.equal("lupine-t6\n", H.sh("squeue -h -o %j"))
    -- stopping the other leaves this one (and its munged) working
    _, err, code = H.sh(start .. " stop " .. H.quote(other))
    H.rm(other)
    assert.equal(0, code, err)
    assert.not_equal(mine, theirs)
    assert.is_truthy(there)
    assert.truthy(slurm.queue("lupine-t6")[here])
    assert.is_true(slurm.cancel("lupine-t6"))
    local _, _, srun = H.sh("srun -n1 true")
    assert.equal(0, srun)
  end)
end)
