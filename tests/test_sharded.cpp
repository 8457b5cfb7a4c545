// Sharded checkpoints: the writer's split and index, reading through index, directory or file,
// and every way an index can disagree with its shards.
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <mutex>

namespace st = safetensors;
namespace fs = std::filesystem;

namespace {

// Declares tensors "t0".."t{n-1}" of `sizes[i]` U8 elements, filled with test::fill_byte.
std::vector<st::tensor_declaration> declarations(const std::vector<std::uint64_t>& sizes) {
  std::vector<st::tensor_declaration> out;
  for (std::size_t i = 0; i < sizes.size(); ++i) out.push_back({"t" + std::to_string(i), st::dtype::U8, {sizes[i]}});
  return out;
}

st::sharded_writer write_model(const std::string& directory, const std::vector<std::uint64_t>& sizes,
                               std::uint64_t max_shard_size) {
  st::shard_options options;
  options.max_shard_size = max_shard_size;
  auto writer = st::make_sharded_writer(directory, declarations(sizes), options);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    REQUIRE(writer.try_produce("t" + std::to_string(i), [&](st::span<std::byte> piece, std::uint64_t offset) {
      for (std::size_t k = 0; k < piece.size(); ++k) piece[k] = test::fill_byte(i, offset + k);
    }));
  }
  REQUIRE(writer.try_finish());
  return writer;
}

// Files in `directory`.
std::size_t files_in(const std::string& directory) {
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(directory)) count += entry.is_regular_file() ? 1 : 0;
  return count;
}

// The names of the entries of `directory`, sorted.
std::vector<std::string> names_in(const std::string& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// This process's open file descriptors on files under `directory`.
std::size_t open_descriptors_under(const std::string& directory) {
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ignored;
    const std::string target = fs::read_symlink(entry.path(), ignored).string();
    count += target.compare(0, directory.size() + 1, directory + "/") == 0 ? 1 : 0;
  }
  return count;
}

}  // namespace

TEST_CASE("sharded writer: splits in declaration order, big tensors alone, index as transformers writes it",
          "[sharded]") {
  test::temp_directory dir;
  // Limit 100: [60, 30] fit; 50 would make 140; 250 is over the limit alone; then [10].
  auto writer = write_model(dir.path, {60, 30, 50, 250, 10}, 100);
  CHECK(writer.file_names() ==
        std::vector<std::string>{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                                 "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors"});
  CHECK(test::read_text(dir.file("model.safetensors.index.json")) ==
        "{\n"
        "  \"metadata\": {\n"
        "    \"total_size\": 400\n"
        "  },\n"
        "  \"weight_map\": {\n"
        "    \"t0\": \"model-00001-of-00004.safetensors\",\n"
        "    \"t1\": \"model-00001-of-00004.safetensors\",\n"
        "    \"t2\": \"model-00002-of-00004.safetensors\",\n"
        "    \"t3\": \"model-00003-of-00004.safetensors\",\n"
        "    \"t4\": \"model-00004-of-00004.safetensors\"\n"
        "  }\n"
        "}\n");
  auto shard = st::try_open(dir.file("model-00003-of-00004.safetensors"));
  REQUIRE(shard);
  CHECK(shard->size() == 1);
  CHECK(*shard->metadata().find("format") == "pt");
  CHECK(fs::directory_iterator(dir.path) != fs::directory_iterator());
  for (const auto& entry : fs::directory_iterator(dir.path))
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("sharded writer: one shard when everything fits, no index", "[sharded]") {
  test::temp_directory dir;
  auto writer = write_model(dir.path, {10, 20}, 1000);
  CHECK(writer.file_names() == std::vector<std::string>{"model.safetensors"});
  CHECK(writer.index_path().empty());
  CHECK_FALSE(fs::exists(dir.file("model.safetensors.index.json")));
  auto model = st::try_open_model(dir.path);
  REQUIRE(model);
  CHECK(model->size() == 2);
  CHECK(model->index_path().empty());
}

TEST_CASE("model reader: every tensor by name through the index, the directory or a single file", "[sharded]") {
  test::temp_directory dir;
  const std::vector<std::uint64_t> sizes = {60, 30, 50, 250, 10, 0};
  write_model(dir.path, sizes, 100);
  for (const std::string& path : {dir.path, dir.file("model.safetensors.index.json")}) {
    INFO(path);
    auto model = st::try_open_model(path);
    REQUIRE(model);
    CHECK(model->size() == sizes.size());
    CHECK(model->shard_paths().size() == 4);
    CHECK(model->total_size() == 400);
    REQUIRE(model->try_validate());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto view = model->try_view("t" + std::to_string(i));
      REQUIRE(view);
      REQUIRE(view->bytes.size() == sizes[i]);
      bool same = true;
      for (std::size_t j = 0; j < sizes[i]; ++j) same = same && view->bytes[j] == test::fill_byte(i, j);
      CHECK(same);
    }
    CHECK(test::outcome(model->try_view("t9")) == "TensorNotFound");
  }
  auto single = st::try_open_model(dir.file("model-00001-of-00004.safetensors"));
  REQUIRE(single);
  CHECK(single->size() == 2);
  CHECK(single->contains("t1"));
}

