// safetensors-hpp: tensor_info (a header entry), dtype_for<T>, tensor_view (an entry and its bytes) and typed copies.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_TENSOR_HPP
#define SAFETENSORS_TENSOR_HPP

#include "numbers.hpp"

#include <algorithm>
#include <array>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// Tensors: descriptions, views, typed copies, slices, metadata
// ---------------------------------------------------------------------------------------------

/// One tensor's entry in a header: name, dtype, shape and data offsets. Obtained from a reader,
/// which owns the name and shape storage; valid as long as the reader is.
struct tensor_info {
  /// The tensor's name, unescaped (may hold any Unicode, NUL included).
  std::string_view name;
  /// The element type.
  safetensors::dtype dtype = safetensors::dtype::U8;
  /// Size of each dimension, leading first; empty for a scalar.
  span<const std::uint64_t> shape;
  /// [begin, end) byte offsets relative to the start of the data buffer.
  std::array<std::uint64_t, 2> data_offsets{};
  /// Product of `shape` (1 for a scalar); validated not to overflow.
  std::uint64_t element_count = 0;

  /// Number of bytes of the tensor's data: data_offsets[1] - data_offsets[0].
  std::uint64_t byte_size() const noexcept { return data_offsets[1] - data_offsets[0]; }
};

namespace detail {
/// The integer dtype of `bytes` bytes, signed or not.
constexpr dtype integer_dtype(std::size_t bytes, bool is_signed) noexcept {
  switch (bytes) {
    case 1: return is_signed ? dtype::I8 : dtype::U8;
    case 2: return is_signed ? dtype::I16 : dtype::U16;
    case 4: return is_signed ? dtype::I32 : dtype::U32;
    default: return is_signed ? dtype::I64 : dtype::U64;
  }
}

/// The dtype whose elements a C++ type holds, for typed views, copies and sources: every integer
/// type by its size and signedness (bool is BOOL), float, double, std::complex<float> and this
/// library's number types. Other types have no `value`.
template <class T, class = void>
struct dtype_of {};
template <class T>
struct dtype_of<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && sizeof(T) <= 8>>
    : std::integral_constant<dtype, integer_dtype(sizeof(T), std::is_signed_v<T>)> {};
template <>
struct dtype_of<bool> : std::integral_constant<dtype, dtype::BOOL> {};
template <>
struct dtype_of<float> : std::integral_constant<dtype, dtype::F32> {};
template <>
struct dtype_of<double> : std::integral_constant<dtype, dtype::F64> {};
template <>
struct dtype_of<std::complex<float>> : std::integral_constant<dtype, dtype::C64> {};
template <>
struct dtype_of<bfloat16> : std::integral_constant<dtype, dtype::BF16> {};
template <>
struct dtype_of<float16> : std::integral_constant<dtype, dtype::F16> {};
template <>
struct dtype_of<float8_e5m2> : std::integral_constant<dtype, dtype::F8_E5M2> {};
template <>
struct dtype_of<float8_e4m3> : std::integral_constant<dtype, dtype::F8_E4M3> {};
template <>
struct dtype_of<float8_e8m0> : std::integral_constant<dtype, dtype::F8_E8M0> {};
template <>
struct dtype_of<float8_e4m3fnuz> : std::integral_constant<dtype, dtype::F8_E4M3FNUZ> {};
template <>
struct dtype_of<float8_e5m2fnuz> : std::integral_constant<dtype, dtype::F8_E5M2FNUZ> {};
}  // namespace detail

/// The dtype of the elements a C++ type holds (see detail::dtype_of): dtype_for<float> is F32,
/// dtype_for<std::int64_t> I64, dtype_for<bfloat16> BF16.
template <class T>
inline constexpr dtype dtype_for = detail::dtype_of<std::remove_cv_t<T>>::value;

namespace detail {
/// Swaps each element of `bytes` (of `type`) between little-endian and host order; nothing to do
/// on a little-endian host. C64 is two F32 halves.
inline void to_host_order(span<std::byte> bytes, dtype type) noexcept {
  if constexpr (host_is_big_endian) {
    const std::size_t width = type == dtype::C64 ? 4 : dtype_bits(type) / 8;
    if (width < 2) return;
    for (std::size_t at = 0; at + width <= bytes.size(); at += width)
      std::reverse(bytes.data() + at, bytes.data() + at + width);
  } else {
    (void)bytes;
    (void)type;
  }
}
}  // namespace detail

