// The writer: byte-identical to the official writer, every target, streaming, crash safety.
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <complex>
#include <dirent.h>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/stat.h>

namespace st = safetensors;

// Every writer is move-only: a copy taken in the middle of a tensor would write its bytes twice.
static_assert(!std::is_copy_constructible_v<st::vector_writer> && !std::is_copy_assignable_v<st::vector_writer>);
static_assert(!std::is_copy_constructible_v<st::stream_writer> && !std::is_copy_assignable_v<st::stream_writer>);
static_assert(!std::is_copy_constructible_v<st::file_writer> && !std::is_copy_assignable_v<st::file_writer>);
static_assert(!std::is_copy_constructible_v<st::sharded_writer> && !std::is_copy_assignable_v<st::sharded_writer>);
static_assert(std::is_nothrow_move_constructible_v<st::vector_writer> &&
              std::is_nothrow_move_constructible_v<st::file_writer> &&
              std::is_nothrow_move_constructible_v<st::sharded_writer>);

namespace {

using test::reference_dir;

std::string as_text(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

st::span<const std::byte> bytes_of(const std::string& text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

// What the reader found, as the writer's inputs.
struct file_contents {
  std::vector<st::tensor_source> tensors;
  st::metadata_entries metadata;
};

file_contents contents_of(const st::memory_reader& reader) {
  file_contents contents;
  for (const st::tensor_info& info : reader.tensors())
    contents.tensors.push_back({st::tensor_declaration::from(info), reader.view(info).bytes});
  contents.metadata = st::metadata_entries::from(reader);
  return contents;
}

std::vector<st::tensor_declaration> declarations_of(const file_contents& contents) {
  std::vector<st::tensor_declaration> declarations;
  for (const auto& t : contents.tensors) declarations.push_back(t.declaration);
  return declarations;
}

// Files written by the official writer, with how many metadata keys each has.
std::vector<std::string> reference_files() {
  std::ifstream in(reference_dir + "index.json");
  nlohmann::json index = nlohmann::json::parse(in);
  std::vector<std::string> files;
  for (const auto& entry : index.at("valid")) files.push_back(reference_dir + entry.at("file").get<std::string>());
  return files;
}

// Both files have the same header (bytes, or JSON when metadata key order may differ) and data.
void check_same_file(const std::vector<std::byte>& written, const std::vector<std::byte>& original, bool exact_header) {
  if (exact_header) {
    CHECK(written == original);
    return;
  }
  auto a = st::try_open_memory(written.data(), written.size());
  auto b = st::try_open_memory(original.data(), original.size());
  REQUIRE(a);
  REQUIRE(b);
  auto header_json = [](const std::vector<std::byte>& bytes, const st::memory_reader& reader) {
    const char* start = reinterpret_cast<const char*>(bytes.data()) + 8;
    return nlohmann::json::parse(start, start + reader.header_length());
  };
  CHECK(header_json(written, *a) == header_json(original, *b));
  CHECK(a->header_length() == b->header_length());
  CHECK(std::equal(written.begin() + static_cast<std::ptrdiff_t>(a->data_start()), written.end(),
                   original.begin() + static_cast<std::ptrdiff_t>(b->data_start()), original.end()));
}

}  // namespace

TEST_CASE("writer: every reference file is rewritten byte for byte, through every target", "[writer]") {
  for (const std::string& path : reference_files()) {
    INFO(path);
    const std::vector<std::byte> original = test::read_file(path);
    auto reader = st::try_open_memory(original.data(), original.size());
    REQUIRE(reader);
    const file_contents contents = contents_of(*reader);
    const bool exact = reader->metadata().size() <= 1;

    auto in_memory = st::try_serialize(contents.tensors, contents.metadata);
    REQUIRE(in_memory);
    check_same_file(*in_memory, original, exact);

    std::ostringstream stream;
    REQUIRE(st::try_serialize(stream, contents.tensors, contents.metadata));
    std::string streamed = stream.str();
    check_same_file(std::vector<std::byte>(reinterpret_cast<const std::byte*>(streamed.data()),
                                           reinterpret_cast<const std::byte*>(streamed.data()) + streamed.size()),
                    original, exact);

    test::temp_file target({});
    REQUIRE(st::try_save(target.path(), contents.tensors, contents.metadata));
    check_same_file(test::read_file(target.path()), original, exact);

    // Streaming to a path: tensors in a shuffled order, each in chunks of random sizes.
    auto writer = st::try_make_file_writer(target.path(), declarations_of(contents), contents.metadata);
    REQUIRE(writer);
    std::vector<const st::tensor_source*> order;
    for (const auto& t : contents.tensors) order.push_back(&t);
    std::mt19937 random(42);
    std::shuffle(order.begin(), order.end(), random);
    for (const st::tensor_source* t : order) {
      std::size_t done = 0;
      while (done < t->bytes.size()) {
        std::size_t chunk = std::min<std::size_t>(t->bytes.size() - done, 1 + random() % 300);
        REQUIRE(writer->try_write(t->declaration.name, t->bytes.subspan(done, chunk)));
        done += chunk;
      }
    }
    REQUIRE(writer->try_finish());
    check_same_file(test::read_file(target.path()), original, exact);

    // Streaming to a std::ostream: file order, from a producer callback.
    std::ostringstream produced;
    auto stream_writer = st::try_make_stream_writer(produced, declarations_of(contents), contents.metadata);
    REQUIRE(stream_writer);
    for (const auto& entry : stream_writer->layout().entries()) {
      st::span<const std::byte> source = reader->view(entry.declaration.name).bytes;
      REQUIRE(stream_writer->try_produce(entry.declaration.name,
                                         [&](st::span<std::byte> destination, std::uint64_t offset) {
        std::memcpy(destination.data(), source.data() + offset, destination.size());
      }));
    }
    REQUIRE(stream_writer->try_finish());
    std::string produced_bytes = produced.str();
    check_same_file(
        std::vector<std::byte>(reinterpret_cast<const std::byte*>(produced_bytes.data()),
                               reinterpret_cast<const std::byte*>(produced_bytes.data()) + produced_bytes.size()),
        original, exact);
  }
}

TEST_CASE("writer: golden bytes of a small file", "[writer]") {
  const std::string one_two = std::string("\x01\x02", 2);
  const std::string floats = std::string("\x00\x00\x80\x3f", 4);
  auto bytes =
      st::try_serialize({{{"b", st::dtype::U8, {2}}, bytes_of(one_two)}, {{"a", st::dtype::F32, {}}, bytes_of(floats)}},
                        std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(bytes);
  const std::string json =
      R"({"__metadata__":{"format":"pt"},)"                       // metadata first
      R"("a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"   // F32 before U8: larger alignment first
      R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})";  // fields in the official order
  REQUIRE(json.size() == 136);                                    // a multiple of 8 already: no padding
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) + json + floats + one_two;
  CHECK(as_text(*bytes) == expected);

