// Header parse and validation, next to two nlohmann_json baselines over the same bytes:
// a DOM parse and a SAX parse, each building the list of (name, dtype, shape, offsets).
#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace {

// A file of `count` F32 [4, 4] tensors named like a transformer's, as the official writer lays it out.
const std::vector<std::byte>& model_file(std::size_t count) {
  static std::map<std::size_t, std::vector<std::byte>> files;
  auto found = files.find(count);
  if (found != files.end()) return found->second;
  std::string header = "{";
  for (std::size_t i = 0; i < count; ++i) {
    if (i) header += ',';
    header += "\"model.layers." + std::to_string(i) +
              ".self_attn.q_proj.weight\":{\"dtype\":\"F32\",\"shape\":[4,4],"
              "\"data_offsets\":[" +
              std::to_string(i * 64) + "," + std::to_string(i * 64 + 64) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::vector<std::byte> bytes(8 + header.size() + count * 64, std::byte{0});
  for (int b = 0; b < 8; ++b) bytes[b] = static_cast<std::byte>((header.size() >> (8 * b)) & 0xff);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return files.emplace(count, std::move(bytes)).first->second;
}

std::string_view header_of(const std::vector<std::byte>& file) {
  const auto length = safetensors::detail::load_le<std::uint64_t>(file.data());
  return {reinterpret_cast<const char*>(file.data()) + 8, static_cast<std::size_t>(length)};
}

struct plain_tensor {
  std::string name;
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

void report(benchmark::State& state, std::size_t count) {
  const auto& file = model_file(count);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * header_of(file).size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
}

void open_memory(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const auto& file = model_file(count);
  for (auto _ : state) {
    auto reader = safetensors::try_open_memory(file.data(), file.size());
    if (!reader || reader->size() != count) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(reader);
  }
  report(state, count);
}

void nlohmann_dom(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const std::string_view header = header_of(model_file(count));
  for (auto _ : state) {
    nlohmann::json root = nlohmann::json::parse(header.begin(), header.end());
    std::vector<plain_tensor> tensors;
    tensors.reserve(root.size());
    for (auto& [name, entry] : root.items()) {
      plain_tensor t;
      t.name = name;
      t.dtype = entry.at("dtype").get<std::string>();
      t.shape = entry.at("shape").get<std::vector<std::uint64_t>>();
      t.begin = entry.at("data_offsets")[0].get<std::uint64_t>();
      t.end = entry.at("data_offsets")[1].get<std::uint64_t>();
      tensors.push_back(std::move(t));
    }
    if (tensors.size() != count) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(tensors);
  }
  report(state, count);
}

// Collects tensors from SAX events: level 1 keys are names, level 2 keys are fields.
class tensor_collector : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::vector<plain_tensor> tensors;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t value) override {
    if (field_ == "shape") tensors.back().shape.push_back(value);
    if (field_ == "data_offsets") (offset_index_++ == 0 ? tensors.back().begin : tensors.back().end) = value;
    return true;
  }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t& value) override {
    if (depth_ == 2 && field_ == "dtype") tensors.back().dtype = std::move(value);
    return true;
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    ++depth_;
    return true;
  }
  bool key(string_t& value) override {
    if (depth_ == 1) {
      tensors.emplace_back();
      tensors.back().name = std::move(value);
    } else if (depth_ == 2) {
      field_ = value;
      offset_index_ = 0;
    }
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  int depth_ = 0;
  std::string field_;
  int offset_index_ = 0;
};

void nlohmann_sax(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const std::string_view header = header_of(model_file(count));
  for (auto _ : state) {
    tensor_collector collector;
    bool parsed = nlohmann::json::sax_parse(header.begin(), header.end(), &collector);
    if (!parsed || collector.tensors.size() != count) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(collector.tensors);
  }
  report(state, count);
}

}  // namespace

BENCHMARK(open_memory)->Arg(1)->Arg(300)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(nlohmann_sax)->Arg(1)->Arg(300)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(nlohmann_dom)->Arg(1)->Arg(300)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);
