// The API's naming rule (a try_ form returning result, a throwing form without the prefix),
// result::value_or, and the run-time-chosen reader and model (any_reader, any_model).
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

// A file with "w" (F32 [2], 1.5 and -2), "b" (BF16 [2], 1 and 3) and metadata {"who": "test"}.
std::vector<std::byte> sample_file() {
  const std::vector<std::byte> w = test::le_bytes<float>({1.5f, -2.0f});
  const std::vector<std::byte> b = test::le_bytes<std::uint16_t>({0x3f80, 0x4040});
  auto bytes = st::try_serialize({{{"w", st::dtype::F32, {2}}, w}, {{"b", st::dtype::BF16, {2}}, b}},
                                 std::map<std::string, std::string>{{"who", "test"}});
  REQUIRE(bytes);
  return *bytes;
}

// A storage without data(): no views, no residency control.
class blob_storage {
 public:
  explicit blob_storage(std::vector<std::byte> bytes) : bytes_(std::move(bytes)) {}
  std::uint64_t size() const noexcept { return bytes_.size(); }
  const std::string& path() const noexcept { return path_; }
  st::result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    return st::borrowed_bytes(bytes_.data(), bytes_.size()).read_at(offset, destination, count);
  }

 private:
  std::vector<std::byte> bytes_;
  std::string path_ = "blob:sample";
};

// What any reader of sample_file() must give, whatever its storage.
void check_sample(const st::any_reader& reader) {
  REQUIRE(reader.size() == 2);
  CHECK(reader.tensors()[0].name == "w");
  CHECK(reader.contains("b"));
  CHECK(reader.find("nothing") == nullptr);
  CHECK(test::outcome(reader.try_info("nothing")) == "TensorNotFound");
  CHECK(reader.read_as<float>("w") == std::vector<float>{1.5f, -2.0f});
  CHECK(reader.read_as<double>("b") == std::vector<double>{1.0, 3.0});
  CHECK(reader.read("b") == test::le_bytes<std::uint16_t>({0x3f80, 0x4040}));
  CHECK(reader.metadata().size() == 1);
  CHECK(reader.has_metadata());
  CHECK(reader.data_size() == 12);
  CHECK(reader.data_start() == 8 + reader.header_length());
  CHECK(reader.file_size() == reader.data_start() + 12);

  std::vector<std::byte> second(2);
  REQUIRE(reader.try_read_part(reader.info("b"), 2, second));
  CHECK(second == test::le_bytes<std::uint16_t>({0x4040}));
  std::vector<std::byte> length(8);
  REQUIRE(reader.try_read_at(0, length));
  CHECK(st::detail::load_le<std::uint64_t>(length.data()) == reader.header_length());

  std::vector<std::byte> loaded(8);
  const st::load_request request{&reader.info("w"), loaded};
  REQUIRE(reader.try_load_into(st::span<const st::load_request>(&request, 1)));
  CHECK(loaded == test::le_bytes<float>({1.5f, -2.0f}));
  std::vector<std::byte> consumed;
  const st::load_request to_consumer{&reader.info("b"), {}};
  REQUIRE(reader.try_load(st::span<const st::load_request>(&to_consumer, 1), [&](const st::load_piece& piece) {
    consumed.insert(consumed.end(), piece.bytes.begin(), piece.bytes.end());
    return st::result<void>();
  }));
  CHECK(consumed == test::le_bytes<std::uint16_t>({0x3f80, 0x4040}));

  auto column = reader.try_slice("w", {st::range(1)});
  REQUIRE(column);
  CHECK(reader.read(*column) == test::le_bytes<float>({-2.0f}));
}

}  // namespace

TEST_CASE("result::value_or: the value, or the fallback for an error", "[api]") {
  const st::result<int> held = 7;
  const st::result<int> failed = st::error(st::error_kind::io_error, "gone");
  CHECK(held.value_or(3) == 7);
  CHECK(failed.value_or(3) == 3);
  st::result<std::vector<float>> none = st::error(st::error_kind::tensor_not_found, "no bias");
  CHECK(std::move(none).value_or({}).empty());
  auto reader = st::try_open_buffer(sample_file());
  REQUIRE(reader);
  CHECK(reader->try_read_as<float>("w").value_or({}) == std::vector<float>{1.5f, -2.0f});
  CHECK(reader->try_read_as<float>("bias").value_or({0.5f}) == std::vector<float>{0.5f});
}