TEST_CASE("model reader: shards open on first use", "[sharded]") {
  test::temp_directory dir;
  write_model(dir.path, {60, 30, 50, 250, 10}, 100);
  // Break shard 4: opening the model and reading shards 1-3 still work; t4 names the failure.
  const std::string last_shard = dir.file("model-00004-of-00004.safetensors");
  const std::string last_shard_bytes = test::read_text(last_shard);
  test::write_text(last_shard, "not a safetensors file");
  auto model = st::try_open_model(dir.path);
  REQUIRE(model);
  CHECK(model->try_view("t0"));
  CHECK(model->try_view("t3"));
  auto broken = model->try_view("t4");
  REQUIRE_FALSE(broken);
  CHECK(broken.error().kind() == st::error_kind::header_too_large);  // "not a sa" read as a length
  CHECK_FALSE(model->try_validate());

  // A failure is not remembered: once the shard is whole, the same model_reader opens it.
  test::write_text(last_shard, last_shard_bytes);
  auto repaired = model->try_view("t4");
  REQUIRE(repaired);
  CHECK(repaired->bytes.size() == 10);
  CHECK(repaired->bytes[9] == test::fill_byte(4, 9));
  CHECK(model->try_validate());
}

TEST_CASE("model reader: an index that disagrees with its shards is refused, naming shard and tensor", "[sharded]") {
  test::temp_directory dir;
  write_model(dir.path, {60, 30, 50}, 100);
  const std::string index = dir.file("model.safetensors.index.json");
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  auto with_map = [&](const std::string& weight_map, const std::string& metadata = R"({"total_size": 140})") {
    test::write_text(index, R"({"metadata": )" + metadata + R"(, "weight_map": )" + weight_map + "}");
    return st::try_open_model(index);
  };
  auto message = [](const auto& outcome) { return test::outcome(outcome) + ": " + outcome.error().message(); };

  auto missing_shard = with_map(R"({"t0": "model-00009-of-00009.safetensors"})");
  CHECK(message(missing_shard) == "IoError: \"" + index + "\": lists shard \"" +
                                      dir.file("model-00009-of-00009.safetensors") + "\", which is missing");

  auto escaping = with_map(R"({"t0": "../model-00001-of-00002.safetensors"})");
  CHECK(test::outcome(escaping) == "InvalidIndex");
  CHECK_THAT(escaping.error().message(), Catch::Contains("not a plain file name"));

  auto twice = with_map(R"({"t0": ")" + shard1 + R"(", "t0": ")" + shard2 + R"("})");
  CHECK(message(twice) == "InvalidIndex: \"" + index + "\": the key \"t0\" appears twice in weight_map");

  auto wrong_shard = with_map(R"({"t0": ")" + shard2 + R"(", "t1": ")" + shard1 + R"(", "t2": ")" + shard2 + R"("})");
  REQUIRE(wrong_shard);
  auto moved = wrong_shard->try_view("t1");  // opens shard 1, which holds t0 too
  REQUIRE_FALSE(moved);
  CHECK(moved.error().kind() == st::error_kind::invalid_index);
  CHECK_THAT(moved.error().message(), Catch::Contains("tensor \"t0\" is in shard") && Catch::Contains(shard1));

  auto unlisted = with_map(R"({"t0": ")" + shard1 + R"(", "t2": ")" + shard2 + R"("})");
  REQUIRE(unlisted);
  CHECK_THAT(unlisted->try_view("t0").error().message(),
             Catch::Contains("holds tensor \"t1\", which the index does not list"));

  auto absent = with_map(R"({"t0": ")" + shard1 + R"(", "t1": ")" + shard1 + R"(", "t2": ")" + shard2 +
                         R"(", "t7": ")" + shard2 + R"("})");
  REQUIRE(absent);
  CHECK_THAT(absent->try_view("t7").error().message(),
             Catch::Contains("lists tensor \"t7\" in shard") && Catch::Contains("which does not hold it"));

  const std::string good_map = R"({"t0": ")" + shard1 + R"(", "t1": ")" + shard1 + R"(", "t2": ")" + shard2 + R"("})";
  auto wrong_total = with_map(good_map, R"({"total_size": 141})");
  REQUIRE(wrong_total);
  CHECK(message(wrong_total->try_validate()) ==
        "InvalidIndex: \"" + index + "\": metadata.total_size is 141 but the tensors hold 140 bytes");
  CHECK(with_map(good_map)->try_validate());
  CHECK(test::outcome(with_map(good_map, R"({"total_size": -1})")) == "InvalidIndex");
  CHECK(test::outcome(with_map(R"([])")) == "InvalidIndex");
  test::write_text(index, "{");
  CHECK(message(st::try_open_model(index)) ==
        "InvalidIndex: \"" + index + "\": unexpected end of index, expected a key (at index byte 1)");
  CHECK(test::outcome(st::try_open_model(dir.file("nothing.safetensors.index.json"))) == "IoError");
}

