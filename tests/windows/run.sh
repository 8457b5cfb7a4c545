#!/usr/bin/env bash
# Runs what tests/run.sh cross-compiled for Windows (cmake/mingw-w64-x86_64.cmake) under wine64:
# the unit tests, then the tool on the bundled sample, checked against the answers the same
# commands give on Linux (sha256sum for hash, byte-identical rewrites). The Windows branches of
# safetensors/file.hpp (CreateFileW, file mappings, MoveFileExW, FormatMessage) run here, not only
# compile.
#   run.sh BUILD_DIR LINUX_CLI     (LINUX_CLI: safetensors-cli built for this machine)
set -euo pipefail
build=$(cd "$1" && pwd)
linux_cli=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
wine=/usr/lib/wine/wine64
[ -x "$wine" ] || wine=$(command -v wine64 || command -v wine)
export WINEDEBUG=-all WINEPREFIX=$build/wine-prefix
work=$(mktemp -d)
# One wine server for every program below, kept until the end: a program started while the
# server of the one before is shutting down fails ("recvmsg: Connection reset by peer").
wineserver=$(dirname "$wine")/wineserver
[ -x "$wineserver" ] || wineserver=$(command -v wineserver)
mkdir -p "$WINEPREFIX"
"$wineserver" -p
trap '"$wineserver" -k 2>/dev/null || true; rm -rf "$work"' EXIT

passed=0
failed=0
check() {
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL - windows: $what" >&2
  fi
}

"$wine" "$build/tests/safetensors_tests.exe"

cli() { "$wine" "$build/examples/safetensors-cli.exe" "$@"; }
sample=$root/examples/data/sample.safetensors
status_of() {
  local status=0
  cli "$@" >"$work/out" 2>"$work/err" || status=$?
  echo "$status"
}

cli inspect "$sample" >"$work/inspect"
check "inspect names the sample's 42 tensors" grep -q ", 42 tensors" "$work/inspect"
expected=$(sha256sum "$sample" | cut -d' ' -f1)
cli hash "$sample" --json >"$work/hash"
check "hash (BCrypt) gives sha256sum's digest" grep -q "\"sample.safetensors\":\"$expected\"" "$work/hash"
cli rewrite "$sample" "$work/rewritten.safetensors"
"$linux_cli" rewrite "$sample" "$work/rewritten-on-linux.safetensors"
check "rewrite writes the bytes the Linux tool writes" cmp -s "$work/rewritten.safetensors" "$work/rewritten-on-linux.safetensors"
cli split "$sample" "$work/model" --max-shard-size 200 >/dev/null
check "split makes shards and an index" test -f "$work/model/model.safetensors.index.json"
cli merge "$work/model" "$work/merged.safetensors" >/dev/null
check "merge of the split model equals the sample" test "$(status_of diff "$sample" "$work/merged.safetensors")" = 0
check "a missing file is an I/O error (exit 2)" test "$(status_of inspect "$work/missing.safetensors")" = 2
check "the error names the file and the system's reason" grep -q "missing.safetensors\": cannot open: .*(Windows error 2)" "$work/err"
check "a URL without libcurl is an I/O error (exit 2)" test "$(status_of inspect https://127.0.0.1:9/x.safetensors)" = 2
check "an unknown option is a usage error (exit 64)" test "$(status_of inspect --no-such-option "$sample")" = 64
printf 'not a safetensors file' >"$work/bad.safetensors"
check "a malformed file is rejected (exit 1)" test "$(status_of inspect "$work/bad.safetensors")" = 1

echo "windows: $passed passed, $failed failed"
[ "$failed" = 0 ]