TEST_CASE("any_reader: mapped, pread, memory and a storage without views behind one type", "[api]") {
  const std::vector<std::byte> bytes = sample_file();
  test::temp_file file(bytes);
  std::vector<st::any_reader> readers;
  readers.emplace_back(st::open(file.path()));
  readers.emplace_back(st::open_pread(file.path()));
  readers.emplace_back(st::open_memory(bytes.data(), bytes.size()));
  readers.emplace_back(st::basic_reader<blob_storage>::open(blob_storage(bytes)));
  for (const st::any_reader& reader : readers) check_sample(reader);

  CHECK(readers[0].has_views());
  CHECK_FALSE(readers[1].has_views());
  CHECK(readers[2].view("w").bytes.size() == 8);
  auto no_view = readers[3].try_view("w");
  REQUIRE_FALSE(no_view);
  CHECK(no_view.error().to_string() ==
        "InvalidArgument: \"blob:sample\": tensor \"w\" has no view: its storage holds no bytes in memory");

  REQUIRE(readers[0].try_prefetch(readers[0].info("w")));
  REQUIRE(readers[0].try_release(readers[0].info("w")));
  auto no_prefetch = readers[1].try_prefetch(readers[1].info("w"));
  REQUIRE_FALSE(no_prefetch);
  CHECK(no_prefetch.error().to_string() ==
        "InvalidArgument: \"" + file.path() + "\": prefetch needs a storage that controls residency (a mapped file)");

  CHECK(readers[0].get<st::mapped_file>() != nullptr);
  CHECK(readers[0].get<st::pread_file>() == nullptr);
  CHECK(readers[1].get<st::pread_file>()->storage().path() == file.path());
  CHECK(readers[3].get<blob_storage>()->size() == 2);
  CHECK(readers[0].name() == file.path());
  CHECK(readers[2].name().empty());

  // Borrowed: the reader stays where it is, and the any_reader sees it.
  const st::buffer_reader owned = st::open_buffer(bytes);
  const st::any_reader borrowed = st::any_reader::borrowing(owned);
  CHECK(borrowed.get<st::owned_bytes>() == &owned);
  check_sample(borrowed);
}

TEST_CASE("any_model: a model of any storage, its shards as any_reader", "[api]") {
  test::temp_directory directory;
  {
    auto writer = st::make_sharded_writer(directory.path, {{"a", st::dtype::U8, {3}}, {"b", st::dtype::F32, {1}}}, [] {
      st::shard_options options;
      options.max_shard_size = 4;
      options.metadata = std::map<std::string, std::string>{{"format", "pt"}};
      return options;
    }());
    writer.write("a", test::le_bytes<std::uint8_t>({1, 2, 3}));
    writer.write("b", test::le_bytes<float>({0.25f}));
    writer.finish();
  }
  for (const bool pread : {false, true}) {
    const st::any_model model =
        pread ? st::any_model(st::open_model_pread(directory.path)) : st::any_model(st::open_model(directory.path));
    REQUIRE(model.shard_count() == 2);
    CHECK(model.size() == 2);
    CHECK(model.index_path() == directory.file("model.safetensors.index.json"));
    CHECK(model.find_entry("b")->shard == 1);
    REQUIRE(model.find("b") != nullptr);
    CHECK(model.find("b") == &model.info("b"));
    CHECK(model.find("c") == nullptr);
    CHECK(model.read_as<float>("b") == std::vector<float>{0.25f});
    CHECK(model.read("a") == test::le_bytes<std::uint8_t>({1, 2, 3}));
    CHECK(model.metadata().size() == 1);
    CHECK(model.shard(1).tensors()[0].name == "b");
    std::vector<std::byte> into(3);
    model.read_into(model.info("a"), into);
    CHECK(into == test::le_bytes<std::uint8_t>({1, 2, 3}));
    CHECK(test::outcome(model.try_prefetch(model.info("a"))) == (pread ? "InvalidArgument" : "ok"));
    CHECK(test::outcome(model.try_release(model.info("a"))) == (pread ? "InvalidArgument" : "ok"));
    CHECK(model.reader_of("b").tensors()[0].name == "b");
    CHECK(model.try_validate());
    std::vector<std::byte> last(1);
    const st::load_request request = model.request("a", last, {st::range(2)});
    model.load_into(st::span<const st::load_request>(&request, 1));
    CHECK(last == test::le_bytes<std::uint8_t>({3}));
  }
}

