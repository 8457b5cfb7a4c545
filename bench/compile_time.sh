#!/usr/bin/env bash
# What a user's translation unit pays to compile the library: bench/compile_time_user.cpp (the
# core and model.hpp: open a sharded model, read every tensor as float, load them through a plan)
# at -O2, with g++ and clang++, the median of RUNS compiles each, beside a baseline compiled in the
# same run: the same program's standard includes alone (no library). Another include folder (an
# older checkout's) can be timed in the same run for a before/after.
#   bench/compile_time.sh [RUNS] [OTHER_INCLUDE_DIR]
# clang's -ftime-trace of this checkout's compile, for where the time goes, is left in
# $TMPDIR/compile-time/traced.json (open it in chrome://tracing or speedscope).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
other=${2:-}
work=${TMPDIR:-/tmp}/compile-time
mkdir -p "$work"
source=$root/bench/compile_time_user.cpp
baseline=$work/baseline.cpp
grep '^#include <[a-z_]*>' "$source" >"$baseline"
echo 'int main() { return 0; }' >>"$baseline"

median_seconds() {  # COMMAND...: the median wall time of $runs runs
  local times=()
  for ((i = 0; i < runs; i++)); do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    times+=("$(awk "BEGIN { print $end - $start }")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

printf '%-10s %-40s %s\n' compiler "what" "median s"
for compiler in g++ clang++; do
  printf '%-10s %-40s %s\n' "$compiler" "baseline (standard includes only)" \
    "$(median_seconds "$compiler" -std=c++17 -O2 -c "$baseline" -o "$work/baseline.o")"
  printf '%-10s %-40s %s\n' "$compiler" "compile_time_user.cpp, this checkout" \
    "$(median_seconds "$compiler" -std=c++17 -O2 -I "$root/include" -c "$source" -o "$work/this.o")"
  if [ -n "$other" ]; then
    printf '%-10s %-40s %s\n' "$compiler" "compile_time_user.cpp, $other" \
      "$(median_seconds "$compiler" -std=c++17 -O2 -I "$other" -c "$source" -o "$work/other.o")"
  fi
done
clang++ -std=c++17 -O2 -I "$root/include" -ftime-trace -ftime-trace-granularity=1000 -c "$source" -o "$work/traced.o"
echo "clang's time trace: $work/traced.json"
