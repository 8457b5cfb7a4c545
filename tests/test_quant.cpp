// Quantized checkpoints: NVFP4 (compressed-tensors and ModelOpt), MXFP4 and block-scaled FP8
// groups recognised in generated files and models, dequantized to F32 and BF16 and compared bit
// for bit with values computed here independently (E2M1, E4M3 and E8M0 decoded by their
// definitions, the formulas in their order), and the layouts that do not fit refused by name.
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
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

std::vector<std::byte> f32_bytes(const std::vector<float>& values) {
  std::vector<std::byte> bytes(values.size() * 4);
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + static_cast<std::size_t>(b)] = static_cast<std::byte>(bits >> (8 * b));
  }
  return bytes;
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
