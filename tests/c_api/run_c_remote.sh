#!/usr/bin/env bash
# Runs test_c_remote against the remote tests' servers (nginx, S3, the fault server on
# 127.0.0.1), over the data the remote tests prepare, and stops them.
# Usage: run_c_remote.sh TEST_C_REMOTE SAFETENSORS_REMOTE_TESTS REFERENCE_DIR S3RVER_DIR
set -euo pipefail
program=$1 remote_tests=$2 reference=$3 s3rver=$4
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$remote_tests" --prepare "$work/data" "$reference"
/usr/bin/python3 "$here/../remote/with_servers.py" --s3rver-dir "$s3rver" "$work/data" -- "$program"
