// The library's scanner against the independent nlohmann reading (reference_parser.hpp): the
// whole reference corpus, and thousands of deterministic mutations of it, must give the same
// kind, and when valid the same tensors and metadata.
#include "differential.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

namespace st = safetensors;

namespace {


}  // namespace

TEST_CASE("differential: every corpus file reads the same through both parsers", "[differential]") {
  for (const std::string& path : test::corpus_files(std::string(SAFETENSORS_TEST_DATA) + "/reference")) {
    INFO(path);
    const std::vector<std::byte> bytes = test::read_file(path);
    CHECK(differential::difference(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) == "");
  }
}

TEST_CASE("differential: mutated corpus files read the same through both parsers", "[differential]") {
  std::mt19937_64 random(2026);
  const std::string_view json_bytes = "{}[]\",:0123456789-.eE \\u";
  std::size_t checked = 0;
  for (const std::string& path : test::corpus_files(std::string(SAFETENSORS_TEST_DATA) + "/reference")) {
    const std::vector<std::byte> original = test::read_file(path);
    if (original.size() > 65536) continue;  // the small files give the header most of the mutations
    for (int round = 0; round < 60; ++round) {
      std::vector<std::byte> bytes = original;
      for (int edits = 1 + static_cast<int>(random() % 3); edits > 0 && !bytes.empty(); --edits) {
        // Edits fall in the first 520 bytes: the length prefix and the start of the header.
        const std::size_t at = random() % std::min<std::size_t>(bytes.size(), 8 + 512);
        switch (random() % 5) {
          case 0: bytes[at] = static_cast<std::byte>(random()); break;                                   // any byte
          case 1: bytes[at] = static_cast<std::byte>(json_bytes[random() % json_bytes.size()]); break;
          case 2: bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at)); break;
          case 3: bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::byte>(random())); break;
          default: bytes.resize(at); break;
        }
      }
      const std::string found = differential::difference(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
      if (!found.empty()) {
        INFO(path << " round " << round);
        CHECK(found == "");
      }
      ++checked;
    }
  }
  CHECK(checked > 4000);
}
