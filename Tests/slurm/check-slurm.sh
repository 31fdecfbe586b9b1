#!/usr/bin/env bash
# check-slurm.sh — end-to-end check of a Slurm job-array submission against a
# REAL single-node Slurm cluster on localhost.
#
# The script is self-contained: it creates a private temp dir, starts its own
# munged + slurmctld + slurmd (no systemd, nothing under /etc is used or
# changed), runs `run_grid_check`, and always tears everything down again via
# an EXIT trap, so no daemons are left behind even on failure.
#
# Requirements: run as root; Debian packages `slurm-wlm` and `munge`.
# Usage (from the repo root):  bash Tests/slurm/check-slurm.sh
#
# Tunables (environment): SLURM_CHECK_CTLD_PORT (16817), SLURM_CHECK_SLURMD_PORT
# (16818), SLURM_CHECK_NODE_WAIT (30 s), SLURM_CHECK_JOB_WAIT (120 s),
# SLURM_CHECK_KEEP=1 keeps the temp dir (daemons are still stopped).
set -euo pipefail

CTLD_PORT=${SLURM_CHECK_CTLD_PORT:-16817}
SLURMD_PORT=${SLURM_CHECK_SLURMD_PORT:-16818}
NODE_WAIT=${SLURM_CHECK_NODE_WAIT:-30}
JOB_WAIT=${SLURM_CHECK_JOB_WAIT:-120}

