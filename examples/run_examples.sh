#!/usr/bin/env bash
# Runs every example once, each on the output of the one before, and checks what they print.
# Usage: run_examples.sh BUILD_DIR_OF_EXAMPLES
set -euo pipefail
bin=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
expect() {
  local what=$1 pattern=$2 output
  shift 2
  if output=$("$@" 2>&1) && grep -q -- "$pattern" <<<"$output"; then
    echo "ok - $what"
  else
    echo "not ok - $what"
    printf '%s\n' "$output" | sed 's/^/#   /'
    failed=1
  fi
}
expect "write_file" "linear.weight\[1\]\[2\] = 16" "$bin/example_write_file" "$work/small.safetensors"
expect "read_tensor" "linear.weight  F32  \[2, 3\]" "$bin/example_read_tensor" "$work/small.safetensors"
expect "tensor_parallel_slice" "rows 1..2 of 2 (one contiguous run), 3 floats" \
  "$bin/example_tensor_parallel_slice" "$work/small.safetensors" 1 2
expect "stream_large_file" "wrote 8388960 bytes" "$bin/example_stream_large_file" "$work/big.safetensors" 8
expect "open_sharded" "layers.3.weight  BF16  2097152 bytes" "$bin/example_open_sharded" "$work/big.safetensors"
exit $failed
