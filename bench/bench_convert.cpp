// Element-wise conversion of a 64 MiB 16-bit tensor (32 Mi elements) to F32, next to memcpy.
// Throughput counts bytes written, for every benchmark alike. The baseline that the conversions
// are measured against is memcpy_destination_size: it writes the same 128 MiB a conversion writes
// (reading 128 MiB where a conversion reads 64 MiB). memcpy_source_size copies the 64 MiB source,
// for reference. The goal is conversion throughput of at least half the baseline's.
#include <safetensors/safetensors.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

namespace {

namespace st = safetensors;

constexpr std::size_t element_count = std::size_t{32} << 20;

// Varied finite values, so that no branch predictor or cache-line trick flatters a converter.
std::vector<std::byte> source_bytes(st::dtype type) {
  std::vector<std::byte> bytes(element_count * 2);
  std::uint32_t state = 12345;
  for (std::size_t i = 0; i < element_count; ++i) {
    state = state * 1664525u + 1013904223u;
    const float value = static_cast<float>(static_cast<std::int32_t>(state)) * 1e-6f;
    const std::uint16_t bits =
        type == st::dtype::BF16 ? st::bfloat16::from_float(value).bits : st::float16::from_float(value * 1e-3f).bits;
    st::detail::store_le(bytes.data() + 2 * i, bits);
  }
  return bytes;
}

void convert_to_f32(benchmark::State& state, st::dtype source_type) {
  const std::vector<std::byte> source = source_bytes(source_type);
  std::vector<std::byte> destination(element_count * 4);
  for (auto _ : state) {
    auto converted = st::try_convert(source, source_type, destination, st::dtype::F32);
    if (!converted) state.SkipWithError(converted.error().to_string().c_str());
    benchmark::DoNotOptimize(destination.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(destination.size()));
}
BENCHMARK_CAPTURE(convert_to_f32, bf16, st::dtype::BF16)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(convert_to_f32, f16, st::dtype::F16)->Unit(benchmark::kMillisecond);

void copy(benchmark::State& state, std::size_t size) {
  const std::vector<std::byte> source(size, std::byte{1});
  std::vector<std::byte> destination(size);
  for (auto _ : state) {
    std::memcpy(destination.data(), source.data(), size);
    benchmark::DoNotOptimize(destination.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(size));
}
BENCHMARK_CAPTURE(copy, memcpy_destination_size, element_count * 4)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(copy, memcpy_source_size, element_count * 2)->Unit(benchmark::kMillisecond);

}  // namespace
