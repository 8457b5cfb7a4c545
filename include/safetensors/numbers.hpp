// safetensors-hpp: number types for the dtypes C++ lacks (bfloat16, float16, the F8 kinds), byte order, packing and exact conversions between dtypes.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_NUMBERS_HPP
#define SAFETENSORS_NUMBERS_HPP

#include "dtype.hpp"
#include "error.hpp"
#include "span.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// Numbers: storage types for the dtypes C++ lacks, byte order, conversions between dtypes.
// First, in detail: little-endian loads and stores, bit casts, binary floating-point formats.
// ---------------------------------------------------------------------------------------------

namespace detail {

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__)
/// True on a big-endian host (s390x, big-endian POWER), where the file's little-endian values need
/// their bytes reversed.
inline constexpr bool host_is_big_endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
#else
/// Compilers that do not define __BYTE_ORDER__ (MSVC) only target little-endian machines.
inline constexpr bool host_is_big_endian = false;
#endif

/// `value` with its bytes in reverse order. Compilers turn the loop into one byte-swap instruction.
template <class T>
constexpr T byte_swap(T value) noexcept {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "byte_swap takes an integer");
  using bits_type = std::make_unsigned_t<T>;
  auto in = static_cast<bits_type>(value);
  bits_type out = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out = static_cast<bits_type>(static_cast<bits_type>(out << 8) | static_cast<bits_type>(in & 0xffu));
    in = static_cast<bits_type>(in >> 8);
  }
  return static_cast<T>(out);
}

/// Reads a little-endian integer T from the sizeof(T) bytes at `bytes`, which need no alignment.
template <class T>
inline T load_le(const std::byte* bytes) noexcept {
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  if constexpr (host_is_big_endian) value = byte_swap(value);
  return value;
}

/// Writes the integer `value` as sizeof(T) little-endian bytes at `bytes`, which need no alignment.
template <class T>
inline void store_le(std::byte* bytes, T value) noexcept {
  if constexpr (host_is_big_endian) value = byte_swap(value);
  std::memcpy(bytes, &value, sizeof(T));
}