TEST_CASE("sharded writer: each shard is closed as soon as its tensors are complete", "[sharded]") {
  test::temp_directory dir;
  st::shard_options options;
  options.max_shard_size = 10;
  auto writer = st::make_sharded_writer(
      dir.path + "/made/by/the/writer",
      {{"a", st::dtype::U8, {8}}, {"z", st::dtype::U8, {0}}, {"b", st::dtype::U8, {8}}}, options);
  const std::string eight(8, 'x');
  const st::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(eight.data()), 8);
  const std::string made = dir.path + "/made/by/the/writer";
  REQUIRE(writer.try_write("a", bytes));  // shard 1 holds a and the empty z: complete, closed
  // Closed under its temporary name: shards are renamed into place together, by finish().
  CHECK(open_descriptors_under(made) == 0);
  CHECK(files_in(made) == 1);
  CHECK_FALSE(fs::exists(made + "/model-00001-of-00002.safetensors"));
  CHECK(writer.try_write("z", {}));
  CHECK(writer.try_produce("z", [](st::span<std::byte>, std::uint64_t) {}));
  auto overrun = writer.try_write("a", bytes);
  REQUIRE_FALSE(overrun);
  CHECK(overrun.error().message() == "tensor \"a\" is complete: a chunk of 8 bytes would overrun it");
  REQUIRE(writer.try_write("b", bytes));
  REQUIRE(writer.try_finish());
  auto model = st::try_open_model(made);
  REQUIRE(model);
  CHECK(model->shard_paths() == std::vector<std::string>{made + "/model-00001-of-00002.safetensors",
                                                         made + "/model-00002-of-00002.safetensors"});
  CHECK(model->try_validate());
}

