// Number types for the narrow floats, little-endian loads and stores, and convert() between dtypes.
// Expected values come from the formats' definitions through std::ldexp, not from the library.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
const double quiet_nan = std::numeric_limits<double>::quiet_NaN();

std::uint64_t bits_of(double value) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

double double_from_bits(std::uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

std::uint32_t bits_of(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float float_from_bits(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// How a format spends the encodings beyond its finite numbers, as the specifications say.
enum class nans { ieee, all_ones, negative_zero };

struct layout {
  int exponent_bits;
  int mantissa_bits;
  int bias;
  nans nan_rule;
};

constexpr layout e5m2_layout{5, 2, 15, nans::ieee};
constexpr layout e4m3_layout{4, 3, 7, nans::all_ones};
constexpr layout e4m3fnuz_layout{4, 3, 8, nans::negative_zero};
constexpr layout e5m2fnuz_layout{5, 2, 16, nans::negative_zero};
constexpr layout f16_layout{5, 10, 15, nans::ieee};
constexpr layout bf16_layout{8, 7, 127, nans::ieee};

// The value `bits` encode: (-1)^s * 2^(e - bias) * 1.m, or 2^(1 - bias) * 0.m for e = 0.
double reference_value(std::uint32_t bits, layout format) {
  const int m = format.mantissa_bits;
  const int e = format.exponent_bits;
  const bool negative = ((bits >> (e + m)) & 1) != 0;
  const std::uint32_t exponent = (bits >> m) & ((1u << e) - 1);
  const std::uint32_t mantissa = bits & ((1u << m) - 1);
  const std::uint32_t all_ones = (1u << e) - 1;
  double magnitude;
  if (format.nan_rule == nans::negative_zero && bits == (1u << (e + m))) return quiet_nan;
  if (format.nan_rule == nans::all_ones && exponent == all_ones && mantissa == (1u << m) - 1)
    return negative ? -quiet_nan : quiet_nan;
  if (format.nan_rule == nans::ieee && exponent == all_ones) {
    if (mantissa != 0) return negative ? -quiet_nan : quiet_nan;
    magnitude = inf;
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), 1 - format.bias - m);
  } else {
    magnitude = std::ldexp(static_cast<double>((1u << m) + mantissa), static_cast<int>(exponent) - format.bias - m);
  }
  return negative ? -magnitude : magnitude;
}

// Same value, -0 told from +0; any NaN matches a NaN of the same sign.
bool same(double actual, double expected) {
  if (std::isnan(expected)) return std::isnan(actual) && std::signbit(actual) == std::signbit(expected);
  return bits_of(actual) == bits_of(expected);
}

bool same(float actual, float expected) {
  if (std::isnan(expected)) return std::isnan(actual) && std::signbit(actual) == std::signbit(expected);
  return bits_of(actual) == bits_of(expected);
}

// Collects mismatches of an exhaustive loop, to report a few instead of thousands of assertions.
struct mismatches {
  std::vector<std::string> items;
  void add(std::string what) { items.push_back(std::move(what)); }
  std::string first() const {
    std::string text;
    for (std::size_t i = 0; i < items.size() && i < 8; ++i) text += items[i] + "\n";
    return text;
  }
};

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

// All 256 encodings widen to the reference value, and narrow back to themselves.
template <class T>
void check_float8_table(layout format) {
  mismatches wrong;
  for (unsigned bits = 0; bits < 256; ++bits) {
    const T x = T::from_bits(static_cast<std::uint8_t>(bits));
    const double expected = reference_value(bits, format);
    if (!same(x.to_double(), expected)) wrong.add(hex(bits) + " to_double");
    if (!same(x.to_float(), static_cast<float>(expected))) wrong.add(hex(bits) + " to_float");
    if (T::from_double(x.to_double()) != x) wrong.add(hex(bits) + " from_double round trip");
    if (T::from_float(x.to_float()) != x) wrong.add(hex(bits) + " from_float round trip");
  }
  INFO(wrong.first());
  CHECK(wrong.items.empty());
}

// Between every two neighbouring positive finite encodings a and a + 1: the midpoint goes to the
// one with an even encoding, and the doubles either side of it to the nearer one; negated values
// give the negated encodings, where zero is +0 in formats without -0.
template <class T>
void check_neighbours(std::uint32_t largest_finite, bool has_negative_zero, int sign_shift) {
  mismatches wrong;
  const std::uint32_t sign = 1u << sign_shift;
  auto negate = [&](std::uint32_t bits) { return bits == 0 && !has_negative_zero ? 0u : bits | sign; };
  for (std::uint32_t a = 0; a < largest_finite; ++a) {
    const std::uint32_t b = a + 1;
    const double low = T::from_bits(static_cast<decltype(T::bits)>(a)).to_double();
    const double high = T::from_bits(static_cast<decltype(T::bits)>(b)).to_double();
    const double middle = (low + high) / 2;  // exact: one more bit than the format has
    const std::uint32_t tie = a % 2 == 0 ? a : b;
    const struct {
      double value;
      std::uint32_t expected;
    } cases[] = {{middle, tie}, {std::nextafter(middle, inf), b}, {std::nextafter(middle, 0.0), a}};
    for (const auto& c : cases) {
      if (T::from_double(c.value).bits != c.expected) wrong.add(hex(a) + " from_double(" + hex(bits_of(c.value)) + ")");
      if (T::from_double(-c.value).bits != negate(c.expected))
        wrong.add(hex(a) + " from_double(-" + hex(bits_of(c.value)) + ")");
    }
    const float middle_float = static_cast<float>(middle);
    if (static_cast<double>(middle_float) == middle && T::from_float(middle_float).bits != tie)
      wrong.add(hex(a) + " from_float(midpoint)");
  }
  INFO(wrong.first());
  CHECK(wrong.items.empty());
}

template <class T>
std::vector<T> from_le_bytes(const std::vector<std::byte>& bytes) {
  std::vector<T> values(bytes.size() / sizeof(T));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_same_v<T, double>) {
      values[i] = double_from_bits(st::detail::load_le<std::uint64_t>(bytes.data() + i * 8));
    } else if constexpr (std::is_same_v<T, float>) {
      values[i] = float_from_bits(st::detail::load_le<std::uint32_t>(bytes.data() + i * 4));
    } else {
      values[i] = st::detail::load_le<T>(bytes.data() + i * sizeof(T));
    }
  }
  return values;
}

