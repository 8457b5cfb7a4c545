// Quantized checkpoints: NVFP4 (compressed-tensors and ModelOpt), MXFP4 and block-scaled FP8
// groups recognised in generated files and models, dequantized to F32 and BF16 and compared bit
// for bit with values computed here independently (E2M1, E4M3 and E8M0 decoded by their
// definitions, the formulas in their order), and the layouts that do not fit refused by name.
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

// OCP MX E2M1: sign, two exponent bits (bias 1), one mantissa bit.
float e2m1(unsigned code) {
  static const float magnitudes[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  return (code & 8) != 0 ? -magnitudes[code & 7] : magnitudes[code & 7];
}

// OCP FP8 E4M3 (no infinity; S.1111.111 is NaN): sign, four exponent bits (bias 7), three mantissa.
float e4m3(unsigned code) {
  const unsigned exponent = (code >> 3) & 15, mantissa = code & 7;
  const float magnitude = exponent == 0
                              ? std::ldexp(static_cast<float>(mantissa) / 8.0f, -6)
                              : std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, static_cast<int>(exponent) - 7);
  return (code & 128) != 0 ? -magnitude : magnitude;
}

// The nibble of F4 element `i` of packed bytes, low nibble first.
unsigned nibble(const std::vector<std::byte>& packed, std::size_t i) {
  return (static_cast<unsigned>(packed[i / 2]) >> (4 * (i % 2))) & 15u;
}

// float32 to BF16 by rounding to nearest, ties to even (no NaN here).
std::uint16_t to_bf16(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

std::vector<std::byte> pattern(std::size_t size, unsigned seed, unsigned avoid_nan_mask = 0) {
  std::vector<std::byte> bytes(size);
  for (std::size_t k = 0; k < size; ++k) {
    unsigned b = static_cast<unsigned>((k * 37 + seed * 101 + (k * k) % 13) % 256);
    if (avoid_nan_mask != 0 && (b & 0x7f) == 0x7f) b ^= 1;  // E4M3's NaN
    bytes[k] = static_cast<std::byte>(b);
  }
  return bytes;
}

float test_le_float(const std::byte* bytes) {
  std::uint32_t bits = 0;
  for (int b = 3; b >= 0; --b) bits = (bits << 8) | static_cast<std::uint32_t>(bytes[b]);
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

std::vector<std::byte> f32_bytes(const std::vector<float>& values) {
  std::vector<std::byte> bytes(values.size() * 4);
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + static_cast<std::size_t>(b)] = static_cast<std::byte>(bits >> (8 * b));
  }
  return bytes;
}

std::size_t same_bits(const std::vector<float>& got, const std::vector<float>& expected) {
  std::size_t same = 0;
  for (std::size_t i = 0; i < got.size() && i < expected.size(); ++i)
    same += std::memcmp(&got[i], &expected[i], 4) == 0 ? 1 : 0;
  return got.size() == expected.size() ? same : 0;
}

struct stored {
  std::string name;
  st::dtype type;
  std::vector<std::uint64_t> shape;
  std::vector<std::byte> bytes;
};

std::vector<std::byte> file_of(const std::vector<stored>& tensors) {
  std::vector<st::tensor_source> sources;
  for (const stored& t : tensors) sources.emplace_back(st::tensor_declaration{t.name, t.type, t.shape}, t.bytes);
  return st::serialize(sources);
}

// Dequantizes group `weight` of `reader` to F32 and BF16 and checks both against `expected`.
template <class Reader>
void check_dequantized(const Reader& reader, const std::vector<st::quant_group>& groups, const std::string& weight,
                       const std::vector<float>& expected) {
  const st::quant_group* group = nullptr;
  for (const st::quant_group& g : groups)
    if (g.weight == weight) group = &g;
  REQUIRE(group != nullptr);
  std::vector<float> got(expected.size());
  REQUIRE(
      st::try_dequantize(reader, *group, st::dtype::F32, {reinterpret_cast<std::byte*>(got.data()), got.size() * 4}));
  std::size_t same = 0;
  for (std::size_t i = 0; i < got.size(); ++i) same += std::memcmp(&got[i], &expected[i], 4) == 0 ? 1 : 0;
  CHECK(same == got.size());
  std::vector<std::uint16_t> half(expected.size());
  REQUIRE(st::try_dequantize(reader, *group, st::dtype::BF16,
                             {reinterpret_cast<std::byte*>(half.data()), half.size() * 2}));
  std::size_t rounded_once = 0;
  for (std::size_t i = 0; i < half.size(); ++i) rounded_once += half[i] == to_bf16(expected[i]) ? 1 : 0;
  CHECK(rounded_once == half.size());
}

}  // namespace

