// Tensor values as dump and stats read them: decoded in bounded chunks, and numbers as text.
#pragma once

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cli {

// How a dtype's elements are shown and summarised.
enum class value_kind {
  floating,          // F16, BF16, F32, F64 and the F8 types: widened to double, exactly
  signed_integer,    // I8 to I64: widened to int64_t
  unsigned_integer,  // U8 to U64: widened to uint64_t
  boolean,           // BOOL: the byte's value
  complex,           // C64: pairs of F32
  raw_bytes,         // F4, F6_E2M3, F6_E3M2: the format does not fix their packing, so bytes
};

value_kind kind_of(safetensors::dtype type);

// Elements decoded at a time: bounds the memory a tensor of any size takes.
inline constexpr std::size_t chunk_elements = std::size_t{1} << 16;

// Decodes a tensor's elements, chunk_elements at a time, into host-order values widened exactly:
// double (floats), std::int64_t, std::uint64_t, std::complex<float> (C64), or std::uint8_t (the
// bytes of BOOL and of the sub-byte dtypes, whose elements then count as bytes).
class value_decoder {
 public:
  // Calls `visit(values)` with a safetensors::span<const T> of the `count` elements of `tensor`
  // from element `first` on, once per chunk, in order.
  template <class Visit>
  safetensors::result<void> decode(const safetensors::tensor_view& tensor, std::uint64_t first, std::uint64_t count,
                                   Visit&& visit) {
    for (std::uint64_t done = 0; done < count;) {
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_elements, count - done));
      if (auto decoded = decode_chunk(tensor, first + done, chunk, visit); !decoded) return decoded;
      done += chunk;
    }
    return {};
  }

 private:
  template <class Visit>
  safetensors::result<void> decode_chunk(const safetensors::tensor_view& tensor, std::uint64_t first, std::size_t count,
                                         Visit& visit) {
    switch (kind_of(tensor.dtype())) {
      case value_kind::floating: return widen(tensor, first, count, floats_, visit);
      case value_kind::signed_integer: return widen(tensor, first, count, signed_values_, visit);
      case value_kind::unsigned_integer: return widen(tensor, first, count, unsigned_values_, visit);
      case value_kind::complex: return widen(tensor, first, count, complex_values_, visit);
      case value_kind::boolean:
      case value_kind::raw_bytes:
        // unsigned char may alias any object, the tensor's bytes included.
        visit(safetensors::span<const std::uint8_t>(
            reinterpret_cast<const std::uint8_t*>(tensor.bytes.data()) + first, count));
        return {};
    }
    return {};
  }

  template <class T, class Visit>
  static safetensors::result<void> widen(const safetensors::tensor_view& tensor, std::uint64_t first, std::size_t count,
                                         std::vector<T>& values, Visit& visit) {
    const std::size_t width = safetensors::dtype_bits(tensor.dtype()) / 8;
    const safetensors::tensor_view part{
        tensor.info, safetensors::span<const std::byte>(tensor.bytes.data() + first * width, count * width)};
    values.resize(count);
    if (auto copied = safetensors::copy_to(part, safetensors::span<T>(values.data(), count)); !copied) return copied;
    visit(safetensors::span<const T>(values.data(), count));
    return {};
  }

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