  // A 52-byte header gets 4 spaces of padding: N = 56.
  auto padded = st::try_serialize({{{"", st::dtype::F32, {}}, bytes_of(floats)}});
  REQUIRE(padded);
  const std::string padded_json = R"({"":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  REQUIRE(padded_json.size() == 52);
  CHECK(as_text(*padded) == std::string("\x38\0\0\0\0\0\0\0", 8) + padded_json + "    " + floats);
}

TEST_CASE("writer: empty files and empty metadata", "[writer]") {
  auto empty = st::try_serialize({});
  REQUIRE(empty);
  CHECK(as_text(*empty) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));

  // The official writer emits a header its own reader rejects here; ours writes a valid one.
  auto empty_metadata = st::try_serialize({}, std::map<std::string, std::string>{});
  REQUIRE(empty_metadata);
  CHECK(as_text(*empty_metadata) == std::string("\x18\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{}})" + "     ");
  auto reread = st::try_open_buffer(*empty_metadata);
  REQUIRE(reread);
  CHECK(reread->has_metadata());
  CHECK(reread->metadata().empty());
}

TEST_CASE("writer: names and metadata are escaped as the official writer does", "[writer]") {
  const std::string name = std::string("q\"b\\s\b\f\n\r\t\x01\x1f\x7f", 13) + std::string(1, '\0') + "\xc3\xa9";
  auto bytes = st::try_serialize({{{name, st::dtype::U8, {0}}, {}}}, std::map<std::string, std::string>{{"k", "v\n"}});
  REQUIRE(bytes);
  CHECK_THAT(as_text(*bytes), Catch::Contains(R"("__metadata__":{"k":"v\n"})") &&
                                  Catch::Contains("\"q\\\"b\\\\s\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\\u0000\xc3\xa9\":"));
  auto reread = st::try_open_buffer(*bytes);
  REQUIRE(reread);
  CHECK(reread->tensors()[0].name == name);
}

