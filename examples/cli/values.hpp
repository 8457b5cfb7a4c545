// Tensor values as dump, stats and diff read them: decoded in bounded chunks, and numbers as text.
#pragma once

#include <safetensors/safetensors.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cli {

// How a dtype's elements are shown and summarised, by the library's dtype_kind: floating (F16,
// BF16, F32, F64, the F8 types, F4 and F6) widened to double, exactly; signed and unsigned
// integers widened to int64_t and uint64_t; boolean (BOOL) the byte's value; complex (C64) pairs
// of F32.
using value_kind = safetensors::dtype_kind;
using safetensors::kind_of;

// Adds --packing low-first|high-first: how F4 and F6 elements lie in their bytes.
void add_packing_option(CLI::App& command, safetensors::packing& order);

// Elements decoded at a time: bounds the memory a tensor of any size takes. A multiple of 4, so
// that a chunk of F4 (2 a byte) or F6 (4 in 3 bytes) elements starts and ends on a byte.
inline constexpr std::size_t chunk_elements = std::size_t{1} << 16;

// Elements that fill whole bytes: 2 for F4, 4 for F6, else 1.
std::uint64_t elements_per_byte_group(safetensors::dtype type);

// The bytes of `count` elements of `type` (whole bytes: count is a multiple of
// elements_per_byte_group, or runs to the end of a tensor, which fills whole bytes).
inline std::uint64_t bytes_of(safetensors::dtype type, std::uint64_t count) {
  return count * safetensors::dtype_bits(type) / 8;
}

// Decodes a tensor's elements, chunk_elements at a time, into host-order values widened exactly:
// double (floats, sub-byte ones unpacked as `order` says), std::int64_t, std::uint64_t,
// std::complex<float> (C64), or std::uint8_t (BOOL's bytes).
class value_decoder {
 public:
  explicit value_decoder(safetensors::packing order = safetensors::packing::low_first) : order_(order) {}

  // Calls `visit(values)` with a safetensors::span<const T> of the `count` elements of `info`
  // from element `first` on (at a byte boundary), once per chunk, in order. `read_part(offset,
  // destination)` reads the tensor's bytes from `offset` on into `destination`.
  template <class ReadPart, class Visit>
  safetensors::result<void> decode(const safetensors::tensor_info& info, std::uint64_t first, std::uint64_t count,
                                   ReadPart&& read_part, Visit&& visit) {
    for (std::uint64_t done = 0; done < count;) {
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_elements, count - done));
      // A chunk cut short (by --limit) is read to the end of its bytes and shown in part.
      const std::uint64_t group = elements_per_byte_group(info.dtype);
      const std::uint64_t whole = (chunk + group - 1) / group * group;
      bytes_.resize(static_cast<std::size_t>(bytes_of(info.dtype, whole)));
      if (auto read = read_part(bytes_of(info.dtype, first + done), safetensors::span<std::byte>(bytes_)); !read)
        return read;
      if (auto decoded = decode_chunk(info, static_cast<std::size_t>(whole), chunk, visit); !decoded) return decoded;
      done += chunk;
    }
    return {};
  }

  // The elements of a float tensor `info` in `bytes` (a piece of its bytes, whole elements in
  // whole bytes) as doubles, into `values`.
  safetensors::result<void> to_doubles(const safetensors::tensor_info& info, safetensors::span<const std::byte> bytes,
                                       std::vector<double>& values) const;

 private:
  template <class Visit>
  safetensors::result<void> decode_chunk(const safetensors::tensor_info& info, std::size_t whole, std::size_t shown,
                                         Visit& visit) {
    switch (kind_of(info.dtype)) {
      case value_kind::floating: return widen(info, whole, shown, floats_, visit);
      case value_kind::signed_integer: return widen(info, whole, shown, signed_values_, visit);
      case value_kind::unsigned_integer: return widen(info, whole, shown, unsigned_values_, visit);
      case value_kind::complex: return widen(info, whole, shown, complex_values_, visit);
      case value_kind::boolean:
        // unsigned char may alias any object, the tensor's bytes included.
        visit(safetensors::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes_.data()), shown));
        return {};
    }
    return {};
  }

  template <class T, class Visit>
  safetensors::result<void> widen(const safetensors::tensor_info& info, std::size_t whole, std::size_t shown,
                                  std::vector<T>& values, Visit& visit) const {
    values.resize(whole);
    const safetensors::tensor_view part{&info, safetensors::span<const std::byte>(bytes_)};
    if (auto copied = safetensors::try_copy_to(part, safetensors::span<T>(values.data(), whole), order_); !copied)
      return copied;
    visit(safetensors::span<const T>(values.data(), shown));
    return {};
  }

  safetensors::packing order_;
  std::vector<std::byte> bytes_;
  std::vector<double> floats_;
  std::vector<std::int64_t> signed_values_;
  std::vector<std::uint64_t> unsigned_values_;
  std::vector<std::complex<float>> complex_values_;
};

// A value for a person: the shortest text that reads back as the same double, "-0" for
// negative zero, and "nan", "inf" or "-inf" (every NaN prints as "nan").
std::string number_text(double value);

// A value as JSON: a number that reads back as the same double and always reads as a float
// ("1.0", "-0.0", "1e+16"), or the string "nan", "inf" or "-inf", which JSON has no number for.
std::string number_json(double value);

}  // namespace cli
