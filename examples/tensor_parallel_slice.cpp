// Loads one rank's share of every 2-d weight for tensor parallelism: rank R of N takes rows
// [R*rows/N, (R+1)*rows/N), converted to float. Row blocks are contiguous: no copy until the
// conversion. Usage: example_tensor_parallel_slice FILE.safetensors RANK WORLD_SIZE

#include <safetensors/safetensors.hpp>

#include <cstdlib>
#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " FILE.safetensors RANK WORLD_SIZE\n";
    return 1;
  }
  const std::uint64_t rank = std::strtoull(argv[2], nullptr, 10);
  const std::uint64_t world = std::strtoull(argv[3], nullptr, 10);
  if (world == 0 || rank >= world) {
    std::cerr << "RANK must be below WORLD_SIZE\n";
    return 1;
  }
  auto reader = safetensors::try_open(argv[1]);
  if (!reader) {
    std::cerr << reader.error().to_string() << '\n';
    return 1;
  }
  for (const safetensors::tensor_info& info : reader->tensors()) {
    if (info.shape.size() != 2 || safetensors::dtype_bits(info.dtype) % 8 != 0 || info.dtype == safetensors::dtype::C64)
      continue;
    const std::uint64_t rows = info.shape[0];
    auto slice = reader->try_slice(info.name, {safetensors::range(rank * rows / world, (rank + 1) * rows / world)});
    if (!slice) {
      std::cerr << slice.error().to_string() << '\n';
      return 1;
    }
    std::vector<float> local(static_cast<std::size_t>(slice->element_count()));
    if (auto copied = slice->try_copy_to(safetensors::span<float>(local)); !copied) {
      std::cerr << copied.error().to_string() << '\n';
      return 1;
    }
    std::cout << info.name << ": rows " << rank * rows / world << ".." << (rank + 1) * rows / world << " of " << rows
              << (slice->contiguous() ? " (one contiguous run)" : "") << ", " << local.size() << " floats\n";
  }
  return 0;
}