log()  { printf '[check-slurm] %s\n' "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || fail "must run as root (slurmd/slurmctld run as root here)"
for cmd in munged mungekey slurmctld slurmd sbatch squeue sinfo scontrol scancel; do
    command -v "$cmd" >/dev/null || fail "missing command: $cmd (apt-get install slurm-wlm munge)"
done
# Refuse to collide with something already listening on our ports.
for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
        fail "port $port already in use (set SLURM_CHECK_CTLD_PORT / SLURM_CHECK_SLURMD_PORT)"
    fi
done

# ---------------------------------------------------------------------------
# Private working area. Everything (keys, sockets, state, logs, job output)
# lives here so that we never touch the system-wide munge/slurm setup.
# ---------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/check-slurm.XXXXXX)
# munged refuses to create its socket unless every directory on the socket
# path is world-executable ("Socket is inaccessible: execute permissions for
# all required"), and mktemp -d creates mode 0700. 0711 = traversable, not listable.
chmod 0711 "$WORK"
mkdir -p "$WORK"/{state,spool/slurmd-"$(hostname -s)",log,run,out}

MUNGE_SOCK=$WORK/run/munge.sock
MUNGED_PID= CTLD_PID= SLURMD_PID=

# ---------------------------------------------------------------------------
# Teardown: runs on every exit path (success, failure, Ctrl-C).
# ---------------------------------------------------------------------------
stop_pid() {  # stop_pid NAME PID: SIGTERM, wait up to 10 s, then SIGKILL
    local name=$1 pid=$2 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.2
    done
    log "$name (pid $pid) ignored SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    # Cancel whatever is still queued/running so that no slurmstepd (which is
    # not a child of slurmd once started) outlives the cluster.
    if [[ -n $CTLD_PID ]] && kill -0 "$CTLD_PID" 2>/dev/null; then
        scancel --quiet --user=root 2>/dev/null
        for ((i = 0; i < 50; i++)); do
            [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.2
        done
    fi
    stop_pid slurmd    "$SLURMD_PID"
    stop_pid slurmctld "$CTLD_PID"
    stop_pid munged    "$MUNGED_PID"
    if (( rc != 0 )); then
        # Help debugging: show the tail of each daemon log before deleting them.
        for f in "$WORK"/log/*.log; do
            [[ -s $f ]] || continue
            echo "----- tail $f -----" >&2
            tail -n 15 "$f" >&2
        done
    fi
    if [[ ${SLURM_CHECK_KEEP:-0} == 1 ]]; then
        log "keeping $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# 1. munge: private key + private daemon on a private socket.
# ---------------------------------------------------------------------------
# Key must be owned by the user munged runs as (root here) and not readable by
# others; mungekey creates it 0600, we tighten to 0400.
mungekey --create --keyfile="$WORK/munge.key"
chmod 0400 "$WORK/munge.key"
# munged daemonizes itself and writes its pid file; no --force needed as root.
munged --key-file="$WORK/munge.key" \
       --socket="$MUNGE_SOCK" \
       --pid-file="$WORK/run/munged.pid" \
       --log-file="$WORK/log/munged.log" \
       --seed-file="$WORK/run/munged.seed" \
    || fail "munged did not start (see $WORK/log/munged.log)"
MUNGED_PID=$(cat "$WORK/run/munged.pid")
munge -S "$MUNGE_SOCK" -n | unmunge -S "$MUNGE_SOCK" >/dev/null \
    || fail "munge round-trip through $MUNGE_SOCK failed"
pass "private munged running (pid $MUNGED_PID)"

# ---------------------------------------------------------------------------
# 2. slurm.conf: one node, one partition, no accounting, no cgroups.
# ---------------------------------------------------------------------------
NODE=$(hostname -s)   # slurmd identifies itself by short hostname
NCPUS=2
# RealMemory must not exceed what slurmd detects or the node is drained as
# "Low RealMemory"; take the detected value minus a margin.
MEM_MB=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
MEM_MB=$(( ${MEM_MB:-2048} > 1536 ? ${MEM_MB:-2048} - 512 : 1024 ))

export SLURM_CONF=$WORK/slurm.conf   # every client command (sbatch, squeue, ...) reads this
cat >"$SLURM_CONF" <<EOF
ClusterName=checkslurm
# NodeAddr/ctld address pinned to loopback: no DNS / /etc/hosts surprises.
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
# Talk to OUR munged, not /run/munge/munge.socket.2 (used by auth and creds).
AuthType=auth/munge
AuthInfo=socket=${MUNGE_SOCK}
CredType=cred/munge
StateSaveLocation=${WORK}/state
SlurmdSpoolDir=${WORK}/spool/slurmd-%n
SlurmctldPidFile=${WORK}/run/slurmctld.pid
SlurmdPidFile=${WORK}/run/slurmd.pid
SlurmctldLogFile=${WORK}/log/slurmctld.log
SlurmdLogFile=${WORK}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: linuxproc tracks by process tree, task/none does no binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# No mail on this box; the default /usr/bin/mail does not exist (log noise).
MailProg=/bin/true
# Bring the node back automatically after a restart.
ReturnToService=2
# Keep finished jobs visible to scontrol for a while (no accounting DB).
MinJobAge=300
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${NCPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF

# ---------------------------------------------------------------------------
# 3. Start slurmctld and slurmd in the foreground (-D) as background jobs of
#    this shell, so that we hold their real pids for the trap.
#    slurmctld -c: start from a clean state (ignore anything in StateSave).
# ---------------------------------------------------------------------------
slurmctld -D -c -f "$SLURM_CONF" >"$WORK/log/slurmctld.stdout" 2>&1 &
CTLD_PID=$!
# Wait for the controller to answer before starting slurmd (it registers).
for ((i = 0; i < NODE_WAIT * 5; i++)); do
    scontrol ping 2>/dev/null | grep -q 'is UP' && break
    kill -0 "$CTLD_PID" 2>/dev/null || fail "slurmctld exited early"
    sleep 0.2
done
scontrol ping 2>/dev/null | grep -q 'is UP' || fail "slurmctld not responding after ${NODE_WAIT}s"
pass "slurmctld up (pid $CTLD_PID)"

slurmd -D -f "$SLURM_CONF" >"$WORK/log/slurmd.stdout" 2>&1 &
SLURMD_PID=$!

# Node must reach "idle" within NODE_WAIT seconds.
state=
for ((i = 0; i < NODE_WAIT * 2; i++)); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    [[ $state == idle ]] && break
    kill -0 "$SLURMD_PID" 2>/dev/null || fail "slurmd exited early"
    sleep 0.5
done
[[ $state == idle ]] || fail "node $NODE not idle after ${NODE_WAIT}s (state='$state')"
pass "slurmd up (pid $SLURMD_PID), node $NODE idle"

# ---------------------------------------------------------------------------
# 4. The actual test.
# ---------------------------------------------------------------------------
JOB_ID=
TASKS_DONE=0

# job_states JOBID: one "TaskId JobState ExitCode" line per array task.
# No accounting DB (sacct is useless here), so ask slurmctld; finished jobs
# stay visible for MinJobAge seconds.
job_states() {
    scontrol -o show job "$1" 2>/dev/null |
        sed -n 's/.*ArrayTaskId=\([^ ]*\).*JobState=\([^ ]*\).*ExitCode=\([^ ]*\).*/\1 \2 \3/p' |
        sort -n
}

# wait_job JOBID: poll squeue until the job (all array tasks) is gone.
wait_job() {
    local jid=$1 t
    for ((t = 0; t < JOB_WAIT; t++)); do
        [[ -z $(squeue -h -j "$jid" -o %i 2>/dev/null) ]] && return 0
        sleep 1
    done
    return 1
}

# run_grid_check: placeholder hook. Replace the body with the project's
# commands (e.g. build an sbatch script for the grid, submit, wait, verify).
# Available: $WORK (private dir), $WORK/out (output dir visible to tasks),
# $SLURM_CONF (exported), wait_job, pass/fail. Set JOB_ID and TASKS_DONE for
# the summary.
run_grid_check() {
    local out=$WORK/out n=4 i missing=0
    # Tasks inherit the submitting environment and cwd (sbatch --export=ALL
    # and --chdir default to that), so the output dir is passed via --export.
    JOB_ID=$(cd "$out" && sbatch --parsable \
        --job-name=grid-check \
        --array=0-$((n - 1))%2 \
        --cpus-per-task=1 \
        --output="$out/%A_%a.out" \
        --export=ALL,OUT_DIR="$out" \
        --wrap='echo "$SLURM_ARRAY_TASK_ID" > "$OUT_DIR/task_$SLURM_ARRAY_TASK_ID"; sleep 1')
    JOB_ID=${JOB_ID%%;*}   # --parsable prints "jobid[;cluster]"
    [[ $JOB_ID =~ ^[0-9]+$ ]] || fail "sbatch did not return a job id: '$JOB_ID'"
    pass "submitted array job $JOB_ID (tasks 0-$((n - 1)), max 2 concurrent)"

    wait_job "$JOB_ID" || fail "job $JOB_ID still in queue after ${JOB_WAIT}s"
    pass "job $JOB_ID left the queue"

    # Every task must have ended COMPLETED with exit code 0:0.
    local bad
    bad=$(job_states "$JOB_ID" | awk '$2 != "COMPLETED" || $3 != "0:0"')
    [[ -z $bad ]] || fail "array tasks did not all complete cleanly (task state exit):"$'\n'"$bad"
    [[ $(job_states "$JOB_ID" | wc -l) -eq $n ]] || fail "expected $n array tasks in scontrol output"
    pass "all $n tasks COMPLETED with exit code 0:0"

    for ((i = 0; i < n; i++)); do
        if [[ -f $out/task_$i && $(<"$out/task_$i") == "$i" ]]; then
            TASKS_DONE=$((TASKS_DONE + 1))
        else
            echo "  missing/wrong: $out/task_$i" >&2
            missing=1
        fi
        [[ -f $out/${JOB_ID}_$i.out ]] || { echo "  missing stdout: ${JOB_ID}_$i.out" >&2; missing=1; }
    done
    (( missing == 0 )) || fail "only $TASKS_DONE/$n array tasks produced their output"
    pass "all $n array tasks wrote their files"
}

run_grid_check

# ---------------------------------------------------------------------------
# 5. Summary (daemons are stopped by the EXIT trap after this).
# ---------------------------------------------------------------------------
echo "---------------- summary ----------------"
echo "slurm version : $(sinfo -V)"
echo "job id        : $JOB_ID"
echo "tasks done    : $TASKS_DONE"
echo "PASS: slurm job-array check"
