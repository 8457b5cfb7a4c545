// What the fuzz targets share: an invariant check that stops the run, and the error kinds each
// side of the library documents. Plain C++17: the targets also build with g++ as regression tests.
#pragma once

#include <safetensors/safetensors.hpp>

#include <cstdio>

/// Stops the run when an invariant of the library does not hold. Expected errors never get here:
/// a target returns normally for them. The condition is printed before the trap so a regression
/// run (no libFuzzer) still says what broke.
#define FUZZ_CHECK(condition)                                                                \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition); \
      std::fflush(stderr);                                                                   \
      __builtin_trap();                                                                      \
    }                                                                                        \
  } while (0)

namespace fuzz {

/// The kinds a reader gives for a file it refuses (README, "Errors"; docs/FORMAT.md rules 1-11).
inline bool is_reader_kind(safetensors::error_kind kind) {
  using k = safetensors::error_kind;
  switch (kind) {
    case k::header_too_small:
    case k::header_too_large:
    case k::invalid_header_length:
    case k::invalid_header:
    case k::invalid_header_deserialization:
    case k::invalid_offset:
    case k::validation_overflow:
    case k::misaligned_slice:
    case k::tensor_invalid_info:
    case k::metadata_incomplete_buffer: return true;
    default: return false;
  }
}

/// The kinds file_layout::make gives for declarations it refuses (README, "Writing").
inline bool is_layout_kind(safetensors::error_kind kind) {
  using k = safetensors::error_kind;
  switch (kind) {
    case k::invalid_header_deserialization:
    case k::invalid_header:
    case k::misaligned_slice:
    case k::validation_overflow:
    case k::header_too_large:
    case k::invalid_argument: return true;
    default: return false;
  }
}

}  // namespace fuzz