/// The object of type `To` with the bytes of `from`: std::bit_cast for C++17. Conversions work on
/// bits so that NaN payloads survive (an FPU quiets a signaling NaN it converts) and results do
/// not depend on the rounding mode or flush-to-zero.
template <class To, class From>
inline To bit_cast(const From& from) noexcept {
  static_assert(sizeof(To) == sizeof(From) && std::is_trivially_copyable_v<To> && std::is_trivially_copyable_v<From>);
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

/// Bits of a double's sign.
inline constexpr std::uint64_t double_sign = std::uint64_t{1} << 63;
/// Bits of a double's positive infinity; larger magnitudes are NaNs.
inline constexpr std::uint64_t double_infinity = std::uint64_t{0x7ff} << 52;
/// The quiet bit of a double NaN, the top bit of its fraction.
inline constexpr std::uint64_t double_quiet_bit = std::uint64_t{1} << 51;

/// What a format does with the encodings beyond its finite numbers.
enum class float_specials : std::uint8_t {
  ieee,               ///< exponent all ones: infinity (zero fraction) or NaN; +0 and -0
  all_ones_nan,       ///< S.1111.111 is NaN; no infinity; +0 and -0 (OCP E4M3)
  negative_zero_nan,  ///< 0x80 is the only NaN; no infinity, no -0 (the FNUZ formats)
  finite,             ///< every encoding a finite number: no infinity, no NaN; +0 and -0 (OCP MX FP4, FP6)
};

/// A signed binary floating-point format of at most 32 bits: sign, exponent, fraction.
struct float_format {
  int exponent_bits;
  int mantissa_bits;
  int bias;
  float_specials specials;
  /// Finite values beyond the largest finite one become it instead of infinity. True for every
  /// format without infinities, and for E5M2, whose overflow the OCP spec lets saturate.
  bool saturate;

  /// Position of the sign bit.
  constexpr int sign_shift() const noexcept { return exponent_bits + mantissa_bits; }
  /// Bits of the exponent field when it is all ones.
  constexpr std::uint32_t exponent_field_all_ones() const noexcept {
    return ((std::uint32_t{1} << exponent_bits) - 1) << mantissa_bits;
  }
  /// Every bit but the sign.
  constexpr std::uint32_t magnitude_mask() const noexcept { return (std::uint32_t{1} << sign_shift()) - 1; }
  /// Encoding of the largest finite magnitude.
  constexpr std::uint32_t max_finite() const noexcept {
    switch (specials) {
      case float_specials::ieee: return magnitude_mask() - (std::uint32_t{1} << mantissa_bits);
      case float_specials::all_ones_nan: return magnitude_mask() - 1;
      case float_specials::negative_zero_nan:
      case float_specials::finite: return magnitude_mask();
    }
    return 0;
  }
};

/// IEEE binary32 (F32).
inline constexpr float_format float32_format{8, 23, 127, float_specials::ieee, false};
/// IEEE binary16 (F16).
inline constexpr float_format float16_format{5, 10, 15, float_specials::ieee, false};
/// bfloat16 (BF16).
inline constexpr float_format bfloat16_format{8, 7, 127, float_specials::ieee, false};
/// OCP E5M2 (F8_E5M2).
inline constexpr float_format float8_e5m2_format{5, 2, 15, float_specials::ieee, true};
/// OCP E4M3, the "FN" variant (F8_E4M3).
inline constexpr float_format float8_e4m3_format{4, 3, 7, float_specials::all_ones_nan, true};
/// E4M3FNUZ (F8_E4M3FNUZ).
inline constexpr float_format float8_e4m3fnuz_format{4, 3, 8, float_specials::negative_zero_nan, true};
/// E5M2FNUZ (F8_E5M2FNUZ).
inline constexpr float_format float8_e5m2fnuz_format{5, 2, 16, float_specials::negative_zero_nan, true};
/// OCP MX E2M1 (F4): largest finite value 6.
inline constexpr float_format float4_e2m1_format{2, 1, 1, float_specials::finite, true};
/// OCP MX E2M3 (F6_E2M3): largest finite value 7.5.
inline constexpr float_format float6_e2m3_format{2, 3, 1, float_specials::finite, true};
/// OCP MX E3M2 (F6_E3M2): largest finite value 28.
inline constexpr float_format float6_e3m2_format{3, 2, 3, float_specials::finite, true};

/// The double, as bits, that `bits` encode in `format`: exact. An IEEE NaN keeps its sign and its
/// payload, moved to the top of the double's fraction, so that narrowing back restores it.
inline std::uint64_t decode_float(const float_format& format, std::uint32_t bits) noexcept {
  const int mantissa_bits = format.mantissa_bits;
  const std::uint64_t sign = (bits >> format.sign_shift()) & 1u ? double_sign : 0;
  const std::uint32_t magnitude = bits & format.magnitude_mask();
  const std::uint32_t exponent_field = magnitude >> mantissa_bits;
  const std::uint64_t fraction = magnitude & ((std::uint32_t{1} << mantissa_bits) - 1);
  switch (format.specials) {
    case float_specials::ieee:
      if ((magnitude & format.exponent_field_all_ones()) == format.exponent_field_all_ones())
        return sign | double_infinity | (fraction << (52 - mantissa_bits));
      break;
    case float_specials::all_ones_nan:
      if (magnitude == format.magnitude_mask()) return sign | double_infinity | double_quiet_bit;
      break;
    case float_specials::negative_zero_nan:
      if (bits == std::uint32_t{1} << format.sign_shift()) return double_infinity | double_quiet_bit;
      break;
    case float_specials::finite: break;
  }
  if (exponent_field == 0) {
    // A subnormal counts multiples of the smallest one, 2^(1 - bias - mantissa_bits): a normal
    // double for every format here, so the product is exact whatever the FPU's modes.
    const double smallest = bit_cast<double>(static_cast<std::uint64_t>(1023 + 1 - format.bias - mantissa_bits) << 52);
    return sign | bit_cast<std::uint64_t>(static_cast<double>(fraction) * smallest);
  }
  return sign | (static_cast<std::uint64_t>(static_cast<int>(exponent_field) - format.bias + 1023) << 52) |
         (fraction << (52 - mantissa_bits));
}

/// The finite, non-negative double `magnitude` (as bits) rounded to nearest, ties to even, into a
/// format with `mantissa_bits` fraction bits and exponent `bias`: the encoding without sign, which
/// exceeds the format's largest finite one when the value overflows. Rounding the double directly,
/// not through a float, keeps a value just off a midpoint from being rounded onto it first.
inline std::uint32_t round_magnitude(std::uint64_t magnitude, int mantissa_bits, int bias) noexcept {
  const int biased_exponent = static_cast<int>(magnitude >> 52);
  // Zero and double subnormals lie far below half the smallest subnormal of every format here.
  if (biased_exponent == 0) return 0;
  const int exponent = biased_exponent - 1023;
  if (exponent > bias + 1) return std::numeric_limits<std::uint32_t>::max();
  const int min_exponent = 1 - bias;
  // Below min_exponent the quantum stays that of the smallest normals: the result is subnormal.
  const int target = exponent > min_exponent ? exponent : min_exponent;
  const int shift = 52 - mantissa_bits + (target - exponent);
  if (shift >= 64) return 0;
  const std::uint64_t significand = (magnitude & ((std::uint64_t{1} << 52) - 1)) | (std::uint64_t{1} << 52);
  std::uint64_t kept = significand >> shift;
  const std::uint64_t lost = significand & ((std::uint64_t{1} << shift) - 1);
  const std::uint64_t half = std::uint64_t{1} << (shift - 1);
  if (lost > half || (lost == half && (kept & 1) != 0)) ++kept;
  // Adding the significand, leading bit included, to the exponent field steps the field when the
  // value is normal or rounding carried out of the fraction, and leaves it 0 for a subnormal.
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(target - min_exponent) << mantissa_bits) + kept);
}

/// The double `bits` in `format`, rounded to nearest, ties to even. NaN stays NaN (keeping its
/// sign and the top of its payload where the format has room); infinity stays infinity where the
/// format has one and becomes the largest finite value of its sign where it has not; overflow goes
/// to infinity or, when the format saturates, to the largest finite value; and where the format has
/// no -0, a result of zero is +0. A format with no NaN at all (float_specials::finite) has nothing
/// to give for one: callers refuse NaN first, as try_convert() does; here it becomes a zero.
inline std::uint32_t encode_float(const float_format& format, std::uint64_t bits) noexcept {
  const std::uint32_t sign = bits & double_sign ? std::uint32_t{1} << format.sign_shift() : 0;
  const std::uint64_t magnitude = bits & ~double_sign;
  const std::uint32_t infinity = format.exponent_field_all_ones();
  if (magnitude > double_infinity) {
    switch (format.specials) {
      case float_specials::ieee: {
        const int mantissa_bits = format.mantissa_bits;
        auto payload = static_cast<std::uint32_t>((magnitude >> (52 - mantissa_bits)) & ((1u << mantissa_bits) - 1));
        // An empty payload would read as infinity: set the quiet bit instead.
        if (payload == 0) payload = std::uint32_t{1} << (mantissa_bits - 1);
        return sign | infinity | payload;
      }
      case float_specials::all_ones_nan: return sign | format.magnitude_mask();
      case float_specials::negative_zero_nan: return std::uint32_t{1} << format.sign_shift();
      case float_specials::finite: return sign;
    }
  }
  if (magnitude == double_infinity)
    return sign | (format.specials == float_specials::ieee ? infinity : format.max_finite());
  std::uint32_t rounded = round_magnitude(magnitude, format.mantissa_bits, format.bias);
  if (rounded > format.max_finite()) rounded = format.saturate ? format.max_finite() : infinity;
  if (rounded == 0 && format.specials == float_specials::negative_zero_nan) return 0;
  return sign | rounded;
}