TEST_CASE("writer: declarations are validated before anything is written", "[writer]") {
  using decls = std::vector<st::tensor_declaration>;
  auto kind_of = [](decls declarations) { return test::outcome(st::file_layout::try_make(std::move(declarations))); };
  CHECK(kind_of({{"a", st::dtype::F32, {1}}, {"a", st::dtype::U8, {1}}}) == "InvalidHeaderDeserialization");
  CHECK(kind_of({{"__metadata__", st::dtype::U8, {1}}}) == "InvalidHeaderDeserialization");
  CHECK(kind_of({{"f4", st::dtype::F4, {3}}}) == "MisalignedSlice");
  CHECK(kind_of({{"f6", st::dtype::F6_E3M2, {2}}}) == "MisalignedSlice");
  CHECK(kind_of({{"f4", st::dtype::F4, {4}}}) == "ok");
  CHECK(kind_of({{"big", st::dtype::U8, {4294967296, 4294967296}}}) == "ValidationOverflow");
  CHECK(kind_of({{"bits", st::dtype::U64, {288230376151711744}}}) == "ValidationOverflow");
  CHECK(kind_of({{"a", st::dtype::U8, {1ULL << 62}},
                 {"b", st::dtype::U8, {1ULL << 62}},
                 {"c", st::dtype::U8, {1ULL << 62}},
                 {"d", st::dtype::U8, {1ULL << 62}}}) == "ValidationOverflow");
  CHECK(kind_of({{"bad\xff", st::dtype::U8, {1}}}) == "InvalidHeader");
  CHECK(kind_of({{std::string(100000000, 'n'), st::dtype::U8, {1}}}) == "HeaderTooLarge");

  auto duplicate = st::file_layout::try_make({{"x", st::dtype::F32, {1}}, {"x", st::dtype::F32, {1}}});
  CHECK(duplicate.error().message() == "two tensors are named \"x\": names must be unique");
  auto reserved = st::try_serialize({{{"__metadata__", st::dtype::U8, {1}}, {}}});
  CHECK_THAT(reserved.error().message(), Catch::Contains("reserved"));

  // Data that does not match its declaration.
  const std::string eight(8, 'x');
  auto short_data = st::try_serialize({{{"t", st::dtype::F32, {3}}, bytes_of(eight)}});
  REQUIRE_FALSE(short_data);
  CHECK(short_data.error().kind() == st::error_kind::tensor_invalid_info);
  CHECK(short_data.error().message() == "tensor \"t\" has 8 bytes of data but F32 of its shape needs 12");
  CHECK(test::outcome(st::try_serialize({{{"t", st::dtype::F4, {3}}, bytes_of(eight.substr(0, 2))}})) ==
        "MisalignedSlice");

  st::write_options bad_alignment;
  for (std::uint64_t alignment : {0, 1, 4, 12, 100}) {
    bad_alignment.alignment = alignment;
    CHECK(test::outcome(st::file_layout::try_make({}, {}, bad_alignment)) == "InvalidArgument");
  }
}