TEST_CASE("quant: NVFP4 as compressed-tensors and ModelOpt write it, dequantized exactly", "[quant]") {
  const std::uint64_t rows = 4, columns = 64;
  const std::vector<std::byte> packed = pattern(rows * columns / 2, 1);
  const std::vector<std::byte> scales = pattern(rows * columns / 16, 2, 0x7f);
  const float global = 448.0f * 6.0f / 3.5f, scale_2 = 0.0078125f;
  const std::vector<std::byte> bytes = file_of({
      {"model.layers.0.mlp.up_proj.weight_packed", st::dtype::U8, {rows, columns / 2}, packed},
      {"model.layers.0.mlp.up_proj.weight_scale", st::dtype::F8_E4M3, {rows, columns / 16}, scales},
      {"model.layers.0.mlp.up_proj.weight_global_scale", st::dtype::F32, {1}, f32_bytes({global})},
      {"model.layers.0.mlp.down_proj.weight", st::dtype::U8, {rows, columns / 2}, packed},
      {"model.layers.0.mlp.down_proj.weight_scale", st::dtype::F8_E4M3, {rows, columns / 16}, scales},
      {"model.layers.0.mlp.down_proj.weight_scale_2", st::dtype::F32, {}, f32_bytes({scale_2})},
      {"model.norm.weight", st::dtype::F32, {2}, f32_bytes({1.0f, 2.0f})},
  });
  const st::buffer_reader reader = st::open_buffer(bytes);
  auto groups = st::try_quant_groups(reader);
  REQUIRE(groups);
  REQUIRE(groups->size() == 2);
  std::vector<float> compressed, modelopt;
  for (std::size_t i = 0; i < rows * columns; ++i) {
    const float scale = e4m3(static_cast<unsigned>(scales[i / columns * (columns / 16) + i % columns / 16]));
    compressed.push_back(e2m1(nibble(packed, i)) * (scale / global));
    modelopt.push_back(e2m1(nibble(packed, i)) * (scale * scale_2));
  }
  check_dequantized(reader, *groups, "model.layers.0.mlp.up_proj.weight", compressed);
  check_dequantized(reader, *groups, "model.layers.0.mlp.down_proj.weight", modelopt);
  for (const st::quant_group& g : *groups) {
    CHECK(g.shape == std::vector<std::uint64_t>{rows, columns});
    CHECK(g.block == std::array<std::uint64_t, 2>{1, 16});
  }
  CHECK(st::quant_scheme_name((*groups)[0].scheme) != st::quant_scheme_name((*groups)[1].scheme));
}