TEST_CASE("sharded writer: declarations are checked across shards before anything is written", "[sharded]") {
  test::temp_directory dir;
  st::shard_options options;
  options.max_shard_size = 10;
  auto duplicate =
      st::try_make_sharded_writer(dir.path, {{"a", st::dtype::U8, {8}}, {"a", st::dtype::U8, {8}}}, options);
  CHECK(test::outcome(duplicate) == "InvalidHeaderDeserialization");
  CHECK(fs::directory_iterator(dir.path) == fs::directory_iterator());
  auto writer = st::try_make_sharded_writer(dir.path, {{"a", st::dtype::U8, {8}}, {"b", st::dtype::U8, {8}}}, options);
  REQUIRE(writer);
  CHECK(test::outcome(writer->try_write("c", {})) == "TensorNotFound");
}

TEST_CASE("model index: parsed in one pass, names and files unescaped, shards in file-name order", "[sharded][index]") {
  auto index = st::model_index::try_parse(
      R"( {"metadata": {"total_size": 12, "total_parameters": {"nested": [1, 2.5, null]}}, "extra": [true],
           "weight_map": {"z.w": "b.safetensors", "caf\u00e9": "a.safetensors", "y": "b.safetensors",
                          "line\nbreak": "\u0061.safetensors"}} )");
  REQUIRE(index);
  CHECK(index->total_size() == 12);
  CHECK(index->shard_files() == std::vector<std::string>{"a.safetensors", "b.safetensors"});
  std::vector<std::pair<std::string, std::size_t>> entries;
  for (const st::model_entry& e : index->entries()) entries.emplace_back(std::string(e.name), e.shard);
  CHECK(entries ==
        std::vector<std::pair<std::string, std::size_t>>{{"caf\xc3\xa9", 0}, {"line\nbreak", 0}, {"y", 1}, {"z.w", 1}});
  REQUIRE(index->find("line\nbreak") != nullptr);
  CHECK(index->find("line\nbreak")->shard == 0);
  CHECK(index->find("z") == nullptr);

  auto message = [](std::string text) {
    auto parsed = st::model_index::try_parse(std::move(text));
    REQUIRE_FALSE(parsed);
    return test::outcome(parsed) + ": " + parsed.error().message();
  };
  CHECK(message(R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})") ==
        "InvalidIndex: the key \"a\" appears twice in weight_map");
  CHECK(message(R"({"weight_map": {}, "weight_map": {}})") == "InvalidIndex: the key \"weight_map\" appears twice");
  CHECK(message(R"({"metadata": {"x": {"k": 1, "k": 2}}, "weight_map": {}})") ==
        "InvalidIndex: duplicate key \"k\" (at index byte 35)");
  CHECK(message(R"({"metadata": {}})") == "InvalidIndex: the index has no weight_map");
  CHECK(message(R"({"metadata": {"total_size": -1}, "weight_map": {}})") ==
        "InvalidIndex: metadata.total_size must be an unsigned integer (at index byte 28)");
  CHECK(message(R"({"metadata": {"total_size": 1.5}, "weight_map": {}})") ==
        "InvalidIndex: metadata.total_size must be an integer without fraction or exponent (at index byte 29)");
  CHECK(message(R"({"weight_map": {"a": "../x.safetensors"}})") ==
        "InvalidIndex: shard \"../x.safetensors\" of tensor \"a\" is not a plain file name in the index's directory "
        "(at index byte 39)");
  CHECK(message(R"({"weight_map": {"a": 1}})") ==
        "InvalidIndex: the shard of tensor \"a\" must be a file name (a string) (at index byte 21)");
  CHECK(message(R"({"weight_map": []})") ==
        "InvalidIndex: weight_map must be an object of tensor names to file names (at index byte 15)");
  CHECK(message(R"([])") == "InvalidIndex: an index must be a JSON object (at index byte 0)");
  CHECK(message(R"({"weight_map": {}} x)") ==
        "InvalidIndex: unexpected bytes after the index's closing '}' (at index byte 19)");
  CHECK(message(std::string("{\"weight_map\": {\"a\0\": \"x.safetensors\"}}", 39)) ==
        "InvalidIndex: control character in a string must be escaped (at index byte 18)");
  CHECK(test::outcome(st::model_index::try_parse(R"({"metadata": null, "weight_map": {}})")) == "ok");
}

