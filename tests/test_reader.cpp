// The reader's index and its storages: lookup, views, copies, files.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

namespace st = safetensors;

namespace {
const std::string two_tensors =
    R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
    R"("b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}})";
const std::string two_tensors_data = std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8) + "xyz";
}  // namespace

TEST_CASE("reader: index, lookup and zero-copy views", "[reader]") {
  std::vector<std::byte> bytes = test::file_bytes(two_tensors, two_tensors_data);
  auto opened = st::try_open_memory(bytes.data(), bytes.size());
  REQUIRE(opened);
  const st::memory_reader& reader = *opened;
  CHECK(reader.header_length() == two_tensors.size());
  CHECK(reader.data_start() == 8 + two_tensors.size());
  CHECK(reader.data_size() == 11);
  REQUIRE(reader.size() == 2);
  CHECK(reader.contains("w"));
  CHECK_FALSE(reader.contains("W"));
  CHECK(*reader.metadata().find("format") == "pt");

  const st::tensor_info* w = reader.find("w");
  REQUIRE(w != nullptr);
  CHECK(w == &reader.tensors()[0]);
  CHECK(w->dtype == st::dtype::F32);
  CHECK(w->byte_size() == 8);
  CHECK(w->element_count == 2);
  REQUIRE(w->shape.size() == 1);
  CHECK(w->shape[0] == 2);

  auto view = reader.try_view("b");
  REQUIRE(view);
  CHECK(view->name() == "b");
  CHECK(view->dtype() == st::dtype::U8);
  CHECK(view->shape()[0] == 3);
  // Zero-copy: the view points into the caller's bytes.
  CHECK(view->bytes.data() == bytes.data() + reader.data_start() + 8);
  CHECK(std::to_integer<char>(view->bytes[2]) == 'z');

  auto missing = reader.try_view("nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().kind() == st::error_kind::tensor_not_found);
  CHECK(missing.error().message() == "no tensor named \"nope\"");
  CHECK(reader.find("nope") == nullptr);
  CHECK(test::outcome(reader.try_info("nope")) == "TensorNotFound");
}

TEST_CASE("reader: moving a reader keeps its names, shapes and views valid", "[reader]") {
  std::vector<std::byte> bytes = test::file_bytes(two_tensors, two_tensors_data);
  auto opened = st::try_open_buffer(bytes);
  REQUIRE(opened);
  const st::tensor_info* before = opened->find("w");
  st::buffer_reader moved = std::move(*opened);
  CHECK(moved.find("w") == before);
  CHECK(moved.find("w")->name == "w");
  CHECK(moved.view("b").bytes.size() == 3);
}

TEST_CASE("reader: copying tensor bytes checks the destination's size", "[reader]") {
  std::vector<std::byte> bytes = test::file_bytes(two_tensors, two_tensors_data);
  auto reader = st::try_open_buffer(bytes);
  REQUIRE(reader);
  std::vector<std::byte> small(2);
  auto refused = reader->try_read_into(reader->info("b"), small);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind() == st::error_kind::invalid_tensor_view);
  CHECK(refused.error().message() == "tensor \"b\" has 3 bytes but the destination holds 2");

  auto copy = reader->try_read("b");
  REQUIRE(copy);
  CHECK(std::string(reinterpret_cast<const char*>(copy->data()), copy->size()) == "xyz");

  std::vector<std::byte> part(2);
  REQUIRE(reader->try_read_part(reader->info("b"), 1, part));
  CHECK(std::string(reinterpret_cast<const char*>(part.data()), 2) == "yz");
  auto past_end = reader->try_read_part(reader->info("b"), 2, part);
  REQUIRE_FALSE(past_end);
  CHECK(past_end.error().kind() == st::error_kind::invalid_tensor_view);
  CHECK(past_end.error().message() == "tensor \"b\" has 3 bytes; cannot read 2 at offset 2");
  CHECK_FALSE(reader->try_read_part(reader->info("b"), 0xffffffffffffffffULL, part));
  CHECK(test::outcome(reader->try_read("nope")) == "TensorNotFound");
}

TEST_CASE("reader: many tensors are all found by name", "[reader]") {
  std::string header = "{";
  const int count = 3000;
  for (int i = 0; i < count; ++i) {
    if (i) header += ',';
    header += "\"model.layers." + std::to_string(i) + ".weight\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" +
              std::to_string(i) + "," + std::to_string(i + 1) + "]}";
  }
  header += "}";
  auto reader = test::open_header(header, std::string(count, 'x'));
  REQUIRE(reader);
  REQUIRE(reader->size() == static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const st::tensor_info* info = reader->find("model.layers." + std::to_string(i) + ".weight");
    REQUIRE(info != nullptr);
    CHECK(info->data_offsets[0] == static_cast<std::uint64_t>(i));
  }
  CHECK(reader->find("model.layers.3000.weight") == nullptr);
}

