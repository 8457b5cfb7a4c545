// Writing a 2 GiB file of 200 tensors: the streaming writer (chunks, and a producer callback)
// next to plain write() of the same bytes, in the same run. Files go to bench::temp_directory().
#include "bench_support.hpp"

#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>

#include <fcntl.h>

namespace {

constexpr std::size_t tensor_count = 200;
constexpr std::uint64_t elements_per_tensor = 2684354;  // F32: 10,737,416 bytes; 200 of them: 2 GiB
constexpr std::uint64_t tensor_bytes = elements_per_tensor * 4;

std::vector<safetensors::tensor_declaration> declarations() {
  std::vector<safetensors::tensor_declaration> result;
  for (std::size_t i = 0; i < tensor_count; ++i)
    result.push_back(
        {"model.layers." + std::to_string(i) + ".mlp.weight", safetensors::dtype::F32, {elements_per_tensor}});
  return result;
}

const std::vector<std::byte>& tensor_data() {
  static const std::vector<std::byte> data = [] {
    std::vector<std::byte> bytes(tensor_bytes);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 131 % 251);
    return bytes;
  }();
  return data;
}

std::string target_path() { return bench::temp_directory() + "/write.safetensors"; }

// Every iteration starts with no dirty pages left by the one before, so that background
// writeback of an earlier file does not slow down whichever case runs next.
void finish_iteration(benchmark::State& state) {
  state.PauseTiming();
  ::unlink(target_path().c_str());
  ::sync();
  state.ResumeTiming();
}

void report(benchmark::State& state, std::uint64_t file_size) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * file_size));
}

// The yardstick: the same bytes with write(), 200 tensor-sized writes after the header.
void raw_write(benchmark::State& state) {
  auto layout = safetensors::file_layout::try_make(declarations()).value();
  const auto& data = tensor_data();
  for (auto _ : state) {
    int fd = ::open(target_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && ::write(fd, layout.header().data(), layout.header().size()) ==
                             static_cast<ssize_t>(layout.header().size());
    for (std::size_t i = 0; ok && i < tensor_count; ++i) {
      std::size_t done = 0;
      while (ok && done < data.size()) {
        ssize_t wrote = ::write(fd, data.data() + done, data.size() - done);
        ok = wrote > 0;
        done += ok ? static_cast<std::size_t>(wrote) : 0;
      }
    }
    if (fd < 0 || ::close(fd) != 0 || !ok) state.SkipWithError("write failed");
    finish_iteration(state);
  }
  report(state, layout.file_size());
}

// Writes the file through the streaming writer, each tensor by `write_tensor(writer, name)`.
// A failure ends the benchmark with an error rather than timing a broken writer.
template <class WriteTensor>
void streaming_write(benchmark::State& state, WriteTensor write_tensor) {
  std::uint64_t file_size = 0;
  for (auto _ : state) {
    auto writer = safetensors::try_make_file_writer(target_path(), declarations());
    if (!writer) {
      state.SkipWithError(writer.error().to_string().c_str());
      break;
    }
    bool written = true;
    for (const auto& entry : writer->layout().entries())
      written = written && write_tensor(*writer, entry.declaration.name);
    if (!written || !writer->try_finish()) {
      state.SkipWithError("write failed");
      break;
    }
    file_size = writer->layout().file_size();
    finish_iteration(state);
  }
  report(state, file_size);
}

// The streaming writer, each tensor handed over whole (it goes straight to pwrite).
void stream_write(benchmark::State& state) {
  streaming_write(state, [](safetensors::file_writer& writer, const std::string& name) {
    return static_cast<bool>(writer.try_write(name, tensor_data()));
  });
}

// The streaming writer fed by a producer callback, 1 MiB at a time: data made on the fly.
void produce_write(benchmark::State& state) {
  streaming_write(state, [](safetensors::file_writer& writer, const std::string& name) {
    const auto& data = tensor_data();
    return static_cast<bool>(writer.try_produce(name, [&](safetensors::span<std::byte> piece, std::uint64_t offset) {
      std::memcpy(piece.data(), data.data() + offset, piece.size());
    }));
  });
}

}  // namespace

BENCHMARK(raw_write)->Iterations(1)->Repetitions(7)->ReportAggregatesOnly(true)->UseRealTime()->Unit(
    benchmark::kMillisecond);
BENCHMARK(stream_write)
    ->Iterations(1)
    ->Repetitions(7)
    ->ReportAggregatesOnly(true)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(produce_write)
    ->Iterations(1)
    ->Repetitions(7)
    ->ReportAggregatesOnly(true)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
