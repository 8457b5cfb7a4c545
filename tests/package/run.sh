#!/usr/bin/env bash
# Installs the library into a prefix, then builds and runs the consumer with find_package, with
# add_subdirectory, with a copied header and a bare g++, and with pkg-config; each must open the
# sample file and count its 42 tensors.
set -euo pipefail
root=$1
work=$2
sample=$root/examples/data/sample.safetensors
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

cmake -S "$root" -B "$work/library" -DSAFETENSORS_BUILD_TESTS=OFF -DSAFETENSORS_BUILD_BENCH=OFF \
  -DSAFETENSORS_BUILD_EXAMPLES=OFF -DSAFETENSORS_INSTALL=ON -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --install "$work/library" >/dev/null

check() {
  local how=$1 output
  output=$("${@:2}" "$sample")
  if [ "$output" != "42 tensors" ]; then
    echo "package consumer ($how) printed: $output"
    exit 1
  fi
  echo "ok - package consumer via $how"
}

cmake -S "$root/tests/package" -B "$work/find_package" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/find_package" >/dev/null
check find_package "$work/find_package/consumer"

cmake -S "$root/tests/package" -B "$work/subdirectory" -DCONSUMER_USE_SUBDIRECTORY=ON \
  -DSAFETENSORS_SOURCE_DIR="$root" >/dev/null
cmake --build "$work/subdirectory" >/dev/null
check add_subdirectory "$work/subdirectory/consumer"

# Vendored: the one header copied beside nlohmann's, and a bare compiler command.
# (Debian's nlohmann_json is the multi-header layout: its whole folder is what a user copies.)
mkdir -p "$work/vendored/safetensors"
cp "$root/include/safetensors/safetensors.hpp" "$work/vendored/safetensors/"
cp -r /usr/include/nlohmann "$work/vendored/"
g++ -std=c++17 -I "$work/vendored" "$root/tests/package/consumer.cpp" -o "$work/vendored-consumer"
check "a copied header and a bare g++ -std=c++17" "$work/vendored-consumer"

flags=$(PKG_CONFIG_PATH="$work/prefix/share/pkgconfig" pkg-config --cflags safetensors)
# shellcheck disable=SC2086
g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror $flags "$root/tests/package/consumer.cpp" -o "$work/pkg-config-consumer"
check pkg-config "$work/pkg-config-consumer"
