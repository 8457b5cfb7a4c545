// Tensor-parallel loads of quantized models: TinyLlama's shapes (transformer_model.hpp) with every
// linear layer quantized, as NVFP4 (compressed-tensors: weight_packed, weight_scale,
// weight_global_scale) or as block-scaled FP8 (weight, weight_scale_inv, blocks of 128x128);
// embeddings and the head BF16, norms F32. About 0.6 GB (NVFP4) and 1.1 GB (FP8), written once
// per process, warm.
// - quant_rank_load/S/R: rank 1 of R under the llama plan through a consumer that does nothing,
//   beside R = 1 (the whole model) in the same run. Counters: share (the rank's bytes over the
//   model's), read_over_share (the plan's bytes read over the rank's bytes: the goal is at most
//   1 % over, plus one block), and the time ratio is read off the two rows.
// - quant_rank_dequantized/S/R: the same load with try_load_dequantized to BF16: the weights'
//   bytes dequantized as they arrive, the scales loaded first.
#include "bench_support.hpp"
#include "transformer_model.hpp"

#include <safetensors/model.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

enum scheme : std::int64_t { nvfp4 = 0, fp8 = 1 };

std::vector<safetensors::tensor_declaration> quantized_declarations(scheme kind) {
  using safetensors::dtype;
  constexpr std::uint64_t hidden = 2048, intermediate = 5632, kv = 512, vocabulary = 32000, layers = 18;
  std::vector<safetensors::tensor_declaration> declarations;
  auto linear = [&](const std::string& name, std::uint64_t out, std::uint64_t in) {
    if (kind == nvfp4) {
      declarations.push_back({name + ".weight_packed", dtype::U8, {out, in / 2}});
      declarations.push_back({name + ".weight_scale", dtype::F8_E4M3, {out, in / 16}});
      declarations.push_back({name + ".weight_global_scale", dtype::F32, {1}});
    } else {
      declarations.push_back({name + ".weight", dtype::F8_E4M3, {out, in}});
      declarations.push_back({name + ".weight_scale_inv", dtype::F32, {(out + 127) / 128, (in + 127) / 128}});
    }
  };
  declarations.push_back({"model.embed_tokens.weight", dtype::BF16, {vocabulary, hidden}});
  for (std::uint64_t l = 0; l < layers; ++l) {
    const std::string layer = "model.layers." + std::to_string(l) + ".";
    declarations.push_back({layer + "input_layernorm.weight", dtype::F32, {hidden}});
    linear(layer + "self_attn.q_proj", hidden, hidden);
    linear(layer + "self_attn.k_proj", kv, hidden);
    linear(layer + "self_attn.v_proj", kv, hidden);
    linear(layer + "self_attn.o_proj", hidden, hidden);
    declarations.push_back({layer + "post_attention_layernorm.weight", dtype::F32, {hidden}});
    linear(layer + "mlp.gate_proj", intermediate, hidden);
    linear(layer + "mlp.up_proj", intermediate, hidden);
    linear(layer + "mlp.down_proj", hidden, intermediate);
  }
  declarations.push_back({"model.norm.weight", dtype::F32, {hidden}});
  declarations.push_back({"lm_head.weight", dtype::BF16, {vocabulary, hidden}});
  return declarations;
}

// The model of `kind` in 2 shards, written once. Scales and floats hold small finite values (an
// E4M3 byte below 0x78, an F32 1.0), values any bytes.
const std::string& quantized_model(scheme kind) {
  static std::map<std::int64_t, std::string> written;
  auto found = written.find(kind);
  if (found != written.end()) return found->second;
  const std::string directory = bench::temp_directory() + (kind == nvfp4 ? "/nvfp4" : "/fp8");
  std::vector<safetensors::tensor_declaration> declarations = quantized_declarations(kind);
  const std::uint64_t total = bench::declared_bytes(declarations);
  safetensors::shard_options options;
  options.max_shard_size = total / 2 + total / 20;
  auto writer = safetensors::try_make_sharded_writer(directory, declarations, options);
  if (!writer) std::abort();
  for (const auto& d : declarations) {
    const safetensors::dtype type = d.dtype;
    auto produced = writer->try_produce(d.name, [type](safetensors::span<std::byte> piece, std::uint64_t offset) {
      for (std::size_t i = 0; i < piece.size(); ++i) {
        const std::uint64_t at = offset + i;
        if (type == safetensors::dtype::F32) {
          piece[i] = std::byte{at % 4 == 3 ? std::uint8_t{0x3f} : at % 4 == 2 ? std::uint8_t{0x80} : std::uint8_t{0}};
        } else if (type == safetensors::dtype::F8_E4M3) {
          piece[i] = static_cast<std::byte>(at * 131 % 0x78);
        } else {
          piece[i] = static_cast<std::byte>(at * 131 % 251);
        }
      }
    });
    if (!produced) std::abort();
  }
  if (!writer->try_finish()) std::abort();
  return written.emplace(kind, directory).first->second;
}