/// The double, as bits, that the E8M0 byte `bits` encodes: 2^(bits - 127), or NaN for 0xff.
constexpr std::uint64_t decode_e8m0(std::uint8_t bits) noexcept {
  if (bits == 0xff) return double_infinity | double_quiet_bit;
  return static_cast<std::uint64_t>(bits - 127 + 1023) << 52;
}

/// The double `bits` as E8M0; the rules are float8_e8m0::from_double's.
constexpr std::uint8_t encode_e8m0(std::uint64_t bits) noexcept {
  const std::uint64_t magnitude = bits & ~double_sign;
  if (magnitude > double_infinity) return 0xff;
  if ((bits & double_sign) != 0 && magnitude != 0) return 0xff;
  if (magnitude == double_infinity) return 0xfe;
  const int exponent = static_cast<int>(magnitude >> 52) - 1023;
  if (exponent < -127) return 0x00;
  // Between 2^e and 2^(e+1) the midpoint is 1.5 * 2^e: a fraction of one half or more rounds up.
  const int rounded = exponent + 127 + static_cast<int>((magnitude >> 51) & 1);
  return static_cast<std::uint8_t>(rounded > 0xfe ? 0xfe : rounded);
}

/// The float with the bits of the F16 `bits`, without a branch, so that loops of it vectorize.
inline std::uint32_t float16_to_float32_bits(std::uint16_t bits) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t shifted = static_cast<std::uint32_t>(bits & 0x7fffu) << 13;
  const std::uint32_t exponent = shifted & 0x0f800000u;
  const std::uint32_t normal = shifted + 0x38000000u;   // rebias: + (127 - 15) << 23
  const std::uint32_t special = shifted + 0x70000000u;  // exponent field 31 becomes 255
  // A subnormal m * 2^-24 is (2^-14 + m * 2^-24) - 2^-14: both operands and the result are
  // normal floats, so the subtraction is exact even under flush-to-zero.
  const float biased = bit_cast<float>(shifted + 0x38800000u) - bit_cast<float>(0x38800000u);
  const std::uint32_t subnormal = bit_cast<std::uint32_t>(biased);
  // Masks rather than conditionals: GCC leaves a conditional next to floating-point code a branch.
  const std::uint32_t is_special = 0u - static_cast<std::uint32_t>(exponent == 0x0f800000u);
  const std::uint32_t is_subnormal = 0u - static_cast<std::uint32_t>(exponent == 0);
  const std::uint32_t is_normal = ~(is_special | is_subnormal);
  return sign | (normal & is_normal) | (special & is_special) | (subnormal & is_subnormal);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Number types for the narrow floating dtypes
//
// Each holds the raw bits of one element, in host order once loaded from the file's
// little-endian bytes. Widening (to_float, to_double) is exact. Narrowing (from_float,
// from_double) rounds to nearest, ties to even (float8_e8m0: ties up, see its comment), straight
// from the argument: never through an
// intermediate rounding. NaNs keep their sign where the format has one; IEEE-style NaNs also keep
// the top of their payload and are not quieted (the quiet bit is set only when none of the payload
// fits), so every bit pattern survives a round trip through float and double. The work is done on
// bits, so results do not depend on the FPU's rounding mode or flush-to-zero. Overflow and
// infinity follow each type's comment; the F8 types use the saturating conversion of the OCP
// 8-bit floating point specification (v1.0).
// ---------------------------------------------------------------------------------------------

namespace detail {
/// The float with the bits of the narrow float `bits` in `Format`, by the general path.
template <const float_format& Format, class Bits>
std::uint32_t narrow_to_float32_bits(Bits bits) noexcept {
  return encode_float(float32_format, decode_float(Format, bits));
}

/// The float with the bits of the BF16 `bits`: its top half.
inline std::uint32_t bfloat16_to_float32_bits(std::uint16_t bits) noexcept {
  return static_cast<std::uint32_t>(bits) << 16;
}

/// The shared body of the narrow float types with a sign, whose differences are all in `Format`
/// (and, for speed, in `ToFloat32Bits`, which widens to float's bits).
template <class Derived, class Bits, const float_format& Format, std::uint32_t (*ToFloat32Bits)(Bits) noexcept>
struct narrow_float {
  /// The raw bits.
  Bits bits = 0;

  /// The number whose encoding is `raw`.
  static constexpr Derived from_bits(Bits raw) noexcept { return Derived{{raw}}; }
  /// The nearest value to `value`, ties to even; the type's comment says what happens at the edges.
  static Derived from_float(float value) noexcept {
    return from_double_bits(decode_float(float32_format, bit_cast<std::uint32_t>(value)));
  }
  /// The nearest value to `value`, ties to even; the type's comment says what happens at the edges.
  static Derived from_double(double value) noexcept { return from_double_bits(bit_cast<std::uint64_t>(value)); }
  /// The value, exactly.
  float to_float() const noexcept { return bit_cast<float>(ToFloat32Bits(bits)); }
  /// The value, exactly.
  double to_double() const noexcept { return bit_cast<double>(decode_float(Format, bits)); }

  /// Same bits: where the format has them, +0 and -0 differ; a NaN equals itself.
  friend constexpr bool operator==(Derived a, Derived b) noexcept { return a.bits == b.bits; }
  /// Different bits.
  friend constexpr bool operator!=(Derived a, Derived b) noexcept { return a.bits != b.bits; }