// Converts `source` of `from` into a fresh buffer of the same element count of `to`.
st::result<std::vector<std::byte>> convert_bytes(const std::vector<std::byte>& source, st::dtype from, st::dtype to) {
  std::vector<std::byte> destination(source.size() / (st::dtype_bits(from) / 8) * (st::dtype_bits(to) / 8));
  auto converted = st::try_convert(source, from, destination, to);
  if (!converted) return converted.error();
  return destination;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Little-endian loads and stores
// ---------------------------------------------------------------------------------------------

TEST_CASE("little-endian loads and stores work at any alignment", "[convert]") {
  const std::byte bytes[] = {std::byte{0xff}, std::byte{0x01}, std::byte{0x02}, std::byte{0x03}, std::byte{0x04},
                             std::byte{0x05}, std::byte{0x06}, std::byte{0x07}, std::byte{0x08}};
  CHECK(st::detail::load_le<std::uint16_t>(bytes + 1) == 0x0201);
  CHECK(st::detail::load_le<std::uint32_t>(bytes + 1) == 0x04030201u);
  CHECK(st::detail::load_le<std::uint64_t>(bytes + 1) == 0x0807060504030201ull);
  CHECK(st::detail::load_le<std::int8_t>(bytes) == -1);
  CHECK(st::detail::load_le<std::int16_t>(bytes) == 0x01ff);

  std::byte out[9] = {};
  st::detail::store_le<std::uint32_t>(out + 1, 0x0a0b0c0du);
  CHECK(out[1] == std::byte{0x0d});
  CHECK(out[4] == std::byte{0x0a});
  st::detail::store_le<std::int16_t>(out + 5, -2);
  CHECK(out[5] == std::byte{0xfe});
  CHECK(out[6] == std::byte{0xff});

  static_assert(st::detail::byte_swap(std::uint64_t{0x0102030405060708}) == 0x0807060504030201ull);
  static_assert(st::detail::byte_swap(std::uint16_t{0x1234}) == 0x3412);
  static_assert(st::detail::byte_swap(std::uint8_t{0x12}) == 0x12);
  static_assert(st::detail::byte_swap(std::int32_t{-2}) == static_cast<std::int32_t>(0xfeffffffu));
}

// ---------------------------------------------------------------------------------------------
// Number types
// ---------------------------------------------------------------------------------------------

TEST_CASE("number types are trivially copyable raw bits that compare by bits", "[convert]") {
  static_assert(std::is_trivially_copyable_v<st::bfloat16> && sizeof(st::bfloat16) == 2);
  static_assert(std::is_trivially_copyable_v<st::float16> && sizeof(st::float16) == 2);
  static_assert(std::is_trivially_copyable_v<st::float8_e5m2> && sizeof(st::float8_e5m2) == 1);
  static_assert(std::is_trivially_copyable_v<st::float8_e4m3> && sizeof(st::float8_e4m3) == 1);
  static_assert(std::is_trivially_copyable_v<st::float8_e8m0> && sizeof(st::float8_e8m0) == 1);
  static_assert(std::is_trivially_copyable_v<st::float8_e4m3fnuz> && sizeof(st::float8_e4m3fnuz) == 1);
  static_assert(std::is_trivially_copyable_v<st::float8_e5m2fnuz> && sizeof(st::float8_e5m2fnuz) == 1);
  static_assert(st::float16::from_bits(0x3c00).bits == 0x3c00);
  static_assert(st::float8_e4m3::from_bits(0x7e).bits == 0x7e);
  static_assert(st::float8_e4m3::from_bits(0x7e) == st::float8_e4m3::from_bits(0x7e));
  CHECK(st::float16::from_bits(0x0000) != st::float16::from_bits(0x8000));  // +0 and -0
  CHECK(st::float16::from_bits(0x7e00) == st::float16::from_bits(0x7e00));  // a NaN equals itself
}

TEST_CASE("F8 formats: all 256 encodings widen exactly and round-trip", "[convert]") {
  SECTION("E5M2") { check_float8_table<st::float8_e5m2>(e5m2_layout); }
  SECTION("E4M3") { check_float8_table<st::float8_e4m3>(e4m3_layout); }
  SECTION("E4M3FNUZ") { check_float8_table<st::float8_e4m3fnuz>(e4m3fnuz_layout); }
  SECTION("E5M2FNUZ") { check_float8_table<st::float8_e5m2fnuz>(e5m2fnuz_layout); }
  SECTION("E8M0") {
    mismatches wrong;
    for (unsigned bits = 0; bits < 256; ++bits) {
      const auto x = st::float8_e8m0::from_bits(static_cast<std::uint8_t>(bits));
      const double expected = bits == 0xff ? quiet_nan : std::ldexp(1.0, static_cast<int>(bits) - 127);
      if (!same(x.to_double(), expected)) wrong.add(hex(bits) + " to_double");
      if (!same(x.to_float(), static_cast<float>(expected))) wrong.add(hex(bits) + " to_float");
      if (st::float8_e8m0::from_double(x.to_double()) != x) wrong.add(hex(bits) + " from_double round trip");
      if (st::float8_e8m0::from_float(x.to_float()) != x) wrong.add(hex(bits) + " from_float round trip");
    }
    INFO(wrong.first());
    CHECK(wrong.items.empty());
  }
}

TEST_CASE("F8 formats: landmark encodings", "[convert]") {
  CHECK(st::float8_e4m3::from_bits(0x7e).to_double() == 448.0);
  CHECK(st::float8_e4m3::from_bits(0xfe).to_double() == -448.0);
  CHECK(std::isnan(st::float8_e4m3::from_bits(0x7f).to_double()));
  CHECK(std::signbit(st::float8_e4m3::from_bits(0xff).to_double()));
  CHECK(st::float8_e4m3::from_bits(0x78).to_double() == 256.0);  // exponent all ones is finite
  CHECK(st::float8_e4m3::from_bits(0x08).to_double() == std::ldexp(1.0, -6));
  CHECK(st::float8_e4m3::from_bits(0x01).to_double() == std::ldexp(1.0, -9));

  CHECK(st::float8_e5m2::from_bits(0x7b).to_double() == 57344.0);
  CHECK(st::float8_e5m2::from_bits(0x7c).to_double() == inf);
  CHECK(st::float8_e5m2::from_bits(0xfc).to_double() == -inf);
  CHECK(std::isnan(st::float8_e5m2::from_bits(0x7d).to_double()));
  CHECK(st::float8_e5m2::from_bits(0x01).to_double() == std::ldexp(1.0, -16));

  CHECK(st::float8_e4m3fnuz::from_bits(0x7f).to_double() == 240.0);
  CHECK(st::float8_e4m3fnuz::from_bits(0xff).to_double() == -240.0);
  CHECK(std::isnan(st::float8_e4m3fnuz::from_bits(0x80).to_double()));
  CHECK(st::float8_e4m3fnuz::from_bits(0x01).to_double() == std::ldexp(1.0, -10));
  CHECK(st::float8_e4m3fnuz::from_bits(0x40).to_double() == 1.0);

  CHECK(st::float8_e5m2fnuz::from_bits(0x7f).to_double() == 57344.0);
  CHECK(std::isnan(st::float8_e5m2fnuz::from_bits(0x80).to_double()));
  CHECK(st::float8_e5m2fnuz::from_bits(0x01).to_double() == std::ldexp(1.0, -17));
  CHECK(st::float8_e5m2fnuz::from_bits(0x40).to_double() == 1.0);

  CHECK(st::float8_e8m0::from_bits(0x7f).to_double() == 1.0);
  CHECK(st::float8_e8m0::from_bits(0x00).to_double() == std::ldexp(1.0, -127));
  CHECK(st::float8_e8m0::from_bits(0xfe).to_double() == std::ldexp(1.0, 127));
  CHECK(st::float8_e8m0::from_bits(0x00).to_float() == std::ldexp(1.0f, -127));  // a float subnormal
}

TEST_CASE("F16 and BF16: all 65,536 encodings widen exactly and round-trip through float and double", "[convert]") {
  mismatches wrong;
  for (std::uint32_t bits = 0; bits < 65536; ++bits) {
    const auto raw = static_cast<std::uint16_t>(bits);
    const auto half = st::float16::from_bits(raw);
    const double half_expected = reference_value(bits, f16_layout);
    if (!same(half.to_double(), half_expected)) wrong.add("F16 " + hex(bits) + " to_double");
    if (!same(half.to_float(), static_cast<float>(half_expected))) wrong.add("F16 " + hex(bits) + " to_float");
    if (st::float16::from_float(half.to_float()) != half) wrong.add("F16 " + hex(bits) + " through float");
    if (st::float16::from_double(half.to_double()) != half) wrong.add("F16 " + hex(bits) + " through double");

    const auto brain = st::bfloat16::from_bits(raw);
    const double brain_expected = reference_value(bits, bf16_layout);
    if (!same(brain.to_double(), brain_expected)) wrong.add("BF16 " + hex(bits) + " to_double");
    if (!same(brain.to_float(), static_cast<float>(brain_expected))) wrong.add("BF16 " + hex(bits) + " to_float");
    if (st::bfloat16::from_float(brain.to_float()) != brain) wrong.add("BF16 " + hex(bits) + " through float");
    if (st::bfloat16::from_double(brain.to_double()) != brain) wrong.add("BF16 " + hex(bits) + " through double");
  }
  INFO(wrong.first());
  CHECK(wrong.items.empty());
}

TEST_CASE("NaN payloads survive widening, without quieting", "[convert]") {
  // F16 0x7d01 is a signaling NaN with payload 0x101: the payload lands at the top of the fraction.
  CHECK(bits_of(st::float16::from_bits(0x7d01).to_double()) == 0x7ff4040000000000ull);
  CHECK(bits_of(st::float16::from_bits(0xfd01).to_float()) == 0xffa02000u);
  CHECK(bits_of(st::bfloat16::from_bits(0x7f81).to_float()) == 0x7f810000u);
  CHECK(bits_of(st::float8_e5m2::from_bits(0xfd).to_double()) == 0xfff4000000000000ull);
}

TEST_CASE("narrowing rounds every midpoint to even and every other value to nearest", "[convert]") {
  SECTION("F16") { check_neighbours<st::float16>(0x7bff, true, 15); }
  SECTION("BF16") { check_neighbours<st::bfloat16>(0x7f7f, true, 15); }
  SECTION("E5M2") { check_neighbours<st::float8_e5m2>(0x7b, true, 7); }
  SECTION("E4M3") { check_neighbours<st::float8_e4m3>(0x7e, true, 7); }
  SECTION("E4M3FNUZ") { check_neighbours<st::float8_e4m3fnuz>(0x7f, false, 7); }
  SECTION("E5M2FNUZ") { check_neighbours<st::float8_e5m2fnuz>(0x7f, false, 7); }
}

TEST_CASE("F16 narrowing: ties, overflow, subnormals, NaN", "[convert]") {
  auto f16 = [](double value) { return st::float16::from_double(value).bits; };
  CHECK(f16(1.0 + std::ldexp(1.0, -11)) == 0x3c00);                             // tie: down to even 1.0
  CHECK(f16(1.0 + 3 * std::ldexp(1.0, -11)) == 0x3c02);                         // tie: up to even 1 + 2^-9
  CHECK(f16(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)) == 0x3c01);      // just above
  CHECK(f16(1.0 + 3 * std::ldexp(1.0, -11) - std::ldexp(1.0, -40)) == 0x3c01);  // just below
  // Just above a midpoint by less than a float can hold: through a float it would become the tie.
  const double above = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -30);
  CHECK(f16(above) == 0x3c01);
  CHECK(st::float16::from_float(static_cast<float>(above)).bits == 0x3c00);

  CHECK(f16(65504.0) == 0x7bff);
  CHECK(f16(65519.99) == 0x7bff);
  CHECK(f16(65520.0) == 0x7c00);  // the midpoint to 65536 rounds to even, which overflows
  CHECK(f16(-65520.0) == 0xfc00);
  CHECK(f16(1e300) == 0x7c00);
  CHECK(f16(inf) == 0x7c00);
  CHECK(f16(-inf) == 0xfc00);

  CHECK(f16(std::ldexp(1.0, -24)) == 0x0001);
  CHECK(f16(std::ldexp(1.0, -25)) == 0x0000);  // tie: to even zero
  CHECK(f16(std::ldexp(1.0, -25) + std::ldexp(1.0, -60)) == 0x0001);
  CHECK(f16(3 * std::ldexp(1.0, -25)) == 0x0002);                     // tie: to even 2 * 2^-24
  CHECK(f16(std::ldexp(1.0, -14) - std::ldexp(1.0, -25)) == 0x0400);  // tie: up to the smallest normal
  CHECK(f16(-std::ldexp(1.0, -25)) == 0x8000);                        // underflow keeps the sign
  CHECK(f16(-1e-300) == 0x8000);
  CHECK(f16(double_from_bits(1)) == 0x0000);  // double subnormal
  CHECK(f16(-double_from_bits(1)) == 0x8000);
  CHECK(f16(-0.0) == 0x8000);

  CHECK(f16(quiet_nan) == 0x7e00);
  CHECK(f16(-quiet_nan) == 0xfe00);
  CHECK(f16(double_from_bits(0x7ff4000000000000ull)) == 0x7d00);  // signaling payload kept
  CHECK(f16(double_from_bits(0xfff0000000000001ull)) == 0xfe00);  // payload too low: quiet bit, sign kept
}

