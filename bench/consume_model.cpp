// `write DIR` writes the 4-shard transformer model of transformer_model.hpp (about 2 GiB) into DIR;
// `load PATH [BUDGET_MIB]` opens the model at PATH over pread shards and reads every tensor
// through a consumer under a staging budget (default 64 MiB). Run `load` under `/usr/bin/time -v`
// to see that peak memory stays near the budget whatever the model's size.
#include "transformer_model.hpp"

#include <atomic>
#include <chrono>
#include <cstring>

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "write") == 0) {
    bench::write_transformer_model(argv[2]);
    std::printf("wrote the model to %s\n", argv[2]);
    return 0;
  }
  if ((argc != 3 && argc != 4) || std::strcmp(argv[1], "load") != 0) {
    std::fprintf(stderr, "usage: %s write DIR | load PATH [BUDGET_MIB]\n", argv[0]);
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  auto model = safetensors::try_open_model_pread(argv[2]);
  if (!model) {
    std::fprintf(stderr, "%s\n", model.error().to_string().c_str());
    return 1;
  }
  std::vector<safetensors::load_request> requests;
  for (const safetensors::model_entry& entry : model->tensor_names()) {
    auto request = model->try_request(entry.name);
    if (!request) {
      std::fprintf(stderr, "%s\n", request.error().to_string().c_str());
      return 1;
    }
    requests.push_back(std::move(*request));
  }
  safetensors::load_options options;
  options.budget = (argc == 4 ? std::strtoull(argv[3], nullptr, 10) : 64) << 20;
  // A consumer that reads every byte, as an upload would.
  std::atomic<std::uint64_t> received{0}, checksum{0};
  auto loaded = model->try_load(
      requests,
      [&](const safetensors::load_piece& piece) {
    std::uint64_t sum = 0;
    for (std::byte b : piece.bytes) sum += std::to_integer<std::uint64_t>(b);
    checksum += sum;
    received += piece.bytes.size();
      },
      options);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().to_string().c_str());
    return 1;
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("%zu tensors, %llu bytes (byte sum %llu) in %.3f s under a budget of %llu bytes\n", requests.size(),
              static_cast<unsigned long long>(received.load()), static_cast<unsigned long long>(checksum.load()),
              took.count(), static_cast<unsigned long long>(options.budget));
  return 0;
}
