#!/usr/bin/env bash
# Fuzzes the trace reader with libFuzzer: builds desgd-fuzz with -sanitize=fuzzer (its own build folder,
# .build-fuzz), records seed traces with desgd-record, and runs RUNS executions (default 1 000 000) of
# TraceExercise (open, digest chain, every round and keyframe with their vectors, audit with trmean and
# cclip, verification) over inputs mutated by TraceMutator (JSON fields, vector tables and sections,
# record headers, index and footer entries, whole records; digests and chain recomputed).
#
#   bash Tests/fuzz/fuzz-traces.sh                 # 1 000 000 executions
#   RUNS=20000 bash Tests/fuzz/fuzz-traces.sh      # a short pass
#   bash Tests/fuzz/fuzz-traces.sh -max_total_time=600   # extra libFuzzer flags are passed on
#
# Crashers land in Tests/fuzz/crashers/ (commit each one: the test suite replays them all); the corpus
# grown by the run stays in $WORK (default /tmp/desgd-fuzz). Exit code: libFuzzer's (0: no crash).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-1000000}
WORK=${WORK:-/tmp/desgd-fuzz}
export SWIFT_BACKTRACE=enable=no
mkdir -p "$WORK/corpus" "$WORK/seeds" Tests/fuzz/crashers

swift build -c release --product desgd-record >/dev/null
# lld: gold fails on the libFuzzer runtime beside SwiftPM's renamed entry point.
swift build -c release --product desgd-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING \
  -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld >/dev/null

# Seeds: small synthetic runs covering DeSGD and SGD, full, sampled and decisions recording, a stateful
# rule (cclip), a random schedule with two classes per round, and a trace without its footer.
record=.build/release/desgd-record
common="--synthetic 300 --honest 10 --byzantine 1 --threads 1 --keyframe-every 100 --force"
[ -f "$WORK/seeds/full-cclip-ipm.trace" ] || {
  $record $common --rounds 2 --agg cclip --attack ipm --eval-every 2 --out "$WORK/seeds/full-cclip-ipm.trace" >/dev/null
  $record $common --rounds 3 --mode sgd --agg mean --attack alie --record decisions --out "$WORK/seeds/decisions-sgd-alie.trace" >/dev/null
  $record $common --rounds 4 --agg trmean --attack signflip --record sampled:3 --schedule random --classes-per-round 2 \
    --out "$WORK/seeds/sampled-trmean.trace" >/dev/null
  head -c -400 "$WORK/seeds/decisions-sgd-alie.trace" > "$WORK/seeds/unfinished.trace"
}

.build-fuzz/release/desgd-fuzz -runs="$RUNS" -max_len=2500000 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
  -artifact_prefix=Tests/fuzz/crashers/ "$@" "$WORK/corpus" "$WORK/seeds" Tests/fuzz/crashers
