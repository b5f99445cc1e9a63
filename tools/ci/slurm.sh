#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests/test_launchers.py:
# munged, slurmctld and slurmd started directly as daemons (no systemd: CI
# and the dev machines are root containers without it), no cgroup plugins
# (proctrack/linuxproc, task/none), every file under one state directory.
#
#   bash tools/ci/slurm.sh up      # start (or find running); prints SLURM_CONF=<file>
#   bash tools/ci/slurm.sh down    # stop what `up` started here
#   bash tools/ci/slurm.sh status  # exit 0 when the node answers and is idle
#
# Use it with `SLURM_CONF=<file> srun -N1 -n2 ...`; `srun -O` (overcommit)
# starts more tasks than the node has CPUs. Needs root and the Debian
# packages slurmctld, slurmd, slurm-client and munge (tools/dev.sh installs
# them). NUMABIND_SLURM_DIR moves the state directory (default
# /tmp/numabind-slurm).
set -euo pipefail

DIR=${NUMABIND_SLURM_DIR:-/tmp/numabind-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

die() { echo "slurm.sh: $*" >&2; exit 1; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { timeout 10 sinfo -h -N -o %T 2>/dev/null | head -1; }

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  munge_ok && return 0
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged 9>&-
  touch "$DIR/munged.ours"
  for _ in $(seq 50); do munge_ok && return 0; sleep 0.1; done
  die "munged did not answer (see /var/log/munge/munged.log)"
}

write_conf() {
  local host node
  host=$(hostname -s)
  # slurmd -C prints this machine's NodeName line (CPUs, sockets, memory).
  node=$(slurmd -C | head -1)
  case "$node" in NodeName=*) ;; *) die "slurmd -C printed no NodeName line: $node" ;; esac
  mkdir -p "$DIR/ctld" "$DIR/slurmd"
  cat > "$CONF" <<CONF
# Written by tools/ci/slurm.sh: one node, no accounting, no cgroups.
ClusterName=numabind-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

up() {
  [ "$(id -u)" -eq 0 ] || die "needs root (slurmd runs tasks as their user)"
  for c in slurmctld slurmd srun sinfo munged munge; do
    command -v "$c" >/dev/null || die "$c is not installed (apt-get install slurmctld slurmd slurm-client munge)"
  done
  if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && [ "$(node_state)" = idle ]; then
    echo "SLURM_CONF=$CONF"
    return 0
  fi
  start_munge
  write_conf
  # -c: a fresh controller forgets the jobs of an earlier cluster in $DIR
  alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF" -c 9>&-
  alive "$DIR/slurmd.pid" || slurmd -f "$CONF" 9>&-
  local state=""
  for _ in $(seq 150); do
    state=$(node_state)
    [ "$state" = idle ] && { echo "SLURM_CONF=$CONF"; return 0; }
    sleep 0.2
  done
  echo "slurm.sh: the node is '${state:-not answering}' after 30 s; logs:" >&2
  tail -n 20 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
  exit 1
}

down() {
  local f
  for f in slurmd slurmctld; do
    if alive "$DIR/$f.pid"; then
      kill "$(cat "$DIR/$f.pid")"
      for _ in $(seq 50); do alive "$DIR/$f.pid" || break; sleep 0.1; done
    fi
  done
  if [ -e "$DIR/munged.ours" ]; then
    alive /run/munge/munged.pid && kill "$(cat /run/munge/munged.pid)"
    rm -f "$DIR/munged.ours"
  fi
}

# One `up` or `down` at a time: two pytest runs may start the cluster at once.
mkdir -p "$DIR"
exec 9>"$DIR/lock"
flock -w 120 9 || die "another slurm.sh holds $DIR/lock"

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) [ "$(node_state)" = idle ] ;;
  *) echo "usage: bash tools/ci/slurm.sh up|down|status" >&2; exit 2 ;;
esac
