-- SPDX-License-Identifier: MIT
-- Steps as Slurm jobs, on a one-node cluster started here
-- (tests/services/slurm.sh; needs root, slurm-wlm and munge): `make bench`
-- runs this against the release build.
--
--   fan-out: 100 trivial steps, `lupine run --no-cache` on a stack whose
--     orchestrator is Slurm, against 100 bare `sbatch --wrap true` jobs
--     submitted at once and waited for. Target: within 1.5x.
--   chain: 20 steps, each taking the one before's output, against the same
--     chain of bare jobs submitted up front with --dependency=afterok (and,
--     for reference, each submitted once the one before has ended).
--     Target: within 1.5x of the chain submitted up front, run as users run
--     it, caching on (its first step takes the round's number, plus the
--     script's argument, so that no step is a cache hit), and with
--     --no-cache.
--   Snakemake 7.21 `--slurm` (Debian's snakemake) on the same shapes, if
--     installed: Lupine at least 2x faster. Its Slurm executor checks the
--     job's account with sacctmgr, which needs the accounting database
--     (slurmdbd) this cluster has not: a sacctmgr on its PATH answers the
--     account "none", and USER is set. It learns each job's end by asking
--     sacct, then scontrol, for that job, once per pass (a pass every 33 s:
--     its own max_status_checks_per_second): a fan-out of 100 takes it most
--     of an hour. So it runs once, and is stopped after 20 times Lupine's
--     time (a minute at least): then its figure is that much at least.
--     LUPINE_BENCH_SNAKEMAKE=no leaves it out.
--
-- Environment: see benchlib.lua.

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local B = require "benchlib"

local FAN, CHAIN = 100, 20
local ROUNDS = B.rounds(3)

B.check_lupine()
local dir = B.scratch()
local cluster = dir .. "/cluster"
B.sh("sh tests/services/slurm.sh start " .. B.quote(cluster))
local conf = cluster .. "/slurm.conf"
local ok, err = pcall(function()
  local vars = { SLURM_CONF = conf, LUPINE_HOME = dir .. "/home" }
  local env = "SLURM_CONF=" .. B.quote(conf) .. " LUPINE_HOME=" .. B.quote(dir .. "/home") .. " "
  B.sh(env .. B.quote(B.lupine) .. " orchestrator register hpc --flavor slurm --work-dir "
    .. B.quote(dir .. "/work") .. " && " .. env .. B.quote(B.lupine)
    .. " stack register cluster -a default -o hpc && " .. env .. B.quote(B.lupine)
    .. " stack set cluster")

  local fan = B.write(dir .. "/fan.lua", string.format([[
local lupine = require "lupine"
local t = lupine.step("t", function(i) return i end)
lupine.pipeline("fan", function() for i = 1, %d do t(i) end end)()
]], FAN))
  local chain = B.write(dir .. "/chain.lua", string.format([[
local lupine = require "lupine"
local first = lupine.step("first", function(round) return round end)
local next_ = lupine.step("next", function(x) return x + 1 end)
lupine.pipeline("chain", function()
  local x = first(tonumber(os.getenv("LUPINE_BENCH_REP")) + tonumber(arg[1] or 0))
  for _ = 2, %d do x = next_(x) end
end)()
]], CHAIN))

  -- until no job of the name is pending, running or completing
  local wait = "while [ -n \"$(squeue -h -t PD,R,CG -n $name -o %i)\" ]; do sleep 0.05; done"
  local bare_fan = B.write(dir .. "/bare_fan.sh", string.format([[
name=bare-$LUPINE_BENCH_REP
for i in $(seq %d); do sbatch --parsable -Q -J $name -o /dev/null --wrap true >/dev/null; done
%s
]], FAN, wait))
  local bare_chain = B.write(dir .. "/bare_chain.sh", string.format([[
for i in $(seq %d); do
  name=bare-$LUPINE_BENCH_REP-$i
  sbatch -Q -J $name -o /dev/null --wrap true
  %s
done
]], CHAIN, wait))
  local bare_ahead = B.write(dir .. "/bare_ahead.sh", string.format([[
name=ahead-$LUPINE_BENCH_REP
dep=""
for i in $(seq %d); do
  id=$(sbatch --parsable -J $name -o /dev/null $dep --wrap true)
  dep="--dependency=afterok:$id"
done
%s
]], CHAIN, wait))

  print(string.format("%d-step fan-out and %d-step chain on a one-node cluster; %d runs each; %s",
    FAN, CHAIN, ROUNDS, B.machine()))
  local tf = B.timeit(ROUNDS, 1, { B.lupine, "run", "--no-cache", fan }, vars)
  local bf = B.timeit(ROUNDS, 1, { "sh", bare_fan }, vars)
  B.verdict(string.format("fan-out of %d steps: %s median (%d bare sbatch jobs: %s): %.2fx "
    .. "(target 1.5x)", FAN, B.ms(tf), FAN, B.ms(bf), tf / bf), tf / bf <= 1.5)
  -- a median, with its range over the rounds
  local function spread(med, lo, hi)
    return string.format("%s median (%s-%s)", B.ms(med), B.ms(lo), B.ms(hi))
  end
  local tc, tc_lo, tc_hi = B.timeit(ROUNDS, 1, { B.lupine, "run", "--no-cache", chain }, vars)
  local tcc, tcc_lo, tcc_hi = B.timeit(ROUNDS, 1, { B.lupine, "run", chain, "1000" }, vars)
  local bc = B.timeit(ROUNDS, 1, { "sh", bare_chain }, vars)
  local ba, ba_lo, ba_hi = B.timeit(ROUNDS, 1, { "sh", bare_ahead }, vars)
  B.verdict(string.format("chain of %d steps, caching on: %s (bare jobs chained up front with "
    .. "afterok: %s; one after another: %s): %.2fx (target 1.5x)", CHAIN,
    spread(tcc, tcc_lo, tcc_hi), spread(ba, ba_lo, ba_hi), B.ms(bc), tcc / ba), tcc / ba <= 1.5)
  B.verdict(string.format("chain of %d steps, --no-cache: %s: %.2fx (target 1.5x)", CHAIN,
    spread(tc, tc_lo, tc_hi), tc / ba), tc / ba <= 1.5)

  -- Snakemake's Slurm executor: the same shapes as rules
  if os.getenv("LUPINE_BENCH_SNAKEMAKE") == "no" then
    print("Snakemake: left out (LUPINE_BENCH_SNAKEMAKE=no)")
  elseif os.execute("command -v snakemake >/dev/null 2>&1") then
    local snake = dir .. "/snake"
    B.sh("mkdir -p " .. B.quote(snake .. "/bin"))
    B.write(snake .. "/bin/sacctmgr", "#!/bin/sh\necho none\n")
    B.sh("chmod +x " .. B.quote(snake .. "/bin/sacctmgr"))
    B.write(snake .. "/Snakefile", string.format([[
rule all:
    input: expand("fan/{i}", i=range(1, %d)), "chain/%d"
rule fan:
    output: "fan/{i}"
    shell: "echo {wildcards.i} > {output}"
rule first:
    output: "chain/1"
    shell: "echo 0 > {output}"
rule step:
    input: lambda w: "chain/%%d" %% (int(w.i) - 1)
    output: "chain/{i,[0-9]+}"
    shell: "echo $(( $(cat {input}) + 1 )) > {output}"
]], FAN + 1, CHAIN))
    -- seconds it took, and whether it finished within limit seconds
    local function snakemake(target, last, limit)
      local t0 = B.wall()
      os.execute("cd " .. B.quote(snake) .. " && rm -rf fan chain .snakemake && SLURM_CONF="
        .. B.quote(conf) .. " PATH=$PWD/bin:$PATH USER=$(id -un) timeout -k 5 " .. limit
        .. " snakemake --slurm --jobs 100 --quiet --default-resources slurm_account=none "
        .. "slurm_partition=debug mem_mb=64 runtime=5 -- " .. target .. " >/dev/null 2>&1")
      local t = B.wall() - t0
      local f = io.open(snake .. "/" .. last)
      if f then f:close() end
      B.sh("SLURM_CONF=" .. B.quote(conf) .. " scancel --user=$(id -un) || true")
      return t, f ~= nil and t < limit
    end
    local function figure(t, done)
      return done and B.ms(t) or ("more than " .. B.ms(t) .. ", stopped")
    end
    local fan_targets = {}
    for i = 1, FAN do fan_targets[i] = "fan/" .. i end
    local sf, fdone = snakemake(table.concat(fan_targets, " "), "fan/" .. FAN,
      math.max(60, math.ceil(20 * tf)))
    local sc, cdone = snakemake("chain/" .. CHAIN, "chain/" .. CHAIN,
      math.max(60, math.ceil(20 * tc)))
    B.verdict(string.format("against Snakemake --slurm: fan-out %s (Lupine %s, %.1fx%s), chain "
      .. "%s (Lupine %s, %.1fx%s) (target 2x)", figure(sf, fdone), B.ms(tf), sf / tf,
      fdone and "" or " at least", figure(sc, cdone), B.ms(tc), sc / tc,
      cdone and "" or " at least"), sf / tf >= 2 and sc / tc >= 2)
  else
    print("Snakemake: not installed (apt-get install snakemake), not compared")
  end
end)
B.sh("sh tests/services/slurm.sh stop " .. B.quote(cluster))
if not ok then error(err, 0) end
B.finish()