TEST_CASE("BF16 narrowing: ties, overflow, subnormals, NaN", "[convert]") {
  auto bf16 = [](double value) { return st::bfloat16::from_double(value).bits; };
  CHECK(bf16(1.0 + std::ldexp(1.0, -8)) == 0x3f80);
  CHECK(bf16(1.0 + 3 * std::ldexp(1.0, -8)) == 0x3f82);
  const double above = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  CHECK(bf16(above) == 0x3f81);
  CHECK(st::bfloat16::from_float(static_cast<float>(above)).bits == 0x3f80);

  CHECK(bf16(std::ldexp(2.0 - std::ldexp(1.0, -7), 127)) == 0x7f7f);
  CHECK(bf16(std::ldexp(2.0 - std::ldexp(1.0, -8), 127)) == 0x7f80);  // midpoint to 2^128
  CHECK(bf16(-std::ldexp(2.0 - std::ldexp(1.0, -8), 127)) == 0xff80);
  CHECK(st::bfloat16::from_float(std::numeric_limits<float>::max()).bits == 0x7f80);
  CHECK(bf16(1e300) == 0x7f80);

  CHECK(bf16(std::ldexp(1.0, -133)) == 0x0001);
  CHECK(bf16(std::ldexp(1.0, -134)) == 0x0000);
  CHECK(bf16(3 * std::ldexp(1.0, -134)) == 0x0002);
  CHECK(bf16(-std::ldexp(1.0, -134)) == 0x8000);

  CHECK(st::bfloat16::from_float(float_from_bits(0x7fc00001u)).bits == 0x7fc0);
  CHECK(st::bfloat16::from_float(float_from_bits(0x7f800001u)).bits == 0x7fc0);  // would read as infinity
  CHECK(st::bfloat16::from_float(float_from_bits(0xff810000u)).bits == 0xff81);  // signaling, kept
}

