// Sub-byte floats as numbers: F4 (OCP MX E2M1), F6_E2M3 and F6_E3M2, every encoding against a
// table computed here from the formats' definitions, their packing in bytes both ways,
// narrowing (ties to even, saturation, NaN refused), and slices that keep to byte boundaries.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

namespace st = safetensors;

namespace {

// The value of a code of a sign + exponent + mantissa format with no infinity or NaN, from its
// definition: subnormal m/2^M * 2^(1-bias), normal (1 + m/2^M) * 2^(e-bias).
double definition(unsigned code, int exponent_bits, int mantissa_bits, int bias) {
  const unsigned mantissa = code & ((1u << mantissa_bits) - 1);
  const unsigned exponent = (code >> mantissa_bits) & ((1u << exponent_bits) - 1);
  const bool negative = (code >> (exponent_bits + mantissa_bits)) & 1;
  const double fraction = static_cast<double>(mantissa) / static_cast<double>(1u << mantissa_bits);
  const double magnitude =
      exponent == 0 ? std::ldexp(fraction, 1 - bias) : std::ldexp(1.0 + fraction, static_cast<int>(exponent) - bias);
  return negative ? -magnitude : magnitude;
}

struct format {
  st::dtype type;
  int exponent_bits, mantissa_bits, bias;
  double largest;
};
const format formats[] = {
    {st::dtype::F4, 2, 1, 1, 6.0}, {st::dtype::F6_E2M3, 2, 3, 1, 7.5}, {st::dtype::F6_E3M2, 3, 2, 3, 28.0}};

// Codes packed low first (F4: element 2i in the low nibble; F6: a little-endian bit stream).
std::vector<std::byte> pack_low_first(const std::vector<unsigned>& codes, unsigned bits) {
  std::vector<std::byte> bytes((codes.size() * bits + 7) / 8);
  for (std::size_t i = 0; i < codes.size(); ++i) {
    for (unsigned b = 0; b < bits; ++b) {
      if ((codes[i] >> b) & 1) {
        const std::size_t bit = i * bits + b;
        bytes[bit / 8] |= static_cast<std::byte>(1u << (bit % 8));
      }
    }
  }
  return bytes;
}

std::vector<double> to_doubles(const std::vector<std::byte>& bytes, st::dtype type, std::size_t count,
                               st::packing order = st::packing::low_first) {
  std::vector<std::byte> out(count * 8);
  auto converted = st::try_convert(bytes, type, out, st::dtype::F64, order);
  REQUIRE(converted);
  std::vector<double> values(count);
  for (std::size_t i = 0; i < count; ++i)
    values[i] = st::detail::bit_cast<double>(st::detail::load_le<std::uint64_t>(out.data() + 8 * i));
  return values;
}

std::vector<std::byte> from_doubles(const std::vector<double>& values, st::dtype type,
                                    st::packing order = st::packing::low_first) {
  std::vector<std::byte> in(values.size() * 8);
  for (std::size_t i = 0; i < values.size(); ++i)
    st::detail::store_le(in.data() + 8 * i, st::detail::bit_cast<std::uint64_t>(values[i]));
  std::vector<std::byte> out(values.size() * st::dtype_bits(type) / 8);
  auto converted = st::try_convert(in, st::dtype::F64, out, type, order);
  REQUIRE(converted);
  return out;
}

}  // namespace

TEST_CASE("sub-byte floats: every encoding of F4, F6_E2M3 and F6_E3M2 has its defined value, and back", "[subbyte]") {
  for (const format& f : formats) {
    INFO(st::dtype_name(f.type));
    const unsigned bits = static_cast<unsigned>(st::dtype_bits(f.type));
    std::vector<unsigned> codes;
    for (unsigned code = 0; code < (1u << bits); ++code) codes.push_back(code);
    const std::vector<std::byte> packed = pack_low_first(codes, bits);
    const std::vector<double> values = to_doubles(packed, f.type, codes.size());
    for (unsigned code : codes) {
      INFO("code " << code);
      const double want = definition(code, f.exponent_bits, f.mantissa_bits, f.bias);
      CHECK(st::detail::bit_cast<std::uint64_t>(values[code]) == st::detail::bit_cast<std::uint64_t>(want));
    }
    // Every value narrows back to its own code, -0 included.
    CHECK(from_doubles(values, f.type) == packed);
    CHECK(*std::max_element(values.begin(), values.end()) == f.largest);
  }
  // The table of E2M1 spelled out: codes 0-7 are 0, 0.5, 1, 1.5, 2, 3, 4, 6.
  CHECK(to_doubles(pack_low_first({0, 1, 2, 3, 4, 5, 6, 7, 15, 8}, 4), st::dtype::F4, 10) ==
        std::vector<double>{0, 0.5, 1, 1.5, 2, 3, 4, 6, -6, -0.0});
}