 private:
  /// The nearest value to the double with bits `value`.
  static Derived from_double_bits(std::uint64_t value) noexcept {
    return from_bits(static_cast<Bits>(encode_float(Format, value)));
  }
};

/// narrow_float for an 8-bit format, widened by the general path.
template <class Derived, const float_format& Format>
using float8_base = narrow_float<Derived, std::uint8_t, Format, narrow_to_float32_bits<Format, std::uint8_t>>;
}  // namespace detail

/// bfloat16 (BF16): the top half of an IEEE binary32, with 8 exponent and 7 fraction bits, bias
/// 127, infinities, NaNs, subnormals and signed zeros. As in IEEE 754, values beyond the largest
/// finite one (about 3.3895e38) after rounding become infinity.
struct bfloat16
    : detail::narrow_float<bfloat16, std::uint16_t, detail::bfloat16_format, detail::bfloat16_to_float32_bits> {};

/// IEEE 754 binary16 (F16): 5 exponent and 10 fraction bits, bias 15, infinities, NaNs,
/// subnormals and signed zeros. As in IEEE 754, values of 65520 and beyond (the midpoint between
/// the largest finite value, 65504, and 65536) become infinity.
struct float16 : detail::narrow_float<float16, std::uint16_t, detail::float16_format, detail::float16_to_float32_bits> {
};

/// OCP E5M2 (F8_E5M2): 5 exponent and 2 fraction bits, bias 15, IEEE-style infinities (S.11111.00),
/// NaNs (S.11111.{01,10,11}), subnormals and signed zeros; largest finite value 57344. Saturating:
/// finite values beyond 57344 become ±57344, while ±infinity, which E5M2 holds, stays ±infinity.
/// A NaN keeps its sign and the top two payload bits, or becomes the quiet S.11111.10.
struct float8_e5m2 : detail::float8_base<float8_e5m2, detail::float8_e5m2_format> {};

/// OCP E4M3, the "FN" variant (F8_E4M3): 4 exponent and 3 fraction bits, bias 7, signed zeros and
/// subnormals, no infinities; S.1111.111 is NaN, so the largest finite value is 448 (S.1111.110).
/// Saturating: finite values beyond 448 and ±infinity become ±448. NaN becomes S.1111.111,
/// keeping its sign.
struct float8_e4m3 : detail::float8_base<float8_e4m3, detail::float8_e4m3_format> {};

/// E4M3FNUZ (F8_E4M3FNUZ): 4 exponent and 3 fraction bits, bias 8, subnormals, no infinities and
/// no -0; 0x80, the encoding -0 would have, is the only NaN. Largest finite value 240 (0x7f).
/// Saturating: finite values beyond 240 and ±infinity become ±240; every NaN becomes 0x80; -0, and
/// negative values that round to zero, become +0.
struct float8_e4m3fnuz : detail::float8_base<float8_e4m3fnuz, detail::float8_e4m3fnuz_format> {};

/// E5M2FNUZ (F8_E5M2FNUZ): 5 exponent and 2 fraction bits, bias 16, subnormals, no infinities and
/// no -0; 0x80 is the only NaN. Largest finite value 57344 (0x7f). Saturating: finite values beyond
/// 57344 and ±infinity become ±57344; every NaN becomes 0x80; -0, and negative values that round to
/// zero, become +0.
struct float8_e5m2fnuz : detail::float8_base<float8_e5m2fnuz, detail::float8_e5m2fnuz_format> {};

/// E8M0 (F8_E8M0), the scale type of the OCP Microscaling (MX) formats: 8 exponent bits and
/// nothing else, no sign, no zero, no infinity; `bits` encodes 2^(bits - 127), from 2^-127 to
/// 2^127, and 0xff is the only NaN. Narrowing rounds to the nearest power of two by value: the
/// midpoint between 2^e and 2^(e+1) is 1.5 * 2^e, and a tie goes up, to 2^(e+1), as in PyTorch's
/// float8_e8m0fnu and ml_dtypes (with one significant bit, ties-to-even has no even neighbour).
/// It saturates at both ends: values from 1.5 * 2^127 up, and +infinity, become 2^127; zero (either
/// sign) and positive values below 2^-127 become 2^-127. NaN, negative values and -infinity, which
/// have no unsigned counterpart, become NaN.
struct float8_e8m0 {
  /// The raw bits: the biased exponent.
  std::uint8_t bits = 0;

  /// The number whose encoding is `raw`.
  static constexpr float8_e8m0 from_bits(std::uint8_t raw) noexcept { return float8_e8m0{raw}; }
  /// The power of two nearest to `value`, within the rules above.
  static float8_e8m0 from_float(float value) noexcept {
    return {detail::encode_e8m0(detail::decode_float(detail::float32_format, detail::bit_cast<std::uint32_t>(value)))};
  }
  /// The power of two nearest to `value`, within the rules above.
  static float8_e8m0 from_double(double value) noexcept {
    return {detail::encode_e8m0(detail::bit_cast<std::uint64_t>(value))};
  }
  /// The value, exactly (2^-127 is a float subnormal, built from bits so flush-to-zero cannot lose it).
  float to_float() const noexcept {
    if (bits == 0xff) return detail::bit_cast<float>(0x7fc00000u);
    return detail::bit_cast<float>(bits == 0 ? 0x00400000u : static_cast<std::uint32_t>(bits) << 23);
  }
  /// The value, exactly.
  double to_double() const noexcept { return detail::bit_cast<double>(detail::decode_e8m0(bits)); }

  /// Same bits.
  friend constexpr bool operator==(float8_e8m0 a, float8_e8m0 b) noexcept { return a.bits == b.bits; }
  /// Different bits.
  friend constexpr bool operator!=(float8_e8m0 a, float8_e8m0 b) noexcept { return a.bits != b.bits; }
};

// ---------------------------------------------------------------------------------------------
// Conversion between dtypes
// ---------------------------------------------------------------------------------------------

