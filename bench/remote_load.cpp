// Remote reading, measured as a whole process beside curl (bench/remote.sh runs both against
// nginx on 127.0.0.1):
//   safetensors-remote-load write DIRECTORY
//       writes the inputs: DIRECTORY/model (the 4-shard transformer of 2 GiB) and
//       DIRECTORY/big.safetensors (the same tensors in one file)
//   safetensors-remote-load open URL
//       opens a remote file (its header only) and prints the requests and bytes it took
//   safetensors-remote-load load URL THREADS
//       reads every tensor of a remote file or model (an index URL) on THREADS connections
//       through a consumer that drops the bytes (as curl -o /dev/null does), under a budget of
//       256 MiB, and prints bytes, seconds and GB/s
#include "transformer_model.hpp"

#include <safetensors/remote.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace {

int fail(const safetensors::error& error) {
  std::fprintf(stderr, "%s\n", error.to_string().c_str());
  return 1;
}

int write_inputs(const std::string& directory) {
  bench::write_transformer_model(directory + "/model");
  std::vector<safetensors::tensor_declaration> declarations = bench::transformer_declarations();
  auto writer = safetensors::try_make_file_writer(directory + "/big.safetensors", declarations);
  if (!writer) return fail(writer.error());
  for (const auto& d : declarations) {
    auto produced = writer->try_produce(d.name, [](safetensors::span<std::byte> piece, std::uint64_t offset) {
      for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = static_cast<std::byte>((offset + i) * 131 % 251);
    });
    if (!produced) return fail(produced.error());
  }
  if (auto finished = writer->try_finish(); !finished) return fail(finished.error());
  return 0;
}

int open_header(const std::string& url) {
  auto reader = safetensors::try_open_remote(url);
  if (!reader) return fail(reader.error());
  const safetensors::remote_statistics cost = reader->storage().statistics();
  std::printf("tensors %zu header_length %llu requests %llu bytes_received %llu\n", reader->size(),
              static_cast<unsigned long long>(reader->header_length()), static_cast<unsigned long long>(cost.requests),
              static_cast<unsigned long long>(cost.bytes_received));
  return 0;
}

template <class Source>
int load_all(const Source& source, const std::vector<std::string>& names, unsigned threads,
             std::chrono::steady_clock::time_point start) {
  std::vector<safetensors::load_request> requests;
  for (const std::string& name : names) {
    if constexpr (std::is_same_v<Source, safetensors::remote_reader>) {
      requests.emplace_back(source.find(name));
    } else {
      auto request = source.try_request(name);
      if (!request) return fail(request.error());
      requests.push_back(std::move(*request));
    }
  }
  safetensors::load_options options;
  options.threads = threads;
  options.merge_gap = 1 << 20;  // a request costs a round trip: read across small gaps
  std::uint64_t total = 0;
  std::mutex lock;
  auto count = [&](const safetensors::load_piece& piece) {
    std::lock_guard<std::mutex> guard(lock);
    total += piece.bytes.size();
  };
  if (auto loaded = source.try_load(requests, count, options); !loaded) return fail(loaded.error());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("bytes %llu seconds %.3f gb_per_s %.3f\n", static_cast<unsigned long long>(total), seconds,
              static_cast<double>(total) / seconds / 1e9);
  return 0;
}

int load(const std::string& url, unsigned threads) {
  const auto start = std::chrono::steady_clock::now();
  safetensors::remote_options options;
  options.connections = threads;
  std::vector<std::string> names;
  if (url.size() > 5 && url.compare(url.size() - 5, 5, ".json") == 0) {
    auto model = safetensors::try_open_remote_model(url, options);
    if (!model) return fail(model.error());
    for (const safetensors::model_entry& entry : model->tensor_names()) names.emplace_back(entry.name);
    return load_all(*model, names, threads, start);
  }
  auto file = safetensors::try_open_remote(url, options);
  if (!file) return fail(file.error());
  for (const safetensors::tensor_info& info : file->tensors()) names.emplace_back(info.name);
  return load_all(*file, names, threads, start);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "write" && argc == 3) return write_inputs(argv[2]);
  if (command == "open" && argc == 3) return open_header(argv[2]);
  if (command == "load" && argc == 4) return load(argv[2], static_cast<unsigned>(std::atoi(argv[3])));
  std::fprintf(stderr, "usage: %s write DIRECTORY | open URL | load URL THREADS\n", argv[0]);
  return 64;
}