TEST_CASE("F8 narrowing saturates; infinity stays only in E5M2; FNUZ has no -0", "[convert]") {
  auto e4m3 = [](double value) { return st::float8_e4m3::from_double(value).bits; };
  CHECK(e4m3(448.0) == 0x7e);
  CHECK(e4m3(464.0) == 0x7e);  // tie between 448 and 480 (the NaN slot): to even 448
  CHECK(e4m3(465.0) == 0x7e);
  CHECK(e4m3(1e10) == 0x7e);
  CHECK(e4m3(-1e10) == 0xfe);
  CHECK(e4m3(inf) == 0x7e);
  CHECK(e4m3(-inf) == 0xfe);
  CHECK(e4m3(quiet_nan) == 0x7f);
  CHECK(e4m3(-quiet_nan) == 0xff);
  CHECK(e4m3(-0.0) == 0x80);
  CHECK(e4m3(1.0 + std::ldexp(1.0, -4)) == 0x38);
  CHECK(e4m3(1.0 + 3 * std::ldexp(1.0, -4)) == 0x3a);
  CHECK(e4m3(1.0 + std::ldexp(1.0, -4) + std::ldexp(1.0, -40)) == 0x39);
  CHECK(e4m3(std::ldexp(1.0, -10)) == 0x00);
  CHECK(e4m3(-std::ldexp(1.0, -10)) == 0x80);
  CHECK(e4m3(std::ldexp(1.0, -10) + std::ldexp(1.0, -40)) == 0x01);

  auto e5m2 = [](double value) { return st::float8_e5m2::from_double(value).bits; };
  CHECK(e5m2(57344.0) == 0x7b);
  CHECK(e5m2(61440.0) == 0x7b);  // the midpoint to 65536 rounds to even, which saturates
  CHECK(e5m2(1e10) == 0x7b);
  CHECK(e5m2(-1e10) == 0xfb);
  CHECK(e5m2(inf) == 0x7c);
  CHECK(e5m2(-inf) == 0xfc);
  CHECK(e5m2(quiet_nan) == 0x7e);
  CHECK(e5m2(-quiet_nan) == 0xfe);
  CHECK(e5m2(double_from_bits(0x7ff4000000000000ull)) == 0x7d);
  CHECK(e5m2(-0.0) == 0x80);
  CHECK(e5m2(std::ldexp(1.0, -17)) == 0x00);
  CHECK(e5m2(3 * std::ldexp(1.0, -17)) == 0x02);

  auto e4m3fnuz = [](double value) { return st::float8_e4m3fnuz::from_double(value).bits; };
  CHECK(e4m3fnuz(240.0) == 0x7f);
  CHECK(e4m3fnuz(248.0) == 0x7f);
  CHECK(e4m3fnuz(1e10) == 0x7f);
  CHECK(e4m3fnuz(-1e10) == 0xff);
  CHECK(e4m3fnuz(inf) == 0x7f);
  CHECK(e4m3fnuz(-inf) == 0xff);
  CHECK(e4m3fnuz(quiet_nan) == 0x80);
  CHECK(e4m3fnuz(-quiet_nan) == 0x80);
  CHECK(e4m3fnuz(-0.0) == 0x00);
  CHECK(e4m3fnuz(-std::ldexp(1.0, -11)) == 0x00);  // a tie down to zero: +0
  CHECK(e4m3fnuz(-std::ldexp(1.0, -12)) == 0x00);
  CHECK(e4m3fnuz(-std::ldexp(1.0, -10)) == 0x81);
  CHECK(e4m3fnuz(std::ldexp(1.0, -7)) == 0x08);

  auto e5m2fnuz = [](double value) { return st::float8_e5m2fnuz::from_double(value).bits; };
  CHECK(e5m2fnuz(57344.0) == 0x7f);
  CHECK(e5m2fnuz(61440.0) == 0x7f);
  CHECK(e5m2fnuz(1e10) == 0x7f);
  CHECK(e5m2fnuz(inf) == 0x7f);
  CHECK(e5m2fnuz(-inf) == 0xff);
  CHECK(e5m2fnuz(quiet_nan) == 0x80);
  CHECK(e5m2fnuz(-0.0) == 0x00);
  CHECK(e5m2fnuz(-std::ldexp(1.0, -19)) == 0x00);
  CHECK(e5m2fnuz(std::ldexp(1.0, -17)) == 0x01);

  // from_float goes the same way.
  CHECK(st::float8_e4m3::from_float(1e30f).bits == 0x7e);
  CHECK(st::float8_e5m2::from_float(std::numeric_limits<float>::infinity()).bits == 0x7c);
  CHECK(st::float8_e4m3fnuz::from_float(-0.0f).bits == 0x00);
}