TEST_CASE("quant: MXFP4 as gpt-oss writes it, and block-scaled FP8 as DeepSeek-V3 does", "[quant]") {
  // MXFP4: 2 experts x 3 rows x 2 blocks of 32.
  const std::vector<std::byte> blocks = pattern(2 * 3 * 2 * 16, 3);
  std::vector<std::byte> exponents(2 * 3 * 2);
  for (std::size_t g = 0; g < exponents.size(); ++g) exponents[g] = static_cast<std::byte>(120 + g);
  // FP8: 200 x 130 in blocks of 128: scale_inv [2, 2], the last blocks partial.
  const std::vector<std::byte> fp8 = pattern(200 * 130, 4, 0x7f);
  const std::vector<float> scale_inv = {0.5f, 0.001953125f, 3.0f, 1.0f / 3.0f};
  const std::vector<std::byte> bytes = file_of({
      {"model.layers.0.mlp.experts.gate_up_proj_blocks", st::dtype::U8, {2, 3, 2, 16}, blocks},
      {"model.layers.0.mlp.experts.gate_up_proj_scales", st::dtype::U8, {2, 3, 2}, exponents},
      {"model.layers.1.self_attn.q_proj.weight", st::dtype::F8_E4M3, {200, 130}, fp8},
      {"model.layers.1.self_attn.q_proj.weight_scale_inv", st::dtype::F32, {2, 2}, f32_bytes(scale_inv)},
  });
  const st::buffer_reader reader = st::open_buffer(bytes);
  auto groups = st::try_quant_groups(reader);
  REQUIRE(groups);
  REQUIRE(groups->size() == 2);
  std::vector<float> mx, deepseek;
  for (std::size_t i = 0; i < 2 * 3 * 64; ++i)
    mx.push_back(std::ldexp(e2m1(nibble(blocks, i)), static_cast<int>(exponents[i / 32]) - 127));
  for (std::size_t i = 0; i < 200 * 130; ++i)
    deepseek.push_back(e4m3(static_cast<unsigned>(fp8[i])) * scale_inv[i / 130 / 128 * 2 + i % 130 / 128]);
  check_dequantized(reader, *groups, "model.layers.0.mlp.experts.gate_up_proj", mx);
  check_dequantized(reader, *groups, "model.layers.1.self_attn.q_proj.weight", deepseek);
  const st::quant_group& experts = (*groups)[0].scheme == st::quant_scheme::mxfp4 ? (*groups)[0] : (*groups)[1];
  CHECK(experts.shape == std::vector<std::uint64_t>{2, 3, 64});
}

TEST_CASE("quant: a model's groups across shards; odd layouts refused by name", "[quant][sharded]") {
  test::temp_directory dir;
  const std::vector<std::byte> fp8 = pattern(256 * 128, 5, 0x7f);
  st::shard_options options;
  options.max_shard_size = 16 * 1024;
  auto writer = st::make_sharded_writer(dir.path,
                                        {{"a.weight", st::dtype::F8_E4M3, {256, 128}},
                                         {"a.weight_scale_inv", st::dtype::F32, {2, 1}},
                                         {"b.weight", st::dtype::F32, {2}}},
                                        options);
  writer.write("a.weight", fp8);
  writer.write("a.weight_scale_inv", f32_bytes({2.0f, 0.25f}));
  writer.write("b.weight", f32_bytes({1.0f, 1.0f}));
  writer.finish();
  const st::model_reader model = st::open_model(dir.path);
  REQUIRE(model.shard_count() >= 2);
  auto groups = st::try_quant_groups(model);
  REQUIRE(groups);
  REQUIRE(groups->size() == 1);
  std::vector<float> expected;
  for (std::size_t i = 0; i < 256 * 128; ++i)
    expected.push_back(e4m3(static_cast<unsigned>(fp8[i])) * (i / 128 < 128 ? 2.0f : 0.25f));
  check_dequantized(model, *groups, "a.weight", expected);
  // Rank 1 of 2 of a colwise plan: rows 128 to 255, their scale row read from the other shard.
  std::vector<float> part(128 * 128);
  REQUIRE(st::try_dequantize(model, (*groups)[0], st::dtype::F32,
                             {reinterpret_cast<std::byte*>(part.data()), part.size() * 4},
                             st::tp_plan().add("a", st::tp_style::colwise), 2, 1));
  CHECK(same_bits(part, std::vector<float>(expected.begin() + 128 * 128, expected.end())) == part.size());
  std::vector<std::byte> small(4);
  CHECK(test::outcome(st::try_dequantize(model, (*groups)[0], st::dtype::F32, small)) == "InvalidTensorView");
  CHECK(test::outcome(st::try_dequantize(model, (*groups)[0], st::dtype::I32, small)) == "InvalidArgument");

  auto refused = [](const std::vector<stored>& tensors) {
    const std::vector<std::byte> bytes = file_of(tensors);
    const st::buffer_reader reader = st::open_buffer(bytes);
    auto found = st::try_quant_groups(reader);
    return found ? "accepted " + std::to_string(found->size()) : test::outcome(found) + ": " + found.error().message();
  };
  CHECK(refused({{"x.weight", st::dtype::F8_E4M3, {256, 128}, pattern(256 * 128, 6)},
                 {"x.weight_scale_inv", st::dtype::F32, {3, 1}, f32_bytes({1, 1, 1})}}) ==
        "InvalidArgument: tensor \"x.weight_scale_inv\": an FP8 weight's scale_inv must be F32 [ceil(rows/128), "
        "ceil(columns/128)] for the weight [256, 128], not F32 [3, 1]");
  CHECK(refused({{"x.weight_packed", st::dtype::U8, {2, 8}, pattern(16, 7)},
                 {"x.weight_scale", st::dtype::F8_E4M3, {2, 2}, pattern(4, 8, 0x7f)},
                 {"x.weight_global_scale", st::dtype::F32, {1}, f32_bytes({1})}}) ==
        "InvalidArgument: tensor \"x.weight_scale\": an NVFP4 weight_scale must be F8_E4M3 [rows, columns/16] for the "
        "packed weight [2, 8] (two F4 a byte), not F8_E4M3 [2, 2]");
  CHECK(refused({{"x.weight_packed", st::dtype::U8, {2, 8}, pattern(16, 7)},
                 {"x.weight_scale", st::dtype::F8_E4M3, {2, 1}, pattern(2, 8, 0x7f)}}) ==
        "InvalidArgument: tensor \"x.weight_packed\": a weight_packed needs \"x.weight_global_scale\" beside it");
  CHECK(refused(
            {{"e_blocks", st::dtype::U8, {3, 16}, pattern(48, 9)}, {"e_scales", st::dtype::U8, {2}, pattern(2, 1)}}) ==
        "InvalidArgument: tensor \"e_scales\": MXFP4 needs U8 blocks [..., G, 16] and U8 scales [..., G]; the blocks "
        "are U8 [3, 16], the scales U8 [2]");
  // Ordinary weights are no group.
  CHECK(refused({{"w.weight", st::dtype::BF16, {2, 2}, pattern(8, 1)},
                 {"w.weight_scale", st::dtype::F32, {1}, f32_bytes({1})}}) == "accepted 0");
}

