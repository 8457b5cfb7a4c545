// Writes the C ABI tests' data into DIR (fixture.h says what it holds): DIR/single.safetensors
// with metadata, DIR/model/ sharded into several files with an index, and DIR/expected.json,
// every tensor's dtype, shape and bytes (hex) as the C++ reader reads them back from the model.
#include "fixture.h"

#include <safetensors/model.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace st = safetensors;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 64;
  }
  const std::string directory = argv[1];
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory + "/written");
  std::vector<std::vector<std::byte>> bytes;
  std::vector<st::tensor_source> sources;
  for (std::size_t i = 0; i < FIXTURE_TENSOR_COUNT; ++i) {
    const fixture_tensor& t = fixture_tensors[i];
    bytes.emplace_back(static_cast<std::size_t>(t.byte_size));
    for (std::size_t k = 0; k < bytes[i].size(); ++k) bytes[i][k] = static_cast<std::byte>(fixture_byte(i, k));
    st::tensor_declaration declaration{t.name, *st::dtype_from_name(t.dtype),
                                       std::vector<std::uint64_t>(t.shape, t.shape + t.rank)};
    sources.emplace_back(declaration, bytes[i]);
  }
  st::save(directory + "/single.safetensors", sources,
           std::map<std::string, std::string>{{"format", "pt"}, {"note", "written for the C ABI tests"}});
  std::vector<st::tensor_declaration> declarations;
  for (const st::tensor_source& source : sources) declarations.push_back(source.declaration);
  st::shard_options sharding;
  sharding.max_shard_size = 100;
  auto writer = st::make_sharded_writer(directory + "/model", declarations, sharding);
  for (std::size_t i = 0; i < sources.size(); ++i) writer.write(fixture_tensors[i].name, bytes[i]);
  writer.finish();

  const st::model_reader model = st::open_model(directory + "/model");
  std::ofstream expected(directory + "/expected.json");
  expected << "{\n";
  bool first = true;
  for (const st::model_entry& entry : model.tensor_names()) {
    const st::tensor_info& info = model.info(entry.name);
    std::string hex;
    for (std::byte b : model.read(entry.name)) {
      static constexpr char digits[] = "0123456789abcdef";
      hex += digits[static_cast<unsigned>(b) >> 4];
      hex += digits[static_cast<unsigned>(b) & 15];
    }
    std::string shape;
    for (std::uint64_t d : info.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    expected << (first ? "" : ",\n") << "  \"" << entry.name << "\": {\"dtype\": \"" << st::dtype_name(info.dtype)
             << "\", \"shape\": [" << shape << "], \"hex\": \"" << hex << "\"}";
    first = false;
  }
  expected << "\n}\n";
  std::printf("%zu shards\n", model.shard_count());
  return 0;
}
