#!/usr/bin/env bash
# Fuzzes the trace reader with libFuzzer. Builds desgd-fuzz with -sanitize=fuzzer (its own build folder,
# FUZZ_BUILD, default .build-fuzz; the plain build in BUILD, default .build), records small seed traces with
# desgd-record, and runs two targets:
#
# - records: the pure parser (TraceParsing) on one record body at a time (header, round or keyframe
#   JSON and vector section, validated against a seed's header, every vector decoded); ~1 000 inputs/s
#   here, RECORD_RUNS executions (default 1 000 000);
# - files: whole traces through TraceExercise (open, digest chain, every round and keyframe with their
#   vectors, audit with trmean and cclip, verification), mutated by TraceMutator (JSON fields, vector
#   tables and sections, record headers, index and footer entries, whole records; long and nested spec
#   strings, headers claiming large shapes, hostile checkpoint states) with every digest and the chain
#   recomputed, then re-simulated under a 256 MB limit (first segment re-executed, resumed, forked:
#   ResimulationExercise); FILE_RUNS executions (default 100 000).
#
#   bash Tests/fuzz/fuzz-traces.sh                         # both targets
#   TARGET=files FILE_RUNS=1000000 bash Tests/fuzz/fuzz-traces.sh
#   bash Tests/fuzz/fuzz-traces.sh -max_total_time=600     # extra libFuzzer flags go to both runs
#   DESGD_FUZZ_RESIMULATE=0 TARGET=files bash Tests/fuzz/fuzz-traces.sh   # the reader alone, no re-simulation
#
# A crasher lands in Tests/fuzz/regressions/ as crash-*: commit it (the test suite runs every file there
# through the exercise; a records-target crasher is named records-*). Corpora stay in $WORK (default
# /tmp/desgd-fuzz). Exit code: libFuzzer's (0: no crash, no hang, no out-of-memory).
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${TARGET:-both}
RECORD_RUNS=${RECORD_RUNS:-1000000}
FILE_RUNS=${FILE_RUNS:-100000}
WORK=${WORK:-/tmp/desgd-fuzz}
BUILD=${BUILD:-.build}
FUZZ_BUILD=${FUZZ_BUILD:-.build-fuzz}
export SWIFT_BACKTRACE=enable=no
mkdir -p "$WORK/seeds" "$WORK/bodies" "$WORK/corpus-files" "$WORK/corpus-records" Tests/fuzz/regressions

swift build -c release --scratch-path "$BUILD" --product desgd-record --product desgd-fuzz >/dev/null
# lld: gold fails on the libFuzzer runtime beside SwiftPM's renamed entry point.
swift build -c release --product desgd-fuzz --scratch-path "$FUZZ_BUILD" -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING \
  -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld >/dev/null

# Seeds: small synthetic runs covering DeSGD and SGD, full, sampled and decisions recording, a stateful
# rule (cclip) and attack (mimic's heuristic), a state checkpoint before every round, a fork of it, and a
# trace without its footer.
record="$BUILD/release/desgd-record"
common="--synthetic 300 --honest 10 --byzantine 1 --threads 1 --keyframe-every 100 --force"
if [ ! -f "$WORK/seeds/full-cclip-ipm.trace" ]; then
  $record $common --rounds 2 --agg cclip --attack ipm --eval-every 2 --out "$WORK/seeds/full-cclip-ipm.trace" >/dev/null
  $record $common --rounds 3 --mode sgd --agg mean --attack alie --record decisions --out "$WORK/seeds/decisions-sgd-alie.trace" >/dev/null
  $record $common --rounds 2 --agg cclip --attack ipm --record decisions --out "$WORK/seeds/decisions-desgd-cclip.trace" >/dev/null
  $record --synthetic 300 --honest 4 --byzantine 1 --threads 1 --keyframe-every 100 --force --rounds 1 --mode sgd \
    --agg trmean --attack signflip --out "$WORK/seeds/full-sgd-1r.trace" >/dev/null
  $record $common --rounds 3 --agg cclip --attack ipm --checkpoint-every 1 --out "$WORK/seeds/checkpoints-cclip-ipm.trace" >/dev/null
  # A fork (format 1.3: the `fork` header key, rounds from 2, a checkpoint first).
  $record --fork "$WORK/seeds/checkpoints-cclip-ipm.trace" --at 2 --agg geomed --out "$WORK/seeds/fork-geomed.trace" >/dev/null
  # A carried attack state with scalars (mimic's heuristic: mu, z, t, target) in every checkpoint.
  $record --synthetic 300 --honest 4 --byzantine 1 --threads 1 --keyframe-every 100 --force --mode sgd --agg cclip \
    --attack mimic:mode=heuristic --rounds 2 --checkpoint-every 1 --record decisions --out "$WORK/seeds/checkpoints-mimic.trace" >/dev/null
  head -c -400 "$WORK/seeds/decisions-sgd-alie.trace" > "$WORK/seeds/unfinished.trace"
  # A live federation's trace (format 1.5: the header's engine, client signatures in every round).
  cp traces/samples/v1.5-live-flower-trmean-alie-small-3r-signed.trace "$WORK/seeds/live-flower.trace"
  cp traces/samples/v1.6-live-flower-own-model-trmean-alie-3r-signed.trace "$WORK/seeds/live-own-model.trace"
  for t in "$WORK"/seeds/*.trace; do "$BUILD/release/desgd-fuzz" --bodies "$t" "$WORK/bodies"; done
fi

status=0
if [ "$TARGET" = records ] || [ "$TARGET" = both ]; then
  DESGD_FUZZ_TARGET=records DESGD_FUZZ_HEADER="$WORK/seeds/full-cclip-ipm.trace" \
    "$FUZZ_BUILD/release/desgd-fuzz" -runs="$RECORD_RUNS" -max_len=1000000 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
    -artifact_prefix=Tests/fuzz/regressions/records- "$@" "$WORK/corpus-records" "$WORK/bodies" || status=$?
fi
if [ "$status" = 0 ] && { [ "$TARGET" = files ] || [ "$TARGET" = both ]; }; then
  "$FUZZ_BUILD/release/desgd-fuzz" -runs="$FILE_RUNS" -max_len=700000 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 \
    -artifact_prefix=Tests/fuzz/regressions/ "$@" "$WORK/corpus-files" "$WORK/seeds" || status=$?
fi
exit "$status"