namespace detail {

/// The kind of every error of a conversion itself (not of a buffer's size).
inline constexpr error_kind conversion_error_kind = error_kind::invalid_conversion;

/// One element between its source and destination: a float as the bits of the double it equals
/// (which keeps NaN payloads), or an integer exactly, since neither double nor int64_t holds
/// every U64 and I64 value.
struct element {
  /// What an element holds.
  enum class kind : std::uint8_t { floating, signed_integer, unsigned_integer };
  kind type;           ///< which of the three `bits` holds
  std::uint64_t bits;  ///< double bits, an int64_t in two's complement, or a uint64_t
};

/// Why an element has no value in the destination dtype.
enum class write_status : std::uint8_t { ok, nan, fraction, out_of_range };

/// The element of dtype `type` at `bytes`. Sub-byte dtypes and C64 never get here.
inline element read_element(const std::byte* bytes, dtype type) noexcept {
  using kind = element::kind;
  auto as_signed = [](std::int64_t value) { return element{kind::signed_integer, static_cast<std::uint64_t>(value)}; };
  auto as_unsigned = [](std::uint64_t value) { return element{kind::unsigned_integer, value}; };
  auto as_float = [](std::uint64_t double_bits) { return element{kind::floating, double_bits}; };
  switch (type) {
    case dtype::BOOL: return as_unsigned(load_le<std::uint8_t>(bytes) != 0 ? 1 : 0);
    case dtype::U8: return as_unsigned(load_le<std::uint8_t>(bytes));
    case dtype::I8: return as_signed(load_le<std::int8_t>(bytes));
    case dtype::U16: return as_unsigned(load_le<std::uint16_t>(bytes));
    case dtype::I16: return as_signed(load_le<std::int16_t>(bytes));
    case dtype::U32: return as_unsigned(load_le<std::uint32_t>(bytes));
    case dtype::I32: return as_signed(load_le<std::int32_t>(bytes));
    case dtype::U64: return as_unsigned(load_le<std::uint64_t>(bytes));
    case dtype::I64: return as_signed(load_le<std::int64_t>(bytes));
    case dtype::F8_E5M2: return as_float(decode_float(float8_e5m2_format, load_le<std::uint8_t>(bytes)));
    case dtype::F8_E4M3: return as_float(decode_float(float8_e4m3_format, load_le<std::uint8_t>(bytes)));
    case dtype::F8_E4M3FNUZ: return as_float(decode_float(float8_e4m3fnuz_format, load_le<std::uint8_t>(bytes)));
    case dtype::F8_E5M2FNUZ: return as_float(decode_float(float8_e5m2fnuz_format, load_le<std::uint8_t>(bytes)));
    case dtype::F8_E8M0: return as_float(decode_e8m0(load_le<std::uint8_t>(bytes)));
    case dtype::F16: return as_float(decode_float(float16_format, load_le<std::uint16_t>(bytes)));
    case dtype::BF16: return as_float(decode_float(bfloat16_format, load_le<std::uint16_t>(bytes)));
    case dtype::F32: return as_float(decode_float(float32_format, load_le<std::uint32_t>(bytes)));
    case dtype::F64: return as_float(load_le<std::uint64_t>(bytes));
    case dtype::F4:
    case dtype::F6_E2M3:
    case dtype::F6_E3M2:
    case dtype::C64: break;
  }
  return as_unsigned(0);
}

/// |value| of a 64-bit integer as a double, as bits with `negative` giving the sign. Rounds to
/// nearest, ties to even, or with `to_odd` truncates and sets the last bit if anything was lost: a
/// second rounding of that to at most 51 significant bits then equals one rounding of the integer
/// (Boldo and Melquiond, "When double rounding is odd", 2005), so I64 and U64 reach F32, BF16
/// and the rest without double rounding.
inline std::uint64_t integer_to_double_bits(bool negative, std::uint64_t magnitude, bool to_odd) noexcept {
  const std::uint64_t sign = negative ? double_sign : 0;
  int shift = 0;
  while ((magnitude >> shift) >= (std::uint64_t{1} << 53)) ++shift;
  std::uint64_t kept = magnitude >> shift;
  if (shift != 0) {
    const std::uint64_t lost = magnitude & ((std::uint64_t{1} << shift) - 1);
    const std::uint64_t half = std::uint64_t{1} << (shift - 1);
    if (to_odd) {
      if (lost != 0) kept |= 1;
    } else if (lost > half || (lost == half && (kept & 1) != 0)) {
      ++kept;
    }
  }
  // kept <= 2^53 (below it before a rounding step up) and the scale is a power of two: both
  // conversions and the product are exact.
  return sign | bit_cast<std::uint64_t>(static_cast<double>(kept) * static_cast<double>(std::uint64_t{1} << shift));
}

/// `value` as double bits: exact for floats, rounded for integers as integer_to_double_bits says.
inline std::uint64_t to_double_bits(element value, bool to_odd) noexcept {
  switch (value.type) {
    case element::kind::floating: return value.bits;
    case element::kind::signed_integer: {
      const bool negative = static_cast<std::int64_t>(value.bits) < 0;
      return integer_to_double_bits(negative, negative ? 0 - value.bits : value.bits, to_odd);
    }
    case element::kind::unsigned_integer: return integer_to_double_bits(false, value.bits, to_odd);
  }
  return 0;
}

/// True when the finite double `value` has no fractional part.
inline bool is_integral(double value) noexcept {
  // From 2^52 up every double is an integer; below, the cast to int64_t is in range.
  return value >= 4503599627370496.0 || value <= -4503599627370496.0 ||
         static_cast<double>(static_cast<std::int64_t>(value)) == value;
}

/// Stores `value` at `bytes` as the integer type T, if T holds it exactly.
template <class T>
inline write_status store_integer(std::byte* bytes, element value) noexcept {
  using limits = std::numeric_limits<T>;
  switch (value.type) {
    case element::kind::floating: {
      if ((value.bits & ~double_sign) > double_infinity) return write_status::nan;
      const double number = bit_cast<double>(value.bits);
      if (!is_integral(number)) return write_status::fraction;
      // 2^digits is T's max + 1, and -2^digits its min for a signed T: both exact doubles.
      const double limit = 2.0 * static_cast<double>(std::uint64_t{1} << (limits::digits - 1));
      const double low = limits::is_signed ? -limit : 0.0;
      if (!(number >= low && number < limit)) return write_status::out_of_range;
      store_le<T>(bytes, static_cast<T>(number));
      return write_status::ok;
    }
    case element::kind::signed_integer: {
      const auto number = static_cast<std::int64_t>(value.bits);
      if constexpr (limits::is_signed) {
        if (number < limits::min() || number > limits::max()) return write_status::out_of_range;
      } else {
        if (number < 0 || static_cast<std::uint64_t>(number) > limits::max()) return write_status::out_of_range;
      }
      store_le<T>(bytes, static_cast<T>(number));
      return write_status::ok;
    }
    case element::kind::unsigned_integer:
      if (value.bits > static_cast<std::uint64_t>(limits::max())) return write_status::out_of_range;
      store_le<T>(bytes, static_cast<T>(value.bits));
      return write_status::ok;
  }
  return write_status::ok;
}

/// Stores `value` at `bytes` as dtype `type`. Sub-byte dtypes and C64 never get here.
inline write_status write_element(std::byte* bytes, dtype type, element value) noexcept {
  // Integers reach narrow floats through a round-to-odd double, F64 through a rounded one.
  auto narrow = [&](const float_format& format) { return encode_float(format, to_double_bits(value, true)); };
  switch (type) {
    case dtype::BOOL:
      if (value.type == element::kind::floating) {
        const std::uint64_t magnitude = value.bits & ~double_sign;
        if (magnitude > double_infinity) return write_status::nan;
        store_le<std::uint8_t>(bytes, magnitude != 0 ? 1 : 0);
      } else {
        store_le<std::uint8_t>(bytes, value.bits != 0 ? 1 : 0);
      }
      return write_status::ok;
    case dtype::U8: return store_integer<std::uint8_t>(bytes, value);
    case dtype::I8: return store_integer<std::int8_t>(bytes, value);
    case dtype::U16: return store_integer<std::uint16_t>(bytes, value);
    case dtype::I16: return store_integer<std::int16_t>(bytes, value);
    case dtype::U32: return store_integer<std::uint32_t>(bytes, value);
    case dtype::I32: return store_integer<std::int32_t>(bytes, value);
    case dtype::U64: return store_integer<std::uint64_t>(bytes, value);
    case dtype::I64: return store_integer<std::int64_t>(bytes, value);
    case dtype::F8_E5M2: store_le(bytes, static_cast<std::uint8_t>(narrow(float8_e5m2_format))); break;
    case dtype::F8_E4M3: store_le(bytes, static_cast<std::uint8_t>(narrow(float8_e4m3_format))); break;
    case dtype::F8_E4M3FNUZ: store_le(bytes, static_cast<std::uint8_t>(narrow(float8_e4m3fnuz_format))); break;
    case dtype::F8_E5M2FNUZ: store_le(bytes, static_cast<std::uint8_t>(narrow(float8_e5m2fnuz_format))); break;
    case dtype::F8_E8M0: store_le(bytes, encode_e8m0(to_double_bits(value, true))); break;
    case dtype::F16: store_le(bytes, static_cast<std::uint16_t>(narrow(float16_format))); break;
    case dtype::BF16: store_le(bytes, static_cast<std::uint16_t>(narrow(bfloat16_format))); break;
    case dtype::F32: store_le(bytes, narrow(float32_format)); break;
    case dtype::F64: store_le(bytes, to_double_bits(value, false)); break;
    case dtype::F4:
    case dtype::F6_E2M3:
    case dtype::F6_E3M2:
    case dtype::C64: break;
  }
  return write_status::ok;
}

/// Widens `count` 16-bit elements at `source` to 32 bits at `destination` with `widen`, in
/// fixed-size blocks whose inner loop has no branch and no call, so that compilers vectorize it.
template <class Widen>
inline void widen_16_to_32(const std::byte* source, std::byte* destination, std::size_t count, Widen widen) noexcept {
  constexpr std::size_t block = 256;
  std::size_t i = 0;
  for (; i + block <= count; i += block) {
    std::uint16_t in[block];
    std::uint32_t out[block];
    std::memcpy(in, source + 2 * i, sizeof in);
    for (std::size_t k = 0; k < block; ++k) {
      std::uint16_t value = in[k];
      if constexpr (host_is_big_endian) value = byte_swap(value);
      std::uint32_t wide = widen(value);
      if constexpr (host_is_big_endian) wide = byte_swap(wide);
      out[k] = wide;
    }
    std::memcpy(destination + 4 * i, out, sizeof out);
  }
  for (; i < count; ++i) store_le(destination + 4 * i, widen(load_le<std::uint16_t>(source + 2 * i)));
}

/// BF16 bits of a float32 that is not NaN, rounded to nearest, ties to even (beyond BF16's
/// largest finite value: infinity). BF16 shares float32's exponent, so subnormals round alike.
inline std::uint16_t float32_to_bfloat16_bits(std::uint32_t bits) noexcept {
  return static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/// F16 bits of a float32 that is not NaN, rounded to nearest, ties to even: infinity from 65520
/// on, F16 subnormals below 2^-14, zero at or below 2^-25.
inline std::uint16_t float32_to_float16_bits(std::uint32_t bits) noexcept {
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // 65520 and up
  const std::uint32_t exponent = magnitude >> 23;
  const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
  if (exponent < 113) {  // below 2^-14: a subnormal, mantissa * 2^(exponent - 126) units of 2^-24
    const std::uint32_t shift = 126 - exponent;
    if (shift > 24) return sign;
    std::uint32_t units = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (units & 1u) != 0)) ++units;
    return static_cast<std::uint16_t>(sign | units);
  }
  std::uint32_t result = ((exponent - 112) << 10) | ((magnitude >> 13) & 0x3ffu);
  const std::uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (result & 1u) != 0)) ++result;  // a carry rounds up the exponent
  return static_cast<std::uint16_t>(sign | result);
}

