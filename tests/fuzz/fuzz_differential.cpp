// Differential fuzzing: the library's header scanner and the independent nlohmann_json reading of
// tests/reference_parser.hpp must agree on every input: the same error kind, or the same tensors
// and metadata.
#include "../differential.hpp"
#include "fuzz_check.hpp"

#include <cstdint>
#include <cstdio>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string found = differential::difference(data, size);
  if (!found.empty()) std::fprintf(stderr, "the two readings differ: %s\n", found.c_str());
  FUZZ_CHECK(found.empty());
  return 0;
}
