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

# run_grid_check: desgd-grid against this Slurm. A 6-cell grid of seconds
# (synthetic data, small model, 6 rounds); cell 0 is recorded locally first,
# so the job array must hold exactly the other 5 (the resume rule); every task
# must finish its cell; the report must collect all 6; a second submission
# must be refused (nothing left to run); and a cell recorded by Slurm must be
# byte-identical to the same cell recorded locally.
GRID=${DESGD_GRID:-$PWD/.build/release/desgd-grid}
run_grid_check() {
    [[ -x $GRID ]] || fail "no desgd-grid at $GRID (swift build -c release, or set DESGD_GRID)"
    local out=$WORK/out dir=$WORK/out/grid spec=$WORK/out/smoke.json n=6
    cat >"$spec" <<'JSON'
{"name": "slurm-smoke",
 "options": "--synthetic 1200 --model small --honest 10 --byzantine 1 --batch 8 --rounds 6 --eval-every 3",
 "record": "full", "seeds": [1],
 "methods": [{"label": "Krum", "options": "--mode sgd --agg krum:q=n-f-1"},
             {"label": "Krum+", "options": "--mode desgd --agg krum:q=n-f-1"},
             {"label": "No defence", "options": "--mode sgd --momentum global --agg mean"}],
 "attacks": [{"label": "Non", "spec": "none"}, {"label": "IPM", "spec": "ipm"}],
 "reference": {"method": "No defence", "attack": "Non"}}
JSON
    "$GRID" run "$spec" --dir "$dir" --cell 0 >/dev/null 2>&1 || fail "local run of cell 0 failed"
    pass "cell 0 recorded locally"

    local submitted
    submitted=$("$GRID" slurm "$spec" --dir "$dir" --submit --cpus-per-task 1 --mem 500M --max-concurrent 2) ||
        fail "desgd-grid slurm --submit failed"
    echo "$submitted" | sed 's/^/  /'
    grep -q "5 of 6 cells (array 1-5)" <<<"$submitted" || fail "the array should hold cells 1-5 only"
    JOB_ID=$(sed -n 's/^submitted job \([0-9]*\).*/\1/p' <<<"$submitted")
    [[ $JOB_ID =~ ^[0-9]+$ ]] || fail "no job id in: $submitted"
    pass "submitted array job $JOB_ID (cells 1-5; cell 0 already finished)"

    wait_job "$JOB_ID" || fail "job $JOB_ID still in queue after ${JOB_WAIT}s"
    local bad
    bad=$(job_states "$JOB_ID" | awk '$2 != "COMPLETED" || $3 != "0:0"')
    [[ -z $bad ]] || { cat "$dir"/slurm/*.out >&2; fail "array tasks did not all complete cleanly:"$'\n'"$bad"; }
    TASKS_DONE=$(job_states "$JOB_ID" | wc -l)
    (( TASKS_DONE == 5 )) || fail "expected 5 array tasks, scontrol shows $TASKS_DONE"
    pass "all 5 tasks COMPLETED with exit code 0:0"

    local status
    status=$("$GRID" status "$spec" --dir "$dir")
    echo "$status" | sed 's/^/  /'
    head -1 <<<"$status" | grep -q "6 cells, 6 finished" || fail "not every cell is finished"
    (( $("$GRID" report "$spec" --dir "$dir" --csv - | grep -c '^I,') == n )) || fail "the report does not hold 6 cells"
    "$GRID" report "$spec" --dir "$dir" | sed -n '/^## Table I/,/^## Table II/p' | sed 's/^/  /'
    pass "desgd-grid report collects all $n cells"

    local rc=0 again
    again=$("$GRID" slurm "$spec" --dir "$dir" --submit 2>&1) || rc=$?
    (( rc == 2 )) && grep -q "nothing to submit" <<<"$again" || fail "a finished grid was submitted again (exit $rc): $again"
    pass "resubmitting a finished grid is refused: $again"

    "$GRID" run "$spec" --dir "$out/local" --cell 3 >/dev/null 2>&1 || fail "local run of cell 3 failed"
    cmp -s "$dir/Krum+__IPM__seed1.trace" "$out/local/Krum+__IPM__seed1.trace" ||
        fail "cell 3 recorded by Slurm differs from the same cell recorded locally"
    pass "cell 3 recorded by Slurm is byte-identical to the local recording"
}

# run_cancel_check: scancel (SIGTERM) stops a task cleanly and the next
# submission resumes the cell. One cell of 1 500 rounds (~20 s, a state
# checkpoint every 50: the quick preset's); once its trace holds rounds, the
# job is cancelled; the trace must be closed with its footer marked
# interrupted (status: "stopped after N of 1500 rounds; resumes from round
# M"); submitting again must resume it from there (the task log says so,
# nothing is kept aside) to the bytes of an uninterrupted local recording.
run_cancel_check() {
    local out=$WORK/out dir=$WORK/out/stop spec=$WORK/out/stop.json status submitted job t
    cat >"$spec" <<'JSON'
{"name": "slurm-stop", "options": "--synthetic 1200 --model small --honest 10 --byzantine 1 --batch 8 --rounds 1500 --eval-every 500",
 "record": "decisions", "methods": [{"label": "Mean", "options": "--mode desgd --agg mean"}], "attacks": [{"label": "IPM", "spec": "ipm"}]}
JSON
    submitted=$("$GRID" slurm "$spec" --dir "$dir" --submit --cpus-per-task 1 --mem 500M) || fail "submission failed"
    job=$(sed -n 's/^submitted job \([0-9]*\).*/\1/p' <<<"$submitted")
    for ((t = 0; t < 60; t++)); do
        [[ -s $dir/Mean__IPM__seed1.trace ]] && (( $(stat -c %s "$dir/Mean__IPM__seed1.trace") > 200000 )) && break
        sleep 0.5
    done
    "$GRID" status "$spec" --dir "$dir" | grep -q "running" || fail "the cell is not running before scancel"
    scancel "$job"
    wait_job "$job" || fail "job $job still in queue after scancel"
    status=$("$GRID" status "$spec" --dir "$dir")
    echo "$status" | sed 's/^/  /'
    grep -Eq "incomplete +stopped after [0-9]+ of 1500 rounds; resumes from round [0-9]+" <<<"$status" ||
        fail "scancel did not leave a cleanly closed, interrupted trace with a checkpoint to resume from"
    pass "scancel (SIGTERM) stopped task of job $job after its current round, trace closed"

    submitted=$("$GRID" slurm "$spec" --dir "$dir" --submit --cpus-per-task 1 --mem 500M) || fail "resubmission failed"
    job=$(sed -n 's/^submitted job \([0-9]*\).*/\1/p' <<<"$submitted")
    wait_job "$job" || fail "job $job still in queue after ${JOB_WAIT}s"
    "$GRID" status "$spec" --dir "$dir" | head -1 | grep -q "1 cells, 1 finished" || fail "the resubmitted cell did not finish"
    [[ ! -e $dir/Mean__IPM__seed1.incomplete-1.trace ]] || fail "the interrupted trace was kept aside instead of resumed"
    grep -q "resumed from round" "$dir/slurm/${job}_0.out" || fail "the task log of job $job does not say the cell resumed"
    "$GRID" run "$spec" --dir "$out/stop-local" --jobs 1 --threads 1 >/dev/null || fail "the local recording of the cell failed"
    cmp -s "$dir/Mean__IPM__seed1.trace" "$out/stop-local/Mean__IPM__seed1.trace" ||
        fail "the resumed cell differs from the same cell recorded uninterrupted"
    pass "resubmission (job $job) resumed the interrupted cell to the bytes of an uninterrupted recording"
}

run_grid_check
run_cancel_check

# ---------------------------------------------------------------------------
# 5. Summary (daemons are stopped by the EXIT trap after this).
# ---------------------------------------------------------------------------
echo "---------------- summary ----------------"
echo "slurm version : $(sinfo -V)"
echo "job id        : $JOB_ID"
echo "tasks done    : $TASKS_DONE"
echo "PASS: slurm job-array check"
