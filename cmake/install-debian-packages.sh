#!/usr/bin/env bash
# Installs the Debian packages named on the command line, as root or through sudo: one
# `apt-get update`, then `apt-get install`. Used by examples/demo.sh and tests/run.sh, which each
# set themselves up on a fresh machine. Without root or sudo it assumes the packages are there.
set -euo pipefail
if [[ $# -eq 0 ]]; then
  echo "usage: $0 PACKAGE..." >&2
  exit 2
fi
if [[ $(id -u) == 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "not root and no sudo: assuming these are installed: $*"
  exit 0
fi
${as_root[@]+"${as_root[@]}"} apt-get update -qq
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
