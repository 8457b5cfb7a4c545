// Streams a checkpoint of any size to disk in constant memory: the header is written first, then
// each tensor is produced piece by piece (here, a BF16 ramp computed on the fly).
// Usage: example_stream_large_file OUT.safetensors [MIB]

#include <safetensors/safetensors.hpp>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " OUT.safetensors [MIB, default 64]\n";
    return 1;
  }
  const std::uint64_t mebibytes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 64;
  const std::uint64_t elements = mebibytes * (1 << 20) / 2 / 4;  // four BF16 tensors
  std::vector<safetensors::tensor_declaration> tensors;
  for (int layer = 0; layer < 4; ++layer)
    tensors.push_back({"layers." + std::to_string(layer) + ".weight", safetensors::dtype::BF16, {elements}});

  auto writer = safetensors::try_make_file_writer(argv[1], std::move(tensors));
  if (!writer) {
    std::cerr << writer.error().to_string() << '\n';
    return 1;
  }
  for (const auto& entry : writer->layout().entries()) {
    // Each piece is at most 1 MiB, whatever the tensor's size.
    auto produced =
        writer->try_produce(entry.declaration.name, [](safetensors::span<std::byte> piece, std::uint64_t offset) {
          for (std::size_t i = 0; i + 1 < piece.size(); i += 2) {
            const float value = static_cast<float>((offset + i) / 2 % 1024) / 1024.0f;
            const safetensors::bfloat16 bits = safetensors::bfloat16::from_float(value);
            piece[i] = static_cast<std::byte>(bits.bits & 0xff);
            piece[i + 1] = static_cast<std::byte>(bits.bits >> 8);
          }
        });
    if (!produced) {
      std::cerr << produced.error().to_string() << '\n';
      return 1;
    }
  }
  // Until finish() renames it into place, the file exists only under a temporary name.
  if (auto finished = writer->try_finish(); !finished) {
    std::cerr << finished.error().to_string() << '\n';
    return 1;
  }
  std::cout << "wrote " << writer->layout().file_size() << " bytes to " << argv[1] << '\n';
  return 0;
}