/// A tensor's description together with its bytes, which it does not own.
struct tensor_view {
  /// The tensor's entry in the header.
  const tensor_info* info = nullptr;
  /// The tensor's bytes: byte_size() of them, little-endian, alignment not guaranteed.
  span<const std::byte> bytes;

  /// The tensor's name.
  std::string_view name() const noexcept { return info->name; }
  /// The tensor's dtype.
  safetensors::dtype dtype() const noexcept { return info->dtype; }
  /// The tensor's shape.
  span<const std::uint64_t> shape() const noexcept { return info->shape; }

  /// The elements as a span of T, without a copy: T must be the dtype's type exactly (float for
  /// F32, bfloat16 for BF16, std::complex<float> for C64, ...; std::byte for any dtype, and for
  /// BOOL, F4 and F6_* which are bytes only), and the bytes aligned for T. Otherwise an
  /// InvalidTensorView that says why; copy_to copies at any alignment and on any host.
  template <class T>
  result<span<const T>> try_as() const {
    if constexpr (std::is_same_v<T, std::byte>) {
      return bytes;
    } else {
      constexpr safetensors::dtype wanted = detail::dtype_of<T>::value;
      if (dtype() != wanted)
        return error(error_kind::invalid_tensor_view, "tensor " + detail::quote(name()) + " is " +
                                                          std::string(dtype_name(dtype())) + ", not " +
                                                          std::string(dtype_name(wanted)));
      if (detail::host_is_big_endian && sizeof(T) > 1 && !bytes.empty())
        return error(error_kind::invalid_tensor_view, "tensor " + detail::quote(name()) +
                                                          " is little-endian and this host is big-endian: use copy_to, "
                                                          "which swaps the bytes");
      if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(T) != 0)
        return error(error_kind::invalid_tensor_view,
                     "tensor " + detail::quote(name()) + " is not aligned to " + std::to_string(alignof(T)) +
                         " bytes in memory (its writer did not align it): use copy_to, which copies at any alignment");
      return span<const T>(reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T));
    }
  }
  /// The elements as a span of T, without a copy; throws InvalidTensorView (see try_as).
  template <class T>
  span<const T> as() const {
    return try_as<T>().value();
  }
};

/// Copies every element of `tensor` into `destination` as `target` values in host byte order,
/// converting them (see try_convert() for the rules) and swapping bytes on a big-endian host. The
/// destination may have any alignment; it holds exactly element_count elements of `target`.
inline result<void> try_copy_to(const tensor_view& tensor, span<std::byte> destination, dtype target,
                                packing order = packing::low_first) {
  if (auto converted = try_convert(tensor.bytes, tensor.dtype(), destination, target, order); !converted) {
    return error(converted.error().kind(),
                 "tensor " + detail::quote(tensor.name()) + ": " + converted.error().message());
  }
  detail::to_host_order(destination, target);
  return {};
}

/// Copies every element of `tensor` into `destination` as values of T (float, bfloat16,
/// std::int64_t, ...), converting them; `destination` holds exactly element_count of them.
/// Sub-byte tensors' elements are read as `order` says.
template <class T>
result<void> try_copy_to(const tensor_view& tensor, span<T> destination, packing order = packing::low_first) {
  static_assert(std::is_trivially_copyable_v<T>, "copy_to fills trivially copyable element types");
  return try_copy_to(tensor,
                     span<std::byte>(reinterpret_cast<std::byte*>(destination.data()), destination.size() * sizeof(T)),
                     detail::dtype_of<T>::value, order);
}

/// Copies as try_copy_to does; throws safetensors::exception (aborts without exceptions) when it
/// cannot. Example: `std::vector<float> out(n); copy_to(view, span<float>(out));`
inline void copy_to(const tensor_view& tensor, span<std::byte> destination, dtype target,
                    packing order = packing::low_first) {
  try_copy_to(tensor, destination, target, order).value();
}
/// Copies as try_copy_to does, into values of T; throws when it cannot.
template <class T>
void copy_to(const tensor_view& tensor, span<T> destination, packing order = packing::low_first) {
  try_copy_to(tensor, destination, order).value();
}

}  // namespace safetensors

#endif  // SAFETENSORS_TENSOR_HPP