namespace {

// Rank `rank` of `size`'s part of row-major `whole` of `shape`, cut along dimension `dim`.
std::vector<float> part_of(const std::vector<float>& whole, const std::vector<std::uint64_t>& shape, std::size_t dim,
                           std::uint64_t size, std::uint64_t rank) {
  std::uint64_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < dim; ++d) outer *= shape[d];
  for (std::size_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  const std::uint64_t extent = shape[dim], part = extent / size;
  std::vector<float> taken;
  for (std::uint64_t o = 0; o < outer; ++o)
    for (std::uint64_t k = rank * part; k < (rank + 1) * part; ++k)
      for (std::uint64_t i = 0; i < inner; ++i)
        taken.push_back(whole[static_cast<std::size_t>((o * extent + k) * inner + i)]);
  return taken;
}

// One layer of each layout, the modules named as Llama's (q_proj colwise, o_proj rowwise) or
// gpt-oss's (experts, which the test's plan cuts), with the values each weight must dequantize to.
struct quantized_layer {
  std::vector<std::byte> file;
  std::map<std::string, std::vector<float>> expected;
};

quantized_layer make_quantized_layer() {
  quantized_layer layer;
  const std::uint64_t rows = 8, columns = 64;
  const std::vector<std::byte> packed = pattern(rows * columns / 2, 11);
  const std::vector<std::byte> scales = pattern(rows * columns / 16, 12, 0x7f);
  const float global = 96.0f;
  const std::vector<std::byte> blocks = pattern(2 * 4 * 2 * 16, 13);
  std::vector<std::byte> exponents(2 * 4 * 2);
  for (std::size_t g = 0; g < exponents.size(); ++g) exponents[g] = static_cast<std::byte>(118 + g);
  const std::vector<std::byte> fp8 = pattern(256 * 256, 14, 0x7f);
  const std::vector<float> scale_inv = {0.5f, 0.25f, 3.0f, 1.0f / 3.0f};
  layer.file = file_of({
      {"model.layers.0.self_attn.q_proj.weight_packed", st::dtype::U8, {rows, columns / 2}, packed},
      {"model.layers.0.self_attn.q_proj.weight_scale", st::dtype::F8_E4M3, {rows, columns / 16}, scales},
      {"model.layers.0.self_attn.q_proj.weight_global_scale", st::dtype::F32, {1}, f32_bytes({global})},
      {"model.layers.0.self_attn.o_proj.weight", st::dtype::U8, {rows, columns / 2}, packed},
      {"model.layers.0.self_attn.o_proj.weight_scale", st::dtype::F8_E4M3, {rows, columns / 16}, scales},
      {"model.layers.0.self_attn.o_proj.weight_scale_2", st::dtype::F32, {}, f32_bytes({0.5f})},
      {"model.layers.0.mlp.experts.gate_up_proj_blocks", st::dtype::U8, {2, 4, 2, 16}, blocks},
      {"model.layers.0.mlp.experts.gate_up_proj_scales", st::dtype::U8, {2, 4, 2}, exponents},
      {"model.layers.1.mlp.down_proj.weight", st::dtype::F8_E4M3, {256, 256}, fp8},
      {"model.layers.1.mlp.down_proj.weight_scale_inv", st::dtype::F32, {2, 2}, f32_bytes(scale_inv)},
      {"model.norm.weight", st::dtype::F32, {2}, f32_bytes({1.0f, 2.0f})},
  });
  auto& q = layer.expected["model.layers.0.self_attn.q_proj.weight"];
  auto& o = layer.expected["model.layers.0.self_attn.o_proj.weight"];
  for (std::size_t i = 0; i < rows * columns; ++i) {
    const float scale = e4m3(static_cast<unsigned>(scales[i / columns * (columns / 16) + i % columns / 16]));
    q.push_back(e2m1(nibble(packed, i)) * (scale / global));
    o.push_back(e2m1(nibble(packed, i)) * (scale * 0.5f));
  }
  auto& experts = layer.expected["model.layers.0.mlp.experts.gate_up_proj"];
  for (std::size_t i = 0; i < 2 * 4 * 64; ++i)
    experts.push_back(std::ldexp(e2m1(nibble(blocks, i)), static_cast<int>(exponents[i / 32]) - 127));
  auto& down = layer.expected["model.layers.1.mlp.down_proj.weight"];
  for (std::size_t i = 0; i < 256 * 256; ++i)
    down.push_back(e4m3(static_cast<unsigned>(fp8[i])) * scale_inv[i / 256 / 128 * 2 + i % 256 / 128]);
  return layer;
}

// Llama's plan, with gpt-oss's experts cut by rows (dimension 1 of [experts, rows, G, 16]).
st::tp_plan layer_plan() { return st::tp_plan::preset("llama").add("experts", st::tp_style::rowwise); }

// The dimension `plan` cuts each group's dequantized weight along.
std::size_t cut_of(const st::quant_group& group) { return group.weight.find("q_proj") != std::string::npos ? 0 : 1; }

}  // namespace