TEST_CASE("writer: the alignment option pads the header so data starts on the boundary", "[writer]") {
  const std::string data(12, 'd');
  for (std::uint64_t alignment : {8, 64, 4096}) {
    st::write_options options;
    options.alignment = alignment;
    auto bytes = st::try_serialize({{{"w", st::dtype::F32, {3}}, bytes_of(data)}}, {}, options);
    REQUIRE(bytes);
    auto reader = st::try_open_buffer(*bytes);
    REQUIRE(reader);
    INFO("alignment " << alignment);
    CHECK(reader->data_start() % alignment == 0);
    CHECK(reader->data_start() == alignment * ((8 + 54 + alignment - 1) / alignment));
    CHECK(as_text(*reader->try_read("w")) == data);
  }
}

TEST_CASE("writer: chunks that overrun, tensors left short, and misuse", "[writer]") {
  test::temp_file target({});
  auto writer = st::try_make_file_writer(target.path(), {{"a", st::dtype::U8, {4}}, {"b", st::dtype::U8, {2}}});
  REQUIRE(writer);
  REQUIRE(writer->try_write("a", bytes_of("abc")));
  auto overrun = writer->try_write("a", bytes_of("de"));
  REQUIRE_FALSE(overrun);
  CHECK(overrun.error().kind() == st::error_kind::tensor_invalid_info);
  CHECK(overrun.error().message() == "tensor \"a\" has 4 bytes; 3 are written and a chunk of 2 would overrun it");
  CHECK(test::outcome(writer->try_write("c", bytes_of("x"))) == "TensorNotFound");
  REQUIRE(writer->try_write("b", bytes_of("xy")));
  auto short_tensor = writer->try_finish();
  REQUIRE_FALSE(short_tensor);
  CHECK(short_tensor.error().kind() == st::error_kind::tensor_invalid_info);
  CHECK(short_tensor.error().message() == "tensor \"a\" got 3 of its 4 bytes");
  CHECK(test::outcome(writer->try_write("a", bytes_of("d"))) == "InvalidArgument");
  CHECK(test::outcome(writer->try_finish()) == "InvalidArgument");
}

TEST_CASE("writer: a stream takes tensors in file order only", "[writer]") {
  std::ostringstream out;
  // File order: a (F32) before b (U8), whatever the declaration order.
  auto writer = st::try_make_stream_writer(out, {{"b", st::dtype::U8, {2}}, {"a", st::dtype::F32, {1}}});
  REQUIRE(writer);
  auto early = writer->try_write("b", bytes_of("xy"));
  REQUIRE_FALSE(early);
  CHECK(early.error().kind() == st::error_kind::invalid_argument);
  CHECK_THAT(early.error().message(), Catch::Contains("\"a\" comes next"));
  bool called = false;
  auto early_producer = writer->try_produce("b", [&](st::span<std::byte>, std::uint64_t) { called = true; });
  CHECK(test::outcome(early_producer) == "InvalidArgument");
  CHECK_FALSE(called);  // refused before any work is asked for
  REQUIRE(writer->try_write("a", bytes_of("12")));
  REQUIRE(writer->try_write("a", bytes_of("34")));
  REQUIRE(writer->try_write("b", bytes_of("xy")));
  REQUIRE(writer->try_finish());
  std::string text = out.str();
  auto reread = st::try_open_memory(text.data(), text.size());
  REQUIRE(reread);
  CHECK(std::string(reinterpret_cast<const char*>(reread->view("a").bytes.data()), 4) == "1234");
}