TEST_CASE("E8M0 narrowing: nearest power of two, ties up, saturating, NaN for negatives", "[convert]") {
  auto e8m0 = [](double value) { return st::float8_e8m0::from_double(value).bits; };
  CHECK(e8m0(1.0) == 0x7f);
  CHECK(e8m0(1.4999999) == 0x7f);
  CHECK(e8m0(1.5) == 0x80);   // tie between 1 and 2: up
  CHECK(e8m0(3.0) == 0x81);   // tie between 2 and 4: up
  CHECK(e8m0(0.75) == 0x7f);  // tie between 0.5 and 1: up
  CHECK(e8m0(1.9) == 0x80);
  CHECK(e8m0(std::ldexp(1.0, 127)) == 0xfe);
  CHECK(e8m0(std::ldexp(1.5, 127)) == 0xfe);  // would be 2^128: saturates
  CHECK(e8m0(1e300) == 0xfe);
  CHECK(e8m0(inf) == 0xfe);
  CHECK(e8m0(0.0) == 0x00);
  CHECK(e8m0(-0.0) == 0x00);
  CHECK(e8m0(std::ldexp(1.0, -127)) == 0x00);
  CHECK(e8m0(std::ldexp(1.0, -126)) == 0x01);
  CHECK(e8m0(std::ldexp(1.5, -127)) == 0x01);
  CHECK(e8m0(std::ldexp(1.0, -140)) == 0x00);
  CHECK(e8m0(1e-300) == 0x00);
  CHECK(e8m0(double_from_bits(1)) == 0x00);
  CHECK(e8m0(-1.0) == 0xff);
  CHECK(e8m0(-1e-300) == 0xff);
  CHECK(e8m0(-inf) == 0xff);
  CHECK(e8m0(quiet_nan) == 0xff);
  CHECK(st::float8_e8m0::from_float(std::ldexp(1.0f, -127)).bits == 0x00);
  CHECK(st::float8_e8m0::from_float(6.0f).bits == 0x82);  // tie between 4 and 8: up
}

// ---------------------------------------------------------------------------------------------
// convert()
// ---------------------------------------------------------------------------------------------

TEST_CASE("convert refuses mismatched sizes and C64 with anything else", "[convert]") {
  std::vector<std::byte> six(6), eight(8), five(5);
  auto mismatch = st::try_convert(six, st::dtype::F16, eight, st::dtype::F32);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error().kind() == st::error_kind::invalid_tensor_view);
  CHECK(mismatch.error().message() ==
        "source has 6 bytes (3 F16 elements) but destination has 8 bytes (2 F32 elements): they must hold the "
        "same number of whole elements");

  auto partial = st::try_convert(five, st::dtype::F16, six, st::dtype::F16);
  REQUIRE_FALSE(partial);
  CHECK(partial.error().message().find("5 bytes (not a whole number of 16-bit F16 elements)") != std::string::npos);
  // Sub-byte dtypes count elements in bits: 6 bytes are 12 F4 or 8 F6 elements.
  auto f6 = st::try_convert(six, st::dtype::F6_E3M2, six, st::dtype::U8);
  REQUIRE_FALSE(f6);
  CHECK(f6.error().message() ==
        "source has 6 bytes (8 F6_E3M2 elements) but destination has 6 bytes (6 U8 elements): "
        "they must hold the same number of whole elements");
  CHECK(
      st::try_convert(five, st::dtype::F6_E2M3, six, st::dtype::U8).error().message() ==
      "source has 5 bytes (not a whole number of 6-bit F6_E2M3 elements) but destination has 6 bytes (6 U8 elements): "
      "they must hold the same number of whole elements");

  auto c64 = test::le_bytes<float>({1.5f, -2.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f});
  std::vector<std::byte> copy(c64.size());
  REQUIRE(st::try_convert(c64, st::dtype::C64, copy, st::dtype::C64));
  CHECK(copy == c64);
  auto to_f64 = st::try_convert(c64, st::dtype::C64, copy, st::dtype::F64);
  REQUIRE_FALSE(to_f64);
  CHECK(to_f64.error().message() == "C64 converts only to C64, not C64 to F64");
  CHECK_FALSE(st::try_convert(c64, st::dtype::F64, copy, st::dtype::C64));
  CHECK_FALSE(st::try_convert(c64, st::dtype::I32, six, st::dtype::C64));

  std::vector<std::byte> none;
  CHECK(st::try_convert(none, st::dtype::F16, none, st::dtype::I8));
}

TEST_CASE("convert writes the file's little-endian layout", "[convert]") {
  const std::vector<std::byte> one_f32 = {std::byte{0x00}, std::byte{0x00}, std::byte{0x80}, std::byte{0x3f}};
  auto f64 = convert_bytes(one_f32, st::dtype::F32, st::dtype::F64);
  REQUIRE(f64);
  const std::vector<std::byte> one_f64 = {std::byte{0}, std::byte{0}, std::byte{0},    std::byte{0},
                                          std::byte{0}, std::byte{0}, std::byte{0xf0}, std::byte{0x3f}};
  CHECK(*f64 == one_f64);
  auto i16 = convert_bytes(one_f32, st::dtype::F32, st::dtype::I16);
  REQUIRE(i16);
  CHECK(*i16 == std::vector<std::byte>{std::byte{1}, std::byte{0}});
}