TEST_CASE("quant: a tensor-parallel rank's part of every layout, dequantized exactly", "[quant][tp]") {
  const quantized_layer layer = make_quantized_layer();
  const st::buffer_reader reader = st::open_buffer(layer.file);
  auto groups = st::try_quant_groups(reader);
  REQUIRE(groups);
  REQUIRE(groups->size() == 4);
  const st::tp_plan plan = layer_plan();
  for (const st::quant_group& group : *groups) {
    for (std::uint64_t rank = 0; rank < 2; ++rank) {
      INFO(group.weight << ", rank " << rank);
      const std::vector<float> expected = part_of(layer.expected.at(group.weight), group.shape, cut_of(group), 2, rank);
      std::vector<float> got(expected.size());
      REQUIRE(st::try_dequantize(reader, group, st::dtype::F32,
                                 {reinterpret_cast<std::byte*>(got.data()), got.size() * 4}, plan, 2, rank));
      CHECK(same_bits(got, expected) == expected.size());
      std::vector<std::uint16_t> half(expected.size());
      REQUIRE(st::try_dequantize(reader, group, st::dtype::BF16,
                                 {reinterpret_cast<std::byte*>(half.data()), half.size() * 2}, plan, 2, rank));
      std::size_t rounded_once = 0;
      for (std::size_t i = 0; i < half.size(); ++i) rounded_once += half[i] == to_bf16(expected[i]) ? 1 : 0;
      CHECK(rounded_once == half.size());
    }
  }
  // A rank's part is its share: a destination of the whole weight is refused.
  std::vector<std::byte> whole(static_cast<std::size_t>(8 * 64 * 4));
  CHECK(test::outcome(st::try_dequantize(reader, (*groups)[0], st::dtype::F32, whole, plan, 2, 0)) ==
        "InvalidTensorView");
}

