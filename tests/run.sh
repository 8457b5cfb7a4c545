#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs from Debian's packages, then builds
# and runs the tests with gcc and clang, C++17 and C++20 (warnings as errors; C++20 with
# -fno-exceptions), under AddressSanitizer + UndefinedBehaviorSanitizer, the [concurrency] tests
# under ThreadSanitizer, each fuzz target for FUZZ_SECONDS (default 10), the suite on big-endian s390x
# under qemu, the unit tests and the tool cross-compiled for Windows and run under wine, a consumer of every public header with every warning of gcc and clang, the installed
# CMake package with each way of consuming it, and remote reading against nginx, an S3 server and
# a fault-injecting server started on 127.0.0.1; the C ABI from C programs (sanitized too) and from
# Python's ctypes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${JOBS:-2}

packages=(cmake make g++ clang libclang-rt-14-dev nlohmann-json3-dev catch2 libcli11-dev libbenchmark-dev
          libssl-dev python3 pkg-config bsdutils g++-s390x-linux-gnu qemu-user libcurl4-openssl-dev
          g++-mingw-w64-x86-64 wine64 clang-format liburing-dev)
# The servers the remote tests start on 127.0.0.1: nginx, Node.js for s3rver, botocore, curl.
read -r -a remote_packages <<<"$(bash tests/remote/debian-packages.sh)"
packages+=("${remote_packages[@]}")
bash cmake/install-debian-packages.sh "${packages[@]}"

build=$root/build/ci
rm -rf "$build"

step() { echo "=== $1 (at ${SECONDS}s)"; }

# The remote tests' servers first (installing s3rver from npm once, into build/remote-s3rver,
# which every configuration's remote test then uses): a broken server fails here, by name.
step "remote servers: nginx, S3 (s3rver behind a Signature V4 check) and the fault server, self-tests"
bash "$root/tests/remote/selftest.sh" "$root/build/remote-s3rver"

# Unoptimised builds without debug information (it only slows the build), except where a
# sanitizer's report should point to lines: those set debug_flags=-g.
debug_flags=-O0

# configure NAME COMPILER STANDARD [extra cmake arguments...], then build everything and run CTest
# (less the tests whose names match $ctest_exclude, when set).
run_config() {
  local name=$1 compiler=$2 standard=$3
  shift 3
  step "$name: $compiler, C++$standard $*"
  cmake -S "$root" -B "$build/$name" -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_CXX_STANDARD="$standard" \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="$debug_flags" "$@" >/dev/null
  cmake --build "$build/$name" -j"$jobs"
  (cd "$build/$name" && ctest --output-on-failure -j"$jobs" ${ctest_exclude:+-E "$ctest_exclude"})
}

# All with -Wall -Wextra -Wpedantic -Werror: gcc C++17 builds everything, and runs every test but
# the second half of the command-line tool's (cli_commands, cli_remote), which run under the
# sanitizers, as everything else does but the first half (cli), run once here; clang C++17 is the sanitizer
# build below, which builds everything too (line tables only: reports name lines, builds stay
# fast). C++20 with -fno-exceptions (std::span, errors as values) is the s390x build's; gcc and
# clang compile every header as C++20 in the warnings step.
# Loads of pread files use io_uring where the build and the kernel have it (liburing-dev is
# installed): the sanitizer build runs everything with it forced on, and its CTest runs the tests
# that execute load plans once more with it off (unit_threads); the gcc build runs with it off.
SAFETENSORS_IO_ENGINE=threads ctest_exclude='^cli_|^unit_threads$' run_config gcc-cxx17 g++ 17 \
  -DSAFETENSORS_BUILD_BENCH=ON -DSAFETENSORS_BUILD_EXAMPLES=ON
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
debug_flags=-gline-tables-only
SAFETENSORS_IO_ENGINE=io_uring ctest_exclude='^cli$' run_config clang-cxx17-asan-ubsan clang++ 17 -DSAFETENSORS_BUILD_BENCH=OFF \
  -DSAFETENSORS_BUILD_EXAMPLES=ON -DCMAKE_CXX_FLAGS="$sanitize" -DCMAKE_EXE_LINKER_FLAGS="$sanitize" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_C_FLAGS="$sanitize"