TEST_CASE("sub-byte floats: packing, low nibble first by default and high first on request", "[subbyte]") {
  // 1, 2, 3, -4 in E2M1: codes 2, 4, 5 and 14.
  CHECK(from_doubles({1, 2, 3, -4}, st::dtype::F4) == std::vector<std::byte>{std::byte{0x42}, std::byte{0xe5}});
  CHECK(from_doubles({1, 2, 3, -4}, st::dtype::F4, st::packing::high_first) ==
        std::vector<std::byte>{std::byte{0x24}, std::byte{0x5e}});
  CHECK(to_doubles({std::byte{0x24}, std::byte{0x5e}}, st::dtype::F4, 4, st::packing::high_first) ==
        std::vector<double>{1, 2, 3, -4});
  // 1, 0.125, 7.5, -2 in E2M3: codes 8, 1, 31 and 48, four elements in three bytes. Low first:
  // the little-endian number 8 | 1 << 6 | 31 << 12 | 48 << 18; high first: 8 << 18 | 1 << 12 |
  // 31 << 6 | 48, big-endian.
  const std::uint32_t little = 8u | 1u << 6 | 31u << 12 | 48u << 18;
  const std::uint32_t big = 8u << 18 | 1u << 12 | 31u << 6 | 48u;
  CHECK(from_doubles({1, 0.125, 7.5, -2}, st::dtype::F6_E2M3) ==
        std::vector<std::byte>{std::byte(little & 0xff), std::byte(little >> 8 & 0xff), std::byte(little >> 16)});
  CHECK(from_doubles({1, 0.125, 7.5, -2}, st::dtype::F6_E2M3, st::packing::high_first) ==
        std::vector<std::byte>{std::byte(big >> 16), std::byte(big >> 8 & 0xff), std::byte(big & 0xff)});
  CHECK(to_doubles(from_doubles({1, 0.125, 7.5, -2}, st::dtype::F6_E2M3, st::packing::high_first), st::dtype::F6_E2M3,
                   4, st::packing::high_first) == std::vector<double>{1, 0.125, 7.5, -2});
}

TEST_CASE("sub-byte floats: narrowing rounds to nearest even, saturates, and refuses NaN", "[subbyte]") {
  const double infinity = std::numeric_limits<double>::infinity();
  // E2M1 steps: 0.5 up to 2, 1 up to 4, 2 up to 6.
  CHECK(to_doubles(from_doubles({0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 0.2500001, 2.4999999, 4.0000001}, st::dtype::F4),
                   st::dtype::F4, 10) == std::vector<double>{0, 1, 1, 2, 2, 4, 4, 0.5, 2, 4});
  CHECK(to_doubles(from_doubles({7, 1e30, infinity, -infinity, -7, -0.0, -0.1, 5.0000001}, st::dtype::F4),
                   st::dtype::F4, 8) == std::vector<double>{6, 6, 6, -6, -6, -0.0, -0.0, 6});
  CHECK(std::signbit(to_doubles(from_doubles({-0.1, 0}, st::dtype::F4), st::dtype::F4, 2)[0]));
  CHECK(to_doubles(from_doubles({29, 30, infinity, 0.03125, 0.09375, 0.0625, 26, 27}, st::dtype::F6_E3M2),
                   st::dtype::F6_E3M2, 8) == std::vector<double>{28, 28, 28, 0, 0.125, 0.0625, 24, 28});
  CHECK(to_doubles(from_doubles({7.6, 0.0625, 0.1875, 3.125}, st::dtype::F6_E2M3), st::dtype::F6_E2M3, 4) ==
        std::vector<double>{7.5, 0, 0.25, 3});
  // Integers round once, on the way.
  std::vector<std::byte> integers(4);
  st::detail::store_le<std::int32_t>(integers.data(), 5);
  std::vector<std::byte> nibble(1);
  // One I32 is not two F4 elements.
  REQUIRE_FALSE(st::try_convert(st::span<const std::byte>(integers.data(), 4), st::dtype::I32,
                                st::span<std::byte>(nibble.data(), 1), st::dtype::F4));
  std::vector<std::byte> two_integers(8);
  st::detail::store_le<std::int32_t>(two_integers.data(), 5);
  st::detail::store_le<std::int32_t>(two_integers.data() + 4, -100);
  REQUIRE(st::try_convert(two_integers, st::dtype::I32, nibble, st::dtype::F4));
  CHECK(to_doubles(nibble, st::dtype::F4, 2) == std::vector<double>{4, -6});

  std::vector<std::byte> in(16), out(1);
  st::detail::store_le(in.data(), st::detail::bit_cast<std::uint64_t>(1.0));
  st::detail::store_le(in.data() + 8, st::detail::bit_cast<std::uint64_t>(std::numeric_limits<double>::quiet_NaN()));
  auto nan = st::try_convert(in, st::dtype::F64, out, st::dtype::F4);
  REQUIRE_FALSE(nan);
  CHECK(test::outcome(nan) + ": " + nan.error().message() ==
        "InvalidConversion: element 1 (nan) of F64 has no F4 value: F4 has no NaN");
}