/// A double for a message: the shortest text that reads back as the same value.
inline std::string number_text(double value) {
  char text[32];
  for (int precision = 1; precision < 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) return text;
  }
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

/// An element's value for a message.
inline std::string element_text(element value) {
  switch (value.type) {
    case element::kind::floating: return number_text(bit_cast<double>(value.bits));
    case element::kind::signed_integer: return std::to_string(static_cast<std::int64_t>(value.bits));
    case element::kind::unsigned_integer: return std::to_string(value.bits);
  }
  return "";
}

/// The values an integer dtype holds, for a message, e.g. "-128 to 127".
inline std::string integer_range_text(dtype type) {
  const std::size_t bits = dtype_bits(type);
  const std::uint64_t all_ones = bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
  switch (kind_of(type)) {
    case dtype_kind::unsigned_integer: return "0 to " + std::to_string(all_ones);
    case dtype_kind::signed_integer:
      return "-" + std::to_string(all_ones / 2 + 1) + " to " + std::to_string(all_ones / 2);
    default: return "";
  }
}

/// True for the dtypes whose elements are smaller than a byte.
constexpr bool is_sub_byte(dtype type) noexcept { return dtype_bits(type) % 8 != 0; }

/// The format of a sub-byte float dtype.
constexpr const float_format& sub_byte_format(dtype type) noexcept {
  return type == dtype::F4 ? float4_e2m1_format : type == dtype::F6_E2M3 ? float6_e2m3_format : float6_e3m2_format;
}
}  // namespace detail

