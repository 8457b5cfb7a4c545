// The command line's argument types: unsigned numbers, sizes, alignments, slices, and the choice
// of a tensor by name or position.
#pragma once

#include <safetensors/safetensors.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cli {

// A command line that parsed but does not make sense (a tensor neither named nor numbered):
// the same usage error, exit 64, as one CLI11 refuses.
class usage_failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Accepts only a decimal integer without a sign (CLI11 would otherwise read "-1" as 2^64 - 1
// and "010" as octal).
extern const CLI::Validator unsigned_decimal;

// A whole number from `low` to `high` (a decimal integer, nothing else), refused in the tool's own
// words: "'0': the number of ranks must be at least 1".
CLI::Validator counted(const std::string& what, std::uint64_t low,
                       std::uint64_t high = std::numeric_limits<std::uint64_t>::max());

// A size: an integer and an optional unit, B, KB, MB, GB, TB (powers of 1000, as the Hugging Face
// tools count: "5GB" is 5,000,000,000) or KiB, MiB, GiB, TiB (powers of 1024), spelt exactly so:
// transformers reads a lower-case "b" as bits ("5Gb"), so a case that could mean either is
// refused rather than guessed. The option's text becomes its number of bytes, at least 1.
extern const CLI::Validator byte_size;

// A data alignment the writer accepts (the writer itself is asked).
extern const CLI::Validator data_alignment;

// A slice in Python's syntax, "2:6,:" or "-1,::2": per dimension an index or
// [start]:[stop][:step], negative indices counting from the end, the step at least 1.
extern const CLI::Validator slice_syntax;

// The dimensions of a slice that slice_syntax accepted.
std::vector<safetensors::slice_dim> parse_slice(std::string_view text);

// Which tensor a command works on: a name, or the position in inspect's listing (data order for
// a file, name order for a model), for names a command line cannot hold (NUL) or that read as
// options.
struct tensor_choice {
  std::string name;
  std::uint64_t index = 0;
  const CLI::Option* name_option = nullptr;
  const CLI::Option* index_option = nullptr;

  bool by_name() const { return name_option->count() > 0; }
  bool by_index() const { return index_option->count() > 0; }
  bool any() const { return by_name() || by_index(); }
};

// Adds the TENSOR argument (described by `name_help`) and --index K, which exclude each other.
void add_tensor_choice(CLI::App& command, tensor_choice& choice, const std::string& name_help);

}  // namespace cli
