#!/usr/bin/env bash
# The main job: installs what it needs from Debian's packages, builds safetensors-cli and the
# benchmark, inspects the bundled sample file, then runs a short header-parse benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake make g++ nlohmann-json3-dev libcli11-dev libbenchmark-dev libssl-dev liburing-dev)
bash cmake/install-debian-packages.sh "${packages[@]}"

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSAFETENSORS_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j2 --target safetensors-cli safetensors-bench

build/release/examples/safetensors-cli inspect examples/data/sample.safetensors
build/release/bench/safetensors-bench --benchmark_filter='/10000$' --benchmark_min_time=0.2
