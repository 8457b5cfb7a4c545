#!/usr/bin/env bash
# Installs the library into a prefix other than the one it was configured with, then builds and
# runs the consumer with find_package (where nlohmann_json and libcurl cannot be found; then with
# the remote component, where libcurl is installed), with add_subdirectory under a parent that
# brings its own nlohmann_json, with the generated single header copied alone (checked up to date
# first) and the include folder copied, each with a bare g++, and with
# pkg-config from the prefix moved elsewhere; each must open the sample file and count its 42
# tensors.
set -euo pipefail
root=$1
work=$2
sample=$root/examples/data/sample.safetensors
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd -P)

fail() {
  echo "package: $*" >&2
  exit 1
}

check() {
  local how=$1 output
  output=$("${@:2}" "$sample")
  [ "$output" = "42 tensors" ] || fail "consumer ($how) printed: $output"
  echo "ok - package consumer via $how"
}

# Configured for one prefix, installed into another: what the installed files say must follow.
cmake -S "$root" -B "$work/library" -DSAFETENSORS_BUILD_TESTS=OFF -DSAFETENSORS_BUILD_BENCH=OFF \
  -DSAFETENSORS_BUILD_EXAMPLES=OFF -DSAFETENSORS_INSTALL=ON -DCMAKE_INSTALL_PREFIX="$work/configured-prefix" >/dev/null
cmake --build "$work/library" -j"${JOBS:-2}" >/dev/null   # the C ABI's libraries
cmake --install "$work/library" --prefix "$work/prefix" >/dev/null
[ ! -e "$work/configured-prefix" ] || fail "cmake --install --prefix still wrote into the configured prefix"

cmake --no-warn-unused-cli -S "$root/tests/package" -B "$work/find_package" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON >/dev/null
cmake --build "$work/find_package" >/dev/null
check "find_package, without nlohmann_json and libcurl" "$work/find_package/consumer"

if pkg-config --exists libcurl; then
  cmake -S "$root/tests/package" -B "$work/find_package_remote" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCONSUMER_USE_REMOTE=ON >/dev/null
  cmake --build "$work/find_package_remote" >/dev/null
  check "find_package with COMPONENTS remote (safetensors::remote, libcurl)" "$work/find_package_remote/consumer"
else
  echo "skip - find_package with COMPONENTS remote: libcurl's development files are not installed"
fi

if [[ -f /usr/include/liburing.h ]]; then
  cmake -S "$root/tests/package" -B "$work/find_package_io_uring" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCONSUMER_USE_IO_URING=ON >/dev/null
  cmake --build "$work/find_package_io_uring" >/dev/null
  check "find_package with COMPONENTS io_uring (safetensors::io_uring, liburing), a load through it" \
    "$work/find_package_io_uring/consumer"
else
  echo "skip - find_package with COMPONENTS io_uring: liburing's development files are not installed"
fi

# The parent project's own nlohmann_json target, as FetchContent makes it, with the installed one
# hidden: the tests, the tool and the benchmarks (configured here, not built) must take the parent's.
# The C ABI: the static library through find_package(COMPONENTS c), the shared one through its
# pkg-config file, each from a C99 program.
cmake -S "$root/tests/package" -B "$work/find_package_c" -DCMAKE_PREFIX_PATH="$work/prefix" -DCONSUMER_USE_C=ON >/dev/null
cmake --build "$work/find_package_c" >/dev/null
check "find_package with COMPONENTS c (safetensors::c_static), a C99 program" "$work/find_package_c/consumer_c"
c_pkgconfig=$(find "$work/prefix" -name safetensors_c.pc -printf '%h\n')
c_flags=$(PKG_CONFIG_PATH=$c_pkgconfig pkg-config --cflags --libs safetensors_c)
cc -std=c99 -Wall -Wextra -pedantic -Werror "$root/tests/package/consumer.c" $c_flags -o "$work/pkg-config-c-consumer"
check "pkg-config safetensors_c (libsafetensors_c.so), a C99 program" \
  env LD_LIBRARY_PATH="$(dirname "$(find "$work/prefix" -name 'libsafetensors_c.so' | head -n 1)")" "$work/pkg-config-c-consumer"
[ -z "$(find "$work/prefix" -name '*.cpp')" ] || fail "a .cpp file was installed: $(find "$work/prefix" -name '*.cpp')"

mkdir -p "$work/own-nlohmann/include"
cp -r /usr/include/nlohmann "$work/own-nlohmann/include/"
cmake --no-warn-unused-cli -S "$root/tests/package" -B "$work/subdirectory" -DCONSUMER_USE_SUBDIRECTORY=ON \
  -DSAFETENSORS_SOURCE_DIR="$root" -DCONSUMER_NLOHMANN_JSON_INCLUDE_DIR="$work/own-nlohmann/include" \
  -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON \
  -DSAFETENSORS_BUILD_TESTS=ON -DSAFETENSORS_BUILD_EXAMPLES=ON -DSAFETENSORS_BUILD_BENCH=ON >/dev/null
cmake --build "$work/subdirectory" --target consumer >/dev/null
check "add_subdirectory, the parent's own nlohmann_json target" "$work/subdirectory/consumer"

# Vendored: the generated single header copied alone (it must be up to date with the headers it
# is made from), and a bare compiler command; then the include folder copied whole.
python3 "$root/cmake/amalgamate.py" --check || fail "single_include/safetensors/safetensors.hpp is out of date"
mkdir -p "$work/vendored/safetensors"
cp "$root/single_include/safetensors/safetensors.hpp" "$work/vendored/safetensors/"
g++ -std=c++17 -Wall -Wextra -Werror -I "$work/vendored" "$root/tests/package/consumer.cpp" -o "$work/vendored-consumer"
check "the single header copied alone and a bare g++ -std=c++17" "$work/vendored-consumer"
cp -r "$root/include/safetensors" "$work/vendored-folder"
mkdir -p "$work/vendored-tree" && mv "$work/vendored-folder" "$work/vendored-tree/safetensors"
g++ -std=c++17 -I "$work/vendored-tree" "$root/tests/package/consumer.cpp" -o "$work/vendored-tree-consumer"
check "the include folder copied and a bare g++ -std=c++17" "$work/vendored-tree-consumer"
# nlohmann_json is on this machine's include path, so the check is that no header includes it.
for header in "$root"/include/safetensors/*.hpp; do
  included=$(g++ -std=c++17 -I "$root/include" -M -x c++ - <<<"#include <safetensors/${header##*/}>")
  if grep -q nlohmann <<<"$included"; then
    fail "safetensors/${header##*/} includes nlohmann_json"
  fi
done
echo "ok - no public header includes nlohmann_json"

# pkg-config, with the prefix moved since it was installed: the flags must point into it.
mv "$work/prefix" "$work/moved-prefix"
export PKG_CONFIG_PATH=$work/moved-prefix/share/pkgconfig
[ -z "$(pkg-config --print-requires safetensors)" ] || fail "safetensors.pc requires: $(pkg-config --print-requires safetensors)"
flags=$(pkg-config --cflags safetensors)
for flag in $flags; do
  if [[ $flag == -I* ]] && [ "$(realpath -m "${flag#-I}")" != "$work/moved-prefix/include" ]; then
    fail "pkg-config --cflags gives $flags, outside $work/moved-prefix"
  fi
done
# shellcheck disable=SC2086
g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror $flags "$root/tests/package/consumer.cpp" -o "$work/pkg-config-consumer"
check "pkg-config, from a moved prefix" "$work/pkg-config-consumer"