/// How elements smaller than a byte (F4, F6_E2M3, F6_E3M2) lie in their bytes, which the format
/// leaves open. A tensor's shape counts elements; its bytes hold them back to back.
enum class packing : std::uint8_t {
  /// The default. F4: element 2i in the low nibble of byte i and 2i+1 in the high nibble, as
  /// PyTorch's float4_e2m1fn_x2 stores them. F6: a little-endian bit stream, element i in bits
  /// [6i, 6i + 6) counted from the least significant bit of byte 0 (no producer convention is
  /// known; this is the F4 rule's natural extension).
  low_first,
  /// F4: element 2i in the high nibble. F6: a big-endian bit stream, element i in bits
  /// [6i, 6i + 6) counted from the most significant bit of byte 0.
  high_first,
};

namespace detail {
/// The `bits` bits of sub-byte element `index` of `bytes`, laid out as `order` says.
inline std::uint32_t load_packed(const std::byte* bytes, std::size_t index, std::size_t bits, packing order) noexcept {
  const std::size_t first = index * bits;
  const std::size_t at = first / 8, shift = first % 8;
  const bool spans_two = shift + bits > 8;
  const std::uint32_t mask = (std::uint32_t{1} << bits) - 1;
  const std::uint32_t low = std::to_integer<std::uint32_t>(bytes[at]);
  const std::uint32_t high = spans_two ? std::to_integer<std::uint32_t>(bytes[at + 1]) : 0;
  if (order == packing::low_first) return ((low | (high << 8)) >> shift) & mask;
  return (((low << 8) | high) >> (16 - shift - bits)) & mask;
}

/// Stores `value` as sub-byte element `index` of `bytes`, laid out as `order` says; the other
/// elements' bits are kept.
inline void store_packed(std::byte* bytes, std::size_t index, std::size_t bits, packing order,
                         std::uint32_t value) noexcept {
  const std::size_t first = index * bits;
  const std::size_t at = first / 8, shift = first % 8;
  const bool spans_two = shift + bits > 8;
  const std::uint32_t mask = (std::uint32_t{1} << bits) - 1;
  std::uint32_t word =
      std::to_integer<std::uint32_t>(bytes[at]) | (spans_two ? std::to_integer<std::uint32_t>(bytes[at + 1]) << 8 : 0);
  if (order == packing::low_first) {
    word = (word & ~(mask << shift)) | ((value & mask) << shift);
    bytes[at] = static_cast<std::byte>(word & 0xff);
    if (spans_two) bytes[at + 1] = static_cast<std::byte>(word >> 8);
    return;
  }
  // Big-endian: byte `at` is the high half of a 16-bit window.
  std::uint32_t window = ((word & 0xff) << 8) | (word >> 8);
  const std::size_t position = 16 - shift - bits;
  window = (window & ~(mask << position)) | ((value & mask) << position);
  bytes[at] = static_cast<std::byte>(window >> 8);
  if (spans_two) bytes[at + 1] = static_cast<std::byte>(window & 0xff);
}
}  // namespace detail

