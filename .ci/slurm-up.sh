#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the Slurm tests (tests/runs/test_slurm.py):
# Debian's slurm-wlm and munge, a minimal slurm.conf (this host, its cores and 90% of its
# memory), munged, slurmctld and slurmd. Idempotent: a cluster that answers with an idle node
# is reused as it is. Needs root (CI's container); exits 0 once `sinfo` shows the node idle.
set -euo pipefail

node_idle() { sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

if command -v sinfo >/dev/null && node_idle; then
    echo "slurm-up: a cluster is running already: $(sinfo -h -o '%P %a %D %T' | head -1)"
    exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        slurm-wlm munge
fi

host="$(hostname -s)"
cpus="$(nproc)"
mem_mb="$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)"
conf=/etc/slurm/slurm.conf
$sudo mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
$sudo tee "$conf" >/dev/null <<CONF
ClusterName=distillab
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# munge: a key readable by munge alone, its socket directory, the daemon as the munge user
if [ ! -s /etc/munge/munge.key ]; then
    $sudo mkdir -p /etc/munge
    $sudo dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
fi
$sudo chown -R munge:munge /etc/munge
$sudo chmod 400 /etc/munge/munge.key
$sudo mkdir -p /run/munge /var/lib/munge /var/log/munge
$sudo chown munge:munge /run/munge /var/lib/munge /var/log/munge
pgrep -x munged >/dev/null || $sudo su -s /bin/sh munge -c munged
pgrep -x slurmctld >/dev/null || $sudo slurmctld
pgrep -x slurmd >/dev/null || $sudo slurmd

for i in $(seq 60); do
    # a node left down by an earlier slurmd (its state saved) is put back once
    if [ "$i" = 10 ] && sinfo -h -N -o '%T' | grep -Eq '^(down|drain)'; then
        $sudo scontrol update nodename="$host" state=resume || true
    fi
    if node_idle; then
        echo "slurm-up: cluster up: $(sinfo -h -o '%P %a %D %T' | head -1)"
        exit 0
    fi
    sleep 1
done
echo "slurm-up: the node did not come up idle in 60 s:" >&2
sinfo >&2 || true
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
