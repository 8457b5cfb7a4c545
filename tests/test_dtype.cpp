// The 22 dtypes: names, bit sizes and order.
#include <safetensors/safetensors.hpp>

#include <catch2/catch.hpp>

namespace st = safetensors;

TEST_CASE("every dtype has its official name and bit size, in the official order", "[dtype]") {
  const std::vector<std::pair<std::string_view, std::size_t>> table = {
      {"BOOL", 8},    {"F4", 4},      {"F6_E2M3", 6}, {"F6_E3M2", 6},     {"U8", 8},          {"I8", 8},
      {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},
      {"U16", 16},    {"F16", 16},    {"BF16", 16},   {"I32", 32},        {"U32", 32},        {"F32", 32},
      {"C64", 64},    {"F64", 64},    {"I64", 64},    {"U64", 64}};
  REQUIRE(st::all_dtypes.size() == table.size());
  REQUIRE(st::dtype_count == 22);
  for (std::size_t i = 0; i < table.size(); ++i) {
    st::dtype type = st::all_dtypes[i];
    INFO(table[i].first);
    CHECK(static_cast<std::size_t>(type) == i);
    CHECK(st::dtype_name(type) == table[i].first);
    CHECK(st::dtype_bits(type) == table[i].second);
    CHECK(st::dtype_from_name(table[i].first) == type);
  }
}

TEST_CASE("dtype names are exact and case-sensitive", "[dtype]") {
  CHECK_FALSE(st::dtype_from_name("f32").has_value());
  CHECK_FALSE(st::dtype_from_name("F32 ").has_value());
  CHECK_FALSE(st::dtype_from_name("").has_value());
  CHECK_FALSE(st::dtype_from_name("F128").has_value());
  static_assert(st::dtype_from_name("BF16") == st::dtype::BF16, "usable at compile time");
}

TEST_CASE("dtype_table: every dtype's facts, in one place", "[dtype]") {
  std::size_t total_bits = 0;
  for (const st::dtype_facts& facts : st::dtype_table) {
    CHECK(st::facts_of(facts.type).name == facts.name);
    CHECK(st::dtype_from_name(facts.name) == facts.type);
    total_bits += facts.bits;
  }
  CHECK(total_bits == 8 * 8 + 4 + 6 * 2 + 16 * 4 + 32 * 3 + 64 * 4);
  CHECK(st::facts_of(st::dtype::F6_E2M3).bits == 6);
  CHECK(st::facts_of(st::dtype::F6_E2M3).element_size() == 0);
  CHECK(st::facts_of(st::dtype::F4).element_size() == 0);
  CHECK(st::facts_of(st::dtype::U16).element_size() == 2);
  CHECK(st::facts_of(st::dtype::C64).element_size() == 8);
  CHECK(st::kind_of(st::dtype::BOOL) == st::dtype_kind::boolean);
  CHECK(st::kind_of(st::dtype::U32) == st::dtype_kind::unsigned_integer);
  CHECK(st::kind_of(st::dtype::I8) == st::dtype_kind::signed_integer);
  CHECK(st::kind_of(st::dtype::F8_E8M0) == st::dtype_kind::floating);
  CHECK(st::kind_of(st::dtype::C64) == st::dtype_kind::complex);
  CHECK(st::detail::integer_range_text(st::dtype::I8) == "-128 to 127");
  CHECK(st::detail::integer_range_text(st::dtype::U16) == "0 to 65535");
  CHECK(st::detail::integer_range_text(st::dtype::U64) == "0 to 18446744073709551615");
  CHECK(st::detail::integer_range_text(st::dtype::I64) == "-9223372036854775808 to 9223372036854775807");
  CHECK(st::detail::integer_range_text(st::dtype::F32).empty());
}