TEST_CASE("quant: try_load_dequantized delivers a rank's dequantized parts, scales first and kept back",
          "[quant][tp]") {
  const quantized_layer layer = make_quantized_layer();
  test::temp_file path(layer.file);
  const st::pread_reader reader = st::open_pread(path.path());
  auto groups = st::try_quant_groups(reader);
  REQUIRE(groups);
  const st::tp_plan plan = layer_plan();
  for (std::uint64_t rank = 0; rank < 2; ++rank) {
    auto requests = st::try_tp_requests(reader, plan, 2, rank);
    REQUIRE(requests);
    // The plan reads the rank's share and nothing else.
    auto share = reader.try_plan(*requests);
    REQUIRE(share);
    CHECK(share->bytes_read() == share->bytes());
    std::vector<std::vector<std::byte>> delivered(requests->size());
    std::mutex lock;
    st::load_options options;
    options.block_size = 4096;  // many pieces, several a tensor
    options.budget = 8192;
    REQUIRE(st::try_load_dequantized(
        reader, *requests, *groups, st::dtype::F32,
        [&](const st::load_piece& piece) {
      std::lock_guard<std::mutex> hold(lock);
      std::vector<std::byte>& into = delivered[piece.request];
      if (into.size() < piece.offset + piece.bytes.size()) into.resize(piece.offset + piece.bytes.size());
      std::memcpy(into.data() + piece.offset, piece.bytes.data(), piece.bytes.size());
        },
        options));
    std::size_t checked = 0;
    for (std::size_t i = 0; i < requests->size(); ++i) {
      const std::string name((*requests)[i].tensor->name);
      INFO(name << ", rank " << rank);
      const st::quant_group* group = nullptr;
      for (const st::quant_group& g : *groups)
        if (g.values == name) group = &g;
      if (group == nullptr) {
        // Scales are kept back; the norm arrives as it is.
        CHECK(delivered[i].size() == (name == "model.norm.weight" ? 8u : 0u));
        continue;
      }
      auto shape = st::try_dequantized_shape(*group, (*requests)[i]);
      REQUIRE(shape);
      std::vector<std::uint64_t> expected_shape = group->shape;
      expected_shape[cut_of(*group)] /= 2;
      CHECK(*shape == expected_shape);
      std::vector<float> got(delivered[i].size() / 4);
      for (std::size_t k = 0; k < got.size(); ++k) got[k] = test_le_float(delivered[i].data() + k * 4);
      CHECK(same_bits(got, part_of(layer.expected.at(group->weight), group->shape, cut_of(*group), 2, rank)) ==
            got.size());
      ++checked;
    }
    CHECK(checked == 4);
  }
}

