// Writes a small checkpoint with two tensors and metadata, then reads one value back.
// Usage: example_write_file OUT.safetensors

#include <safetensors/safetensors.hpp>

#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " OUT.safetensors\n";
    return 1;
  }
  std::vector<float> weight = {0.5f, -1.0f, 2.0f, 4.0f, -8.0f, 16.0f};
  std::vector<std::int64_t> positions = {0, 1, 2};
  auto as_bytes = [](const auto& values) {
    return safetensors::span<const std::byte>(reinterpret_cast<const std::byte*>(values.data()),
                                              values.size() * sizeof(values[0]));
  };
  // Values are little-endian in the file; on a little-endian host memory already is.
  auto saved = safetensors::try_save(argv[1],
                                     {{{"linear.weight", safetensors::dtype::F32, {2, 3}}, as_bytes(weight)},
                                      {{"positions", safetensors::dtype::I64, {3}}, as_bytes(positions)}},
                                     std::map<std::string, std::string>{{"format", "pt"}});
  if (!saved) {
    std::cerr << saved.error().to_string() << '\n';
    return 1;
  }
  auto reader = safetensors::try_open(argv[1]);
  if (!reader) {
    std::cerr << reader.error().to_string() << '\n';
    return 1;
  }
  std::vector<float> read_back(6);
  if (auto copied = safetensors::try_copy_to(reader->view("linear.weight"), safetensors::span<float>(read_back));
      !copied) {
    std::cerr << copied.error().to_string() << '\n';
    return 1;
  }
  std::cout << "wrote " << reader->size() << " tensors; linear.weight[1][2] = " << read_back[5] << '\n';
  return 0;
}