TEST_CASE("convert to the same dtype copies the bytes unchanged", "[convert]") {
  auto f32 = test::le_bytes<std::uint32_t>({0x7f800001u, 0x3f800000u, 0x80000000u});
  std::vector<std::byte> copy(f32.size());
  REQUIRE(st::try_convert(f32, st::dtype::F32, copy, st::dtype::F32));
  CHECK(copy == f32);
  const std::vector<std::byte> flags = {std::byte{0}, std::byte{2}, std::byte{255}};
  auto same_flags = convert_bytes(flags, st::dtype::BOOL, st::dtype::BOOL);
  REQUIRE(same_flags);
  CHECK(*same_flags == flags);
}

TEST_CASE("float to integer: whole numbers in range only, checked at the exact limits", "[convert]") {
  auto f64_to = [](std::initializer_list<double> values, st::dtype to) {
    return convert_bytes(test::le_bytes<double>(values), st::dtype::F64, to);
  };
  auto i8 = f64_to({127.0, -128.0, -0.0, 3.0}, st::dtype::I8);
  REQUIRE(i8);
  CHECK(from_le_bytes<std::int8_t>(*i8) == std::vector<std::int8_t>{127, -128, 0, 3});

  auto too_big = f64_to({1.0, 128.0}, st::dtype::I8);
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().kind() == st::error_kind::invalid_conversion);
  CHECK(too_big.error().message() == "element 1 (128) of F64 has no I8 value: it is outside -128 to 127");
  CHECK_FALSE(f64_to({-129.0}, st::dtype::I8));

  auto half = f64_to({-0.5}, st::dtype::I8);
  REQUIRE_FALSE(half);
  CHECK(half.error().message() == "element 0 (-0.5) of F64 has no I8 value: it is not a whole number");
  CHECK_FALSE(f64_to({0.5}, st::dtype::U8));
  CHECK_FALSE(f64_to({inf}, st::dtype::I64));
  CHECK_FALSE(f64_to({-inf}, st::dtype::I64));
  auto not_a_number = f64_to({0.0, 0.0, quiet_nan}, st::dtype::I32);
  REQUIRE_FALSE(not_a_number);
  CHECK(not_a_number.error().message().find("element 2 (") == 0);
  CHECK(not_a_number.error().message().find("NaN is not an integer") != std::string::npos);

  const double two_63 = std::ldexp(1.0, 63);
  auto i64 = f64_to({-two_63, std::nextafter(two_63, 0.0)}, st::dtype::I64);
  REQUIRE(i64);
  CHECK(from_le_bytes<std::int64_t>(*i64) ==
        std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 9223372036854774784});
  auto i64_over = f64_to({two_63}, st::dtype::I64);
  REQUIRE_FALSE(i64_over);
  CHECK(i64_over.error().message() ==
        "element 0 (9.223372036854776e+18) of F64 has no I64 value: it is outside -9223372036854775808 to "
        "9223372036854775807");

  const double two_64 = std::ldexp(1.0, 64);
  auto u64 = f64_to({std::nextafter(two_64, 0.0), -0.0}, st::dtype::U64);
  REQUIRE(u64);
  CHECK(from_le_bytes<std::uint64_t>(*u64) == std::vector<std::uint64_t>{18446744073709549568ull, 0});
  CHECK_FALSE(f64_to({two_64}, st::dtype::U64));
  CHECK_FALSE(f64_to({-1.0}, st::dtype::U64));

  auto u16 = convert_bytes(test::le_bytes<float>({65535.0f}), st::dtype::F32, st::dtype::U16);
  REQUIRE(u16);
  CHECK(from_le_bytes<std::uint16_t>(*u16) == std::vector<std::uint16_t>{65535});
  CHECK_FALSE(convert_bytes(test::le_bytes<float>({65536.0f}), st::dtype::F32, st::dtype::U16));
  auto from_f16 = convert_bytes(test::le_bytes<std::uint16_t>({0xd800}), st::dtype::F16, st::dtype::I8);  // -128
  REQUIRE(from_f16);
  CHECK(from_le_bytes<std::int8_t>(*from_f16) == std::vector<std::int8_t>{-128});
}

TEST_CASE("integer to integer: range-checked", "[convert]") {
  auto i32 = test::le_bytes<std::int32_t>({127, -128});
  auto i8 = convert_bytes(i32, st::dtype::I32, st::dtype::I8);
  REQUIRE(i8);
  CHECK(from_le_bytes<std::int8_t>(*i8) == std::vector<std::int8_t>{127, -128});
  CHECK_FALSE(convert_bytes(test::le_bytes<std::int32_t>({128}), st::dtype::I32, st::dtype::I8));
  CHECK_FALSE(convert_bytes(test::le_bytes<std::int32_t>({-129}), st::dtype::I32, st::dtype::I8));

  auto negative = convert_bytes(test::le_bytes<std::int64_t>({5, -1}), st::dtype::I64, st::dtype::U8);
  REQUIRE_FALSE(negative);
  CHECK(negative.error().message() == "element 1 (-1) of I64 has no U8 value: it is outside 0 to 255");
  auto u64_max = convert_bytes(test::le_bytes<std::uint64_t>({std::numeric_limits<std::uint64_t>::max()}),
                               st::dtype::U64, st::dtype::I64);
  REQUIRE_FALSE(u64_max);
  CHECK(u64_max.error().message() ==
        "element 0 (18446744073709551615) of U64 has no I64 value: it is outside -9223372036854775808 to "
        "9223372036854775807");
  CHECK_FALSE(convert_bytes(test::le_bytes<std::uint8_t>({255}), st::dtype::U8, st::dtype::I8));
  CHECK_FALSE(convert_bytes(test::le_bytes<std::int16_t>({-1}), st::dtype::I16, st::dtype::U16));
  CHECK_FALSE(convert_bytes(test::le_bytes<std::int64_t>({std::numeric_limits<std::int64_t>::min()}), st::dtype::I64,
                            st::dtype::I32));

  auto widened = convert_bytes(test::le_bytes<std::uint32_t>({4294967295u}), st::dtype::U32, st::dtype::I64);
  REQUIRE(widened);
  CHECK(from_le_bytes<std::int64_t>(*widened) == std::vector<std::int64_t>{4294967295});
  auto signed_widened = convert_bytes(test::le_bytes<std::int8_t>({-5}), st::dtype::I8, st::dtype::I64);
  REQUIRE(signed_widened);
  CHECK(from_le_bytes<std::int64_t>(*signed_widened) == std::vector<std::int64_t>{-5});
  auto u64 = convert_bytes(test::le_bytes<std::int64_t>({std::numeric_limits<std::int64_t>::max()}), st::dtype::I64,
                           st::dtype::U64);
  REQUIRE(u64);
  CHECK(from_le_bytes<std::uint64_t>(*u64) == std::vector<std::uint64_t>{9223372036854775807ull});
}