TEST_CASE("models have what files have: metadata, prefetch, read_into, find giving tensor_info", "[api]") {
  test::temp_directory directory;
  st::save(directory.file("model.safetensors"), {{{"x", st::dtype::U8, {2}}, test::le_bytes<std::uint8_t>({4, 5})}},
           std::map<std::string, std::string>{{"k", "v"}});
  const st::model_reader model = st::open_model(directory.path);
  const st::tensor_info* found = model.find("x");
  REQUIRE(found != nullptr);
  CHECK(found == &model.info("x"));
  CHECK(model.find_entry("x")->shard == 0);
  CHECK(&model.shard(0) == &model.reader_of("x"));
  std::vector<std::byte> second(1);
  model.read_part(*found, 1, second);
  CHECK(second == test::le_bytes<std::uint8_t>({5}));
  CHECK(model.metadata().size() == 1);
  REQUIRE(model.try_prefetch(*found));
  REQUIRE(model.try_release(*found));
  std::vector<std::byte> out(2);
  model.read_into(*found, out);
  CHECK(out == test::le_bytes<std::uint8_t>({4, 5}));
  model.validate();
}

TEST_CASE("every fallible function has a try_ form, and a throwing form without the prefix", "[api]") {
  const std::vector<std::byte> bytes = sample_file();
  test::temp_file file(bytes);
  auto reader = st::try_open_memory(bytes.data(), bytes.size());
  REQUIRE(reader);
  std::vector<std::byte> f32(8), one_byte(1);
  REQUIRE(st::try_convert(reader->view("b").bytes, st::dtype::BF16, f32, st::dtype::F32));
  CHECK(f32 == test::le_bytes<float>({1.0f, 3.0f}));
  CHECK(test::outcome(st::try_convert(reader->view("b").bytes, st::dtype::BF16, one_byte, st::dtype::U8)) ==
        "InvalidTensorView");
  float values[2] = {};
  REQUIRE(st::try_copy_to(reader->view("b"), st::span<float>(values, 2)));
  CHECK(values[1] == 3.0f);
  CHECK(st::mapped_file::try_open(file.path()));
  CHECK(st::pread_file::try_open(file.path()));
  CHECK(test::outcome(st::mapped_file::try_open("/nonexistent/x.safetensors")) == "IoError");
  CHECK(test::outcome(st::tensor_slice::try_make(reader->info("w"), {st::at(5)})) == "InvalidArgument");
  CHECK(test::outcome(st::model_index::try_parse("[]")) == "InvalidIndex");
  CHECK(test::outcome(st::file_layout::try_make({{"__metadata__", st::dtype::U8, {1}}})) != "ok");
  const st::tensor_slice whole = st::tensor_slice::make(reader->view("w"), {st::all()});
  REQUIRE(whole.try_copy_to(st::span<float>(values, 2)));
  CHECK(values[0] == 1.5f);

#if SAFETENSORS_EXCEPTIONS
  st::convert(reader->view("b").bytes, st::dtype::BF16, f32, st::dtype::F32);
  CHECK_THROWS_AS(st::convert(reader->view("b").bytes, st::dtype::BF16, one_byte, st::dtype::U8), st::exception);
  CHECK_THROWS_AS(st::copy_to(reader->view("b"), st::span<float>(values, 1)), st::exception);
  CHECK_THROWS_AS(whole.copy_to(st::span<float>(values, 1)), st::exception);
  CHECK_THROWS_AS(st::mapped_file::open("/nonexistent/x.safetensors"), st::exception);
  CHECK_THROWS_AS(st::pread_file::open("/nonexistent/x.safetensors"), st::exception);
  CHECK_THROWS_AS(st::tensor_slice::make(reader->info("w"), {st::at(5)}), st::exception);
  CHECK_THROWS_AS(st::model_index::parse("[]"), st::exception);
  CHECK_THROWS_AS(st::file_layout::make({{"__metadata__", st::dtype::U8, {1}}}), st::exception);
  CHECK_THROWS_AS(st::basic_reader<blob_storage>::open(blob_storage(std::vector<std::byte>(3))), st::exception);
  CHECK(st::pread_file::open(file.path()).size() == bytes.size());
  const st::mapped_reader mapped = st::mapped_reader::open(st::mapped_file::open(file.path()));
  mapped.prefetch(mapped.info("w"));
  mapped.release(mapped.info("w"));
  std::vector<float> gathered(1);
  st::tensor_slice::make(mapped.view("w"), {st::range(1)}).copy_to(st::span<float>(gathered));
  CHECK(gathered[0] == -2.0f);
  CHECK(st::tensor_slice::make(mapped.view("w"), {st::range(1)}).bytes().size() == 4);
  CHECK_THROWS_AS(st::tensor_slice::make(mapped.info("w"), {st::all()}).bytes(), st::exception);  // no view
  std::vector<std::byte> part(4);
  mapped.read_part(mapped.info("w"), 4, part);
  CHECK(part == test::le_bytes<float>({-2.0f}));
  CHECK_THROWS_AS(mapped.read_part(mapped.info("w"), 6, part), st::exception);
  const st::load_request request{&mapped.info("b"), {}};
  CHECK(mapped.plan(st::span<const st::load_request>(&request, 1)).bytes() == 4);
  const st::any_reader any = st::open_pread(file.path());
  any.read_at(0, part);
  CHECK_THROWS_AS(any.read_at(bytes.size() - 2, part), st::exception);
  CHECK_THROWS_AS(any.prefetch(any.info("w")), st::exception);
#endif
}

