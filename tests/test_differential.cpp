// The library's scanner against the independent nlohmann reading (reference_parser.hpp): the
// whole reference corpus, and thousands of deterministic mutations of it, must give the same
// kind, and when valid the same tensors and metadata.
#include "differential.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

namespace st = safetensors;

namespace {}  // namespace

// The reference corpus: 101 files, 98 of them at most 64 KiB. A file added to the corpus (or one
// that the listing misses) changes these counts, and the tests say so.
constexpr std::size_t corpus_file_count = 101;
constexpr std::size_t small_corpus_file_count = 98;
constexpr std::size_t mutation_rounds = 60;

TEST_CASE("differential: every corpus file reads the same through both parsers", "[differential]") {
  std::size_t checked = 0;
  for (const std::string& path : test::corpus_files(std::string(SAFETENSORS_TEST_DATA) + "/reference")) {
    INFO(path);
    const std::vector<std::byte> bytes = test::read_file(path);
    CHECK(differential::difference(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) == "");
    ++checked;
  }
  CHECK(checked == corpus_file_count);
}

TEST_CASE("differential: mutated corpus files read the same through both parsers", "[differential]") {
  std::mt19937_64 random(2026);
  const std::string_view json_bytes = "{}[]\",:0123456789-.eE \\u";
  std::size_t checked = 0;
  for (const std::string& path : test::corpus_files(std::string(SAFETENSORS_TEST_DATA) + "/reference")) {
    const std::vector<std::byte> original = test::read_file(path);
    if (original.size() > 65536) continue;  // the small files give the header most of the mutations
    for (std::size_t round = 0; round < mutation_rounds; ++round) {
      std::vector<std::byte> bytes = original;
      for (int edits = 1 + static_cast<int>(random() % 3); edits > 0 && !bytes.empty(); --edits) {
        // Edits fall in the first 520 bytes: the length prefix and the start of the header.
        const std::size_t at = random() % std::min<std::size_t>(bytes.size(), 8 + 512);
        switch (random() % 5) {
          case 0: bytes[at] = static_cast<std::byte>(random()); break;  // any byte
          case 1: bytes[at] = static_cast<std::byte>(json_bytes[random() % json_bytes.size()]); break;
          case 2: bytes.erase(bytes.begin() + static_cast<std::ptrdiff_t>(at)); break;
          case 3:
            bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::byte>(random()));
            break;
          default: bytes.resize(at); break;
        }
      }
      const std::string found =
          differential::difference(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
      if (!found.empty()) {
        INFO(path << " round " << round);
        CHECK(found == "");
      }
      ++checked;
    }
  }
  CHECK(checked == small_corpus_file_count * mutation_rounds);
}
