// Error values, results, and the throwing API on top of them.
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>

namespace st = safetensors;

TEST_CASE("every error kind has its official name and is raised by the library", "[errors]") {
  using k = st::error_kind;
  // Each kind: its name, and the error a real call gives. A new kind fails this test until it is
  // listed here, so none can go untested.
  const std::vector<std::byte> one_f32(4);
  auto open_header = [](const std::string& header, const std::string& data = {}) {
    return test::open_header(header, data);
  };
  std::vector<std::byte> seven(7);
  std::vector<std::byte> small(3);
  std::vector<std::byte> nan_bytes(8), one_byte(1);
  st::detail::store_le(nan_bytes.data(), st::detail::bit_cast<std::uint64_t>(std::numeric_limits<double>::quiet_NaN()));
  auto file = st::try_serialize({{{"w", st::dtype::F32, {1}}, one_f32}});
  REQUIRE(file);
  auto reader = st::try_open_buffer(*file);
  REQUIRE(reader);
  const std::vector<std::pair<std::string_view, st::result<void>>> raised = {
      {"HeaderTooSmall", st::try_open_memory(seven.data(), seven.size()).error()},
      {"HeaderTooLarge", open_header(std::string(100000001, ' ')).error()},
      {"InvalidHeaderLength",
       st::try_open_buffer(std::vector<std::byte>{std::byte{100}, {}, {}, {}, {}, {}, {}, {}}).error()},
      {"InvalidHeader", open_header("{\"\xff\": 1}").error()},
      {"InvalidHeaderDeserialization", open_header("[]").error()},
      {"InvalidOffset", open_header(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "xx").error()},
      {"ValidationOverflow",
       open_header(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})").error()},
      {"MisalignedSlice", open_header(R"({"a":{"dtype":"F4","shape":[1],"data_offsets":[0,0]}})").error()},
      {"TensorInvalidInfo", open_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,1]}})", "x").error()},
      {"MetadataIncompleteBuffer",
       open_header(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "xy").error()},
      {"TensorNotFound", reader->try_info("nothing").error()},
      {"InvalidTensorView", reader->try_read_into(reader->info("w"), small)},
      {"InvalidConversion", st::try_convert(nan_bytes, st::dtype::F64, one_byte, st::dtype::I8)},
      {"InvalidArgument", reader->try_slice("w", {st::range(0, 1, 0)}).error()},
      {"InvalidIndex", st::model_index::try_parse("[]").error()},
      {"IoError", st::try_open("/nonexistent/model.safetensors").error()},
  };
  REQUIRE(st::all_error_kinds.size() == st::error_kind_count);
  for (k kind : st::all_error_kinds) {
    INFO(st::error_kind_name(kind));
    auto it = std::find_if(raised.begin(), raised.end(),
                           [&](const auto& entry) { return entry.first == st::error_kind_name(kind); });
    REQUIRE(it != raised.end());
    REQUIRE_FALSE(it->second);
    CHECK(it->second.error().kind() == kind);
    CHECK_FALSE(it->second.error().message().empty());
  }
  CHECK(raised.size() == st::error_kind_count);
}

TEST_CASE("an error has a kind, a message and a one-line form", "[errors]") {
  st::error err(st::error_kind::invalid_offset, "tensor \"b\": data_offsets [4, 12] overlap");
  CHECK(err.kind() == st::error_kind::invalid_offset);
  CHECK(err.message() == "tensor \"b\": data_offsets [4, 12] overlap");
  CHECK(err.to_string() == "InvalidOffset: tensor \"b\": data_offsets [4, 12] overlap");
}

TEST_CASE("result holds a value or an error", "[errors]") {
  st::result<int> good = 42;
  CHECK(good.has_value());
  CHECK(static_cast<bool>(good));
  CHECK(*good == 42);
  CHECK(good.value() == 42);

  st::result<int> bad = st::error(st::error_kind::io_error, "disk on fire");
  CHECK_FALSE(bad.has_value());
  CHECK(bad.error().kind() == st::error_kind::io_error);
  CHECK(bad.error().message() == "disk on fire");

  st::result<void> ok;
  CHECK(ok.has_value());
  st::result<void> failed = st::error(st::error_kind::tensor_not_found, "x");
  CHECK_FALSE(failed);
  CHECK(failed.error().kind() == st::error_kind::tensor_not_found);

  st::result<std::string> moved = std::string("payload");
  std::string taken = std::move(moved).value();
  CHECK(taken == "payload");
}

TEST_CASE("message quoting keeps names on one line", "[errors]") {
  CHECK(st::detail::quote(std::string("a\"b\\c\n\x01\x7f", 8)) == R"("a\"b\\c\u000a\u0001\u007f")");
  CHECK(st::detail::quote(std::string_view("nul\0x", 5)) == R"("nul\u0000x")");
  CHECK(st::detail::quote("\xc3\xa9") == "\"\xc3\xa9\"");
}

#if SAFETENSORS_EXCEPTIONS
TEST_CASE("the throwing API throws safetensors::exception with the kind", "[errors]") {
  st::result<int> bad = st::error(st::error_kind::io_error, "disk on fire");
  try {
    (void)bad.value();
    FAIL("value() of an error did not throw");
  } catch (const st::exception& thrown) {
    CHECK(thrown.kind() == st::error_kind::io_error);
    CHECK(std::string(thrown.what()) == "IoError: disk on fire");
    CHECK(thrown.error().message() == "disk on fire");
  }
  CHECK_THROWS_AS(st::result<void>(st::error(st::error_kind::io_error, "x")).value(), st::exception);

  std::vector<std::byte> bytes = test::file_bytes("{}");
  st::memory_reader reader = st::open_memory(bytes.data(), bytes.size());
  CHECK_THROWS_AS(reader.info("missing"), st::exception);
  CHECK_THROWS_WITH(reader.view("missing"), "TensorNotFound: no tensor named \"missing\"");
  CHECK_THROWS_AS(st::open("/nonexistent/file.safetensors"), st::exception);
  CHECK_THROWS_AS(st::open_buffer(test::file_bytes("[]")), st::exception);
}
#endif