/// Converts every element of `source`, of dtype `source_type`, to `destination_type` and stores it
/// in `destination`. Both hold elements in the file's layout: little-endian (which is host order
/// on a little-endian host), at any alignment, sub-byte elements packed as `order` says. They must
/// not overlap.
///
/// - Both must hold whole elements, the same number of them.
/// - Any dtype converts to any other except C64, which converts only to C64.
/// - To the same dtype the bytes are copied unchanged.
/// - Float to float: exact when the destination holds the value, else rounded to nearest, ties to
///   even, once, with the destination type's rules for overflow, infinity and NaN (see bfloat16,
///   float16 and the float8 types; F32 and F64 follow IEEE 754). NaN payloads are kept as far as
///   they fit.
/// - F4 (OCP MX E2M1, largest value 6), F6_E2M3 (7.5) and F6_E3M2 (28) have no infinity and no
///   NaN: as the OCP MX specification's saturating conversion does, values beyond the largest and
///   ±infinity become ±the largest value; a NaN, which they cannot hold, is an error.
/// - Integer to float: rounded to nearest, ties to even, once (U64 max becomes 2^64 in F64).
/// - Float to integer: the value must be a whole number in the destination's range, else error.
///   Integer to integer: the value must be in range, else error.
/// - BOOL reads as 0 or 1 (any nonzero byte is 1) and stores 1 for any nonzero value, 0 for zero,
///   and refuses NaN.
///
/// Errors: InvalidTensorView when the sizes do not match, InvalidConversion for a dtype pair or an
/// element that cannot be converted; each names the sizes, or the element's index and value. On
/// an element error, the elements before it have been written, those after it not.
inline result<void> try_convert(span<const std::byte> source, dtype source_type, span<std::byte> destination,
                                dtype destination_type, packing order = packing::low_first) {
  const auto fail = [](std::string message) { return error(detail::conversion_error_kind, std::move(message)); };
  if ((source_type == dtype::C64) != (destination_type == dtype::C64))
    return fail("C64 converts only to C64, not " + std::string(dtype_name(source_type)) + " to " +
                std::string(dtype_name(destination_type)));
  const std::size_t source_bits = dtype_bits(source_type);
  const std::size_t destination_bits = dtype_bits(destination_type);
  auto describe = [](const char* side, std::size_t bytes, std::size_t bits, dtype type) {
    std::string text = std::string(side) + " has " + std::to_string(bytes) + " bytes (";
    if (bytes * 8 % bits == 0)
      return text + std::to_string(bytes * 8 / bits) + " " + std::string(dtype_name(type)) + " elements)";
    return text + "not a whole number of " + std::to_string(bits) + "-bit " + std::string(dtype_name(type)) +
           " elements)";
  };
  if (source.size() * 8 % source_bits != 0 || destination.size() * 8 % destination_bits != 0 ||
      source.size() * 8 / source_bits != destination.size() * 8 / destination_bits)
    return error(error_kind::invalid_tensor_view,
                 describe("source", source.size(), source_bits, source_type) + " but " +
                     describe("destination", destination.size(), destination_bits, destination_type) +
                     ": they must hold the same number of whole elements");
  const std::size_t count = source.size() * 8 / source_bits;
  if (count == 0) return {};
  const std::byte* from = source.data();
  std::byte* to = destination.data();
  if (source_type == destination_type) {
    std::memcpy(to, from, source.size());
    return {};
  }
  if (destination_type == dtype::F32 && source_type == dtype::BF16) {
    detail::widen_16_to_32(from, to, count, [](std::uint16_t bits) { return static_cast<std::uint32_t>(bits) << 16; });
    return {};
  }
  if (destination_type == dtype::F32 && source_type == dtype::F16) {
    detail::widen_16_to_32(from, to, count, [](std::uint16_t bits) { return detail::float16_to_float32_bits(bits); });
    return {};
  }
  // Float32 narrowed to 16 bits, the common case of dequantizing and converting checkpoints, by
  // bits; NaN takes the general path below.
  const bool narrowing =
      source_type == dtype::F32 && (destination_type == dtype::BF16 || destination_type == dtype::F16);
  const bool packed_source = detail::is_sub_byte(source_type);
  const bool packed_destination = detail::is_sub_byte(destination_type);
  for (std::size_t i = 0; i < count; ++i) {
    if (narrowing) {
      const auto bits = detail::load_le<std::uint32_t>(from + 4 * i);
      if ((bits & 0x7fffffffu) <= 0x7f800000u) {
        detail::store_le(to + 2 * i, destination_type == dtype::BF16 ? detail::float32_to_bfloat16_bits(bits)
                                                                     : detail::float32_to_float16_bits(bits));
        continue;
      }
    }
    const detail::element value =
        packed_source ? detail::element{detail::element::kind::floating,
                                        detail::decode_float(detail::sub_byte_format(source_type),
                                                             detail::load_packed(from, i, source_bits, order))}
                      : detail::read_element(from + i * (source_bits / 8), source_type);
    detail::write_status status = detail::write_status::ok;
    if (!packed_destination) {
      status = detail::write_element(to + i * (destination_bits / 8), destination_type, value);
    } else if (value.type == detail::element::kind::floating &&
               (value.bits & ~detail::double_sign) > detail::double_infinity) {
      status = detail::write_status::nan;
    } else {
      const std::uint32_t bits =
          detail::encode_float(detail::sub_byte_format(destination_type), detail::to_double_bits(value, true));
      detail::store_packed(to, i, destination_bits, order, bits);
    }
    if (status == detail::write_status::ok) continue;
    std::string message = "element " + std::to_string(i) + " (" + detail::element_text(value) + ") of " +
                          std::string(dtype_name(source_type)) + " has no " +
                          std::string(dtype_name(destination_type)) + " value: ";
    switch (status) {
      case detail::write_status::nan:
        message += destination_type == dtype::BOOL ? "NaN is neither true nor false"
                   : packed_destination            ? std::string(dtype_name(destination_type)) + " has no NaN"
                                                   : "NaN is not an integer";
        break;
      case detail::write_status::fraction: message += "it is not a whole number"; break;
      case detail::write_status::out_of_range:
        message += "it is outside " + detail::integer_range_text(destination_type);
        break;
      case detail::write_status::ok: break;
    }
    return fail(std::move(message));
  }
  return {};
}

/// Converts as try_convert does; throws safetensors::exception (aborts without exceptions) when it
/// cannot. Example: `convert(f32_bytes, dtype::F32, bf16_bytes, dtype::BF16);`
inline void convert(span<const std::byte> source, dtype source_type, span<std::byte> destination,
                    dtype destination_type, packing order = packing::low_first) {
  try_convert(source, source_type, destination, destination_type, order).value();
}

}  // namespace safetensors

#endif  // SAFETENSORS_NUMBERS_HPP
