// safetensors-hpp: the dtypes and their facts.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_DTYPE_HPP
#define SAFETENSORS_DTYPE_HPP

#include "config.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// Dtypes
// ---------------------------------------------------------------------------------------------

/// Element types, in the official crate's order. The writer lays tensors out in descending order
/// of it, which puts wider elements first and so keeps every tensor naturally aligned.
enum class dtype : std::uint8_t {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

/// Number of dtypes.
inline constexpr std::size_t dtype_count = 22;

/// Every dtype, in enum order.
inline constexpr std::array<dtype, dtype_count> all_dtypes = {
    dtype::BOOL, dtype::F4,   dtype::F6_E2M3, dtype::F6_E3M2, dtype::U8,          dtype::I8,
    dtype::F8_E5M2, dtype::F8_E4M3, dtype::F8_E8M0, dtype::F8_E4M3FNUZ, dtype::F8_E5M2FNUZ, dtype::I16,
    dtype::U16, dtype::F16,  dtype::BF16,   dtype::I32,     dtype::U32,         dtype::F32,
    dtype::C64, dtype::F64,  dtype::I64,    dtype::U64};

/// Bits per element: 4 for F4, 6 for F6_*, 64 for C64 (two F32), else the type's width.
constexpr std::size_t dtype_bits(dtype type) noexcept {
  switch (type) {
    case dtype::F4: return 4;
    case dtype::F6_E2M3:
    case dtype::F6_E3M2: return 6;
    case dtype::BOOL:
    case dtype::U8:
    case dtype::I8:
    case dtype::F8_E5M2:
    case dtype::F8_E4M3:
    case dtype::F8_E8M0:
    case dtype::F8_E4M3FNUZ:
    case dtype::F8_E5M2FNUZ: return 8;
    case dtype::I16:
    case dtype::U16:
    case dtype::F16:
    case dtype::BF16: return 16;
    case dtype::I32:
    case dtype::U32:
    case dtype::F32: return 32;
    case dtype::C64:
    case dtype::F64:
    case dtype::I64:
    case dtype::U64: return 64;
  }
  return 0;
}

/// The JSON spelling of every dtype, in enum order.
inline constexpr std::array<std::string_view, dtype_count> dtype_names = {
    "BOOL",        "F4",  "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
    "I16",         "U16", "F16",     "BF16",    "I32", "U32", "F32",     "C64",     "F64",     "I64",         "U64"};

/// The JSON spelling of a dtype, e.g. "BF16".
constexpr std::string_view dtype_name(dtype type) noexcept {
  const auto index = static_cast<std::size_t>(type);
  return index < dtype_count ? dtype_names[index] : std::string_view();
}

/// The dtype spelled `name` (exact, case-sensitive), or nullopt.
constexpr std::optional<dtype> dtype_from_name(std::string_view name) noexcept {
  // Every spelling is 2 to 11 bytes. Length, first and last byte leave at most one candidate to
  // compare whole, so a header of many tensors makes one short compare per tensor, not ten.
  if (name.size() < 2 || name.size() > 11) return std::nullopt;
  for (std::size_t i = 0; i < dtype_count; ++i) {
    const std::string_view candidate = dtype_names[i];
    if (candidate.size() == name.size() && candidate.front() == name.front() && candidate.back() == name.back() &&
        candidate == name)
      return static_cast<dtype>(i);
  }
  return std::nullopt;
}

}  // namespace safetensors

#endif  // SAFETENSORS_DTYPE_HPP
