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
    dtype::BOOL,    dtype::F4,      dtype::F6_E2M3, dtype::F6_E3M2,     dtype::U8,          dtype::I8,
    dtype::F8_E5M2, dtype::F8_E4M3, dtype::F8_E8M0, dtype::F8_E4M3FNUZ, dtype::F8_E5M2FNUZ, dtype::I16,
    dtype::U16,     dtype::F16,     dtype::BF16,    dtype::I32,         dtype::U32,         dtype::F32,
    dtype::C64,     dtype::F64,     dtype::I64,     dtype::U64};

/// What kind of number a dtype's elements are.
enum class dtype_kind : std::uint8_t { boolean, unsigned_integer, signed_integer, floating, complex };

/// Everything the library knows of one dtype. `name` is both the JSON spelling and the name of the
/// official crate's `Dtype` variant, which are the same.
struct dtype_facts {
  dtype type;
  std::string_view name;
  std::uint8_t bits;  // per element: 4 for F4, 6 for F6_*, 64 for C64 (two F32)
  dtype_kind kind;

  /// Bytes per element, or 0 for the dtypes smaller than a byte.
  constexpr std::size_t element_size() const noexcept { return bits % 8 == 0 ? bits / 8u : 0; }
};

/// The facts of every dtype, in enum order: the one place they are written down.
inline constexpr std::array<dtype_facts, dtype_count> dtype_table = {{
    {dtype::BOOL, "BOOL", 8, dtype_kind::boolean},
    {dtype::F4, "F4", 4, dtype_kind::floating},
    {dtype::F6_E2M3, "F6_E2M3", 6, dtype_kind::floating},
    {dtype::F6_E3M2, "F6_E3M2", 6, dtype_kind::floating},
    {dtype::U8, "U8", 8, dtype_kind::unsigned_integer},
    {dtype::I8, "I8", 8, dtype_kind::signed_integer},
    {dtype::F8_E5M2, "F8_E5M2", 8, dtype_kind::floating},
    {dtype::F8_E4M3, "F8_E4M3", 8, dtype_kind::floating},
    {dtype::F8_E8M0, "F8_E8M0", 8, dtype_kind::floating},
    {dtype::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8, dtype_kind::floating},
    {dtype::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8, dtype_kind::floating},
    {dtype::I16, "I16", 16, dtype_kind::signed_integer},
    {dtype::U16, "U16", 16, dtype_kind::unsigned_integer},
    {dtype::F16, "F16", 16, dtype_kind::floating},
    {dtype::BF16, "BF16", 16, dtype_kind::floating},
    {dtype::I32, "I32", 32, dtype_kind::signed_integer},
    {dtype::U32, "U32", 32, dtype_kind::unsigned_integer},
    {dtype::F32, "F32", 32, dtype_kind::floating},
    {dtype::C64, "C64", 64, dtype_kind::complex},
    {dtype::F64, "F64", 64, dtype_kind::floating},
    {dtype::I64, "I64", 64, dtype_kind::signed_integer},
    {dtype::U64, "U64", 64, dtype_kind::unsigned_integer},
}};

namespace detail {
constexpr bool dtype_table_is_consistent() noexcept {
  for (std::size_t i = 0; i < dtype_count; ++i) {
    const dtype_facts& facts = dtype_table[i];
    if (facts.type != static_cast<dtype>(i) || all_dtypes[i] != facts.type) return false;
    if (facts.name.size() < 2 || facts.name.size() > 11) return false;  // dtype_from_name relies on it
    if (facts.bits != 4 && facts.bits != 6 && facts.bits % 8 != 0) return false;
    if ((facts.kind == dtype_kind::unsigned_integer || facts.kind == dtype_kind::signed_integer) && facts.bits % 8 != 0)
      return false;
    for (std::size_t j = 0; j < i; ++j) {
      if (dtype_table[j].name == facts.name) return false;
    }
  }
  return true;
}
static_assert(dtype_table_is_consistent(), "dtype_table: one row per dtype, in enum order, with valid facts");
static_assert(static_cast<std::size_t>(dtype::U64) + 1 == dtype_count, "dtype_count counts every dtype");

constexpr std::array<std::string_view, dtype_count> names_of_dtypes() noexcept {
  std::array<std::string_view, dtype_count> names{};
  for (std::size_t i = 0; i < dtype_count; ++i) names[i] = dtype_table[i].name;
  return names;
}
}  // namespace detail

/// The facts of a dtype (see dtype_table).
constexpr const dtype_facts& facts_of(dtype type) noexcept {
  const auto index = static_cast<std::size_t>(type);
  return dtype_table[index < dtype_count ? index : 0];
}

/// Bits per element: 4 for F4, 6 for F6_*, 64 for C64 (two F32), else the type's width.
constexpr std::size_t dtype_bits(dtype type) noexcept {
  return static_cast<std::size_t>(type) < dtype_count ? facts_of(type).bits : 0;
}

/// What kind of number the elements of `type` are.
constexpr dtype_kind kind_of(dtype type) noexcept { return facts_of(type).kind; }

/// The JSON spelling of every dtype, in enum order.
inline constexpr std::array<std::string_view, dtype_count> dtype_names = detail::names_of_dtypes();

/// The JSON spelling of a dtype, e.g. "BF16".
constexpr std::string_view dtype_name(dtype type) noexcept {
  return static_cast<std::size_t>(type) < dtype_count ? facts_of(type).name : std::string_view();
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