TEST_CASE("writer: a failed or abandoned write leaves the target untouched", "[writer][files]") {
  const std::vector<std::byte> old_contents = test::file_bytes("{}      ");
  test::temp_file target(old_contents);

  {  // abandoned: destroyed before finish()
    auto writer = st::try_make_file_writer(target.path(), {{"a", st::dtype::U8, {4}}});
    REQUIRE(writer);
    REQUIRE(writer->try_write("a", bytes_of("ab")));
    CHECK(test::temp_files_beside(target.path()).size() == 1);
    CHECK(test::read_file(target.path()) == old_contents);
  }
  CHECK(test::temp_files_beside(target.path()).empty());
  CHECK(test::read_file(target.path()) == old_contents);

  {  // failed: finish() refuses a short tensor
    auto writer = st::try_make_file_writer(target.path(), {{"a", st::dtype::U8, {4}}});
    REQUIRE(writer);
    REQUIRE(writer->try_write("a", bytes_of("ab")));
    CHECK_FALSE(writer->try_finish());
    CHECK(test::temp_files_beside(target.path()).empty());  // removed at once, not when the writer goes
  }
  CHECK(test::temp_files_beside(target.path()).empty());
  CHECK(test::read_file(target.path()) == old_contents);

  {  // failed: a producer reports an error
    auto writer = st::try_make_file_writer(target.path(), {{"a", st::dtype::U8, {4}}});
    REQUIRE(writer);
    auto produced = writer->try_produce("a", [](st::span<std::byte>, std::uint64_t) -> st::result<void> {
      return st::error(st::error_kind::io_error, "source went away");
    });
    REQUIRE_FALSE(produced);
    CHECK(produced.error().message() == "source went away");
  }
  CHECK(test::temp_files_beside(target.path()).empty());
  CHECK(test::read_file(target.path()) == old_contents);

  // Declarations refused before any file is created.
  CHECK_FALSE(st::try_make_file_writer(target.path(), {{"a", st::dtype::F4, {1}}}));
  CHECK(test::temp_files_beside(target.path()).empty());
  // A directory that does not exist.
  CHECK(test::outcome(st::try_save("/nonexistent/dir/x.safetensors", {})) == "IoError");
}

TEST_CASE("writer: a finished write replaces the target atomically and keeps old mappings valid", "[writer][files]") {
  const std::vector<std::byte> old_contents =
      test::file_bytes(R"({"o":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})", "old");
  test::temp_file target(old_contents);
  auto old_reader = st::try_open(target.path());
  REQUIRE(old_reader);
#if defined(_WIN32)
  // Windows does not let a file that is mapped be replaced: the write fails, naming the file, the
  // old file and its mapping stay as they were, and no temporary file is left.
  auto refused = st::try_save(target.path(), {{{"n", st::dtype::U8, {3}}, bytes_of("new")}});
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message(), Catch::StartsWith(st::detail::quote(target.path()) + ": cannot rename"));
  CHECK(std::string(reinterpret_cast<const char*>(old_reader->view("o").bytes.data()), 3) == "old");
  CHECK(test::temp_files_beside(target.path()).empty());
  old_reader = st::error(st::error_kind::io_error, "closed");  // unmaps the old file
  REQUIRE(st::try_save(target.path(), {{{"n", st::dtype::U8, {3}}, bytes_of("new")}}, {}, st::write_options{8, true}));
  CHECK(as_text(*st::open(target.path()).try_read("n")) == "new");
#else
  // The replaced file's mode is kept (a 0600 file came back 0644 before), whatever the umask.
  const mode_t old_umask = ::umask(022);
  ::chmod(target.path().c_str(), 0600);
  REQUIRE(st::try_save(target.path(), {{{"n", st::dtype::U8, {3}}, bytes_of("new")}}, {}, st::write_options{8, true}));
  ::umask(old_umask);
  struct stat status;
  REQUIRE(::stat(target.path().c_str(), &status) == 0);
  CHECK((status.st_mode & 07777) == 0600);
  auto new_reader = st::try_open(target.path());
  REQUIRE(new_reader);
  CHECK(as_text(*new_reader->try_read("n")) == "new");
  CHECK(std::string(reinterpret_cast<const char*>(old_reader->view("o").bytes.data()), 3) == "old");
  CHECK(test::temp_files_beside(target.path()).empty());
