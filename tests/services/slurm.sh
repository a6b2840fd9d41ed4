#!/bin/sh
# SPDX-License-Identifier: MIT
# A real one-node Slurm cluster for the tests and benchmarks, as root on
# Debian 12 without systemd. It installs nothing (the Makefile's
# TEST_PACKAGES bring slurm-wlm and munge).
#
#   sh tests/services/slurm.sh start DIR   start munged, slurmctld and
#                                          slurmd; wait for an idle node;
#                                          print SLURM_CONF=...
#   sh tests/services/slurm.sh stop DIR    stop what start started
#
# Everything of the cluster lives in DIR: its slurm.conf, state, spool,
# logs, the jobcomp file, pid files (its own munged's socket is in a
# folder of /tmp that the file DIR/munge names). Clients
# find it through SLURM_CONF=DIR/slurm.conf (the daemons are given it
# with -f). Several clusters run on one machine at once (test runs and
# benchmarks side by side): each takes the first two free ports of
# 16817-16916 (not the default 6817-6818 a real cluster would use) for its
# controller and node, under a lock so that two starts
# do not take the same, and has a munged of its own, so that stopping
# one cluster leaves the others' authentication alone.
set -eu
usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
what=$1
dir=$(realpath -m "$2")
conf=$dir/slurm.conf

# (pid file) -> true if the process it names runs
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait up to $1 tenths of a second for the command that follows to succeed
until_ok() {
  n=$1; shift
  while ! "$@" >/dev/null 2>&1; do
    n=$((n - 1))
    if [ "$n" -le 0 ]; then return 1; fi
    sleep 0.1
  done
}

fail() {
  echo "slurm.sh: $1" >&2
  for f in "$dir"/slurmctld.log "$dir"/slurmd.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}

node_idle() { [ "$(SLURM_CONF=$conf sinfo -h -N -o %T 2>/dev/null)" = idle ]; }
munge_ok() { munge -S "$sock" -n | unmunge -S "$sock"; }

# (port) -> true if something on this machine listens on it, or has it
listening() {
  hex=$(printf '%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" \
    '$2 ~ p"$" { found = 1 } END { exit !found }'
}

start() {
  for p in munged slurmctld slurmd sinfo; do
    command -v $p >/dev/null 2>&1 || [ -x /usr/sbin/$p ] ||
      fail "$p is not installed (make deps-test installs slurm-wlm and munge)"
  done
  if alive "$dir/slurmctld.pid"; then fail "a cluster runs from $dir already"; fi
  mkdir -p "$dir/state" "$dir/spool"
  # the cluster's own munged (the key is the machine's): it authenticates
  # every Slurm message of this cluster, and goes when the cluster goes
  if [ ! -s /etc/munge/munge.key ]; then
    install -d -o munge -g munge -m 0700 /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  # (munged runs as munge: its folder is one it can reach, which only it
  # writes, and DIR's parents may be closed to it; DIR/munge names it)
  m=$(mktemp -d /tmp/lupine-munge.XXXXXX)
  chown munge:munge "$m"
  chmod 0755 "$m"
  echo "$m" > "$dir/munge"
  sock=$m/munge.socket
  runuser -u munge -- /usr/sbin/munged --socket="$sock" --pid-file="$m/munged.pid" \
    --seed-file="$m/munged.seed" --log-file="$m/munged.log"
  until_ok 50 munge_ok || fail "munged did not answer"
  cp "$m/munged.pid" "$dir/munged.pid"
  host=$(hostname -s)
  # the node as slurmd sees it, claiming 8 CPUs whatever the machine has
  # (config_overrides): the tests run several jobs at once on 2 cores
  node=$(/usr/sbin/slurmd -C | sed -n 's/^NodeName=\([^ ]*\) .*RealMemory=\([0-9]*\).*/\1 \2/p')
  name=${node% *}
  mem=${node#* }
  # the ports are taken once the daemons listen: until then, no other
  # start chooses (the lock is this shell's: the daemons do not inherit it)
  exec 9>/tmp/lupine-slurm-ports.lock
  flock 9
  port=16817
  while listening "$port" || listening $((port + 1)); do
    port=$((port + 2))
    [ "$port" -lt 16917 ] || fail "no two free ports in 16817-16916"
  done
  cat > "$conf" <<EOF
# written by tests/services/slurm.sh: a one-node cluster for the tests
ClusterName=lupinetest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# this cluster's munged, and ports of its own
AuthInfo=socket=$sock,cred_expire=5
SlurmctldPort=$port
SlurmdPort=$((port + 1))
# (cred_expire: a requeued job waits for its credential to expire,
# 120 s by default)
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job that asks for no memory gets this much per CPU, not the whole node
DefMemPerCPU=256
SchedulerType=sched/backfill
# jobs start at once (not on the next batch pass), and requeued ones soon
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
Epilog=/bin/true
MinJobAge=300
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
LogTimeFormat=iso8601_ms
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
NodeName=$name NodeAddr=127.0.0.1 CPUs=8 Boards=1 SocketsPerBoard=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  # the controller first: the node's first registration then succeeds at
  # once instead of a second later
  SLURM_CONF=$conf setsid /usr/sbin/slurmctld -c -f "$conf" </dev/null \
    >"$dir/slurmctld.out" 2>&1 9>&-
  until_ok 100 env SLURM_CONF="$conf" scontrol ping || fail "slurmctld did not answer"
  SLURM_CONF=$conf setsid /usr/sbin/slurmd -c -f "$conf" -N "$name" </dev/null \
    >"$dir/slurmd.out" 2>&1 9>&-
  until_ok 200 node_idle || fail "the node did not become idle"
  exec 9>&-
  echo "SLURM_CONF=$conf"
}

# (pid file) wait until its process has gone (killed if it takes 10 s)
gone() {
  alive "$1" || { rm -f "$1"; return 0; }
  pid=$(cat "$1")
  until_ok 100 sh -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop() {
  # a job's processes outlive slurmd (linuxproc tracks them, not a cgroup)
  if alive "$dir/slurmctld.pid"; then
    SLURM_CONF=$conf scancel --user=root 2>/dev/null || true
    until_ok 50 sh -c "[ -z \"\$(SLURM_CONF=$conf squeue -h -o %i)\" ]" || true
  fi
  # each daemon takes 1-2 s to shut down: all at once
  for f in slurmd slurmctld munged; do
    alive "$dir/$f.pid" && kill "$(cat "$dir/$f.pid")" 2>/dev/null || true
  done
  for f in slurmd slurmctld munged; do gone "$dir/$f.pid"; done
  if [ -s "$dir/munge" ]; then rm -rf "$(cat "$dir/munge")" "$dir/munge"; fi
}

case $what in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
