#!/usr/bin/env bash
# Bring up a real single-node SLURM on this machine for the cluster tests:
# munge -> MariaDB -> slurmdbd -> slurmctld -> slurmd, four fake GPUs as GRES.
#
# Idempotent: when the cluster is already healthy and the generated configs are
# unchanged it returns within a second or two. Needs root (daemons and /etc/slurm).
# Works without systemd: every daemon is started by hand and tracked by its pid file.
#
# stdout carries only `export VAR=value` lines, so `eval "$(tests/cluster/up.sh)"`
# sets what profiles/slurm needs; progress and errors go to stderr.
#
# Knobs (environment): TWBYOL_SLURM_UP_TIMEOUT (seconds to wait for the cluster, 180),
# TWBYOL_SLURM_CPUS (CPUs declared for the node, default max(nproc, 4)).
set -euo pipefail

CLUSTER=twbyol            # ClusterName, also the name registered in slurmdbd
ACCOUNT=twbyol            # accounting account the tests submit under (-A twbyol)
PARTITION=debug           # the one partition (Default=YES)
NGPUS=4                   # fake GPUs declared as GRES gpu:a100:4
STATE=/var/lib/twbyol-slurm   # spool dirs, fake GPU device files, db password, logs
LOGDIR=$STATE/log
CONF=/etc/slurm           # default location: sbatch/srun/sacct find it without SLURM_CONF
TIMEOUT=${TWBYOL_SLURM_UP_TIMEOUT:-180}
NODE=$(hostname -s)

log() { echo "[up.sh] $*" >&2; }