#endif
}

TEST_CASE("writer: producers fill large tensors in bounded pieces", "[writer]") {
  const std::uint64_t elements = 3 * 1024 * 1024 + 5;  // more than three pieces of buffer_size bytes
  std::ostringstream out;
  auto writer = st::try_make_stream_writer(out, {{"big", st::dtype::U8, {elements}}});
  REQUIRE(writer);
  std::size_t largest_piece = 0, calls = 0;
  REQUIRE(writer->try_produce("big", [&](st::span<std::byte> destination, std::uint64_t offset) {
    largest_piece = std::max(largest_piece, destination.size());
    ++calls;
    for (std::size_t i = 0; i < destination.size(); ++i) destination[i] = static_cast<std::byte>((offset + i) % 251);
  }));
  REQUIRE(writer->try_finish());
  CHECK(largest_piece == st::stream_writer::buffer_size);
  CHECK(calls == 4);
  std::string text = out.str();
  auto reader = st::try_open_memory(text.data(), text.size());
  REQUIRE(reader);
  st::span<const std::byte> bytes = reader->view("big").bytes;
  REQUIRE(bytes.size() == elements);
  bool all_match = true;
  for (std::size_t i = 0; i < bytes.size(); ++i) all_match = all_match && bytes[i] == static_cast<std::byte>(i % 251);
  CHECK(all_match);
}

TEST_CASE("typed sources: the dtype comes from the element type, and read_as converts back", "[writer][typed]") {
  static_assert(st::dtype_for<float> == st::dtype::F32);
  static_assert(st::dtype_for<const double> == st::dtype::F64);
  static_assert(st::dtype_for<std::int8_t> == st::dtype::I8);
  static_assert(st::dtype_for<unsigned short> == st::dtype::U16);
  static_assert(st::dtype_for<long long> == st::dtype::I64);
  static_assert(st::dtype_for<unsigned long> == (sizeof(unsigned long) == 8 ? st::dtype::U64 : st::dtype::U32));
  static_assert(st::dtype_for<char32_t> == st::dtype::U32);
  static_assert(st::dtype_for<bool> == st::dtype::BOOL);
  static_assert(st::dtype_for<std::complex<float>> == st::dtype::C64);
  static_assert(st::dtype_for<st::bfloat16> == st::dtype::BF16);
  static_assert(st::dtype_for<st::float8_e4m3> == st::dtype::F8_E4M3);
  CHECK(st::tensor_declaration::of<st::float16>("h", {4}).dtype == st::dtype::F16);

  const std::vector<float> weights = {0.5f, -1.25f, 3.0f, 1e-3f, -0.0f, 7.0f};
  const std::vector<long long> positions = {-3, 0, 9007199254740993LL};
  const std::array<st::bfloat16, 2> halves = {st::bfloat16::from_float(1.5f), st::bfloat16::from_float(-2.0f)};
  const std::vector<std::uint8_t> flags = {1, 0, 1};
  auto bytes =
      st::try_serialize({{"w", weights, {2, 3}}, {"p", positions, {3}}, {"h", halves, {2}}, {"f", flags, {3}}});
  REQUIRE(bytes);
  auto reader = st::try_open_buffer(*bytes);
  REQUIRE(reader);
  CHECK(reader->info("w").dtype == st::dtype::F32);
  CHECK(reader->info("p").dtype == st::dtype::I64);
  CHECK(reader->info("h").dtype == st::dtype::BF16);
  CHECK(reader->info("f").dtype == st::dtype::U8);
  // The file holds little-endian bytes whatever the host: the first float, 0.5, is 00 00 00 3f.
  const st::tensor_view w = reader->view("w");
  CHECK(std::vector<std::byte>(w.bytes.begin(), w.bytes.begin() + 4) ==
        std::vector<std::byte>{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0x3f}});
  CHECK(reader->read_as<float>("w") == weights);
  CHECK(reader->read_as<double>("w") == std::vector<double>{0.5, -1.25, 3.0, static_cast<double>(1e-3f), -0.0, 7.0});
  CHECK(reader->read_as<long long>("p") == positions);
  CHECK(reader->read_as<float>("h") == std::vector<float>{1.5f, -2.0f});
  CHECK(reader->read_as<std::int32_t>("f") == std::vector<std::int32_t>{1, 0, 1});
  // Exact or refused: 9007199254740993 is no float; -3 is no U8.
  auto inexact = reader->try_read_as<std::uint8_t>("p");
  REQUIRE_FALSE(inexact);
  CHECK(test::outcome(inexact) + ": " + inexact.error().message() ==
        "InvalidConversion: tensor \"p\": element 0 (-3) of I64 has no U8 value: it is outside 0 to 255");
  CHECK(test::outcome(reader->try_read_as<float>("nothing")) == "TensorNotFound");

  // Through a pread reader too, and a count that does not fit the shape.
  test::temp_file file(*bytes);
  auto pread = st::try_open_pread(file.path());
  REQUIRE(pread);
  CHECK(pread->read_as<double>("p") == std::vector<double>{-3.0, 0.0, 9007199254740992.0});
  // A read that fails names the file once (see test::shrink_file).
