#!/usr/bin/env bash
# Runs the remote tests: writes their files into a scratch directory, serves it with nginx, S3 and
# the fault server on 127.0.0.1 (with_servers.py), runs the tests against them, and removes the
# scratch directory whatever happens.
#
# Usage: run_remote_tests.sh TEST_BINARY REFERENCE_DIR S3RVER_DIR [CATCH ARGUMENTS...]
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: $0 TEST_BINARY REFERENCE_DIR S3RVER_DIR [CATCH ARGUMENTS...]" >&2
  exit 2
fi
binary=$1
reference=$2
s3rver=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$binary" --prepare "$work/data" "$reference"
/usr/bin/python3 "$here/with_servers.py" --s3rver-dir "$s3rver" "$work/data" -- "$binary" "$@"
