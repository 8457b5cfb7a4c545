#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer (Debian's clang and libclang-rt-14-dev), seeds their
# corpora and runs each target for a while.
#
#   bash tests/fuzz/run.sh [BUILD_DIR] [SECONDS]      defaults: build/fuzz, 60 seconds per target
#
# The targets run at the same time. FUZZ_CXX picks the compiler (clang++) and
# FUZZ_FLAGS adds flags to it.
#
# Corpora and findings stay in BUILD_DIR (never in the repository): BUILD_DIR/corpus/TARGET grows
# with every run, and a crash, leak, timeout or out-of-memory input is written to
# BUILD_DIR/artifacts/ and its path printed. The script exits non-zero when any target fails.
# Once such a defect is understood, copy its input to tests/fuzz/regressions/TARGET/ so that
# CTest replays it with every compiler (see tests/CMakeLists.txt).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/fuzz}
seconds=${2:-60}
mkdir -p "$build"
build=$(cd "$build" && pwd)
cxx=${FUZZ_CXX:-clang++}
flags=(-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
       -I"$root/include")
# FUZZ_FLAGS adds compiler flags.
read -r -a extra_flags <<<"${FUZZ_FLAGS:-}"
flags+=("${extra_flags[@]}")
targets=(reader writer differential plan)

declare -A builds
for target in "${targets[@]}"; do
  echo "--- fuzz_$target: building"
  "$cxx" "${flags[@]}" "$root/tests/fuzz/fuzz_$target.cpp" -o "$build/fuzz_$target" &
  builds[$target]=$!
done
for target in "${targets[@]}"; do wait "${builds[$target]}"; done

# Seeds: every file of the reference corpus and every regression input, for both targets (any
# bytes are a valid writer input too), plus a few writer programs written by hand. Names are
# content hashes, as libFuzzer names the files it adds.
add_seed() {  # add_seed TARGET FILE
  cp "$2" "$build/corpus/$1/seed-$(sha1sum <"$2" | cut -c1-40)"
}
for target in "${targets[@]}"; do
  mkdir -p "$build/corpus/$target"
  while IFS= read -r -d '' file; do
    add_seed "$target" "$file"
  done < <(find "$root/tests/data/reference" "$root/tests/fuzz/regressions" -type f -print0)
done
# Writer seeds, decoded as fuzz_writer.cpp reads its input: tensor count, then per tensor its name
# (kind, pieces), dtype index, rank and dimensions; metadata; alignment; then how to stream.
writer_seeds=(
  ''                                                                                  # no tensors
  '\x02\x02\x03\x04\x03\x02\x01\x11\x02\x07\x02\x07\x03\x02\x01\x00\x01\x04\x01\x07\x04\x01\x01\x02\x01\x01\x01\x02\x01\x05\x01\x07\x2a\x01\x01\x07\x01\x01\x05\x01\x0b\x01\xff\x07\x02\x01'
  '\x03\x02\x02\x08\x0e\x01\x01\x02\x07\x02\x07\x04\x02\x02\x09\x0a\x01\x03\x01\x07\x04\x02\x00\x01\x15\x03\x00\x02\x05\x00\x01\x07\x01\x01'  # F4, F6, escapes, NUL, a zero dim
  '\x02\x02\x01\x00\x01\x04\x00\x02\x01\x00\x01\x11\x00\x00\x07'                    # a name twice
  '\x01\x02\x01\x01\x01\x04\x03\x02\x02\x00\x00\x07'                                # [2^32, 2^32, 0]
  '\x02\x00\x01\x04\x00\x02\x01\x00\x00\x00\x04\x00\x00\x07'                        # "__metadata__", "a\xff"
  '\x01\x01\x05\x01\x04\x01\x03\x00\x02'                                            # 2^61 bytes, alignment 4096
)
for i in "${!writer_seeds[@]}"; do
  printf "${writer_seeds[$i]}" >"$build/writer-seed-$i"
  add_seed writer "$build/writer-seed-$i"
  rm "$build/writer-seed-$i"
done

mkdir -p "$build/artifacts"
# The targets run side by side (the machines here have two cores: they share them).
declare -A pids
for target in "${targets[@]}"; do
  echo "--- fuzz_$target: $(ls "$build/corpus/$target" | wc -l) inputs in the corpus, running for $seconds s"
  options=(-max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=25 -print_final_stats=1
           -artifact_prefix="$build/artifacts/$target-")
  [ -f "$root/tests/fuzz/$target.dict" ] && options+=(-dict="$root/tests/fuzz/$target.dict")
  "$build/fuzz_$target" "${options[@]}" "$build/corpus/$target" >"$build/fuzz_$target.log" 2>&1 &
  pids[$target]=$!
done
failed=0
for target in "${targets[@]}"; do
  status=0
  wait "${pids[$target]}" || status=$?
  log=$build/fuzz_$target.log
  echo "--- fuzz_$target: finished (exit $status); log in $log"
  # libFuzzer's last status line: "#RUNS DONE cov: EDGES ft: FEATURES corp: ..."
  grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "!!! fuzz_$target FAILED (exit $status); the end of its log:"
    tail -n 60 "$log"
    grep -E 'Test unit written to' "$log" | sed 's/.*Test unit written to /!!! input that failed: /' || true
  fi
done
exit "$failed"