TEST_CASE("integer to float: one rounding to nearest even, never two", "[convert]") {
  auto u64_max = convert_bytes(test::le_bytes<std::uint64_t>({std::numeric_limits<std::uint64_t>::max()}),
                               st::dtype::U64, st::dtype::F64);
  REQUIRE(u64_max);
  CHECK(from_le_bytes<double>(*u64_max) == std::vector<double>{std::ldexp(1.0, 64)});

  // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: to even 2^53; 2^53 + 3 goes up to 2^53 + 4.
  auto f64 = convert_bytes(test::le_bytes<std::int64_t>({9007199254740993, -9007199254740995}), st::dtype::I64,
                           st::dtype::F64);
  REQUIRE(f64);
  CHECK(from_le_bytes<double>(*f64) == std::vector<double>{9007199254740992.0, -9007199254740996.0});

  // 2^62 + 2^38 + 1 is just above the F32 midpoint 2^62 + 2^38; rounded to a double first it
  // would become that midpoint and then round to even, 2^62.
  const std::int64_t above_midpoint = (std::int64_t{1} << 62) + (std::int64_t{1} << 38) + 1;
  auto f32 =
      convert_bytes(test::le_bytes<std::int64_t>({above_midpoint, -above_midpoint}), st::dtype::I64, st::dtype::F32);
  REQUIRE(f32);
  const float expected = std::ldexp(1.0f, 62) + std::ldexp(1.0f, 39);
  CHECK(from_le_bytes<float>(*f32) == std::vector<float>{expected, -expected});

  // The same for BF16: the midpoint above 2^62 is 2^62 + 2^54.
  const std::uint64_t bf16_above = (std::uint64_t{1} << 62) + (std::uint64_t{1} << 54) + 1;
  auto bf16 = convert_bytes(test::le_bytes<std::uint64_t>({bf16_above}), st::dtype::U64, st::dtype::BF16);
  REQUIRE(bf16);
  CHECK(from_le_bytes<std::uint16_t>(*bf16) == std::vector<std::uint16_t>{0x5e81});

  auto f16 = convert_bytes(test::le_bytes<std::uint32_t>({65519, 65520, 2049, 2051}), st::dtype::U32, st::dtype::F16);
  REQUIRE(f16);
  CHECK(from_le_bytes<std::uint16_t>(*f16) == std::vector<std::uint16_t>{0x7bff, 0x7c00, 0x6800, 0x6802});

  auto f8 = convert_bytes(test::le_bytes<std::int32_t>({1000, -1000, 3}), st::dtype::I32, st::dtype::F8_E4M3);
  REQUIRE(f8);
  CHECK(from_le_bytes<std::uint8_t>(*f8) == std::vector<std::uint8_t>{0x7e, 0xfe, 0x44});
  auto e8m0 = convert_bytes(test::le_bytes<std::int32_t>({-1, 0, 3}), st::dtype::I32, st::dtype::F8_E8M0);
  REQUIRE(e8m0);
  CHECK(from_le_bytes<std::uint8_t>(*e8m0) == std::vector<std::uint8_t>{0xff, 0x00, 0x81});
}

TEST_CASE("BOOL converts as 0 or 1 and refuses NaN", "[convert]") {
  const std::vector<std::byte> flags = {std::byte{0}, std::byte{1}, std::byte{2}, std::byte{255}};
  auto i32 = convert_bytes(flags, st::dtype::BOOL, st::dtype::I32);
  REQUIRE(i32);
  CHECK(from_le_bytes<std::int32_t>(*i32) == std::vector<std::int32_t>{0, 1, 1, 1});
  auto f32 = convert_bytes(flags, st::dtype::BOOL, st::dtype::F32);
  REQUIRE(f32);
  CHECK(from_le_bytes<float>(*f32) == std::vector<float>{0.0f, 1.0f, 1.0f, 1.0f});

  auto from_f64 =
      convert_bytes(test::le_bytes<double>({0.0, -0.0, 0.5, -3.0, inf, 1e-300}), st::dtype::F64, st::dtype::BOOL);
  REQUIRE(from_f64);
  CHECK(from_le_bytes<std::uint8_t>(*from_f64) == std::vector<std::uint8_t>{0, 0, 1, 1, 1, 1});
  auto from_nan = convert_bytes(test::le_bytes<double>({1.0, quiet_nan}), st::dtype::F64, st::dtype::BOOL);
  REQUIRE_FALSE(from_nan);
  CHECK(from_nan.error().message().find("element 1 (") == 0);
  CHECK(from_nan.error().message().find("NaN is neither true nor false") != std::string::npos);

  auto from_i64 = convert_bytes(test::le_bytes<std::int64_t>({0, 5, -1}), st::dtype::I64, st::dtype::BOOL);
  REQUIRE(from_i64);
  CHECK(from_le_bytes<std::uint8_t>(*from_i64) == std::vector<std::uint8_t>{0, 1, 1});
}

