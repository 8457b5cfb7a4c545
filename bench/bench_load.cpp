// Loading a 2 GiB file of 200 tensors: a mapped reader touching every byte next to a raw mmap +
// sum, and load_into next to raw read() in 1 MiB blocks into a buffer already faulted in; warm
// (file in the page cache) and cold (evicted with posix_fadvise before each iteration).
#include "bench_support.hpp"

#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/mman.h>

namespace {

constexpr std::size_t tensor_count = 200;
constexpr std::uint64_t elements_per_tensor = 2684354;  // F32: 200 tensors make 2 GiB

// The file, written once per process through the library's writer.
const std::string& model_path() {
  static const std::string path = [] {
    std::string target = bench::temp_directory() + "/load.safetensors";
    std::vector<safetensors::tensor_declaration> declarations;
    for (std::size_t i = 0; i < tensor_count; ++i)
      declarations.push_back(
          {"layers." + std::to_string(i) + ".weight", safetensors::dtype::F32, {elements_per_tensor}});
    auto writer = safetensors::make_file_writer(target, std::move(declarations));
    for (const auto& entry : writer.layout().entries()) {
      writer.produce(entry.declaration.name, [](safetensors::span<std::byte> piece, std::uint64_t offset) {
        for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = static_cast<std::byte>((offset + i) * 131 % 251);
      });
    }
    writer.finish();
    return target;
  }();
  return path;
}

std::uint64_t file_size() {
  return safetensors::open_pread(model_path()).data_start() + tensor_count * elements_per_tensor * 4;
}

// Sum of the bytes as 64-bit words, the same loop for every case so that it costs the same.
std::uint64_t sum_words(const std::byte* bytes, std::size_t size) {
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    sum += word;
  }
  for (; i < size; ++i) sum += std::to_integer<std::uint64_t>(bytes[i]);
  return sum;
}

void evict(benchmark::State& state) {
  state.PauseTiming();
  int fd = ::open(model_path().c_str(), O_RDONLY | O_CLOEXEC);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  state.ResumeTiming();
}

void warm_up() {
  int fd = ::open(model_path().c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<char> block(1 << 20);
  while (::read(fd, block.data(), block.size()) > 0) {
  }
  ::close(fd);
}

// A destination for the whole data buffer, faulted in before timing.
std::vector<std::byte>& destination() {
  static std::vector<std::byte> buffer(tensor_count * elements_per_tensor * 4, std::byte{1});
  return buffer;
}

void raw_mmap_sum(benchmark::State& state, bool cold) {
  const std::uint64_t size = file_size();
  if (!cold) warm_up();
  for (auto _ : state) {
    if (cold) evict(state);
    int fd = ::open(model_path().c_str(), O_RDONLY | O_CLOEXEC);
    void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    benchmark::DoNotOptimize(sum_words(static_cast<const std::byte*>(base), size));
    ::munmap(base, size);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}

void mapped_touch(benchmark::State& state, bool cold) {
  const std::uint64_t size = file_size();
  if (!cold) warm_up();
  for (auto _ : state) {
    if (cold) evict(state);
    auto reader = safetensors::try_open(model_path());
    if (!reader) {
      state.SkipWithError("open failed");
      break;
    }
    std::uint64_t sum = 0;
    for (const auto& info : reader->tensors()) {
      auto bytes = reader->view(info).bytes;
      sum += sum_words(bytes.data(), bytes.size());
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}

void raw_read(benchmark::State& state, bool cold) {
  const std::uint64_t size = file_size();
  auto& buffer = destination();
  if (!cold) warm_up();
  for (auto _ : state) {
    if (cold) evict(state);
    int fd = ::open(model_path().c_str(), O_RDONLY | O_CLOEXEC);
    std::size_t done = 0;
    ssize_t got = 0;
    ::lseek(fd, static_cast<off_t>(size - buffer.size()), SEEK_SET);
    while (done < buffer.size() &&
           (got = ::read(fd, buffer.data() + done, std::min<std::size_t>(1 << 20, buffer.size() - done))) > 0)
      done += static_cast<std::size_t>(got);
    ::close(fd);
    if (done != buffer.size()) state.SkipWithError("short read");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buffer.size()));
}

void load_into(benchmark::State& state, bool cold) {
  auto& buffer = destination();
  if (!cold) warm_up();
  safetensors::load_options options;
  options.threads = static_cast<unsigned>(state.range(0));
  for (auto _ : state) {
    if (cold) evict(state);
    auto reader = safetensors::try_open_pread(model_path());
    if (!reader) {
      state.SkipWithError("open failed");
      break;
    }
    std::vector<safetensors::load_request> requests;
    for (const auto& info : reader->tensors())
      requests.push_back({&info, safetensors::span<std::byte>(buffer.data() + info.data_offsets[0], info.byte_size())});
    if (!reader->try_load_into(requests, options)) state.SkipWithError("load failed");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * buffer.size()));
}

}  // namespace

BENCHMARK_CAPTURE(raw_mmap_sum, warm, false)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(mapped_touch, warm, false)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(raw_read, warm, false)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_into, warm, false)->Arg(1)->Arg(2)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(raw_read, cold, true)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(load_into, cold, true)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(raw_mmap_sum, cold, true)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(mapped_touch, cold, true)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
