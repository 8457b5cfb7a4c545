#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs from Debian's packages, then builds
# and runs the tests with gcc and clang, C++17 and C++20 (warnings as errors), with -fno-exceptions,
# under AddressSanitizer + UndefinedBehaviorSanitizer, and checks the installed CMake package.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${JOBS:-2}

packages=(cmake make g++ clang libclang-rt-14-dev nlohmann-json3-dev catch2 libcli11-dev libbenchmark-dev
          libssl-dev python3 pkg-config)
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
elif command -v sudo >/dev/null; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
else
  echo "not root: assuming these are installed: ${packages[*]}"
fi

build=$root/build/ci
rm -rf "$build"

# configure NAME COMPILER STANDARD [extra cmake arguments...], then build and run its tests.
run_config() {
  local name=$1 compiler=$2 standard=$3
  shift 3
  echo "=== $name: $compiler, C++$standard $*"
  cmake -S "$root" -B "$build/$name" -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_CXX_STANDARD="$standard" \
    -DCMAKE_BUILD_TYPE=Debug "$@" >/dev/null
  cmake --build "$build/$name" -j"$jobs"
  (cd "$build/$name" && ctest --output-on-failure -j"$jobs")
}

run_config gcc-cxx17 g++ 17 -DSAFETENSORS_BUILD_BENCH=ON -DSAFETENSORS_BUILD_EXAMPLES=ON
run_config gcc-cxx20 g++ 20 -DSAFETENSORS_BUILD_BENCH=OFF -DSAFETENSORS_BUILD_EXAMPLES=OFF
run_config clang-cxx17 clang++ 17 -DSAFETENSORS_BUILD_BENCH=OFF -DSAFETENSORS_BUILD_EXAMPLES=ON
run_config clang-cxx20 clang++ 20 -DSAFETENSORS_BUILD_BENCH=OFF -DSAFETENSORS_BUILD_EXAMPLES=OFF
run_config gcc-no-exceptions g++ 17 -DSAFETENSORS_BUILD_BENCH=OFF -DSAFETENSORS_BUILD_EXAMPLES=OFF \
  -DSAFETENSORS_TEST_NO_EXCEPTIONS=ON
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
run_config clang-asan-ubsan clang++ 17 -DSAFETENSORS_BUILD_BENCH=OFF -DSAFETENSORS_BUILD_EXAMPLES=ON \
  -DCMAKE_CXX_FLAGS="$sanitize" -DCMAKE_EXE_LINKER_FLAGS="$sanitize"

echo "=== package: install, then find_package, add_subdirectory and pkg-config consumers"
bash "$root/tests/package/run.sh" "$root" "$build/package"

echo "all test configurations passed"