#if !defined(_WIN32)
  REQUIRE(test::shrink_file(file.path(), pread->data_start()));
  auto shrunk = pread->try_read_as<float>("w");
  REQUIRE_FALSE(shrunk);
  CHECK_THAT(shrunk.error().message(), Catch::StartsWith(st::detail::quote(file.path()) + ": ended at byte"));
#endif
  auto wrong = st::try_serialize({{"w", weights, {4}}});
  REQUIRE_FALSE(wrong);
  CHECK(test::outcome(wrong) + ": " + wrong.error().message() ==
        "TensorInvalidInfo: tensor \"w\" has 24 bytes of data but F32 of its shape needs 16");
}

#if SAFETENSORS_EXCEPTIONS
TEST_CASE("writers: the members without try_ throw, so a throwing-API user cannot drop an error", "[writer]") {
  test::temp_directory dir;
  auto writer = st::make_file_writer(dir.file("w.safetensors"), {{"a", st::dtype::U8, {2}}});
  const std::vector<std::byte> two(2), three(3);
  auto kind_thrown = [](auto&& call) {
    try {
      call();
    } catch (const st::exception& thrown) {
      return std::string(st::error_kind_name(thrown.kind()));
    }
    return std::string("nothing thrown");
  };
  CHECK(kind_thrown([&] { writer.write("b", two); }) == "TensorNotFound");
  CHECK(kind_thrown([&] { writer.write("a", three); }) == "TensorInvalidInfo");
  CHECK(kind_thrown([&] { writer.close(); }) == "TensorInvalidInfo");  // "a" has no bytes yet
  writer.produce("a",
                 [](st::span<std::byte> piece, std::uint64_t) { std::fill(piece.begin(), piece.end(), std::byte{7}); });
  writer.finish();
  CHECK(kind_thrown([&] { writer.finish(); }) == "InvalidArgument");
  CHECK(test::read_file(dir.file("w.safetensors")).back() == std::byte{7});

  auto sharded = st::make_sharded_writer(dir.file("model"), {{"a", st::dtype::U8, {2}}});
  CHECK(kind_thrown([&] { sharded.write("b", two); }) == "TensorNotFound");
  CHECK(kind_thrown([&] { sharded.finish(); }) == "TensorInvalidInfo");
}
#endif