std::uint64_t payload_of(const safetensors::pread_model_reader& model) {
  std::uint64_t bytes = 0;
  for (const safetensors::model_entry& entry : model.tensor_names()) bytes += model.info(entry.name).byte_size();
  return bytes;
}

void quant_rank_load(benchmark::State& state) {
  const auto kind = static_cast<scheme>(state.range(0));
  const std::uint64_t ranks = static_cast<std::uint64_t>(state.range(1));
  const std::string& directory = quantized_model(kind);
  double share = 0, read_over_share = 0;
  for (auto _ : state) {
    auto model = safetensors::try_open_model_pread(directory);
    if (!model) return state.SkipWithError("open failed");
    auto requests =
        safetensors::try_tp_requests(*model, safetensors::tp_plan::preset("llama"), ranks, ranks > 1 ? 1 : 0);
    if (!requests) return state.SkipWithError(requests.error().message().c_str());
    auto plan = model->try_plan(*requests, safetensors::load_options{});
    if (!plan) return state.SkipWithError(plan.error().message().c_str());
    if (!plan->try_execute([](const safetensors::load_piece& piece) { benchmark::DoNotOptimize(piece.bytes.data()); }))
      return state.SkipWithError("load failed");
    share = static_cast<double>(plan->bytes()) / static_cast<double>(payload_of(*model));
    read_over_share = static_cast<double>(plan->bytes_read()) / static_cast<double>(plan->bytes());
    state.SetBytesProcessed(state.bytes_processed() + static_cast<std::int64_t>(plan->bytes()));
  }
  state.counters["share"] = share;
  state.counters["read_over_share"] = read_over_share;
}

void quant_rank_dequantized(benchmark::State& state) {
  const auto kind = static_cast<scheme>(state.range(0));
  const std::uint64_t ranks = static_cast<std::uint64_t>(state.range(1));
  const std::string& directory = quantized_model(kind);
  for (auto _ : state) {
    auto model = safetensors::try_open_model_pread(directory);
    if (!model) return state.SkipWithError("open failed");
    auto groups = safetensors::try_quant_groups(*model);
    if (!groups) return state.SkipWithError(groups.error().message().c_str());
    auto requests =
        safetensors::try_tp_requests(*model, safetensors::tp_plan::preset("llama"), ranks, ranks > 1 ? 1 : 0);
    if (!requests) return state.SkipWithError(requests.error().message().c_str());
    std::uint64_t delivered = 0;
    std::mutex lock;
    auto loaded = safetensors::try_load_dequantized(*model, *requests, *groups, safetensors::dtype::BF16,
                                                    [&](const safetensors::load_piece& piece) {
      std::lock_guard<std::mutex> hold(lock);
      delivered += piece.bytes.size();
    });
    if (!loaded) return state.SkipWithError(loaded.error().message().c_str());
    state.SetBytesProcessed(state.bytes_processed() + static_cast<std::int64_t>(delivered));
  }
}

}  // namespace

BENCHMARK(quant_rank_load)
    ->ArgsProduct({{nvfp4, fp8}, {1, 4}})
    ->ArgNames({"fp8", "ranks"})
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(quant_rank_dequantized)
    ->ArgsProduct({{nvfp4, fp8}, {1, 4}})
    ->ArgNames({"fp8", "ranks"})
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
