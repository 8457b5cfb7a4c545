// Sharded checkpoints: the writer's split and index, reading through index, directory or file,
// and every way an index can disagree with its shards.
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

namespace st = safetensors;
namespace fs = std::filesystem;

namespace {

// A fresh directory, removed with everything in it.
struct temp_directory {
  temp_directory() {
    char pattern[] = "/tmp/safetensors_shards_XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~temp_directory() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

// Declares tensors "t0".."t{n-1}" of `sizes[i]` U8 elements, filled with (i * 13 + j) % 251.
std::vector<st::tensor_declaration> declarations(const std::vector<std::uint64_t>& sizes) {
  std::vector<st::tensor_declaration> out;
  for (std::size_t i = 0; i < sizes.size(); ++i) out.push_back({"t" + std::to_string(i), st::dtype::U8, {sizes[i]}});
  return out;
}
std::byte fill(std::size_t tensor, std::uint64_t j) { return static_cast<std::byte>((tensor * 13 + j) % 251); }

st::sharded_writer write_model(const std::string& directory, const std::vector<std::uint64_t>& sizes,
                               std::uint64_t max_shard_size) {
  st::shard_options options;
  options.max_shard_size = max_shard_size;
  auto writer = st::make_sharded_writer(directory, declarations(sizes), options);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    REQUIRE(writer.produce("t" + std::to_string(i), [&](st::span<std::byte> piece, std::uint64_t offset) {
      for (std::size_t k = 0; k < piece.size(); ++k) piece[k] = fill(i, offset + k);
    }));
  }
  REQUIRE(writer.finish());
  return writer;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

}  // namespace

TEST_CASE("sharded writer: splits in declaration order, big tensors alone, index as transformers writes it", "[sharded]") {
  temp_directory dir;
  // Limit 100: [60, 30] fit; 50 would make 140; 250 is over the limit alone; then [10].
  auto writer = write_model(dir.path, {60, 30, 50, 250, 10}, 100);
  CHECK(writer.file_names() == std::vector<std::string>{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                                                        "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors"});
  CHECK(read_text(dir.file("model.safetensors.index.json")) ==
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
  temp_directory dir;
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
  temp_directory dir;
  const std::vector<std::uint64_t> sizes = {60, 30, 50, 250, 10, 0};
  write_model(dir.path, sizes, 100);
  for (const std::string& path : {dir.path, dir.file("model.safetensors.index.json")}) {
    INFO(path);
    auto model = st::try_open_model(path);
    REQUIRE(model);
    CHECK(model->size() == sizes.size());
    CHECK(model->shard_paths().size() == 4);
    CHECK(model->total_size() == 400);
    REQUIRE(model->validate());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto view = model->try_view("t" + std::to_string(i));
      REQUIRE(view);
      REQUIRE(view->bytes.size() == sizes[i]);
      bool same = true;
      for (std::size_t j = 0; j < sizes[i]; ++j) same = same && view->bytes[j] == fill(i, j);
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
  temp_directory dir;
  write_model(dir.path, {60, 30, 50, 250, 10}, 100);
  // Break shard 4: opening the model and reading shards 1-3 still work; t4 names the failure.
  const std::string last_shard = dir.file("model-00004-of-00004.safetensors");
  const std::string last_shard_bytes = read_text(last_shard);
  write_text(last_shard, "not a safetensors file");
  auto model = st::try_open_model(dir.path);
  REQUIRE(model);
  CHECK(model->try_view("t0"));
  CHECK(model->try_view("t3"));
  auto broken = model->try_view("t4");
  REQUIRE_FALSE(broken);
  CHECK(broken.error().kind() == st::error_kind::header_too_large);  // "not a sa" read as a length
  CHECK_FALSE(model->validate());

  // A failure is not remembered: once the shard is whole, the same model_reader opens it.
  write_text(last_shard, last_shard_bytes);
  auto repaired = model->try_view("t4");
  REQUIRE(repaired);
  CHECK(repaired->bytes.size() == 10);
  CHECK(repaired->bytes[9] == fill(4, 9));
  CHECK(model->validate());
}

TEST_CASE("model reader: an index that disagrees with its shards is refused, naming shard and tensor", "[sharded]") {
  temp_directory dir;
  write_model(dir.path, {60, 30, 50}, 100);
  const std::string index = dir.file("model.safetensors.index.json");
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  auto with_map = [&](const std::string& weight_map, const std::string& metadata = R"({"total_size": 140})") {
    write_text(index, R"({"metadata": )" + metadata + R"(, "weight_map": )" + weight_map + "}");
    return st::try_open_model(index);
  };
  auto message = [](const auto& outcome) { return test::outcome(outcome) + ": " + outcome.error().message(); };

  auto missing_shard = with_map(R"({"t0": "model-00009-of-00009.safetensors"})");
  CHECK(message(missing_shard) == "IoError: index \"" + index + "\" lists shard \"model-00009-of-00009.safetensors\", which is missing");

  auto escaping = with_map(R"({"t0": "../model-00001-of-00002.safetensors"})");
  CHECK(test::outcome(escaping) == "InvalidIndex");
  CHECK_THAT(escaping.error().message(), Catch::Contains("not a plain file name"));

  auto twice = with_map(R"({"t0": ")" + shard1 + R"(", "t0": ")" + shard2 + R"("})");
  CHECK(message(twice) == "InvalidIndex: index \"" + index + "\": the key \"t0\" appears twice");

  auto wrong_shard = with_map(R"({"t0": ")" + shard2 + R"(", "t1": ")" + shard1 + R"(", "t2": ")" + shard2 + R"("})");
  REQUIRE(wrong_shard);
  auto moved = wrong_shard->try_view("t1");  // opens shard 1, which holds t0 too
  REQUIRE_FALSE(moved);
  CHECK(moved.error().kind() == st::error_kind::invalid_index);
  CHECK_THAT(moved.error().message(), Catch::Contains("tensor \"t0\" is in shard") && Catch::Contains(shard1));

  auto unlisted = with_map(R"({"t0": ")" + shard1 + R"(", "t2": ")" + shard2 + R"("})");
  REQUIRE(unlisted);
  CHECK_THAT(unlisted->try_view("t0").error().message(), Catch::Contains("holds tensor \"t1\", which the index does not list"));

  auto absent = with_map(R"({"t0": ")" + shard1 + R"(", "t1": ")" + shard1 + R"(", "t2": ")" + shard2 + R"(", "t7": ")" +
                         shard2 + R"("})");
  REQUIRE(absent);
  CHECK_THAT(absent->try_view("t7").error().message(),
             Catch::Contains("lists tensor \"t7\" in shard") && Catch::Contains("which does not hold it"));

  const std::string good_map = R"({"t0": ")" + shard1 + R"(", "t1": ")" + shard1 + R"(", "t2": ")" + shard2 + R"("})";
  auto wrong_total = with_map(good_map, R"({"total_size": 141})");
  REQUIRE(wrong_total);
  CHECK(message(wrong_total->validate()) ==
        "InvalidIndex: index \"" + index + "\": metadata.total_size is 141 but the tensors hold 140 bytes");
  CHECK(with_map(good_map)->validate());
  CHECK(test::outcome(with_map(good_map, R"({"total_size": -1})")) == "InvalidIndex");
  CHECK(test::outcome(with_map(R"([])")) == "InvalidIndex");
  write_text(index, "{");
  CHECK(message(st::try_open_model(index)) == "InvalidIndex: index \"" + index + "\": not valid JSON");
  CHECK(test::outcome(st::try_open_model(dir.file("nothing.safetensors.index.json"))) == "IoError");
}

TEST_CASE("sharded writer: each shard is finished as soon as its tensors are complete", "[sharded]") {
  temp_directory dir;
  st::shard_options options;
  options.max_shard_size = 10;
  auto writer = st::make_sharded_writer(dir.path + "/made/by/the/writer",
                                        {{"a", st::dtype::U8, {8}}, {"z", st::dtype::U8, {0}}, {"b", st::dtype::U8, {8}}}, options);
  const std::string eight(8, 'x');
  const st::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(eight.data()), 8);
  REQUIRE(writer.write("a", bytes));  // shard 1 holds a and the empty z: complete, renamed into place
  CHECK(fs::exists(dir.path + "/made/by/the/writer/model-00001-of-00002.safetensors"));
  CHECK_FALSE(fs::exists(dir.path + "/made/by/the/writer/model-00002-of-00002.safetensors"));
  CHECK(writer.write("z", {}));
  CHECK(writer.produce("z", [](st::span<std::byte>, std::uint64_t) {}));
  auto overrun = writer.write("a", bytes);
  REQUIRE_FALSE(overrun);
  CHECK(overrun.error().message() == "tensor \"a\" is complete: a chunk of 8 bytes would overrun it");
  REQUIRE(writer.write("b", bytes));
  REQUIRE(writer.finish());
  auto model = st::try_open_model(dir.path + "/made/by/the/writer");
  REQUIRE(model);
  CHECK(model->shard_paths() == std::vector<std::string>{dir.path + "/made/by/the/writer/model-00001-of-00002.safetensors",
                                                        dir.path + "/made/by/the/writer/model-00002-of-00002.safetensors"});
  CHECK(model->validate());
}

TEST_CASE("sharded writer: declarations are checked across shards before anything is written", "[sharded]") {
  temp_directory dir;
  st::shard_options options;
  options.max_shard_size = 10;
  auto duplicate = st::try_make_sharded_writer(dir.path, {{"a", st::dtype::U8, {8}}, {"a", st::dtype::U8, {8}}}, options);
  CHECK(test::outcome(duplicate) == "InvalidHeaderDeserialization");
  CHECK(fs::directory_iterator(dir.path) == fs::directory_iterator());
  auto writer = st::try_make_sharded_writer(dir.path, {{"a", st::dtype::U8, {8}}, {"b", st::dtype::U8, {8}}}, options);
  REQUIRE(writer);
  CHECK(test::outcome(writer->write("c", {})) == "TensorNotFound");
}
