// Error values, results, and the throwing API on top of them.
#include "test_support.hpp"

#include <catch2/catch.hpp>

namespace st = safetensors;

TEST_CASE("error kinds carry the official variant names", "[errors]") {
  using k = st::error_kind;
  const std::vector<std::pair<k, std::string_view>> names = {
      {k::header_too_small, "HeaderTooSmall"},
      {k::header_too_large, "HeaderTooLarge"},
      {k::invalid_header_length, "InvalidHeaderLength"},
      {k::invalid_header, "InvalidHeader"},
      {k::invalid_header_deserialization, "InvalidHeaderDeserialization"},
      {k::invalid_offset, "InvalidOffset"},
      {k::validation_overflow, "ValidationOverflow"},
      {k::misaligned_slice, "MisalignedSlice"},
      {k::tensor_invalid_info, "TensorInvalidInfo"},
      {k::metadata_incomplete_buffer, "MetadataIncompleteBuffer"},
      {k::tensor_not_found, "TensorNotFound"},
      {k::invalid_tensor_view, "InvalidTensorView"},
      {k::invalid_conversion, "InvalidConversion"},
      {k::invalid_argument, "InvalidArgument"},
      {k::io_error, "IoError"},
  };
  for (const auto& [kind, name] : names) CHECK(st::error_kind_name(kind) == name);
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