TEST_CASE("files: mapped and pread storages read the same bytes", "[reader][files]") {
  test::temp_file file(test::file_bytes(two_tensors, two_tensors_data));
  auto mapped = st::try_open(file.path());
  REQUIRE(mapped);
  CHECK(mapped->view("b").bytes.size() == 3);
  auto pread = st::try_open_pread(file.path());
  REQUIRE(pread);
  CHECK(pread->size() == 2);
  auto copy = pread->try_read("w");
  REQUIRE(copy);
  CHECK(std::equal(copy->begin(), copy->end(), mapped->view("w").bytes.begin()));
}

TEST_CASE("files: missing files, directories and empty files", "[reader][files]") {
  for (auto opened : {test::outcome(st::try_open("/nonexistent/x.safetensors")),
                      test::outcome(st::try_open_pread("/nonexistent/x.safetensors")),
                      test::outcome(st::try_open("/tmp")), test::outcome(st::try_open_pread("/tmp"))}) {
    CHECK(opened == "IoError");
  }
  auto missing = st::try_open("/nonexistent/x.safetensors");
#if defined(_WIN32)
  CHECK_THAT(missing.error().message(), Catch::Contains("/nonexistent/x.safetensors") &&
                                            Catch::Contains("cannot open: ") && Catch::EndsWith("(Windows error 3)"));
#else
  CHECK_THAT(missing.error().message(),
             Catch::Contains("/nonexistent/x.safetensors") && Catch::Contains("No such file"));
#endif
  test::temp_file empty(std::vector<std::byte>{});
  CHECK(test::outcome(st::try_open(empty.path())) == "HeaderTooSmall");
  CHECK(test::outcome(st::try_open_pread(empty.path())) == "HeaderTooSmall");
}

#if !defined(_WIN32)  // see test::shrink_file
TEST_CASE("files: a pread file that shrank after opening is an IoError", "[reader][files]") {
  test::temp_file file(test::file_bytes(two_tensors, two_tensors_data));
  auto reader = st::try_open_pread(file.path());
  REQUIRE(reader);
  REQUIRE(test::shrink_file(file.path(), reader->data_start() + 4));
  auto copy = reader->try_read("b");
  REQUIRE_FALSE(copy);
  CHECK(copy.error().kind() == st::error_kind::io_error);
  CHECK_THAT(copy.error().message(), Catch::Contains("shrank"));
}
#endif

TEST_CASE("files: a pread reader reads only the header at open", "[reader][files]") {
  // A header claiming far more data than exists: nothing is allocated for it before the check.
  test::temp_file file(
      test::file_bytes(R"({"a":{"dtype":"U8","shape":[1099511627776],"data_offsets":[0,1099511627776]}})"));
  CHECK(test::outcome(st::try_open_pread(file.path())) == "MetadataIncompleteBuffer");
}

TEST_CASE("files: read_options::max_header_size bounds headers and indexes, at run time", "[reader]") {
  const std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  st::read_options small;
  small.max_header_size = 40;
  auto refused = test::open_header(header, "x", small);
  REQUIRE_FALSE(refused);
  CHECK(test::outcome(refused) + ": " + refused.error().message() ==
        "HeaderTooLarge: header length " + std::to_string(header.size()) + " exceeds the limit of 40 bytes");
  small.max_header_size = header.size();
  CHECK(test::open_header(header, "x", small));
  CHECK(st::read_options{}.max_header_size == 100000000);
  CHECK(st::format_max_header_size == 100000000);

  test::temp_directory directory;
  st::save(directory.file("one.safetensors"), {{{"a", st::dtype::U8, {1}}, std::vector<std::byte>(1)}});
  const std::string index = R"({"weight_map":{"a":"one.safetensors"}})";
  test::write_text(directory.file("model.safetensors.index.json"), index);
  st::read_options tiny;
  tiny.max_header_size = 10;
  auto model = st::try_open_model(directory.file("model.safetensors.index.json"), tiny);
  REQUIRE_FALSE(model);
  CHECK(test::outcome(model) + ": " + model.error().message() ==
        "InvalidIndex: " + st::detail::quote(directory.file("model.safetensors.index.json")) +
            ": larger than 10 bytes");
  CHECK(st::try_open_model(directory.file("model.safetensors.index.json")));
}
