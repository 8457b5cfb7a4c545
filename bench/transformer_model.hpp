// A transformer-shaped model of 2 GiB in 4 shards (TinyLlama's widths: hidden 2048, MLP 5632,
// vocabulary 32000; KV projections of 512 rows; 18 layers), shared by the model benchmarks and
// the peak-RSS program. Embeddings, norms and the head are F32, the layers' matrices BF16.
#pragma once

#include <safetensors/model.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

inline std::vector<safetensors::tensor_declaration> transformer_declarations() {
  using safetensors::dtype;
  constexpr std::uint64_t hidden = 2048, intermediate = 5632, kv = 512, vocabulary = 32000, layers = 18;
  std::vector<safetensors::tensor_declaration> declarations;
  declarations.push_back({"model.embed_tokens.weight", dtype::F32, {vocabulary, hidden}});
  for (std::uint64_t l = 0; l < layers; ++l) {
    const std::string layer = "model.layers." + std::to_string(l) + ".";
    declarations.push_back({layer + "input_layernorm.weight", dtype::F32, {hidden}});
    declarations.push_back({layer + "self_attn.q_proj.weight", dtype::BF16, {hidden, hidden}});
    declarations.push_back({layer + "self_attn.k_proj.weight", dtype::BF16, {kv, hidden}});
    declarations.push_back({layer + "self_attn.v_proj.weight", dtype::BF16, {kv, hidden}});
    declarations.push_back({layer + "self_attn.o_proj.weight", dtype::BF16, {hidden, hidden}});
    declarations.push_back({layer + "post_attention_layernorm.weight", dtype::F32, {hidden}});
    declarations.push_back({layer + "mlp.gate_proj.weight", dtype::BF16, {intermediate, hidden}});
    declarations.push_back({layer + "mlp.up_proj.weight", dtype::BF16, {intermediate, hidden}});
    declarations.push_back({layer + "mlp.down_proj.weight", dtype::BF16, {hidden, intermediate}});
  }
  declarations.push_back({"model.norm.weight", dtype::F32, {hidden}});
  declarations.push_back({"lm_head.weight", dtype::F32, {vocabulary, hidden}});
  return declarations;
}

/// The bytes of every tensor `declarations` declare.
inline std::uint64_t declared_bytes(const std::vector<safetensors::tensor_declaration>& declarations) {
  std::uint64_t total = 0;
  for (const auto& d : declarations) {
    std::uint64_t elements = 1;
    for (std::uint64_t extent : d.shape) elements *= extent;
    total += elements * safetensors::dtype_bits(d.dtype) / 8;
  }
  return total;
}

/// Writes the model into `directory` (which must hold no model) as 4 shards and an index,
/// flushed to disk so that cold runs can evict every page. Aborts on failure: a benchmark
/// without its input has nothing to measure.
inline void write_transformer_model(const std::string& directory) {
  auto declarations = transformer_declarations();
  const std::uint64_t total = declared_bytes(declarations);
  safetensors::shard_options options;
  // Whole layers do not split the model into exact quarters: a tenth of a quarter of slack.
  options.max_shard_size = total / 4 + total / 40;
  options.write.sync = true;
  auto writer = safetensors::try_make_sharded_writer(directory, std::move(declarations), options);
  if (!writer || writer->file_names().size() != 4) {
    std::fprintf(stderr, "cannot plan the 4-shard model in %s\n", directory.c_str());
    std::abort();
  }
  for (const auto& d : transformer_declarations()) {
    auto produced = writer->try_produce(d.name, [](safetensors::span<std::byte> piece, std::uint64_t offset) {
      for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = static_cast<std::byte>((offset + i) * 131 % 251);
    });
    if (!produced) {
      std::fprintf(stderr, "%s\n", produced.error().to_string().c_str());
      std::abort();
    }
  }
  if (auto finished = writer->try_finish(); !finished) {
    std::fprintf(stderr, "%s\n", finished.error().to_string().c_str());
    std::abort();
  }
}

}  // namespace bench
