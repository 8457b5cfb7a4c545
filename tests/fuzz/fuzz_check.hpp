// What the fuzz targets share: an invariant check that stops the run, and the error kinds each
// side of the library documents. Plain C++17: the targets also build with g++ as regression tests.
#pragma once

#include <safetensors/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

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

/// The bytes of the input without data(): the reader takes its other path, as with pread_file.
class copying_storage {
 public:
  copying_storage(const void* data, std::size_t size) : bytes_(data, size) {}
  std::uint64_t size() const noexcept { return bytes_.size(); }
  safetensors::result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    return bytes_.read_at(offset, destination, count);
  }

 private:
  safetensors::borrowed_bytes bytes_;
};

/// What a slice takes of one dimension, spelled out: first index, how many, distance.
struct taken {
  std::uint64_t start;
  std::uint64_t count;
  std::uint64_t step;
};

/// The elements a selection takes, gathered one by one, the slow obvious way (row-major).
inline std::vector<std::byte> naive_gather(const safetensors::tensor_info& t, const std::uint8_t* bytes,
                                           const std::vector<taken>& dims) {
  std::vector<std::byte> out;
  for (const taken& d : dims)
    if (d.count == 0) return out;
  const std::size_t rank = t.shape.size();
  const std::size_t width = safetensors::dtype_bits(t.dtype) / 8;
  std::vector<std::uint64_t> strides(rank, 1);  // no dimension is 0 here, so these fit
  for (std::size_t d = rank; d-- > 1;) strides[d - 1] = strides[d] * t.shape[d];
  std::vector<std::uint64_t> position(rank, 0);
  for (;;) {
    std::uint64_t element = 0;
    for (std::size_t d = 0; d < rank; ++d) element += (dims[d].start + position[d] * dims[d].step) * strides[d];
    const auto* first = reinterpret_cast<const std::byte*>(bytes) + element * width;
    out.insert(out.end(), first, first + width);
    std::size_t d = rank;
    while (d > 0 && ++position[d - 1] == dims[d - 1].count) position[--d] = 0;
    if (d == 0) return out;
  }
}

/// The fuzz input as a stream of decisions; past its end every decision is 0.
class decisions {
 public:
  decisions(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t byte() { return position_ < size_ ? data_[position_++] : 0; }
  std::uint64_t u64() {
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value = (value << 8) | byte();
    return value;
  }
  /// A number in [0, n).
  std::size_t below(std::size_t n) { return byte() % n; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t position_ = 0;
};

}  // namespace fuzz