TEST_CASE("float to float through convert matches the number types", "[convert]") {
  const st::dtype floats[] = {st::dtype::F8_E5M2,     st::dtype::F8_E4M3,     st::dtype::F8_E8M0,
                              st::dtype::F8_E4M3FNUZ, st::dtype::F8_E5M2FNUZ, st::dtype::F16,
                              st::dtype::BF16,        st::dtype::F32,         st::dtype::F64};
  // Every F16 value, which covers every F8 value and the edges of the narrower formats.
  std::vector<std::byte> f16(65536 * 2);
  for (std::uint32_t bits = 0; bits < 65536; ++bits)
    st::detail::store_le(f16.data() + 2 * bits, static_cast<std::uint16_t>(bits));
  auto f64 = convert_bytes(f16, st::dtype::F16, st::dtype::F64);
  REQUIRE(f64);
  const std::vector<double> values = from_le_bytes<double>(*f64);
  auto expected_bits = [](st::dtype type, double value) -> std::uint64_t {
    switch (type) {
      case st::dtype::F8_E5M2: return st::float8_e5m2::from_double(value).bits;
      case st::dtype::F8_E4M3: return st::float8_e4m3::from_double(value).bits;
      case st::dtype::F8_E8M0: return st::float8_e8m0::from_double(value).bits;
      case st::dtype::F8_E4M3FNUZ: return st::float8_e4m3fnuz::from_double(value).bits;
      case st::dtype::F8_E5M2FNUZ: return st::float8_e5m2fnuz::from_double(value).bits;
      case st::dtype::F16: return st::float16::from_double(value).bits;
      case st::dtype::BF16: return st::bfloat16::from_double(value).bits;
      case st::dtype::F32: return bits_of(static_cast<float>(value));
      default: return bits_of(value);
    }
  };
  for (st::dtype to : floats) {
    INFO(st::dtype_name(to));
    auto converted = convert_bytes(*f64, st::dtype::F64, to);
    REQUIRE(converted);
    const std::size_t size = st::dtype_bits(to) / 8;
    mismatches wrong;
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (std::isnan(values[i])) continue;  // payloads: checked by the round trips
      const std::byte* at = converted->data() + i * size;
      const std::uint64_t actual = size == 1   ? st::detail::load_le<std::uint8_t>(at)
                                   : size == 2 ? st::detail::load_le<std::uint16_t>(at)
                                   : size == 4 ? st::detail::load_le<std::uint32_t>(at)
                                               : st::detail::load_le<std::uint64_t>(at);
      if (actual != expected_bits(to, values[i])) wrong.add(hex(i));
    }
    INFO(wrong.first());
    CHECK(wrong.items.empty());
  }
}

TEST_CASE("fast paths equal the general path, at any alignment", "[convert]") {
  // Every 16-bit pattern, NaN payloads included, and a tail that does not fill a block.
  const std::size_t count = 65536 + 7;
  std::vector<std::byte> source(count * 2 + 1);
  for (std::size_t i = 0; i < count; ++i)
    st::detail::store_le(source.data() + 1 + 2 * i, static_cast<std::uint16_t>(i * 40503u));
  const st::span<const std::byte> misaligned_source(source.data() + 1, count * 2);
  for (st::dtype from : {st::dtype::F16, st::dtype::BF16}) {
    INFO(st::dtype_name(from));
    std::vector<std::byte> fast(count * 4 + 1);
    REQUIRE(st::try_convert(misaligned_source, from, st::span<std::byte>(fast.data() + 1, count * 4), st::dtype::F32));
    // The general path, through F64: both steps are exact, NaN payloads included.
    std::vector<std::byte> wide(count * 8), general(count * 4);
    REQUIRE(st::try_convert(misaligned_source, from, wide, st::dtype::F64));
    REQUIRE(st::try_convert(wide, st::dtype::F64, general, st::dtype::F32));
    CHECK(std::memcmp(fast.data() + 1, general.data(), general.size()) == 0);
    std::vector<std::byte> aligned(count * 4);
    REQUIRE(st::try_convert(misaligned_source, from, aligned, st::dtype::F32));
    CHECK(aligned == general);
  }
}

TEST_CASE("F32 to BF16 and F16 by bits agrees with the double path on every exponent and every tie", "[convert]") {
  // Every exponent, with mantissas at and around the halfway points of both targets (BF16 keeps 7
  // of float32's 23 mantissa bits, F16 10), and a stride through all 2^32 patterns besides.
  std::vector<std::uint32_t> patterns;
  const std::uint32_t mantissas[] = {0,        1,        0x7fff,   0x8000,   0x8001,   0x18000,  0xfff,    0x1000,
                                     0x1001,   0x3000,   0x2fff,   0x7fffff, 0x7ff000, 0x7fe000, 0x400000, 0x401000,
                                     0x7fefff, 0x7ff001, 0x200000, 0x600000, 0x100000, 0x0c0000, 0x1fff,   0x6000};
  for (std::uint32_t exponent = 0; exponent < 255; ++exponent)
    for (std::uint32_t mantissa : mantissas)
      for (std::uint32_t sign : {0u, 0x80000000u}) patterns.push_back(sign | exponent << 23 | mantissa);
  for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << 32); bits += 65537) {
    if ((bits & 0x7fffffffu) <= 0x7f800000u) patterns.push_back(static_cast<std::uint32_t>(bits));
  }
  patterns.push_back(0x7f800000u);  // infinities
  patterns.push_back(0xff800000u);
  std::vector<std::byte> f32(patterns.size() * 4), f64(patterns.size() * 8);
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    float value;
    std::memcpy(&value, &patterns[i], 4);
    const double wide = value;  // exact
    std::uint64_t wide_bits;
    std::memcpy(&wide_bits, &wide, 8);
    for (int b = 0; b < 4; ++b)
      f32[i * 4 + static_cast<std::size_t>(b)] = static_cast<std::byte>(patterns[i] >> (8 * b));
    for (int b = 0; b < 8; ++b) f64[i * 8 + static_cast<std::size_t>(b)] = static_cast<std::byte>(wide_bits >> (8 * b));
  }
  for (st::dtype target : {st::dtype::BF16, st::dtype::F16}) {
    INFO(st::dtype_name(target));
    std::vector<std::byte> by_bits(patterns.size() * 2), by_double(patterns.size() * 2);
    REQUIRE(st::try_convert(f32, st::dtype::F32, by_bits, target));
    REQUIRE(st::try_convert(f64, st::dtype::F64, by_double, target));
    std::size_t same = 0;
    for (std::size_t i = 0; i < patterns.size(); ++i)
      same += std::memcmp(&by_bits[i * 2], &by_double[i * 2], 2) == 0 ? 1 : 0;
    CHECK(same == patterns.size());
  }
  // Landmarks of F16: the largest finite value, the first that rounds to infinity, the smallest
  // subnormal and half of it (a tie that rounds to zero).
  const float landmarks[] = {65504.0f, 65519.996f, 65520.0f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f};
  const std::uint16_t expected[] = {0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001};
  std::vector<std::byte> little(24), half(12);
  for (std::size_t i = 0; i < 6; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &landmarks[i], 4);
    for (int b = 0; b < 4; ++b) little[i * 4 + static_cast<std::size_t>(b)] = static_cast<std::byte>(bits >> (8 * b));
  }
  REQUIRE(st::try_convert(little, st::dtype::F32, half, st::dtype::F16));
  for (std::size_t i = 0; i < 6; ++i)
    CHECK((static_cast<unsigned>(half[2 * i]) | static_cast<unsigned>(half[2 * i + 1]) << 8) == expected[i]);
}