TEST_CASE("sharded writer: the index escapes non-ASCII names and DEL as transformers does", "[sharded]") {
  test::temp_directory dir;
  st::shard_options options;
  options.max_shard_size = 4;
  auto writer = st::make_sharded_writer(
      dir.path, {{"na\xc3\xafve", st::dtype::U8, {4}}, {"\xf0\x9f\x98\x80\t\x7f", st::dtype::U8, {4}}}, options);
  const std::string four(4, 'x');
  const st::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(four.data()), 4);
  REQUIRE(writer.try_write("na\xc3\xafve", bytes));
  REQUIRE(writer.try_write("\xf0\x9f\x98\x80\t\x7f", bytes));
  REQUIRE(writer.try_finish());
  CHECK(test::read_text(dir.file("model.safetensors.index.json")) ==
        "{\n  \"metadata\": {\n    \"total_size\": 8\n  },\n  \"weight_map\": {\n"
        "    \"na\\u00efve\": \"model-00001-of-00002.safetensors\",\n"
        "    \"\\ud83d\\ude00\\t\\u007f\": \"model-00002-of-00002.safetensors\"\n  }\n}\n");
  auto model = st::try_open_model(dir.path);
  REQUIRE(model);
  CHECK(model->contains("\xf0\x9f\x98\x80\t\x7f"));
}

TEST_CASE("sharded writer: a directory holding a model is refused, or replaced once the new model is complete",
          "[sharded]") {
  test::temp_directory dir;
  write_model(dir.path, {60, 30, 50}, 100);  // two shards and an index
  test::write_text(dir.file("notes.txt"), "kept");
  st::shard_options options;
  options.max_shard_size = 1000;
  auto refused = st::try_make_sharded_writer(dir.path, declarations({5}), options);
  REQUIRE_FALSE(refused);
  CHECK(test::outcome(refused) + ": " + refused.error().message() ==
        "InvalidArgument: \"" + dir.path +
            "\": already holds a model (\"model.safetensors.index.json\" and 2 others), which a new one replaces only "
            "when told to (shard_options::replace)");

  // A replacement that fails leaves the old model as it was, and nothing of the new one.
  options.replace = true;
  {
    auto failing = st::make_sharded_writer(dir.path, declarations({5, 7}), options);
    REQUIRE(failing.try_write("t0", std::vector<std::byte>(5)));
    CHECK(test::outcome(failing.try_finish()) == "TensorInvalidInfo");  // t1 got no bytes
  }
  CHECK(files_in(dir.path) == 4);
  {
    auto old = st::try_open_model(dir.path);
    REQUIRE(old);
    CHECK(old->try_validate());
    CHECK(old->size() == 3);
  }

  // A replacement that succeeds: the new single file, and no trace of the old index or shards.
  auto replacing = st::make_sharded_writer(dir.path, declarations({5}), options);
  REQUIRE(replacing.try_write("t0", std::vector<std::byte>(5)));
  REQUIRE(replacing.try_finish());
  CHECK(names_in(dir.path) == std::vector<std::string>{"model.safetensors", "notes.txt"});
  auto replaced = st::try_open_model(dir.path);
  REQUIRE(replaced);
  CHECK(replaced->size() == 1);
}