die() {
    echo "[up.sh] ERROR: $*" >&2
    local f
    for f in "$LOGDIR"/*.log "$LOGDIR"/*.out /var/log/munge/munged.log; do
        [[ -s $f ]] || continue
        echo "----- tail -n 25 $f -----" >&2
        tail -n 25 "$f" >&2 || true
    done
    exit 1
}

# `pid_alive FILE`: the process named in a pid file exists.
pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# `wait_for SECONDS DESCRIPTION CMD...`: poll CMD every 0.5 s until it succeeds.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
        sleep 0.5
    done
}

print_env() {
    echo "export TWBYOL_SLURM_ACCOUNT=$ACCOUNT"
    echo "export TWBYOL_SLURM_PARTITION=$PARTITION"
    # A trivial snakemake job takes ~6 s here: let profiles/slurm poll sacct after 8 s
    # (the plugin then adds 10 s per poll that finds nothing finished).
    echo "export TWBYOL_SLURM_STATUS_SECONDS=8"
}

[[ $EUID -eq 0 ]] || die "must run as root (starts system daemons, writes /etc/slurm)"

# One up.sh at a time (e.g. several pytest-xdist workers starting the fixture).
# Daemons are started with fd 9 closed (9>&-) so they do not inherit the lock.
exec 9>/run/twbyol-slurm-up.lock
flock -w "$((TIMEOUT + 600))" 9 || die "another up.sh holds /run/twbyol-slurm-up.lock"

# ---------------------------------------------------------------- packages
need_pkgs=0
for exe in slurmctld slurmd slurmdbd sacctmgr sbatch munged mariadbd mariadb-install-db; do
    command -v "$exe" >/dev/null 2>&1 || [[ -x /usr/sbin/$exe ]] || need_pkgs=1
done
if ((need_pkgs)); then
    log "installing slurm-wlm slurmdbd munge mariadb-server (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q slurm-wlm slurmdbd munge mariadb-server >&2 \
        || die "apt-get install failed"
fi
export PATH=$PATH:/usr/sbin:/sbin
# Daemons and clients here must use the config this script writes, not a SLURM_CONF
# inherited from the caller (e.g. when run inside another SLURM job).
export SLURM_CONF=$CONF/slurm.conf

mkdir -p "$CONF" "$LOGDIR" "$STATE/slurmctld" "$STATE/slurmd" "$STATE/dev"

# ---------------------------------------------------------------- configs
# Generated here and installed only when the content differs; a difference
# restarts the slurm daemons so they pick it up.
CHANGED=0
install_file() { # install_file PATH MODE CONTENT
    if [[ ! -f $1 ]] || [[ "$(cat "$1")" != "$3" ]]; then
        printf '%s\n' "$3" >"$1.tmp"
        chmod "$2" "$1.tmp"
        mv "$1.tmp" "$1"
        CHANGED=1
        log "wrote $1"
    fi
    chmod "$2" "$1"
}

NPROC=$(nproc)
# Every fake GPU needs a CPU for its task (submitit runs tasks_per_node =
# gpus_per_node), so declare at least NGPUS CPUs even on a 2-core machine;
# SlurmdParameters=config_overrides lets slurmd accept more CPUs than it finds.
CPUS=${TWBYOL_SLURM_CPUS:-$((NPROC > NGPUS ? NPROC : NGPUS))}
MEM_TOTAL_MB=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
REAL_MEM=$((MEM_TOTAL_MB * 9 / 10))   # a bit under physical, or slurmd drains the node

# Fake /dev/nvidiaN: character devices with NVIDIA's major number (195) that no
# driver backs. slurmd wants a File= per GPU; only with real character devices
# (not plain files) does it set CUDA_VISIBLE_DEVICES in jobs. Plain files are the
# fallback where mknod is not allowed (scheduling still works, no CUDA_VISIBLE_DEVICES).
for i in $(seq 0 $((NGPUS - 1))); do
    dev=$STATE/dev/gpu$i
    [[ -c $dev ]] && continue
    if mknod -m 0666 "$dev.tmp" c 195 "$i" 2>/dev/null; then
        mv -f "$dev.tmp" "$dev"
    else
        [[ -f $dev ]] && continue
        log "mknod not permitted: $dev is a plain file (no CUDA_VISIBLE_DEVICES in jobs)"
        touch "$dev"
    fi
    CHANGED=1   # slurmd reads the devices at start: restart it
done

if [[ ! -s $STATE/dbpass ]]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/dbpass")
fi
DBPASS=$(cat "$STATE/dbpass")

install_file "$CONF/slurm.conf" 0644 "# Generated by tests/cluster/up.sh -- edits are overwritten.
ClusterName=$CLUSTER
# 127.0.0.1 so nothing depends on name resolution of this host.
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
# Everything runs as root: the container has no systemd and tests run as root.
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
# No usable cgroups in this container: track job processes through /proc and
# do no CPU binding / device confinement.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# cons_tres schedules GPUs (--gpus-per-node) as well as cores and memory.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that give no --mem get 1 GiB per CPU instead of the whole node.
DefMemPerCPU=1024
GresTypes=gpu
# Accounting through slurmdbd; record GPUs so sacct shows gres/gpu in AllocTRES.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageTRES=gres/gpu
# Keep sbatch --comment in sacct: the snakemake plugin puts rule_<name> there.
AccountingStoreFlags=job_comment
# Reject jobs whose user/account has no association (as real clusters do).
AccountingStorageEnforce=associations
JobCompType=jobcomp/none
# submitit requeues timed-out/preempted jobs with scontrol requeue.
JobRequeue=1
# A requeued job waits cred_expire seconds (default 120) before it may start
# again; 10 s keeps requeue/resume tests short. (Step credentials live as long.)
AuthInfo=cred_expire=10
# A node that was down because its slurmd stopped comes back when slurmd returns.
ReturnToService=2
SchedulerType=sched/backfill
# Look at pending jobs every 2 s (default 60 s; backfill 30 s): a requeued job or one
# whose dependency/begin time passed starts at once instead of up to a minute later.
SchedulerParameters=sched_interval=2,bf_interval=5
# Short grace between SIGTERM and SIGKILL keeps cancelled/requeued test jobs quick
# (submitit tasks ignore SIGTERM, so a requeue always waits this long).
KillWait=5
InactiveLimit=0
# No mail on this machine; the default /usr/bin/mail is absent and slurmctld logs an error.
MailProg=/bin/true
# More CPUs may be declared than this machine has (see CPUS in up.sh).
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEM Gres=gpu:a100:$NGPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP"

install_file "$CONF/gres.conf" 0644 "# Generated by tests/cluster/up.sh -- edits are overwritten.
# No NVML here: GPUs are declared by hand, backed by plain files.
AutoDetect=off
Name=gpu Type=a100 File=$STATE/dev/gpu[0-$((NGPUS - 1))]"

# slurmdbd refuses a slurmdbd.conf that is readable by others (it holds the password).
install_file "$CONF/slurmdbd.conf" 0600 "# Generated by tests/cluster/up.sh -- edits are overwritten.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOGDIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
# localhost = the MariaDB unix socket
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DBPASS"

# ---------------------------------------------------------------- fast path
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
db_ok() { mariadb-admin --protocol=socket -uroot ping >/dev/null 2>&1; }
ctld_ok() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_state() { sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1; }
node_ok() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }
assoc_ok() {
    [[ -n $(sacctmgr -n -P list assoc cluster=$CLUSTER account=$ACCOUNT user=root format=user 2>/dev/null) ]]
}

if ((CHANGED == 0)) && munge_ok && db_ok && pid_alive /run/slurmdbd.pid \
    && pid_alive /run/slurmctld.pid && pid_alive /run/slurmd.pid \
    && ctld_ok && node_ok && assoc_ok; then
    log "cluster '$CLUSTER' already up (node $NODE: $(node_state))"
    print_env
    exit 0
fi

# ---------------------------------------------------------------- munge
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating munge key"
    mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge   # clients (sbatch as any user) must reach the socket
if ! munge_ok; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged </dev/null >>"$LOGDIR/munged.out" 2>&1 9>&- \
        || die "munged failed to start"
    wait_for 30 "munge to encode/decode a credential" munge_ok
fi

# ---------------------------------------------------------------- MariaDB
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld
if ! db_ok; then
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        log "initialising MariaDB data directory"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$LOGDIR/mariadb.log" 2>&1 \
            || die "mariadb-install-db failed"
    fi
    log "starting mariadbd"
    # innodb_lock_wait_timeout=900 is what slurmdbd asks for (it warns otherwise).
    # No --log-error: mariadbd then logs to stderr, i.e. into $LOGDIR/mariadb.log
    # (it runs as mysql and could not open a root-owned log file itself).
    setsid /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
        --innodb-lock-wait-timeout=900 </dev/null >>"$LOGDIR/mariadb.log" 2>&1 9>&- &
    wait_for 60 "MariaDB to answer ping" db_ok
fi
mariadb --protocol=socket -uroot <<SQL || die "could not create the slurm database/user"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL PRIVILEGES ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

# ---------------------------------------------------------------- slurm daemons
# stop_pid FILE NAME: SIGTERM the daemon of a pid file and wait until it is gone.
stop_pid() {
    pid_alive "$1" || return 0
    local pid
    pid=$(cat "$1")
    log "stopping $2 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then kill -9 "$pid" 2>/dev/null || true; break; fi
        sleep 0.2
    done
    rm -f "$1"
}

if ((CHANGED)); then # configs changed: restart whatever runs with the old ones
    stop_pid /run/slurmd.pid slurmd
    stop_pid /run/slurmctld.pid slurmctld
    stop_pid /run/slurmdbd.pid slurmdbd
fi

if ! pid_alive /run/slurmdbd.pid; then
    log "starting slurmdbd"
    slurmdbd </dev/null >>"$LOGDIR/slurmdbd.out" 2>&1 9>&- || die "slurmdbd failed to start"
fi
wait_for 60 "slurmdbd to answer sacctmgr" sacctmgr -n list cluster

# Register cluster, account and users before slurmctld starts, so it loads the
# associations at once (AccountingStorageEnforce=associations).
if [[ -z $(sacctmgr -n -P list cluster $CLUSTER format=cluster) ]]; then
    sacctmgr -i add cluster $CLUSTER >&2 || die "sacctmgr add cluster failed"
fi
if [[ -z $(sacctmgr -n -P list account $ACCOUNT format=account) ]]; then
    sacctmgr -i add account $ACCOUNT cluster=$CLUSTER \
        description="twbyol tests" organization=twbyol >&2 || die "sacctmgr add account failed"
fi
users=(root)
[[ -n ${SUDO_USER:-} && ${SUDO_USER} != root ]] && users+=("$SUDO_USER")
[[ -n ${USER:-} && ${USER} != root ]] && users+=("$USER")
for u in "${users[@]}"; do
    if [[ -z $(sacctmgr -n -P list assoc cluster=$CLUSTER account=$ACCOUNT user="$u" format=user) ]]; then
        sacctmgr -i add user "$u" account=$ACCOUNT defaultaccount=$ACCOUNT cluster=$CLUSTER >&2 \
            || die "sacctmgr add user $u failed"
    fi
done

if ! pid_alive /run/slurmctld.pid; then
    log "starting slurmctld"
    slurmctld </dev/null >>"$LOGDIR/slurmctld.out" 2>&1 9>&- || die "slurmctld failed to start"
fi
wait_for 60 "slurmctld to answer scontrol ping" ctld_ok

if ! pid_alive /run/slurmd.pid; then
    log "starting slurmd"
    slurmd </dev/null >>"$LOGDIR/slurmd.out" 2>&1 9>&- || die "slurmd failed to start"
fi

# ---------------------------------------------------------------- wait for the node
deadline=$((SECONDS + TIMEOUT))
resumed=0
while ! node_ok; do
    state=$(node_state)
    # A node left down/drained by an earlier unclean stop does not come back by itself.
    if [[ $state =~ (down|drain|fail) ]] && ((!resumed)) && pid_alive /run/slurmd.pid; then
        log "node $NODE is '$state', resuming it"
        scontrol update nodename="$NODE" state=resume >&2 || true
        resumed=1
    fi
    ((SECONDS < deadline)) || die "node $NODE not idle after ${TIMEOUT}s (state '${state:-unknown}'; sinfo: $(sinfo -h -N -o '%N %T %E' 2>&1 | tr '\n' ' '))"
    sleep 0.5
done

log "node $NODE is $(node_state); running a test step"
out=$(timeout 60 srun -A $ACCOUNT -p $PARTITION -N1 -n1 -t 1 hostname 2>&1) \
    || die "srun hostname failed: $out"
log "srun ok ($out); cluster '$CLUSTER' up: $CPUS CPUs, ${REAL_MEM} MB, gpu:a100:$NGPUS"
print_env
