-- SPDX-License-Identifier: MIT
-- Orchestrators, the stack component that says where steps run: the
-- built-in local one and registered Slurm ones, from Lua and the CLI; the
-- orchestrator each step run records; steps' resources, checked, and their
-- mapping to sbatch options.
local H = require "helper"
local lupine = require "lupine"
local dkjson = require "dkjson"

local function json(s)
  local v, _, msg = dkjson.decode(s, 1, dkjson.null)
  assert(v ~= nil, "not JSON: " .. tostring(msg) .. ": " .. s)
  return v
end

describe("orchestrators", function()
  local home, client, work
  before_each(function()
    home = H.fresh(lupine)
    client = lupine.Client()
    work = H.tmpdir() .. "/work"
  end)

  it("start with the built-in local one, the default stack's", function()
    local list = client:list_orchestrators()
    assert.equal(1, #list)
    assert.equal("local", list[1].name)
    assert.equal("local", list[1].flavor)
    assert.is_nil(list[1].work_dir)
    assert.equal("local", client.active_stack.orchestrator)
    assert.equal("Orchestrator(name=local, flavor=local)", tostring(client:get_orchestrator("local")))
  end)

  it("register a Slurm one with its defaults, used by a stack, deleted once unused", function()
    local o = client:register_orchestrator("hpc", { flavor = "slurm", work_dir = work,
      partition = "batch", account = "lab", time = "2:00:00", requeue = true,
      sbatch_args = "--qos=low --comment 'two words'" })
    assert.equal("slurm", o.flavor)
    assert.equal(work, o.work_dir)
    assert.equal("batch", o.partition)
    assert.equal("lab", o.account)
    assert.equal("2:00:00", o.time_limit)
    assert.is_true(o.requeue)
    assert.equal(0, os.execute("test -d " .. H.quote(work)) and 0)
    assert.equal("Orchestrator(name=hpc, flavor=slurm, work_dir=" .. work .. ")", tostring(o))
    local k = client:register_stack("cluster", { artifact_store = "default", orchestrator = "hpc" })
    assert.equal("hpc", k.orchestrator)
    assert.equal("orchestrator 'hpc' is used by stack 'cluster'",
      H.err(client.delete_orchestrator, client, "hpc"))
    client:delete_stack("cluster")
    client:delete_orchestrator("hpc")
    assert.equal("orchestrator 'hpc' not found", H.err(client.get_orchestrator, client, "hpc"))
  end)

  it("refuse bad registrations, naming the orchestrator and the option", function()
    local function reg(name, opts)
      return H.err(client.register_orchestrator, client, name, opts)
    end
    assert.equal("orchestrator 'x': flavor must be one of local, slurm (got nil)",
      reg("x", { work_dir = work }))
    assert.equal("orchestrator 'x': flavor must be slurm ('local' is built in) (got local)",
      reg("x", { flavor = "local" }))
    assert.equal("orchestrator 'x': a Slurm orchestrator needs a work_dir (a folder every node "
      .. "shares)", reg("x", { flavor = "slurm" }))
    assert.equal("orchestrator 'x': unknown option 'partiton'; did you mean 'partition'?",
      reg("x", { flavor = "slurm", work_dir = work, partiton = "a" }))
    assert.equal("orchestrator 'x': requeue must be a boolean (got string)",
      reg("x", { flavor = "slurm", work_dir = work, requeue = "yes" }))
    assert.equal('orchestrator \'x\': time must be a Slurm time such as "1:30:00" or '
      .. '"2-00:00:00" (got "an hour")', reg("x", { flavor = "slurm", work_dir = work,
        time = "an hour" }))
    assert.equal('orchestrator \'x\': partition must be a name (got "a b")',
      reg("x", { flavor = "slurm", work_dir = work, partition = "a b" }))
    assert.equal("orchestrator 'x': grace must be seconds from 0 (got -1)",
      reg("x", { flavor = "slurm", work_dir = work, grace = -1 }))
    assert.equal("orchestrator 'x': sbatch_args: a quote (') is not closed",
      reg("x", { flavor = "slurm", work_dir = work, sbatch_args = "--comment 'x" }))
    assert.matches("^orchestrator 'x': work_dir: cannot create '/proc/nope/w'",
      reg("x", { flavor = "slurm", work_dir = "/proc/nope/w" }))
    assert.equal("orchestrator 'local' exists already",
      reg("local", { flavor = "slurm", work_dir = work }))
    assert.equal("orchestrator 'local' is built in: it cannot be deleted",
      H.err(client.delete_orchestrator, client, "local"))
    client:register_orchestrator("hpc", { flavor = "slurm", work_dir = work })
    assert.equal("orchestrator 'hcp' not found; did you mean 'hpc'?",
      H.err(client.register_stack, client, "c", { artifact_store = "default",
        orchestrator = "hcp" }))
  end)

  it("map a step's resources over their defaults to sbatch options", function()
    local o = client:register_orchestrator("hpc", { flavor = "slurm", work_dir = work,
      partition = "batch", account = "lab", time = "1:00:00",
      sbatch_args = "--qos=low --comment 'two words'" })
    assert.same({ "--partition=batch", "--account=lab", "--time=1:00:00", "--no-requeue",
      "--qos=low", "--comment", "two words" }, o:sbatch_options())
    -- the step's come last: sbatch takes the last of a repeated option
    assert.same({ "--partition=batch", "--account=lab", "--time=1:00:00", "--no-requeue",
      "--qos=low", "--comment", "two words", "--partition=gpu", "--cpus-per-task=4",
      "--mem=16G", "--time=0:01:30", "--gpus=a100:2" },
      o:sbatch_options { cpus = 4, mem = "16G", time = 90, gpus = "a100:2", partition = "gpu" })
    local r = client:register_orchestrator("pre", { flavor = "slurm", work_dir = work,
      requeue = true })
    assert.same({ "--requeue", "--mem=512", "--time=2-00:00:00", "--gpus=1" },
      r:sbatch_options { mem = 512, time = "2-00:00:00", gpus = 1 })
    -- seconds as Slurm's H:MM:SS, a fraction rounded up
    assert.equal("--time=1:00:01", r:sbatch_options { time = 3600.5 }[2])
    assert.equal("orchestrator 'local' is not a Slurm one (flavor local)",
      H.err(function() return client:get_orchestrator("local"):sbatch_options() end))
  end)
end)

describe("steps' resources", function()
  before_each(function() H.fresh(lupine) end)

  local function step_err(spec)
    spec.name = spec.name or "train"
    spec[1] = function() return 1 end
    return H.err(lupine.step, spec)
  end

  it("are checked where the step is defined, naming the step and the key", function()
    assert.equal("step 'train': unknown resource 'cpu'; did you mean 'cpus' or 'gpus'?",
      step_err { resources = { cpu = 2 } })
    assert.equal("step 'train': unknown resource 'disk' (known: partition, cpus, mem, time, gpus)",
      step_err { resources = { disk = 2 } })
    assert.equal("step 'train': resources.cpus must be an integer from 1 (got 0)",
      step_err { resources = { cpus = 0 } })
    assert.equal('step \'train\': resources.mem must be megabytes (an integer from 1) or a size '
      .. 'such as "4G" (K, M, G, T) (got "4 GB")', step_err { resources = { mem = "4 GB" } })
    assert.equal('step \'train\': resources.time must be seconds (a number above 0) or a Slurm '
      .. 'time such as "1:30:00" or "2-00:00:00" (got "soon")',
      step_err { resources = { time = "soon" } })
    assert.equal('step \'train\': resources.gpus must be an integer from 1 or "type:count" such '
      .. 'as "a100:2" (got 1.5)', step_err { resources = { gpus = 1.5 } })
    assert.equal("step 'train': resources.partition must be a partition's name (got true)",
      step_err { resources = { partition = true } })
    assert.equal("step 'train': resources must be a table (got number)",
      step_err { resources = 4 })
    assert.equal("step 'train': orchestrator must be \"local\" (or left out: the orchestrator "
      .. "of the run's stack) (got hpc)", step_err { orchestrator = "hpc" })
  end)

  it("the error points at the script's line, not the library", function()
    local script = H.script([[
local lupine = require "lupine"
local s = lupine.step { name = "fit", resources = { cpus = 2, mme = "4G" },
  function() return 1 end }
]])
    local _, err, code = H.lupine(H.tmpdir() .. "/home", "run " .. H.quote(script))
    assert.equal(1, code)
    assert.equal("lupine: " .. script .. ":2: step 'fit': unknown resource 'mme'; "
      .. "did you mean 'mem' or 'time'?\n", err)
  end)

  it("add up through with_options, key by key, checked the same way", function()
    local s = lupine.step { name = "fit", resources = { cpus = 2, mem = "4G" },
      function() return 1 end }
    local big = s:with_options { resources = { mem = "64G", gpus = 1 } }
    assert.same({ cpus = 2, mem = "64G", gpus = 1 }, big.settings.resources)
    assert.same({ cpus = 2, mem = "4G" }, s.settings.resources)
    assert.equal("step 'fit': resources.cpus must be an integer from 1 (got -1)",
      H.err(s.with_options, s, { resources = { cpus = -1 } }))
    assert.equal("step 'fit': unknown resource 'gpu'; did you mean 'gpus' or 'cpus'?",
      H.err(s.with_options, s, { resources = { gpu = 1 } }))
    assert.equal("local", s:with_options { orchestrator = "local" }.settings.orchestrator)
  end)
end)

describe("the orchestrator of each step run", function()
  local home
  before_each(function() home = H.fresh(lupine) end)

  it("is recorded: local for steps that ran, none for cache hits, shown by describe", function()
    local a = lupine.step { name = "a", resources = { cpus = 2 }, function() return 1 end }
    local b = lupine.step { name = "b", orchestrator = "local", function(x) return x + 1 end }
    local p = lupine.pipeline { name = "p", function() b(a()) end }
    local first = p:with_options { run_name = "first" } ()
    assert.equal("local", first.steps.a.orchestrator)
    assert.equal("local", first.steps.b.orchestrator)
    local again = p:with_options { run_name = "again" } ()
    assert.equal("cached", again.steps.a.status)
    assert.is_nil(again.steps.a.orchestrator)
    local doc = json(H.lupine(home, "pipeline runs describe first --json"))
    assert.equal("local", doc.steps[1].orchestrator)
    assert.equal(dkjson.null, json(H.lupine(home, "pipeline runs describe again --json"))
      .steps[1].orchestrator)
    assert.matches("\norchestrator\ta\tlocal\n", (H.lupine(home, "pipeline runs describe first")))
  end)

  it("is local for a step kept local on a stack whose orchestrator is Slurm", function()
    local client = lupine.Client()
    client:register_orchestrator("hpc", { flavor = "slurm", work_dir = H.tmpdir() .. "/w" })
    client:register_stack("cluster", { artifact_store = "default", orchestrator = "hpc" })
    local small = lupine.step { name = "small", orchestrator = "local", function() return 2 end }
    local q = lupine.pipeline { name = "q", function() small() end }
    local run = q:with_options { stack = "cluster" } ()
    assert.equal("local", run.steps.small.orchestrator)
    assert.is_nil(run.steps.small.job)
    assert.equal(2, run.steps.small.output:load())
  end)
end)

describe("lupine orchestrator", function()
  local home, work
  before_each(function()
    home = H.tmpdir() .. "/home"
    work = H.tmpdir() .. "/work"
  end)

  it("registers, lists, describes and deletes, with --json", function()
    local out, err, code = H.lupine(home, "orchestrator register hpc --flavor=slurm --partition "
      .. "debug --account lab --time 30:00 --requeue --sbatch-args '--qos=low' --grace 60 --work-dir "
      .. H.quote(work))
    assert.equal(0, code, err)
    assert.equal("registered orchestrator 'hpc' (slurm, " .. work .. ")\n", out)
    out = H.lupine(home, "orchestrator list")
    assert.matches("^%x[%x-]+\thpc\tslurm\t" .. work:gsub("%p", "%%%0")
      .. "\n0+%-0+%-4000%-8000%-0+3\tlocal\tlocal\t\n$", out)
    local doc = json(H.lupine(home, "orchestrator describe hpc --json"))
    assert.same({ "slurm", "debug", "lab", "30:00", true, "--qos=low", 60, work },
      { doc.flavor, doc.partition, doc.account, doc.time, doc.requeue, doc.sbatch_args,
        doc.grace, doc.work_dir })
    out = H.lupine(home, "orchestrator describe hpc")
    assert.matches("\nflavor\tslurm\nwork_dir\t" .. work:gsub("%p", "%%%0") .. "\npartition\tdebug\n"
      .. "account\tlab\ntime\t30:00\nrequeue\tyes\nsbatch_args\t%-%-qos=low\ngrace\t60\ncreated\t", out)
    out, err, code = H.lupine(home, "stack register cluster -a default -o hpc")
    assert.equal(0, code, err)
    assert.matches("\tcluster\t\tdefault\thpc\n", (H.lupine(home, "stack list")))
    _, err, code = H.lupine(home, "orchestrator delete hpc")
    assert.equal(1, code)
    assert.equal("lupine: orchestrator 'hpc' is used by stack 'cluster'\n", err)
    H.lupine(home, "stack delete cluster")
    out, err, code = H.lupine(home, "orchestrator delete hpc")
    assert.equal(0, code, err)
    assert.equal("deleted orchestrator 'hpc'\n", out)
    assert.equal(1, #json(H.lupine(home, "orchestrator list --json")).items)
    assert.equal("local\tforked worker processes on the machine of the run\nslurm\teach step a "
      .. "Slurm job (sbatch), its objects in a shared store\n",
      (H.lupine(home, "orchestrator flavor list")))
  end)

  it("refuses bad registrations with usage errors", function()
    local _, err, code = H.lupine(home, "orchestrator register hpc --work-dir " .. H.quote(work))
    assert.equal(2, code)
    assert.matches("missing option '%-%-flavor'", err)
    _, err, code = H.lupine(home, "orchestrator register hpc --flavor slurm")
    assert.equal(2, code)
    assert.matches("missing option '%-%-work%-dir'", err)
    _, err, code = H.lupine(home, "orchestrator register hpc --flavor slurn --work-dir x")
    assert.equal(2, code)
    assert.matches("slurn", err)
    _, err, code = H.lupine(home, "stack register c -a default -o hcp")
    assert.equal(1, code)
    assert.equal("lupine: orchestrator 'hcp' not found\n", err)
  end)

  it("completes orchestrator names", function()
    H.lupine(home, "orchestrator register hpc --flavor slurm --work-dir " .. H.quote(work))
    assert.equal("hpc\nlocal\n", (H.lupine(home, "__complete orchestrator describe ''")))
    assert.equal("hpc\n", (H.lupine(home, "__complete stack register x -o h")))
  end)
end)