TEST_CASE("quant: parts that cut a scale block, or loads without the scales, are refused by name", "[quant][tp]") {
  // 300 rows in blocks of 128: three ranks of 100 rows would share the first block.
  const std::vector<std::byte> bytes = file_of({
      {"model.layers.0.mlp.up_proj.weight", st::dtype::F8_E4M3, {300, 128}, pattern(300 * 128, 15, 0x7f)},
      {"model.layers.0.mlp.up_proj.weight_scale_inv", st::dtype::F32, {3, 1}, f32_bytes({1, 2, 3})},
  });
  const st::buffer_reader reader = st::open_buffer(bytes);
  auto groups = st::try_quant_groups(reader);
  REQUIRE(groups);
  REQUIRE(groups->size() == 1);
  const st::tp_plan plan = st::tp_plan::preset("llama");
  std::vector<std::byte> part(100 * 128 * 4);
  const auto refused = st::try_dequantize(reader, (*groups)[0], st::dtype::F32, part, plan, 3, 1);
  CHECK(test::outcome(refused) + ": " + refused.error().message() ==
        "InvalidArgument: dequantize \"model.layers.0.mlp.up_proj.weight\": rows 100 to 200 of the weight cut through "
        "its blocks of 128 (a part must hold whole blocks)");
  auto requests = st::try_tp_requests(reader, plan, 3, 0);
  REQUIRE(requests);
  const auto ignore = [](const st::load_piece&) {};
  CHECK(test::outcome(st::try_load_dequantized(reader, *requests, *groups, st::dtype::F32, ignore)) ==
        "InvalidArgument");
  // The whole weight (one rank) dequantizes, its last block partial.
  auto whole = st::try_tp_requests(reader, plan, 1, 0);
  REQUIRE(whole);
  CHECK(st::try_load_dequantized(reader, *whole, *groups, st::dtype::F32, ignore));
  // Without its scales, a weight cannot be dequantized.
  whole->erase(
      std::remove_if(whole->begin(), whole->end(),
                     [](const st::load_request& r) { return r.tensor->name != "model.layers.0.mlp.up_proj.weight"; }),
      whole->end());
  REQUIRE(whole->size() == 1);
  const auto missing = st::try_load_dequantized(reader, *whole, *groups, st::dtype::F32, ignore);
  CHECK(test::outcome(missing) + ": " + missing.error().message() ==
        "InvalidArgument: tensor \"model.layers.0.mlp.up_proj.weight\": its scale tensor "
        "\"model.layers.0.mlp.up_proj.weight_scale_inv\" is not among the requests");
}

TEST_CASE("quant: config.json's quantization_config gives FP8's block size", "[quant][sharded]") {
  auto parsed = st::quant_config::try_parse(
      R"({"architectures": ["DeepseekV3ForCausalLM"], "quantization_config": {"activation_scheme": "dynamic",
          "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [64, 32]}, "vocab_size": 129280})");
  REQUIRE(parsed);
  CHECK(parsed->method == "fp8");
  CHECK(parsed->fp8_block == std::array<std::uint64_t, 2>{64, 32});
  auto plain = st::quant_config::try_parse(R"({"hidden_size": 4096, "rope_scaling": {"type": "linear"}})");
  REQUIRE(plain);
  CHECK(plain->method.empty());
  CHECK(plain->fp8_block == std::array<std::uint64_t, 2>{128, 128});
  auto message = [](std::string_view json) {
    auto config = st::quant_config::try_parse(json);
    return config ? std::string("accepted") : test::outcome(config) + ": " + config.error().message();
  };
  CHECK(message(R"({"quantization_config": {"weight_block_size": [128]}})") ==
        "InvalidArgument: config.json: weight_block_size must be two integers of at least 1 (at config.json byte 51)");
  CHECK(message(R"({"quantization_config": {"weight_block_size": [0, 128]}})") ==
        "InvalidArgument: config.json: weight_block_size must be two integers of at least 1 (at config.json byte 48)");
  CHECK(message(R"({"quantization_config": "fp8"})") ==
        "InvalidArgument: config.json: quantization_config must be an object (at config.json byte 24)");
  CHECK(message("[1]") == "InvalidArgument: config.json: config.json must be a JSON object (at config.json byte 0)");

  // Beside a model: a block of 64 x 64 makes a [256, 128] weight's scale_inv [4, 2].
  test::temp_directory dir;
  const std::vector<std::byte> bytes =
      file_of({{"a.weight", st::dtype::F8_E4M3, {256, 128}, pattern(256 * 128, 16, 0x7f)},
               {"a.weight_scale_inv", st::dtype::F32, {4, 2}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8})}});
  test::write_text(dir.path + "/model.safetensors",
                   std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  const st::model_reader model = st::open_model(dir.path);
  CHECK(test::outcome(st::try_quant_groups(model, st::read_quant_config(dir.path).fp8_block)) == "InvalidArgument");
  test::write_text(dir.path + "/config.json", R"({"quantization_config": {"weight_block_size": [64, 64]}})");
  auto config = st::try_read_quant_config(dir.path + "/model.safetensors");
  REQUIRE(config);
  auto groups = st::try_quant_groups(model, config->fp8_block);
  REQUIRE(groups);
  REQUIRE(groups->size() == 1);
  CHECK((*groups)[0].block == std::array<std::uint64_t, 2>{64, 64});
}