TEST_CASE("sharded writer: a writer abandoned before finish leaves no shard", "[sharded]") {
  test::temp_directory dir;
  {
    st::shard_options options;
    options.max_shard_size = 10;
    auto writer = st::make_sharded_writer(dir.path, declarations({8, 8, 8}), options);
    REQUIRE(writer.try_write("t0", std::vector<std::byte>(8)));
    REQUIRE(writer.try_write("t1", std::vector<std::byte>(8)));
    CHECK(files_in(dir.path) == 2);  // two complete shards, under temporary names
  }
  CHECK(files_in(dir.path) == 0);
}

namespace {
// A model of 2-D tensors over 4 shards (one of 48 bytes): "w0" F32 [24, 20], "w2" I64 [2, 3],
// "w1" BF16 [16, 12], "w3" U8 [40, 5], each in a shard of its own; each shard's data bytes are
// pattern_byte of their offset in the shard, so every byte is told from every other of its shard.
void write_matrix_model(const std::string& directory) {
  const std::vector<st::tensor_declaration> tensors = {{"w0", st::dtype::F32, {24, 20}},
                                                       {"w2", st::dtype::I64, {2, 3}},
                                                       {"w1", st::dtype::BF16, {16, 12}},
                                                       {"w3", st::dtype::U8, {40, 5}}};
  st::shard_options options;
  options.max_shard_size = 400;
  auto writer = st::make_sharded_writer(directory, tensors, options);
  REQUIRE(writer.file_names().size() == 4);
  for (const st::tensor_declaration& t : tensors) {
    REQUIRE(writer.try_produce(
        t.name, [](st::span<std::byte> piece, std::uint64_t) { std::fill(piece.begin(), piece.end(), std::byte{0}); }));
  }
  REQUIRE(writer.try_finish());
  // Now give every data byte its pattern, shard by shard.
  for (const std::string& name : writer.file_names()) {
    auto reader = st::try_open_pread(directory + "/" + name);
    REQUIRE(reader);
    std::fstream file(directory + "/" + name, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(reader->data_start()));
    for (std::uint64_t o = reader->data_start(); o < reader->data_start() + reader->data_size(); ++o)
      file.put(static_cast<char>(test::pattern_byte(o)));
  }
}

// The bytes of the tensor named `name` of the model in `directory`, read back as the file holds them.
template <class Model>
std::vector<std::byte> file_bytes_of(const Model& model, const std::string& name) {
  auto reader = model.try_reader_of(name);
  REQUIRE(reader);
  std::ifstream in(std::string((*reader)->name()), std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const st::tensor_info& info = model.info(name);
  const std::size_t begin = static_cast<std::size_t>((*reader)->data_start() + info.data_offsets[0]);
  std::vector<std::byte> out(static_cast<std::size_t>(info.byte_size()));
  std::memcpy(out.data(), chars.data() + begin, out.size());
  return out;
}

template <class Model>
void check_model_loads(const Model& model, const st::load_options& options) {
  struct wanted {
    std::string name;
    std::vector<st::slice_dim> dims;
  };
  const std::vector<wanted> wants = {{"w0", {}},
                                     {"w0", {st::range(6, 12)}},
                                     {"w0", {st::all(), st::range(5, 10)}},
                                     {"w1", {}},
                                     {"w1", {st::range(0, 16, 3), st::at(2)}},
                                     {"w2", {}},
                                     {"w3", {st::range(10, 20), st::range(1, 5, 2)}},
                                     {"w3", {}}};
  std::vector<std::vector<std::byte>> expected, into;
  std::vector<st::load_request> requests;
  for (const wanted& w : wants) {
    const std::vector<std::byte> whole = file_bytes_of(model, w.name);
    expected.push_back(test::naive_slice(whole, model.info(w.name), w.dims));
    into.emplace_back(expected.back().size());
  }
  for (std::size_t i = 0; i < wants.size(); ++i)
    requests.push_back(model.request(wants[i].name, into[i], wants[i].dims));
  REQUIRE(model.try_load_into(requests, options));
  CHECK(into == expected);

  std::vector<std::vector<std::byte>> consumed;
  for (const auto& e : expected) consumed.emplace_back(e.size());
  std::mutex lock;
  REQUIRE(model.try_load(
      requests,
      [&](const st::load_piece& piece) {
    std::lock_guard<std::mutex> guard(lock);
    std::memcpy(consumed[piece.request].data() + piece.offset, piece.bytes.data(), piece.bytes.size());
      },
      options));
  CHECK(consumed == expected);
}
}  // namespace

TEST_CASE("model reader: a full reader across shards, mapped or pread: info, slices, reads, plans, loads",
          "[sharded]") {
  test::temp_directory dir;
  write_matrix_model(dir.path);
  auto mapped = st::try_open_model(dir.path);
  auto pread = st::try_open_model_pread(dir.path);
  REQUIRE(mapped);
  REQUIRE(pread);
  REQUIRE(mapped->shard_count() == 4);
  for (unsigned threads : {1u, 2u, 5u, 8u}) {
    for (std::size_t block : {std::size_t{4096}, std::size_t{1} << 20}) {
      INFO("threads " << threads << ", block " << block);
      st::load_options options;
      options.threads = threads;
      options.block_size = block;
      options.budget = 4096;
      check_model_loads(*mapped, options);
      check_model_loads(*pread, options);
      options.consumer_thread = true;
      check_model_loads(*pread, options);
    }
  }

  // One file's API, on the model.
  const std::vector<std::byte> w1 = file_bytes_of(*pread, "w1");
  CHECK(pread->read("w1") == w1);
  auto column = pread->try_slice("w1", {st::all(), st::at(-1)});
  REQUIRE(column);
  auto column_bytes = pread->try_read(*column);
  REQUIRE(column_bytes);
  CHECK(*column_bytes == test::naive_slice(w1, pread->info("w1"), {st::all(), st::at(11)}));
  std::vector<std::byte> part(6);
  REQUIRE(pread->try_read_part(pread->info("w1"), 10, part));
  CHECK(part == std::vector<std::byte>(w1.begin() + 10, w1.begin() + 16));
  CHECK(mapped->view("w1").bytes.size() == w1.size());

  // A tensor from elsewhere, or a request naming the wrong shard, is refused.
  auto other = st::try_open_model(dir.path);
  REQUIRE(other);
  std::vector<std::byte> destination(w1.size());
  auto foreign = pread->try_read_into(other->info("w1"), destination);
  REQUIRE_FALSE(foreign);
  CHECK(test::outcome(foreign) == "InvalidArgument");
  CHECK_THAT(foreign.error().message(), Catch::Contains("is not this model's"));
  st::load_request misplaced = pread->request("w1", destination);
  misplaced.shard = (misplaced.shard + 1) % 4;
  CHECK(test::outcome(pread->try_load_into(std::vector<st::load_request>{misplaced})) == "InvalidArgument");
  CHECK(test::outcome(pread->try_request("nothing")) == "TensorNotFound");
}

TEST_CASE("sharded writer: replacing removes only what is surely the old model, never what an index merely names",
          "[sharded]") {
  test::temp_directory dir;
  write_model(dir.path, {60, 30}, 80);  // model-00001-of-00002, model-00002-of-00002 and an index
  test::write_text(dir.file("config.json"), "{}");
  test::write_text(dir.file("notes.safetensors"), "not a safetensors file");
  // A second index whose weight_map names the config and a file that is not a safetensors file.
  test::write_text(dir.file("other.safetensors.index.json"),
                   R"({"weight_map":{"a":"config.json","b":"notes.safetensors"}})");
  st::shard_options options;
  options.max_shard_size = 1000;
  options.replace = true;
  auto replacing = st::make_sharded_writer(dir.path, declarations({5}), options);
  REQUIRE(replacing.try_write("t0", std::vector<std::byte>(5)));
  REQUIRE(replacing.try_finish());
  CHECK(names_in(dir.path) == std::vector<std::string>{"config.json", "model.safetensors", "notes.safetensors"});
  CHECK(test::read_text(dir.file("config.json")) == "{}");
}
