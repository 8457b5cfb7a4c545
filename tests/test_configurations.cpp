// The library as built with its optional part left out: this file is compiled with
// SAFETENSORS_NO_FILESYSTEM (no file storages, no OS includes), and checks that everything that
// build keeps still works. It includes
// nothing but the library and Catch, so it compiles exactly as a user's file would.
#include <safetensors/safetensors.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

// Two tensors written by the library itself: "a", F32 [2, 3] of 0..5, and "b", BF16 [2] of 1, -2.
std::vector<std::byte> two_tensor_file() {
  static const float a[6] = {0, 1, 2, 3, 4, 5};
  static const std::uint16_t b[2] = {0x3f80, 0xc000};
  std::vector<std::byte> a_bytes(sizeof a), b_bytes(sizeof b);
  for (std::size_t i = 0; i < 6; ++i)
    st::detail::store_le(a_bytes.data() + 4 * i, st::detail::bit_cast<std::uint32_t>(a[i]));
  for (std::size_t i = 0; i < 2; ++i) st::detail::store_le(b_bytes.data() + 2 * i, b[i]);
  auto bytes = st::try_serialize({{{"a", st::dtype::F32, {2, 3}}, a_bytes}, {{"b", st::dtype::BF16, {2}}, b_bytes}},
                                 std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(bytes);
  return *bytes;
}

}  // namespace

TEST_CASE("configurations: reading from memory, views, slices, conversions and loads", "[configurations]") {
  const std::vector<std::byte> file = two_tensor_file();
  auto reader = st::try_open_memory(file.data(), file.size());
  REQUIRE(reader);
  REQUIRE(reader->size() == 2);
  CHECK(*reader->metadata().find("format") == "pt");

  std::vector<float> a(6);
  REQUIRE(st::try_copy_to(reader->view("a"), st::span<float>(a.data(), a.size())));
  CHECK(a == std::vector<float>{0, 1, 2, 3, 4, 5});

  std::vector<float> b(2);
  REQUIRE(st::try_copy_to(reader->view("b"), st::span<float>(b.data(), b.size())));
  CHECK(b == std::vector<float>{1, -2});

  auto column = reader->try_slice("a", {st::all(), st::at(1)});
  REQUIRE(column);
  std::vector<std::byte> column_bytes(8);
  REQUIRE(column->try_copy_to(column_bytes, st::dtype::F32));
  float column_values[2];
  std::memcpy(column_values, column_bytes.data(), sizeof column_values);
  CHECK(column_values[0] == 1);
  CHECK(column_values[1] == 4);

  std::vector<std::byte> loaded(reader->view("a").bytes.size());
  REQUIRE(reader->try_load_into(*reader->try_info("a").value(), loaded));
  CHECK(std::memcmp(loaded.data(), reader->view("a").bytes.data(), loaded.size()) == 0);

  auto owned = st::try_open_buffer(file);
  REQUIRE(owned);
  CHECK(owned->view("b").shape()[0] == 2);

  auto missing = reader->try_view("c");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().kind() == st::error_kind::tensor_not_found);
}

TEST_CASE("configurations: streaming a file to a std::ostream gives the serialized bytes", "[configurations]") {
  const std::vector<std::byte> file = two_tensor_file();
  auto reader = st::try_open_memory(file.data(), file.size());
  REQUIRE(reader);
  std::ostringstream out;
  std::vector<st::tensor_declaration> declarations;
  for (const st::tensor_info& info : reader->tensors()) declarations.push_back(st::tensor_declaration::from(info));
  auto writer = st::try_make_stream_writer(out, declarations, st::metadata_entries::from(*reader));
  REQUIRE(writer);
  for (const st::tensor_info& info : reader->tensors()) REQUIRE(writer->try_write(info.name, reader->view(info).bytes));
  REQUIRE(writer->try_finish());
  const std::string written = out.str();
  REQUIRE(written.size() == file.size());
  CHECK(std::memcmp(written.data(), file.data(), file.size()) == 0);
}
