#include "arguments.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

namespace cli {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct parsed_size {
  bool well_formed = false;            // digits, then nothing or one of the units
  std::optional<std::uint64_t> bytes;  // empty when well formed but beyond 64 bits
};

parsed_size parse_size(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"", 1},
      {"B", 1},
      {"KB", 1000ULL},
      {"MB", 1000ULL * 1000},
      {"GB", 1000ULL * 1000 * 1000},
      {"TB", 1000ULL * 1000 * 1000 * 1000},
      {"KiB", 1ULL << 10},
      {"MiB", 1ULL << 20},
      {"GiB", 1ULL << 30},
      {"TiB", 1ULL << 40},
  };
  parsed_size size;
  const std::size_t digits = std::min(text.find_first_not_of("0123456789"), text.size());
  const std::string_view number = text.substr(0, digits);
  const std::string_view unit = text.substr(digits);
  const auto known = std::find_if(std::begin(units), std::end(units), [&](const auto& u) { return u.first == unit; });
  if (number.empty() || known == std::end(units)) return size;
  size.well_formed = true;
  std::uint64_t count = 0;
  const auto parsed = std::from_chars(number.data(), number.data() + number.size(), count);
  if (parsed.ec == std::errc() && count <= std::numeric_limits<std::uint64_t>::max() / known->second)
    size.bytes = count * known->second;
  return size;
}

std::string_view trimmed(std::string_view text) {
  const std::size_t first = text.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

// A slice's dimensions, or why its text is not one.
struct parsed_slice {
  std::vector<safetensors::slice_dim> dims;
  std::string problem;
};

// An index or bound: an optional sign and decimal digits, within 64 bits.
std::optional<std::int64_t> parse_integer(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const std::string_view digits = !text.empty() && text.front() == '-' ? text.substr(1) : text;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) return std::nullopt;
  std::int64_t value = 0;
  const auto parsed = std::from_chars(text.data(), text.data() + text.size(), value);
  if (parsed.ec != std::errc() || parsed.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

parsed_slice parse_slice_text(std::string_view text) {
  parsed_slice slice;
  auto refuse = [&](const std::string& problem) {
    slice.problem = "'" + std::string(text) + "' is not a slice: " + problem;
    return slice;
  };
  std::string_view rest = text;
  for (std::size_t d = 0;; ++d) {
    const std::size_t comma = rest.find(',');
    const std::string_view part = trimmed(rest.substr(0, comma));
    const std::string where = "dimension " + std::to_string(d) + " ";
    if (part.empty()) return refuse(where + "is empty (write : for all of it)");
    const std::size_t colon = part.find(':');
    if (colon == std::string_view::npos) {
      const auto index = parse_integer(part);
      if (!index) return refuse(where + "'" + std::string(part) + "' is not an integer within 64 bits");
      slice.dims.push_back(safetensors::at(*index));
    } else {
      const std::string_view start_text = trimmed(part.substr(0, colon));
      std::string_view stop_text = trimmed(part.substr(colon + 1));
      std::string_view step_text;
      if (const std::size_t second = stop_text.find(':'); second != std::string_view::npos) {
        step_text = trimmed(stop_text.substr(second + 1));
        stop_text = trimmed(stop_text.substr(0, second));
      }
      safetensors::slice_dim dim = safetensors::all();
      for (auto [bound, value] : {std::pair{start_text, &dim.start}, std::pair{stop_text, &dim.stop}}) {
        if (bound.empty()) continue;
        const auto parsed = parse_integer(bound);
        if (!parsed) return refuse(where + "'" + std::string(bound) + "' is not an integer within 64 bits");
        *value = *parsed;
      }
      if (!step_text.empty()) {
        const auto step = parse_integer(step_text);
        if (!step) return refuse(where + "step '" + std::string(step_text) + "' is not an integer within 64 bits");
        if (*step < 1) return refuse(where + "step " + std::string(step_text) + " is not at least 1");
        dim.step = static_cast<std::uint64_t>(*step);
      }
      slice.dims.push_back(dim);
    }
    if (comma == std::string_view::npos) return slice;
    rest.remove_prefix(comma + 1);
  }
}

}  // namespace

const CLI::Validator unsigned_decimal(
    [](std::string& text) -> std::string {
      const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
      return digits ? std::string() : "'" + text + "' is not a non-negative decimal integer";
    },
    "");

CLI::Validator counted(const std::string& what, std::uint64_t low, std::uint64_t high) {
  return CLI::Validator(
      [what, low, high](std::string& text) -> std::string {
        if (text.empty() || !std::all_of(text.begin(), text.end(), is_digit))
          return "'" + text + "' is not a non-negative decimal integer";
        static constexpr std::string_view largest = "18446744073709551615";
        const std::string_view digits = std::string_view(text).substr(
            text.find_first_not_of('0') == std::string::npos ? text.size() - 1 : text.find_first_not_of('0'));
        const bool too_large = digits.size() > largest.size() || (digits.size() == largest.size() && digits > largest);
        const std::uint64_t value = too_large ? std::numeric_limits<std::uint64_t>::max() : std::stoull(text);
        if (!too_large && value >= low && value <= high) return {};
        return "'" + text + "': " + what + " must be " +
               (high == std::numeric_limits<std::uint64_t>::max()
                    ? "at least " + std::to_string(low)
                    : "from " + std::to_string(low) + " to " + std::to_string(high));
      },
      "");
}

const CLI::Validator byte_size(
    [](std::string& text) -> std::string {
      const parsed_size size = parse_size(text);
      if (!size.well_formed)
        return "'" + text +
               "' is not a size: an integer with an optional unit B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, "
               "GiB, TiB (powers of 1024), e.g. 2GB or 500MiB";
      if (!size.bytes) return "'" + text + "' is more than 2^64 - 1 bytes";
      if (*size.bytes == 0) return "'" + text + "' is less than 1 byte";
      text = std::to_string(*size.bytes);
      return std::string();
    },
    "");

const CLI::Validator data_alignment(
    [](std::string& text) -> std::string {
      if (text.empty() || !std::all_of(text.begin(), text.end(), is_digit)) return "'" + text + "' is not a number";
      safetensors::write_options options;
      const auto parsed = std::from_chars(text.data(), text.data() + text.size(), options.alignment);
      if (parsed.ec != std::errc()) return "'" + text + "' is more than 2^64 - 1";
      auto layout = safetensors::file_layout::try_make({}, {}, options);
      return layout ? std::string() : layout.error().message();
    },
    "");

const CLI::Validator slice_syntax([](std::string& text) { return parse_slice_text(text).problem; }, "");

std::vector<safetensors::slice_dim> parse_slice(std::string_view text) { return parse_slice_text(text).dims; }

void add_tensor_choice(CLI::App& command, tensor_choice& choice, const std::string& name_help) {
  CLI::Option* name = command.add_option("tensor", choice.name, name_help);
  CLI::Option* index = command
                           .add_option("--index", choice.index,
                                       "The tensor at position K (from 0) in inspect's order (data order for a "
                                       "file, name order for a model); instead of TENSOR")
                           ->type_name("K")
                           ->check(unsigned_decimal);
  name->excludes(index);
  choice.name_option = name;
  choice.index_option = index;
}

}  // namespace cli
