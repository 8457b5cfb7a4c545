#!/usr/bin/env bash
# Remote reading over loopback, against curl of the same bytes in the same run: writes a 2 GiB
# file and the same tensors as a 4-shard model into a scratch directory, serves them with nginx
# on 127.0.0.1 (tests/remote/with_servers.py; nothing is uploaded to S3), then measures
#   - the header cost of opening the 2 GiB file: requests and bytes, from nginx's access log;
#   - one connection reading the whole file, against `curl -s URL -o /dev/null`;
#   - the 4-shard model read on 4 connections, against curl of the one file of the same bytes.
# Times are hyperfine's (apt-get install hyperfine) over RUNS runs; read the medians and ratios.
#
# Usage: bench/remote.sh BUILD_DIR [RUNS]     (BUILD_DIR: a Release build with bench/safetensors-remote-load)
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [RUNS]" >&2
  exit 64
fi
build=$(cd "$1" && pwd)
runs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
tool=$build/bench/safetensors-remote-load
work=$(mktemp -d "${SAFETENSORS_BENCH_DIR:-/tmp}/safetensors-remote-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$tool" write "$work/data"
cat >"$work/measure.sh" <<MEASURE
set -euo pipefail
url=\$SAFETENSORS_REMOTE_HTTP_URL
log=\$SAFETENSORS_REMOTE_NGINX_ACCESS_LOG
echo "== header cost of opening the 2 GiB file ($(stat -c %s "$work/data/big.safetensors") bytes)"
before=\$(wc -l <"\$log")
"$tool" open "\$url/big.safetensors"
sleep 1
tail -n +\$((before + 1)) "\$log" | python3 -c '
import json, sys
lines = [json.loads(line) for line in sys.stdin if line.strip()]
print("nginx: %d requests, %d body bytes: %s" % (len(lines), sum(l["body_bytes_sent"] for l in lines),
      ", ".join("%s %s" % (l["status"], l["range"]) for l in lines)))'
echo "== throughput"
hyperfine --runs "$runs" --warmup 1 --export-json "$work/hyperfine.json" \
  -n "curl, 1 connection, the file" "curl -s \$url/big.safetensors -o /dev/null" \
  -n "safetensors, 1 connection, the file" "$tool load \$url/big.safetensors 1" \
  -n "safetensors, 4 connections, the 4-shard model" "$tool load \$url/model/model.safetensors.index.json 4"
python3 -c '
import json, sys
results = json.load(open(sys.argv[1]))["results"]
curl = results[0]["median"]
for r in results:
    print("%-48s median %.3f s  %.2f GB/s  %.2fx curl" % (r["command"], r["median"], float(sys.argv[2]) / r["median"] / 1e9, curl / r["median"]))
' "$work/hyperfine.json" "$(stat -c %s "$work/data/big.safetensors")"
MEASURE
/usr/bin/python3 "$here/../tests/remote/with_servers.py" --s3-exclude '*' "$work/data" -- bash "$work/measure.sh"
