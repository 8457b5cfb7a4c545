#!/usr/bin/env bash
# Prints the Debian packages the test servers of tests/remote need, for tests/run.sh to install
# with the rest: packages+=($(bash tests/remote/debian-packages.sh)).
# npm only where there is no npm: Debian's npm package conflicts with a nodejs that carries its
# own npm (NodeSource's, as on the CI machines), and apt-get would refuse the whole install.
set -euo pipefail
echo nginx-light nodejs python3 python3-botocore curl
if ! command -v npm >/dev/null; then
  echo npm
fi
