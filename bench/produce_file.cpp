// Writes a file of GIB gibibytes (200 F32 tensors) to PATH from a producer callback: the data is
// made on the fly, never held whole. Run under `/usr/bin/time -v` to see that peak memory stays
// bounded whatever the file's size.
#include <safetensors/safetensors.hpp>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PATH GIB\n", argv[0]);
    return 2;
  }
  const std::uint64_t total = std::strtoull(argv[2], nullptr, 10) << 30;
  const std::uint64_t tensor_count = 200;
  const std::uint64_t elements = total / tensor_count / 4;
  std::vector<safetensors::tensor_declaration> declarations;
  for (std::uint64_t i = 0; i < tensor_count; ++i)
    declarations.push_back({"layers." + std::to_string(i) + ".weight", safetensors::dtype::F32, {elements}});

  auto writer = safetensors::try_make_file_writer(argv[1], std::move(declarations));
  if (!writer) {
    std::fprintf(stderr, "%s\n", writer.error().to_string().c_str());
    return 1;
  }
  for (const auto& entry : writer->layout().entries()) {
    auto produced =
        writer->try_produce(entry.declaration.name, [](safetensors::span<std::byte> piece, std::uint64_t offset) {
          for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = static_cast<std::byte>((offset + i) * 131 % 251);
        });
    if (!produced) {
      std::fprintf(stderr, "%s\n", produced.error().to_string().c_str());
      return 1;
    }
  }
  if (auto finished = writer->try_finish(); !finished) {
    std::fprintf(stderr, "%s\n", finished.error().to_string().c_str());
    return 1;
  }
  std::printf("wrote %llu bytes to %s\n", static_cast<unsigned long long>(writer->layout().file_size()), argv[1]);
  return 0;
}