#if !defined(_WIN32)
TEST_CASE("writer: what is already at the output is never destroyed", "[writer][files]") {
  test::temp_directory dir;
  const std::string new_text = "new";  // outlives the sources, which point into it
  const std::vector<st::tensor_source> tensors = {{{"n", st::dtype::U8, {3}}, bytes_of(new_text)}};

  // A FIFO, a directory (and so a device such as /dev/null) is refused and left as it was.
  const std::string fifo = dir.file("pipe.safetensors");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto to_fifo = st::try_save(fifo, tensors);
  REQUIRE_FALSE(to_fifo);
  CHECK(test::outcome(to_fifo) + ": " + to_fifo.error().message() ==
        "IoError: " + st::detail::quote(fifo) + ": is a FIFO, not a regular file: it is not replaced");
  struct stat status;
  REQUIRE(::lstat(fifo.c_str(), &status) == 0);
  CHECK(S_ISFIFO(status.st_mode));
  const std::string directory = dir.file("sub");
  REQUIRE(std::filesystem::create_directory(directory));
  CHECK(st::try_save(directory, tensors).error().message() ==
        st::detail::quote(directory) + ": is a directory, not a regular file: it is not replaced");
  CHECK(std::filesystem::is_directory(directory));

  // A symbolic link is written through, as cp does: the file it leads to is replaced, the link
  // stays a link; one that leads nowhere is refused.
  const std::string real = dir.file("real.safetensors");
  const std::string link = dir.file("link.safetensors");
  REQUIRE(st::try_save(real, {{{"o", st::dtype::U8, {3}}, bytes_of("old")}}));
  ::chmod(real.c_str(), 0640);
  REQUIRE(::symlink("real.safetensors", link.c_str()) == 0);
  REQUIRE(st::try_save(link, tensors));
  REQUIRE(::lstat(link.c_str(), &status) == 0);
  CHECK(S_ISLNK(status.st_mode));
  CHECK(as_text(*st::open(real).try_read("n")) == "new");
  REQUIRE(::stat(real.c_str(), &status) == 0);
  CHECK((status.st_mode & 07777) == 0640);
  CHECK(test::temp_files_beside(real).empty());
  const std::string dangling = dir.file("dangling.safetensors");
  REQUIRE(::symlink("nowhere/x.safetensors", dangling.c_str()) == 0);
  auto through_nothing = st::try_save(dangling, tensors);
  REQUIRE_FALSE(through_nothing);
  CHECK_THAT(through_nothing.error().message(),
             Catch::StartsWith(st::detail::quote(dangling) + ": is a symbolic link that leads nowhere"));

  // A name of 250 bytes: the temporary name is cut to fit the 255-byte limit.
  const std::string long_name = dir.file(std::string(238, 'n') + ".safetensors");
  REQUIRE(st::try_save(long_name, tensors));
  CHECK(as_text(*st::open(long_name).try_read("n")) == "new");
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path))
    files += entry.is_regular_file() && !entry.is_symlink() ? 1 : 0;
  CHECK(files == 2);  // real.safetensors and the long one: no temporary file left
}
#endif

#if !defined(_WIN32)  // Windows keeps a file that is open from being removed
TEST_CASE("writer: remove_temporary_files removes every live writer's temporary file", "[writer][files]") {
  test::temp_directory dir;
  const std::string target = dir.file("out.safetensors");
  test::write_text(target, "kept");
  {
    auto writer = st::try_make_file_writer(target, {{"a", st::dtype::U8, {4}}});
    REQUIRE(writer);
    REQUIRE(test::temp_files_beside(target).size() == 1);
    st::remove_temporary_files();
    CHECK(test::temp_files_beside(target).empty());
    REQUIRE(writer->try_write("a", std::vector<std::byte>(4)));
    CHECK(test::outcome(writer->try_finish()) == "IoError");  // its file is gone: nothing to rename
  }
  CHECK(test::read_text(target) == "kept");
  // A writer that committed is forgotten: its file stays.
  REQUIRE(st::try_save(target, {{{"b", st::dtype::U8, {1}}, std::vector<std::byte>(1)}}));
  st::remove_temporary_files();
  CHECK(st::open(target).contains("b"));
}
#endif
