#!/usr/bin/env bash
# Stop the single-node SLURM started by tests/cluster/up.sh: slurmd, slurmctld,
# slurmdbd, MariaDB, munged -- in reverse start order, each by its pid file.
# Idempotent: daemons that are not running are skipped. Configs, the accounting
# database and /var/lib/twbyol-slurm are kept, so the next up.sh is quick.
set -euo pipefail

log() { echo "[down.sh] $*" >&2; }

# stop_pid FILE NAME: SIGTERM the process of a pid file, wait (SIGKILL after 30 s).
stop_pid() {
    local file=$1 name=$2 pid
    [[ -s $file ]] || return 0
    pid=$(cat "$file")
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$file"   # stale pid file from an earlier, unclean stop
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$name did not stop in 30s, killing it"
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$file"
}

# Slurm daemons first, so slurmctld can still flush job records to slurmdbd.
stop_pid /run/slurmd.pid slurmd
stop_pid /run/slurmctld.pid slurmctld
stop_pid /run/slurmdbd.pid slurmdbd
# MariaDB: mariadbd removes its own pid file on a clean shutdown.
stop_pid /run/mysqld/mysqld.pid mariadbd
stop_pid /run/munge/munged.pid munged
log "stopped"
