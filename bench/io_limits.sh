#!/usr/bin/env bash
# Where the disk's limit is, beside the library's loads of the same files in the same run: fio
# (Debian's) reading a 4-shard model with io_uring, O_DIRECT, queue depth 16 and 8 MiB blocks, and
# with psync through the page cache, one thread; then safetensors-cli load of the model, cold
# (each shard dropped from the page cache before every run, with dd iflag=nocache), with each
# engine, buffered and direct, and warm beside a raw read of the shards (cat). Medians of RUNS runs
# of each, in GB/s, and each load's ratio to its baseline.
#
# Usage: bench/io_limits.sh BUILD_DIR [SIZE_GIB (2)] [RUNS (5)]
#   BUILD_DIR holds examples/safetensors-cli and bench/safetensors-produce-file (a Release build).
#   The model is written under $SAFETENSORS_BENCH_DIR (default /tmp) and removed at exit.
set -euo pipefail
build=$(cd "$1" && pwd)
size=${2:-2}
runs=${3:-5}
cli=$build/examples/safetensors-cli
command -v fio >/dev/null || { echo "fio is needed: apt-get install -y fio" >&2; exit 2; }
work=$(mktemp -d "${SAFETENSORS_BENCH_DIR:-/tmp}/safetensors-io-limits-XXXXXX")
trap 'rm -rf "$work"' EXIT

"$build/bench/safetensors-produce-file" "$work/whole.safetensors" "$size" >/dev/null
"$cli" split --max-shard-size "$((size * 1024 / 4 + 1))MiB" "$work/whole.safetensors" "$work/model" >/dev/null
rm "$work/whole.safetensors"
shards=("$work"/model/*.safetensors)
drop() { for shard in "${shards[@]}"; do dd if="$shard" iflag=nocache count=0 status=none; done; }
sync

median() { python3 -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
# fio's read bandwidth in GB/s (fio drops the files from the cache before each run: invalidate=1).
fio_run() {
  fio --name=limit --filename="$(IFS=:; echo "${shards[*]}")" --rw=read --bs=8M --output-format=json "$@" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"] / 1e9)'
}
# safetensors-cli load --json's GB/s; cold unless the first argument is "warm".
load_run() {
  if [[ $1 == warm ]]; then shift; else drop; fi
  "$cli" load --json --storage pread "$@" "$work/model" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["gb_per_s"])'
}
# The shards read whole by cat into /dev/null, warm: GB/s.
cat_run() {
  python3 - "${shards[@]}" <<'PY'
import subprocess, sys, time
total = sum(__import__("os").path.getsize(p) for p in sys.argv[1:])
start = time.monotonic()
subprocess.run(["cat", *sys.argv[1:]], stdout=subprocess.DEVNULL, check=True)
print(total / (time.monotonic() - start) / 1e9)
PY
}
measure() {
  local label=$1 values=()
  shift
  for _ in $(seq "$runs"); do values+=("$("$@")"); done
  printf '%s %s\n' "$label" "$(median "${values[@]}")"
}

{
  measure fio_io_uring_direct_qd16 fio_run --ioengine=io_uring --direct=1 --iodepth=16
  measure fio_psync_buffered fio_run --ioengine=psync --direct=0
  measure load_direct_io_uring load_run --direct --io-engine io_uring
  measure load_direct_threads load_run --direct --io-engine threads
  measure load_buffered_threads_1 load_run --threads 1 --io-engine threads
  measure load_buffered_io_uring_1 load_run --threads 1 --io-engine io_uring
  measure load_buffered_threads load_run --io-engine threads
  measure load_buffered_io_uring load_run --io-engine io_uring
  cat "${shards[@]}" >/dev/null
  measure cat_warm cat_run
  measure load_warm_threads load_run warm --io-engine threads
  measure load_warm_io_uring load_run warm --io-engine io_uring
  measure load_warm_arena load_run warm --into arena
} | python3 -c '
import sys
rows = dict(line.split() for line in sys.stdin)
rows = {k: float(v) for k, v in rows.items()}
baseline = {"load_direct_io_uring": "fio_io_uring_direct_qd16", "load_direct_threads": "fio_io_uring_direct_qd16",
            "load_buffered_threads_1": "fio_psync_buffered", "load_buffered_io_uring_1": "fio_psync_buffered",
            "load_buffered_io_uring": "fio_psync_buffered", "load_buffered_threads": "fio_psync_buffered", "load_warm_threads": "cat_warm",
            "load_warm_io_uring": "cat_warm", "load_warm_arena": "cat_warm"}
print("| case | GB/s (median) | ratio to |")
print("|---|---|---|")
for name, value in rows.items():
    ratio = f"{value / rows[baseline[name]]:.2f}x {baseline[name]}" if name in baseline else "baseline"
    print(f"| {name} | {value:.2f} | {ratio} |")
'
