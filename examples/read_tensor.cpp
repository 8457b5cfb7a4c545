// Lists the tensors of a safetensors file and shows the first bytes of the first one.
// Usage: example_read_tensor FILE.safetensors

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <cstddef>
#include <iomanip>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " FILE.safetensors\n";
    return 1;
  }
  try {
    // Maps the file and validates the whole header; tensor data is only read when viewed.
    const safetensors::mapped_reader reader = safetensors::open(argv[1]);
    for (const safetensors::tensor_info& info : reader.tensors()) {
      std::cout << info.name << "  " << safetensors::dtype_name(info.dtype) << "  [";
      for (std::size_t d = 0; d < info.shape.size(); ++d) std::cout << (d > 0 ? ", " : "") << info.shape[d];
      std::cout << "]\n";
    }
    if (reader.size() == 0) return 0;
    const safetensors::span<const std::byte> bytes = reader.view(reader.tensors()[0]).bytes;
    std::cout << "first bytes of " << reader.tensors()[0].name << ":" << std::hex << std::setfill('0');
    for (std::size_t i = 0; i < std::min<std::size_t>(bytes.size(), 8); ++i)
      std::cout << ' ' << std::setw(2) << std::to_integer<unsigned>(bytes[i]);
    std::cout << '\n';
  } catch (const safetensors::exception& error) {
    std::cerr << argv[1] << ": " << error.what() << '\n';
    return 1;
  }
  return 0;
}