TEST_CASE("paths: a model's files are joined with the platform's separator, or the one its directory uses", "[api]") {
  CHECK(st::detail::join_path("models/x", "a.safetensors") == "models/x/a.safetensors");
  CHECK(st::detail::join_path("models/x/", "a") == "models/x/a");
  CHECK(st::detail::join_path("", "a") == "a");
  CHECK(st::detail::file_name_start("https://host/m/model.safetensors.index.json") == 15);
  CHECK(st::detail::file_name_start("index.json") == 0);
  test::temp_directory directory;
  {
    st::shard_options options;
    options.max_shard_size = 1;
    auto writer =
        st::make_sharded_writer(directory.path, {{"a", st::dtype::U8, {1}}, {"b", st::dtype::U8, {1}}}, options);
    writer.write("a", test::le_bytes<std::uint8_t>({1}));
    writer.write("b", test::le_bytes<std::uint8_t>({2}));
    writer.finish();
  }
#if defined(_WIN32)
  CHECK(st::detail::join_path("C:\\models\\x", "a") == "C:\\models\\x\\a");
  CHECK(st::detail::join_path("C:\\models\\x\\", "a") == "C:\\models\\x\\a");
  CHECK(st::detail::join_path("C:/models/x", "a") == "C:/models/x/a");
  CHECK(st::detail::file_name_start("C:\\m\\index.json") == 5);
  std::string native = directory.path;
  std::replace(native.begin(), native.end(), '/', '\\');
  const st::model_reader model = st::open_model(native);
  CHECK(model.index_path() == native + "\\model.safetensors.index.json");
  CHECK(model.shard_paths()[1] == native + "\\model-00002-of-00002.safetensors");
  CHECK(model.read_as<int>("b") == std::vector<int>{2});
#else
  CHECK(st::detail::join_path("odd\\name", "a") == "odd\\name/a");
  const st::model_reader model = st::open_model(directory.path);
  CHECK(model.index_path() == directory.path + "/model.safetensors.index.json");
  CHECK(model.shard_paths()[1] == directory.path + "/model-00002-of-00002.safetensors");
  CHECK(model.read_as<int>("b") == std::vector<int>{2});
#endif
}