# ThreadSanitizer over the tests of concurrent use ([concurrency]: many threads over one reader).
tsan="-fsanitize=thread -fno-omit-frame-pointer"
step "clang-tsan: clang++, C++17, [concurrency] tests under ThreadSanitizer"
cmake -S "$root" -B "$build/clang-tsan" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_STANDARD=17 -DCMAKE_BUILD_TYPE=Debug \
  -DSAFETENSORS_BUILD_BENCH=OFF -DSAFETENSORS_BUILD_EXAMPLES=OFF -DCMAKE_CXX_FLAGS="$tsan" \
  -DCMAKE_EXE_LINKER_FLAGS="$tsan" >/dev/null
cmake --build "$build/clang-tsan" -j"$jobs" --target safetensors_concurrency_tests
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$build/clang-tsan/tests/safetensors_concurrency_tests" "[concurrency]"

# libFuzzer (+ ASan + UBSan) over the reader and the writer, FUZZ_SECONDS (10) each, at once: a
# smoke test within CI's time; longer campaigns run by hand (README.md, "Testing").
step "fuzz: tests/fuzz/run.sh, ${FUZZ_SECONDS:-10} s per target"
bash "$root/tests/fuzz/run.sh" "$build/fuzz" "${FUZZ_SECONDS:-10}"

# Big-endian, C++20, -fno-exceptions: the suite cross-compiled for s390x and run under qemu-user.
# qemu does not pass madvise hints to the kernel, nor the guest's address-space limit to its
# threads, so the [residency] and [rlimit] tests, which observe them,
# stay native.
step "s390x: g++-s390x-linux-gnu, C++20, -fno-exceptions, big-endian, under qemu-s390x"
cmake -S "$root" -B "$build/s390x" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=s390x \
  -DCMAKE_CXX_COMPILER=s390x-linux-gnu-g++ -DCMAKE_CXX_STANDARD=20 -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O1 \
  -DSAFETENSORS_BUILD_BENCH=OFF -DSAFETENSORS_BUILD_EXAMPLES=OFF -DSAFETENSORS_TEST_NO_SHA256=ON \
  -DSAFETENSORS_TEST_NO_EXCEPTIONS=ON -DSAFETENSORS_WITH_IO_URING=OFF >/dev/null
cmake --build "$build/s390x" -j"$jobs" --target safetensors_tests safetensors_no_filesystem_tests
qemu-s390x -L /usr/s390x-linux-gnu "$build/s390x/tests/safetensors_tests" "~[residency]~[rlimit]"
qemu-s390x -L /usr/s390x-linux-gnu "$build/s390x/tests/safetensors_no_filesystem_tests"

# Windows: the unit tests (less the few that watch POSIX itself) and the tool, cross-compiled with
# mingw-w64 and run under wine, so that file.hpp's Windows branches run. The header-only
# dependencies come from a folder of their own (CMakeLists.txt, SAFETENSORS_HEADER_ONLY_DEPENDENCIES).
step "windows: x86_64-w64-mingw32-g++, C++17, the unit tests and the tool under wine64"
mkdir -p "$build/windows-dependencies"
for dependency in catch2 nlohmann CLI; do ln -sfn "/usr/include/$dependency" "$build/windows-dependencies/$dependency"; done
cmake -S "$root" -B "$build/windows" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64-x86_64.cmake" \
  -DSAFETENSORS_HEADER_ONLY_DEPENDENCIES="$build/windows-dependencies" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O1 \
  -DSAFETENSORS_BUILD_BENCH=OFF -DSAFETENSORS_BUILD_EXAMPLES=ON -DSAFETENSORS_TEST_NO_SHA256=ON >/dev/null
cmake --build "$build/windows" -j"$jobs" --target safetensors_tests safetensors-cli
bash "$root/tests/windows/run.sh" "$build/windows" "$build/gcc-cxx17/examples/safetensors-cli"

# The layout of .clang-format holds in every C++ file (single_include/ is generated from them),
# and the single header is the one cmake/amalgamate.py makes from the headers.
step "format and single header: clang-format --dry-run over every C++ file; cmake/amalgamate.py --check"
git -C "$root" ls-files '*.cpp' '*.hpp' | grep -v '^single_include/' | (cd "$root" && xargs clang-format --dry-run --Werror)
python3 "$root/cmake/amalgamate.py" --check

step "warnings: a consumer of every public header, gcc and clang, C++17 and C++20, every warning an error"
python3 "$root/tests/warnings/check.py" --logs "$build/warnings"

step "package: install elsewhere, then find_package, add_subdirectory, a copied header and pkg-config consumers"
bash "$root/tests/package/run.sh" "$root" "$build/package"

echo "all test configurations passed in ${SECONDS}s"
