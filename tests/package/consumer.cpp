// Opens the file named on the command line and prints its tensor count: proves the package works.
#include <safetensors/safetensors.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto reader = safetensors::try_open(argv[1]);
  if (!reader) {
    std::fprintf(stderr, "%s\n", reader.error().to_string().c_str());
    return 1;
  }
  std::printf("%zu tensors\n", reader->size());
  return 0;
}