TEST_CASE("sub-byte floats: a reference file's F4 tensors read as numbers, and slices on byte boundaries",
          "[subbyte]") {
  auto reader = st::try_open(std::string(SAFETENSORS_TEST_DATA) + "/reference/valid/dtype_F4.safetensors");
  REQUIRE(reader);
  const st::tensor_info& matrix = reader->info("matrix");  // [4, 6]: 24 elements, 12 bytes
  REQUIRE(matrix.shape.size() == 2);
  const st::tensor_view view = reader->view(matrix);
  std::vector<double> want;
  for (std::byte b : view.bytes) {
    want.push_back(definition(std::to_integer<unsigned>(b) & 15, 2, 1, 1));
    want.push_back(definition(std::to_integer<unsigned>(b) >> 4, 2, 1, 1));
  }
  CHECK(reader->read_as<double>("matrix") == want);

  // Rows are whole bytes (6 elements, 3 bytes); two columns of each row too (1 byte, at an even
  // element); one column is half a byte.
  auto rows = reader->try_slice("matrix", {st::range(1, 3)});
  REQUIRE(rows);
  CHECK(rows->contiguous());
  CHECK(rows->byte_size() == 6);
  std::vector<double> got(12);
  REQUIRE(rows->try_copy_to(st::span<double>(got)));
  CHECK(got == std::vector<double>(want.begin() + 6, want.begin() + 18));
  auto columns = reader->try_slice("matrix", {st::all(), st::range(2, 4)});
  REQUIRE(columns);
  CHECK(columns->run_bytes() == 1);
  std::vector<double> pairs(8);
  REQUIRE(columns->try_copy_to(st::span<double>(pairs)));
  CHECK(pairs == std::vector<double>{want[2], want[3], want[8], want[9], want[14], want[15], want[20], want[21]});
  auto half = reader->try_slice("matrix", {st::all(), st::at(3)});
  REQUIRE_FALSE(half);
  CHECK(test::outcome(half) + ": " + half.error().message() ==
        "MisalignedSlice: " + st::detail::quote(reader->name()) +
            ": slice of tensor \"matrix\": its runs of F4 elements do not start and end on byte boundaries (a run of 1 "
            "elements from element 3)");

  // The same rows through a pread reader's plan: their bytes and no others.
  auto pread = st::try_open_pread(std::string(SAFETENSORS_TEST_DATA) + "/reference/valid/dtype_F4.safetensors");
  REQUIRE(pread);
  auto plan = pread->try_plan(std::vector<st::load_request>{{&pread->info("matrix"), {}, {st::range(1, 3)}}});
  REQUIRE(plan);
  CHECK(plan->bytes_read() == 6);
  std::vector<std::byte> row_bytes(6);
  REQUIRE(pread->try_load_into(std::vector<st::load_request>{{&pread->info("matrix"), row_bytes, {st::range(1, 3)}}}));
  CHECK(row_bytes == std::vector<std::byte>(view.bytes.begin() + 3, view.bytes.begin() + 9));
}
