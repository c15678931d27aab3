#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one libFuzzer target for a fixed time over a scratch copy of its seed corpus, so a
# smoke run never rewrites the checked-in corpus. Usage: smoke.sh FUZZER CORPUS_DIR SECONDS
#
# * The seed corpus tests/fuzz/corpus/<name>/ must exist and hold at least one input: a
#   fuzzer without its corpus fails here rather than starting from nothing.
# * An input that crashes (or leaks, or times out) is kept in $NN_FUZZ_ARTIFACTS (default
#   ./fuzz-artifacts/ where ctest runs, i.e. <build>/tests/fuzz-artifacts/) as
#   <fuzzer>-crash-<sha1>; add it to the corpus once fixed.
# * NN_FUZZ_MERGE=1 merges the inputs of this run that reach new coverage into CORPUS_DIR
#   (libFuzzer -merge=1), to grow the checked-in corpus on purpose.
set -euo pipefail
fuzzer=$(realpath "$1") corpus=$(realpath "$2") secs=$3
name=$(basename "$fuzzer")
if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
  echo "$name: seed corpus $corpus is missing or empty (keep one in tests/fuzz/corpus/$name/)"
  exit 1
fi
artifacts=${NN_FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
cp -r "$corpus"/. "$work/corpus/"
echo "$name: $(find "$corpus" -type f | wc -l) seeds, ${secs}s"
cd "$work"
rc=0
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$work/corpus" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "$name: failed (exit $rc); inputs kept: $(ls "$artifacts" | grep "^$name-" | tr '\n' ' ')"
  exit "$rc"
fi
if [ "${NN_FUZZ_MERGE:-0}" = 1 ]; then
  "$fuzzer" -merge=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536 "$corpus" "$work/corpus" 2>&1 |
    tail -1
  echo "$name: corpus now $(find "$corpus" -type f | wc -l) inputs"
fi
