// safetensors-cli: look inside safetensors files and sharded models.
//
//   safetensors-cli inspect FILE|INDEX|DIR [--json]
//   safetensors-cli dump FILE|INDEX|DIR (TENSOR | --index K) [--json] [--limit N]
//   safetensors-cli stats FILE|INDEX|DIR [TENSOR | --index K] [--json]
//   safetensors-cli validate (FILE|INDEX|DIR)...
//   safetensors-cli rewrite IN OUT [--align N]
//   safetensors-cli convert IN OUT --dtype BF16|F16|F32
//   safetensors-cli split IN OUTDIR [--max-shard-size SIZE]
//   safetensors-cli merge INDEX|DIR OUT
//
// Exit status: 0 success, 1 the file was rejected as invalid (or a tensor was not found, or a
// value could not be converted), 2 the file could not be read or written, 100 or more (CLI11's
// codes) for a bad command line.
//
// Each subcommand is one add_<name>_command function that registers its options and the code
// to run; main() only parses the command line.

#include <safetensors/model.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <io.h>
#else
#include <sys/ioctl.h>
#include <unistd.h>
#endif

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view program_name = "safetensors-cli";

// ---------------------------------------------------------------------------------------------
// Text for a terminal
// ---------------------------------------------------------------------------------------------

// Length of the UTF-8 sequence at the start of `text` and its code point, or 0 when the bytes
// are not valid UTF-8. Names and metadata are always valid (the reader checks the header), but
// a path from the command line can hold any bytes.
std::size_t decode_utf8(std::string_view text, char32_t& code_point) {
  const auto lead = static_cast<unsigned char>(text[0]);
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  const std::size_t length = lead > 0xf4 ? 0 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
  if (length == 0 || length > text.size()) return 0;
  char32_t value = lead & (0x7fu >> length);
  for (std::size_t k = 1; k < length; ++k) {
    const auto next = static_cast<unsigned char>(text[k]);
    if ((next & 0xc0) != 0x80) return 0;
    value = (value << 6) | (next & 0x3fu);
  }
  static constexpr char32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (value < shortest[length] || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return 0;
  code_point = value;
  return length;
}

// Code points a terminal acts on instead of showing: they could break a row in two, rewrite
// what is already on screen, or (bidi overrides) reorder the columns around them.
bool is_terminal_control(char32_t c) {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 || (c >= 0x202a && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

void append_unicode_escape(std::string& out, char32_t c) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += hex[(c >> shift) & 0xf];
}

// `text` as a JSON string literal that is safe to print on one line of a terminal: names can
// hold newlines, NUL, quotes and escape sequences. Invalid UTF-8 becomes U+FFFD, as in the
// JSON output.
std::string display_string(std::string_view text) {
  std::string out = "\"";
  while (!text.empty()) {
    char32_t c = 0;
    std::size_t length = decode_utf8(text, c);
    if (length == 0) {
      out += "\xef\xbf\xbd";
      length = 1;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (is_terminal_control(c)) {
      append_unicode_escape(out, c);
    } else {
      out.append(text.data(), length);
    }
    text.remove_prefix(length);
  }
  out += '"';
  return out;
}

bool starts_character(char byte) { return (static_cast<unsigned char>(byte) & 0xc0) != 0x80; }

// Columns on screen, counted as code points: right for most scripts; wide CJK characters and
// combining marks make a row a little off, which is tolerable for a listing.
std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), starts_character));
}

// The first `width` columns of `text`, ending in "..." when cut. Cuts only before the first
// byte of a character, so no UTF-8 sequence is split.
std::string truncate_to_width(std::string_view text, std::size_t width) {
  static constexpr std::string_view ellipsis = "...";
  if (display_width(text) <= width) return std::string(text);
  const std::size_t keep = width - ellipsis.size();
  std::size_t kept = 0;
  std::size_t end = 0;
  for (; end < text.size(); ++end) {
    if (!starts_character(text[end])) continue;
    if (kept == keep) break;
    ++kept;
  }
  return std::string(text.substr(0, end)) + std::string(ellipsis);
}

std::string format_shape(safetensors::span<const std::uint64_t> shape) {
  std::string out = "[";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d > 0) out += ", ";
    out += std::to_string(shape[d]);
  }
  return out + "]";
}

std::string format_offsets(const std::array<std::uint64_t, 2>& offsets) {
  return "[" + std::to_string(offsets[0]) + ", " + std::to_string(offsets[1]) + ")";
}

// ---------------------------------------------------------------------------------------------
// Numbers as text
// ---------------------------------------------------------------------------------------------

// The shortest decimal text that reads back (with strtod) as the finite `value`, e.g. "0.1",
// "1", "-0", "1e+16".
std::string shortest_text(double value) {
  char text[32];
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
  const auto converted = std::to_chars(text, text + sizeof text, value);
  return std::string(text, converted.ptr);
#else
  for (int precision = 1; precision < 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) return text;
  }
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
#endif
}

// A value for a person: the shortest round-trip text, "-0" for negative zero, and "nan",
// "inf" or "-inf" (every NaN prints as "nan", whatever its sign and payload).
std::string number_text(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  return shortest_text(value);
}

// A value as JSON: a number that reads back as the same double and always reads as a float
// ("1.0", "-0.0", "1e+16"), or the string "nan", "inf" or "-inf", which JSON has no number for.
std::string number_json(double value) {
  if (std::isnan(value)) return "\"nan\"";
  if (std::isinf(value)) return value < 0 ? "\"-inf\"" : "\"inf\"";
  std::string text = shortest_text(value);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

// A command-line check that accepts only a decimal integer without a sign (CLI11 would
// otherwise read "-1" as 2^64 - 1 and "010" as octal).
const CLI::Validator unsigned_decimal(
    [](std::string& text) -> std::string {
      const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
      return digits ? std::string() : "'" + text + "' is not a non-negative decimal integer";
    },
    "");

// A size on the command line: an integer and an optional unit, B, KB, MB, GB, TB (powers of
// 1000, as the Hugging Face tools count: "5GB" is 5,000,000,000) or KiB, MiB, GiB, TiB (powers
// of 1024), spelt exactly so: transformers reads a lower-case "b" as bits ("5Gb"), so a case
// that could mean either is refused rather than guessed.
struct parsed_size {
  bool well_formed = false;           // digits, then nothing or one of the units
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
  parsed_size out;
  const std::size_t digits = std::min(text.find_first_not_of("0123456789"), text.size());
  const std::string_view number = text.substr(0, digits);
  const std::string_view unit = text.substr(digits);
  const auto known = std::find_if(std::begin(units), std::end(units), [&](const auto& u) { return u.first == unit; });
  if (number.empty() || known == std::end(units)) return out;
  out.well_formed = true;
  std::uint64_t count = 0;
  const auto parsed = std::from_chars(number.data(), number.data() + number.size(), count);
  if (parsed.ec == std::errc() && count <= std::numeric_limits<std::uint64_t>::max() / known->second)
    out.bytes = count * known->second;
  return out;
}

// The command-line check and conversion of a size: the option's text becomes its number of
// bytes, which must be at least 1.
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

// "999 B", "1.5 KB", "12.3 MB", "4.9 GB": decimal units, as sizes are given.
std::string byte_text(std::uint64_t bytes) {
  static constexpr const char* units[] = {"KB", "MB", "GB", "TB", "PB", "EB"};
  if (bytes < 1000) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1000;
  std::size_t unit = 0;
  while (value >= 999.95 && unit + 1 < std::size(units)) {
    value /= 1000;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------------------

bool stderr_is_terminal() {
#if defined(_WIN32)
  return _isatty(_fileno(stderr)) != 0;
#else
  return isatty(STDERR_FILENO) == 1;
#endif
}

// The width of the terminal on stderr, or 80 when it does not say (a pseudo-terminal that was
// never sized reports 0).
std::size_t terminal_columns() {
#if !defined(_WIN32) && defined(TIOCGWINSZ)
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
#endif
  return 80;
}

// A one-line bar on stderr for long work: "LABEL [#####-----]  12.3 MB / 45.6 MB  27%", drawn
// when it starts and then at most ten times a second, erased by finish() or the destructor.
// When stderr is not a terminal it does nothing at all, so redirected output and logs never see
// it. At most one bar is on screen; report_error() erases it before writing a message.
class progress_bar {
 public:
  progress_bar(std::string label, std::uint64_t total)
      : label_(std::move(label)), total_(total), shown_(stderr_is_terminal()) {
    if (!shown_) return;
    current() = this;
    draw();
  }
  ~progress_bar() { finish(); }
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;

  // Counts `bytes` more as done, and redraws if the last drawing is 100 ms old.
  void advance(std::uint64_t bytes) {
    done_ += bytes;
    if (!shown_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - drawn_at_ >= std::chrono::milliseconds(100)) draw();
  }

  // Erases the bar for good; the line is left empty, the cursor at its start.
  void finish() {
    if (!shown_) return;
    std::fputs("\r\x1b[K", stderr);
    std::fflush(stderr);
    shown_ = false;
    if (current() == this) current() = nullptr;
  }

  // Erases the bar on screen, if there is one: before anything else is written to stderr.
  static void finish_current() {
    if (current() != nullptr) current()->finish();
  }

 private:
  static progress_bar*& current() {
    static progress_bar* bar = nullptr;
    return bar;
  }

  void draw() {
    const double fraction = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    char percent[8];
    std::snprintf(percent, sizeof percent, "%3d%%", static_cast<int>(fraction * 100));
    const std::string counts = "  " + byte_text(done_) + " / " + byte_text(total_) + "  " + percent;
    // The line stays one column short of the width, so that it never wraps.
    const std::size_t columns = terminal_columns();
    const std::size_t fixed = label_.size() + 3 + counts.size();
    const std::size_t width = columns > fixed + 1 ? std::min<std::size_t>(40, columns - fixed - 1) : 0;
    std::string line = "\r" + label_;
    if (width >= 10) {
      const auto filled = static_cast<std::size_t>(fraction * static_cast<double>(width));
      line += " [" + std::string(filled, '#') + std::string(width - filled, '-') + "]";
    }
    line += counts;
    // Only on a terminal narrower than the counts: cut rather than wrap ("\r" takes no column).
    if (line.size() > columns) line.resize(columns);
    line += "\x1b[K";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    drawn_at_ = std::chrono::steady_clock::now();
  }

  std::string label_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  bool shown_;
  std::chrono::steady_clock::time_point drawn_at_;
};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

// A file that cannot be read is a different problem for the caller (retry, fix a path) from a
// file that was read and found invalid, so the two get different exit codes.
int exit_code_for(const safetensors::error& error) {
  return error.kind() == safetensors::error_kind::io_error ? 2 : 1;
}

// Paths and messages can hold invalid UTF-8 (a path's bytes are copied into the message), which
// dump() would otherwise reject by throwing.
std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

int report_error(const std::string& path, const safetensors::error& error, bool as_json) {
  progress_bar::finish_current();
  if (as_json) {
    json out;
    out["ok"] = false;
    out["error"] = safetensors::error_kind_name(error.kind());
    out["message"] = error.message();
    std::cout << dump(out) << '\n';
  } else {
    std::cerr << program_name << ": " << display_string(path) << ": " << safetensors::error_kind_name(error.kind())
              << ": " << error.message() << '\n';
  }
  return exit_code_for(error);
}

// ---------------------------------------------------------------------------------------------
// Sharded models
// ---------------------------------------------------------------------------------------------

// A path that names a model rather than one file: a directory, or an index (a path ending in
// .json). Both are opened with model_reader, which finds the index (or the only file) in a
// directory.
bool is_model_path(const std::string& path) {
  std::error_code failure;
  if (std::filesystem::is_directory(path, failure)) return true;
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
}

std::string plural(std::uint64_t count, std::string_view one, std::string_view many) {
  return std::to_string(count) + " " + std::string(count == 1 ? one : many);
}

// One tensor of a model: where it is described, and the position of its shard.
struct model_entry {
  const safetensors::tensor_info* info;
  std::size_t shard;
};

// Every tensor of a model, by name, each from its shard (opened and checked against the index).
safetensors::result<std::vector<model_entry>> model_entries(const safetensors::model_reader& model) {
  std::vector<model_entry> entries;
  entries.reserve(model.size());
  for (const auto& [name, shard] : model.tensor_names()) {
    auto info = model.try_info(name);
    if (!info) return info.error();
    entries.push_back({*info, shard});
  }
  return entries;
}

// Every tensor's bytes, for a shard.
std::uint64_t tensor_bytes(const safetensors::mapped_reader& reader) {
  std::uint64_t sum = 0;
  for (const safetensors::tensor_info& info : reader.tensors()) sum += info.byte_size();
  return sum;
}

// What dump and stats read: one file, its tensors in data order, or a model (a directory or an
// index), its tensors in name order; in either case the order of inspect's listing, which
// --index counts in.
class tensor_collection {
 public:
  static safetensors::result<tensor_collection> open(const std::string& path) {
    tensor_collection out;
    if (is_model_path(path)) {
      auto model = safetensors::try_open_model(path);
      if (!model) return model.error();
      out.model_.emplace(std::move(*model));
    } else {
      auto file = safetensors::try_open(path);
      if (!file) return file.error();
      out.file_.emplace(std::move(*file));
    }
    return out;
  }

  std::size_t size() const { return file_ ? file_->size() : model_->size(); }
  bool is_model() const { return model_.has_value(); }

  // The tensor at `position` (less than size()) in listing order.
  safetensors::result<safetensors::tensor_view> at(std::size_t position) const {
    if (file_) return file_->view(file_->tensors()[position]);
    return model_->try_view(model_->tensor_names()[position].first);
  }

  safetensors::result<safetensors::tensor_view> find(std::string_view name) const {
    if (model_) return model_->try_view(name);
    auto info = file_->try_info(name);
    if (!info) return info.error();
    return file_->view(**info);
  }

 private:
  tensor_collection() = default;

  std::optional<safetensors::mapped_reader> file_;
  std::optional<safetensors::model_reader> model_;
};

// ---------------------------------------------------------------------------------------------
// Tensors and their values
// ---------------------------------------------------------------------------------------------

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

void add_tensor_choice(CLI::App& command, tensor_choice& choice, const std::string& name_help) {
  CLI::Option* name = command.add_option("tensor", choice.name, name_help);
  CLI::Option* index = command.add_option("--index", choice.index,
                                          "The tensor at position K (from 0) in inspect's order (data order for a "
                                          "file, name order for a model); instead of TENSOR")
                           ->type_name("K")
                           ->check(unsigned_decimal);
  name->excludes(index);
  choice.name_option = name;
  choice.index_option = index;
}

// The tensor `choice` names, by name or by position in listing order.
safetensors::result<safetensors::tensor_view> find_tensor(const tensor_collection& tensors,
                                                          const tensor_choice& choice) {
  if (!choice.by_index()) return tensors.find(choice.name);
  if (choice.index >= tensors.size())
    return safetensors::error(safetensors::error_kind::tensor_not_found,
                              "no tensor at index " + std::to_string(choice.index) + ": the " +
                                  (tensors.is_model() ? "model" : "file") + " has " +
                                  plural(tensors.size(), "tensor", "tensors"));
  return tensors.at(static_cast<std::size_t>(choice.index));
}

// How a dtype's elements are shown and summarised.
enum class value_kind {
  floating,          // F16, BF16, F32, F64 and the F8 types: widened to double, exactly
  signed_integer,    // I8 to I64: widened to int64_t
  unsigned_integer,  // U8 to U64: widened to uint64_t
  boolean,           // BOOL: the byte's value
  complex,           // C64: pairs of F32
  raw_bytes,         // F4, F6_E2M3, F6_E3M2: the format does not fix their packing, so bytes
};

value_kind kind_of(safetensors::dtype type) {
  using safetensors::dtype;
  switch (type) {
    case dtype::BOOL: return value_kind::boolean;
    case dtype::F4:
    case dtype::F6_E2M3:
    case dtype::F6_E3M2: return value_kind::raw_bytes;
    case dtype::U8:
    case dtype::U16:
    case dtype::U32:
    case dtype::U64: return value_kind::unsigned_integer;
    case dtype::I8:
    case dtype::I16:
    case dtype::I32:
    case dtype::I64: return value_kind::signed_integer;
    case dtype::C64: return value_kind::complex;
    default: return value_kind::floating;
  }
}

// Elements decoded at a time: bounds the memory a tensor of any size takes.
constexpr std::size_t chunk_elements = std::size_t{1} << 16;

// The `count` elements of `tensor` from element `first` on, as host-order values of T (double,
// std::int64_t, std::uint64_t or std::complex<float>): copy_to widens them exactly.
template <class T>
safetensors::result<void> decode(const safetensors::tensor_view& tensor, std::uint64_t first, std::size_t count,
                                 std::vector<T>& values) {
  const std::size_t width = safetensors::dtype_bits(tensor.dtype()) / 8;
  const safetensors::tensor_view part{
      tensor.info, safetensors::span<const std::byte>(tensor.bytes.data() + first * width, count * width)};
  values.resize(count);
  return safetensors::copy_to(part, safetensors::span<T>(values.data(), count));
}

// The byte at `index` of `tensor`: BOOL elements and sub-byte tensors are shown as bytes.
std::uint8_t byte_at(const safetensors::tensor_view& tensor, std::uint64_t index) {
  return std::to_integer<std::uint8_t>(tensor.bytes[static_cast<std::size_t>(index)]);
}

// ---------------------------------------------------------------------------------------------
// inspect
// ---------------------------------------------------------------------------------------------

struct inspect_options {
  std::string path;
  bool json = false;
};

json metadata_json(const safetensors::metadata_map& metadata) {
  json out = json::object();
  for (const auto& [key, value] : metadata) out[key] = value;
  return out;
}

json inspect_json(const safetensors::mapped_reader& reader) {
  json out;
  out["ok"] = true;
  out["header_length"] = reader.header_length();
  out["data_start"] = reader.data_start();
  out["metadata"] = reader.has_metadata() ? metadata_json(reader.metadata()) : json(nullptr);
  out["tensors"] = json::array();
  for (const safetensors::tensor_info& info : reader.tensors()) {
    json tensor;
    tensor["name"] = info.name;
    tensor["dtype"] = safetensors::dtype_name(info.dtype);
    tensor["shape"] = std::vector<std::uint64_t>(info.shape.begin(), info.shape.end());
    tensor["data_offsets"] = info.data_offsets;
    out["tensors"].push_back(std::move(tensor));
  }
  return out;
}

void print_metadata(const safetensors::mapped_reader& reader) {
  if (!reader.has_metadata()) {
    std::cout << "metadata: none\n";
    return;
  }
  std::cout << "metadata: " << reader.metadata().size() << (reader.metadata().size() == 1 ? " entry\n" : " entries\n");
  for (const auto& [key, value] : reader.metadata())
    std::cout << "  " << display_string(key) << " = " << display_string(value) << '\n';
}

// One row of a table: a cell per column, the same number in every row.
using table_row = std::vector<std::string>;

// Longer names would push the other columns off screen; the JSON output has them in full.
constexpr std::size_t max_name_width = 60;

// Prints `rows` (the first is the heading) in columns two spaces apart; a column whose
// `right_aligned` entry is true is padded on the left. The last column is not padded.
void print_table(const std::vector<table_row>& rows, const std::vector<bool>& right_aligned) {
  const std::size_t column_count = right_aligned.size();
  std::vector<std::size_t> widths(column_count, 0);
  for (const table_row& row : rows) {
    for (std::size_t c = 0; c < column_count; ++c) widths[c] = std::max(widths[c], display_width(row[c]));
  }
  for (const table_row& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < column_count; ++c) {
      const std::string padding(widths[c] - display_width(row[c]), ' ');
      const bool last = c + 1 == column_count;
      if (c > 0) line += "  ";
      if (right_aligned[c]) line += padding;
      line += row[c];
      if (!right_aligned[c] && !last) line += padding;
    }
    // An empty last cell would leave the separator behind.
    line.erase(line.find_last_not_of(' ') + 1);
    std::cout << line << '\n';
  }
}

void print_tensors(const safetensors::mapped_reader& reader) {
  std::vector<table_row> rows = {{"name", "dtype", "shape", "bytes", "offsets"}};
  for (const safetensors::tensor_info& info : reader.tensors()) {
    rows.push_back({truncate_to_width(display_string(info.name), max_name_width),
                    std::string(safetensors::dtype_name(info.dtype)), format_shape(info.shape),
                    std::to_string(info.byte_size()), format_offsets(info.data_offsets)});
  }
  // Sizes read best right-aligned; every other column is text.
  print_table(rows, {false, false, false, true, false});
}

// Layout: a summary line, the metadata (one line, plus one per entry), then a table with a
// heading row and one row per tensor.
void print_inspection(const std::string& path, const safetensors::mapped_reader& reader) {
  std::cout << display_string(path) << ": header_length " << reader.header_length() << ", data_start "
            << reader.data_start() << ", " << reader.size() << (reader.size() == 1 ? " tensor\n" : " tensors\n");
  print_metadata(reader);
  print_tensors(reader);
}

// A model as JSON: {"ok": true, "index": PATH or null, "total_size": N or null, "shards": [PATH,
// ..] in path order, "tensors": [{"name", "dtype", "shape", "data_offsets", "shard"}, ..] by
// name}, data_offsets within the tensor's shard and shard its path as in "shards".
json model_json(const safetensors::model_reader& model, const std::vector<model_entry>& entries) {
  json out;
  out["ok"] = true;
  out["index"] = model.index_path().empty() ? json(nullptr) : json(model.index_path());
  out["total_size"] = model.total_size() ? json(*model.total_size()) : json(nullptr);
  out["shards"] = json::array();
  for (const std::string& shard_path : model.shard_paths()) out["shards"].push_back(shard_path);
  out["tensors"] = json::array();
  for (const model_entry& entry : entries) {
    json tensor;
    tensor["name"] = entry.info->name;
    tensor["dtype"] = safetensors::dtype_name(entry.info->dtype);
    tensor["shape"] = std::vector<std::uint64_t>(entry.info->shape.begin(), entry.info->shape.end());
    tensor["data_offsets"] = entry.info->data_offsets;
    tensor["shard"] = model.shard_paths()[entry.shard];
    out["tensors"].push_back(std::move(tensor));
  }
  return out;
}

// Layout: a summary line, the index line, "shards: N" and a line per shard (path order), then
// a table with a heading row and one row per tensor, by name, whose last column is the shard's
// file name.
void print_model(const std::string& path, const safetensors::model_reader& model,
                 const std::vector<model_entry>& entries) {
  const std::size_t shard_count = model.shard_paths().size();
  std::uint64_t bytes = 0;
  for (const model_entry& entry : entries) bytes += entry.info->byte_size();
  std::cout << display_string(path) << ": " << plural(entries.size(), "tensor", "tensors") << " in "
            << plural(shard_count, "shard", "shards") << ", " << plural(bytes, "byte", "bytes") << '\n';
  if (model.index_path().empty()) {
    std::cout << "index: none\n";
  } else {
    std::cout << "index: " << display_string(model.index_path()) << ", total_size "
              << (model.total_size() ? std::to_string(*model.total_size()) : std::string("none")) << '\n';
  }
  std::cout << "shards: " << shard_count << '\n';
  for (std::size_t shard = 0; shard < shard_count; ++shard) {
    // Every shard is open: validate() opened them.
    const safetensors::mapped_reader& reader = **model.try_shard(shard);
    std::cout << "  " << display_string(model.shard_paths()[shard]) << ": "
              << plural(reader.size(), "tensor", "tensors") << ", " << plural(tensor_bytes(reader), "byte", "bytes")
              << '\n';
  }
  std::vector<table_row> rows = {{"name", "dtype", "shape", "bytes", "offsets", "shard"}};
  for (const model_entry& entry : entries) {
    const safetensors::tensor_info& info = *entry.info;
    rows.push_back({truncate_to_width(display_string(info.name), max_name_width),
                    std::string(safetensors::dtype_name(info.dtype)), format_shape(info.shape),
                    std::to_string(info.byte_size()), format_offsets(info.data_offsets),
                    display_string(std::filesystem::path(model.shard_paths()[entry.shard]).filename().string())});
  }
  print_table(rows, {false, false, false, true, false, false});
}

// A model is validated whole (every shard against the index, and total_size) before it is
// listed, as a single file is by opening it.
int run_inspect_model(const inspect_options& options) {
  auto model = safetensors::try_open_model(options.path);
  if (!model) return report_error(options.path, model.error(), options.json);
  if (auto valid = model->validate(); !valid) return report_error(options.path, valid.error(), options.json);
  auto entries = model_entries(*model);
  if (!entries) return report_error(options.path, entries.error(), options.json);
  if (options.json) {
    std::cout << dump(model_json(*model, *entries)) << '\n';
  } else {
    print_model(options.path, *model, *entries);
  }
  return 0;
}

int run_inspect(const inspect_options& options) {
  if (is_model_path(options.path)) return run_inspect_model(options);
  auto reader = safetensors::try_open(options.path);
  if (!reader) return report_error(options.path, reader.error(), options.json);
  if (options.json) {
    std::cout << dump(inspect_json(*reader)) << '\n';
  } else {
    print_inspection(options.path, *reader);
  }
  return 0;
}

void add_inspect_command(CLI::App& app, int& exit_code) {
  // CLI11 keeps references to the option variables until parsing ends, after this returns.
  auto options = std::make_shared<inspect_options>();
  CLI::App* command =
      app.add_subcommand("inspect", "Validate a file or a sharded model and list its header, metadata and tensors");
  command->add_option("path", options->path, "A .safetensors file, or a sharded model: its index (*.json) or directory")
      ->required();
  command->add_flag("--json", options->json, "Print one JSON object instead of a table");
  command->footer(
      "A file: a summary line (header_length, data_start, tensor count), the metadata, and a table of tensors\n"
      "in data order (name, dtype, shape, bytes, offsets). --json: {\"ok\": true, \"header_length\",\n"
      "\"data_start\", \"metadata\" (null when there is none), \"tensors\": [{\"name\", \"dtype\", \"shape\",\n"
      "\"data_offsets\"}, ..]}.\n"
      "A model (a directory, or a path ending in .json), validated whole first: a summary line, the index\n"
      "and its total_size, the shards in path order, and a table of tensors by name with a shard column.\n"
      "--json: {\"ok\": true, \"index\" (null for a directory holding one file and no index), \"total_size\"\n"
      "(null when the index has none), \"shards\": [paths], \"tensors\": [{\"name\", \"dtype\", \"shape\",\n"
      "\"data_offsets\" (within the shard), \"shard\" (its path)}, ..]}.\n"
      "Errors: one line on stderr, or with --json {\"ok\": false, \"error\": KIND, \"message\"} on stdout.\n"
      "Exit status: 0 listed, 1 invalid file or index, 2 unreadable file or missing shard.");
  command->callback([options, &exit_code] { exit_code = run_inspect(*options); });
}

// ---------------------------------------------------------------------------------------------
// rewrite
// ---------------------------------------------------------------------------------------------

struct rewrite_options {
  std::string input;
  std::string output;
  std::uint64_t alignment = 8;
};

// A producer's piece of a copied tensor: `piece` gets the bytes of `info` from `offset` on, read
// from `reader` (pread or mapped), and counts as done.
template <class Reader>
safetensors::result<void> copy_piece(const Reader& reader, const safetensors::tensor_info& info,
                                     safetensors::span<std::byte> piece, std::uint64_t offset, progress_bar& progress) {
  if (auto read = reader.try_read_part(info, offset, piece); !read) return read;
  progress.advance(piece.size());
  return {};
}

// Writes every tensor of `readers`, reader by reader and each in data order, into a new file at
// `output` with `metadata`, one producer piece at a time: constant memory for any size, and
// nothing under `output` unless the whole file is written. Errors name `input` when reading
// fails and `output` when writing does; the result is the exit status.
template <class Reader>
int copy_into_file(const char* command, const std::vector<const Reader*>& readers, const std::string& input,
                   const std::string& output, const safetensors::metadata_entries& metadata,
                   const safetensors::write_options& write_options) {
  std::vector<safetensors::tensor_declaration> declarations;
  for (const Reader* reader : readers) {
    for (const safetensors::tensor_info& info : reader->tensors())
      declarations.push_back(safetensors::tensor_declaration::from(info));
  }
  auto writer = safetensors::try_make_file_writer(output, std::move(declarations), metadata, write_options);
  if (!writer) return report_error(output, writer.error(), false);
  progress_bar progress(command, writer->layout().data_size());
  for (const Reader* reader : readers) {
    for (const safetensors::tensor_info& info : reader->tensors()) {
      auto copied = writer->produce(info.name, [&](safetensors::span<std::byte> piece, std::uint64_t offset) {
        return copy_piece(*reader, info, piece, offset, progress);
      });
      if (!copied) return report_error(input, copied.error(), false);
    }
  }
  if (auto finished = writer->finish(); !finished) return report_error(output, finished.error(), false);
  return 0;
}

// Reads with pread and writes through the streaming writer, one bounded piece at a time, so a
// file of any size is rewritten in constant memory.
int run_rewrite(const rewrite_options& options) {
  auto reader = safetensors::try_open_pread(options.input);
  if (!reader) return report_error(options.input, reader.error(), false);
  safetensors::write_options write_options;
  write_options.alignment = options.alignment;
  return copy_into_file("rewrite", std::vector<const safetensors::pread_reader*>{&*reader}, options.input, options.output,
                        safetensors::metadata_entries::from(*reader), write_options);
}

void add_rewrite_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<rewrite_options>();
  CLI::App* command = app.add_subcommand(
      "rewrite", "Write the tensors and metadata of IN to OUT with this library's writer, streaming");
  command->add_option("in", options->input, "The .safetensors file to read")->required();
  command->add_option("out", options->output, "The file to write (replaced atomically)")->required();
  command->add_option("--align", options->alignment,
                      "Start the data section at a multiple of N bytes (a power of two, at least 8)")
      ->capture_default_str();
  command->footer(
      "The output has the same tensors (names, dtypes, shapes, bytes) and metadata, laid out as the official\n"
      "writer lays them out, so a file it wrote with at most one metadata key comes back byte for byte.\n"
      "Nothing is written unless the whole file is. A progress bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 written, 1 invalid input file or --align, 2 unreadable input or unwritable output.");
  command->callback([options, &exit_code] { exit_code = run_rewrite(*options); });
}

// ---------------------------------------------------------------------------------------------
// dump
// ---------------------------------------------------------------------------------------------

struct dump_options {
  std::string path;
  tensor_choice tensor;
  bool json = false;
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
};

// Values per line of the text form.
constexpr std::uint64_t values_per_line = 8;

// Collects values into text and writes it out in blocks, so that a tensor of any size is
// printed in bounded memory: comma-separated for JSON, else values_per_line to a line.
class value_writer {
 public:
  explicit value_writer(bool json) : json_(json) {}

  void add(const std::string& value) {
    if (count_ > 0) text_ += json_ ? "," : count_ % values_per_line == 0 ? "\n" : " ";
    text_ += value;
    ++count_;
    if (text_.size() >= flush_size) flush();
  }

  // Writes what is left; the text form ends its last line.
  void finish() {
    if (!json_ && count_ > 0) text_ += '\n';
    flush();
  }

 private:
  static constexpr std::size_t flush_size = std::size_t{1} << 16;

  void flush() {
    std::cout.write(text_.data(), static_cast<std::streamsize>(text_.size()));
    text_.clear();
  }

  bool json_;
  std::uint64_t count_ = 0;
  std::string text_;
};

// Writes the first `shown` values of `tensor` (bytes for a sub-byte dtype) to `out`.
safetensors::result<void> write_values(const safetensors::tensor_view& tensor, std::uint64_t shown, bool json,
                                       value_writer& out) {
  const value_kind kind = kind_of(tensor.dtype());
  if (kind == value_kind::boolean || kind == value_kind::raw_bytes) {
    for (std::uint64_t i = 0; i < shown; ++i) out.add(std::to_string(byte_at(tensor, i)));
    return {};
  }
  std::vector<double> floats;
  std::vector<std::int64_t> signed_values;
  std::vector<std::uint64_t> unsigned_values;
  std::vector<std::complex<float>> complex_values;
  auto format = [json](double value) { return json ? number_json(value) : number_text(value); };
  for (std::uint64_t first = 0; first < shown; first += chunk_elements) {
    const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_elements, shown - first));
    switch (kind) {
      case value_kind::floating:
        if (auto done = decode(tensor, first, count, floats); !done) return done;
        for (double value : floats) out.add(format(value));
        break;
      case value_kind::signed_integer:
        if (auto done = decode(tensor, first, count, signed_values); !done) return done;
        for (std::int64_t value : signed_values) out.add(std::to_string(value));
        break;
      case value_kind::unsigned_integer:
        if (auto done = decode(tensor, first, count, unsigned_values); !done) return done;
        for (std::uint64_t value : unsigned_values) out.add(std::to_string(value));
        break;
      case value_kind::complex:
        if (auto done = decode(tensor, first, count, complex_values); !done) return done;
        for (std::complex<float> value : complex_values)
          out.add("[" + format(value.real()) + (json ? "," : ", ") + format(value.imag()) + "]");
        break;
      case value_kind::boolean:
      case value_kind::raw_bytes: break;
    }
  }
  return {};
}

// Layout of the text form: a line `NAME DTYPE [shape]` (NAME as a JSON string literal, as in
// inspect; a sub-byte tensor adds "as N raw bytes"), the values eight to a line, and when
// --limit cut them short, a last line "... N more values" (or bytes).
int run_dump(const dump_options& options) {
  auto tensors = tensor_collection::open(options.path);
  if (!tensors) return report_error(options.path, tensors.error(), options.json);
  auto found = find_tensor(*tensors, options.tensor);
  if (!found) return report_error(options.path, found.error(), options.json);
  const safetensors::tensor_view tensor = *found;
  const bool bytes = kind_of(tensor.dtype()) == value_kind::raw_bytes;
  const std::uint64_t total = bytes ? tensor.bytes.size() : tensor.info->element_count;
  const std::uint64_t shown = std::min(total, options.limit);

  if (options.json) {
    std::cout << "{\"name\":" << dump(json(std::string(tensor.name()))) << ",\"dtype\":"
              << dump(json(std::string(safetensors::dtype_name(tensor.dtype())))) << ",\"shape\":"
              << dump(json(std::vector<std::uint64_t>(tensor.shape().begin(), tensor.shape().end()))) << ",\"values\":[";
  } else {
    std::cout << display_string(tensor.name()) << ' ' << safetensors::dtype_name(tensor.dtype()) << ' '
              << format_shape(tensor.shape());
    if (bytes) std::cout << " as " << total << (total == 1 ? " raw byte" : " raw bytes");
    std::cout << '\n';
  }
  value_writer out(options.json);
  const auto written = write_values(tensor, shown, options.json, out);
  out.finish();
  if (options.json) {
    std::cout << "]}\n";
  } else if (shown < total) {
    std::cout << "... " << total - shown << " more " << (bytes ? "bytes" : "values") << '\n';
  }
  std::cout.flush();
  // Every dtype widens to the type it is read as, so this only reports a library bug.
  if (!written) return report_error(options.path, written.error(), false);
  return 0;
}

void add_dump_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<dump_options>();
  CLI::App* command = app.add_subcommand("dump", "Print the values of one tensor, row-major");
  command->add_option("path", options->path, "A .safetensors file, or a sharded model: its index (*.json) or directory")
      ->required();
  add_tensor_choice(*command, options->tensor, "The tensor's name (put -- before a name that starts with -)");
  command->add_flag("--json", options->json,
                    "Print one JSON object {\"name\", \"dtype\", \"shape\", \"values\"} instead of text");
  command->add_option("--limit", options->limit, "Print at most the first N values (default: all)")
      ->type_name("N")
      ->check(unsigned_decimal);
  command->footer(
      "Values: floats (F16, BF16, F32, F64, F8_*) in the shortest decimal that reads back as the same double,\n"
      "-0 keeping its sign, and nan, inf, -inf (in JSON: floats such as 1.0 and -0.0, and the strings\n"
      "\"nan\", \"inf\", \"-inf\"); integers exactly; BOOL as its byte (0 or 1); C64 as [re, im].\n"
      "F4, F6_E2M3 and F6_E3M2, whose packing the format leaves open, print their raw bytes as unsigned\n"
      "integers, and --limit counts bytes.\n"
      "Text form: a line NAME DTYPE [shape], the values 8 to a line, and \"... N more values\" when --limit\n"
      "cut them short.\n"
      "Exit status: 0 printed, 1 invalid file or no such tensor, 2 unreadable file.");
  command->callback([options, &exit_code] {
    if (!options->tensor.any()) throw CLI::RequiredError("TENSOR or --index");
    exit_code = run_dump(*options);
  });
}

// ---------------------------------------------------------------------------------------------
// stats
// ---------------------------------------------------------------------------------------------

struct stats_options {
  std::string path;
  tensor_choice tensor;
  bool json = false;
};

// A sum with Neumaier's compensation: exact as long as the running sum and the compensation
// hold it, e.g. for a large value, small ones, then the large value negated.
struct compensated_sum {
  double sum = 0;
  double compensation = 0;

  void add(double value) {
    const double total = sum + value;
    compensation += std::fabs(sum) >= std::fabs(value) ? (sum - total) + value : (value - total) + sum;
    sum = total;
  }
  double value() const { return sum + compensation; }
};

// Count, mean and sum of squared deviations from the mean (M2) of finite values. Mean and M2
// are kept scaled by 2^-exponent and 2^-2*exponent, so that no sum overflows, whatever the
// magnitudes (F64 values near 1.8e308 included). Each chunk's mean is a compensated sum over
// the count and its M2 comes from the corrected two-pass formula; chunks are merged with Chan et
// al.'s formula: accurate, and in one pass over the tensor.
struct moments {
  std::uint64_t count = 0;
  double mean = 0;
  double m2 = 0;
  int exponent = 0;

  static moments of(const std::vector<double>& values) {
    moments out;
    if (values.empty()) return out;
    double largest = 0;
    for (double value : values) largest = std::max(largest, std::fabs(value));
    if (largest > 0) std::frexp(largest, &out.exponent);
    // Keeps the scale itself a finite double; values this small lose nothing to it.
    out.exponent = std::max(out.exponent, -1000);
    const double scale = std::ldexp(1.0, -out.exponent);
    const auto n = static_cast<double>(values.size());
    compensated_sum sum;
    for (double value : values) sum.add(value * scale);
    const double mean = sum.value() / n;
    compensated_sum deviations;
    compensated_sum squares;
    for (double value : values) {
      const double deviation = value * scale - mean;
      deviations.add(deviation);
      squares.add(deviation * deviation);
    }
    // The compensated mean is the better one when values cancel; the deviations from it correct M2.
    out.count = values.size();
    out.mean = mean;
    out.m2 = std::max(0.0, squares.value() - deviations.value() * deviations.value() / n);
    return out;
  }

  void merge(moments other) {
    if (other.count == 0) return;
    if (count == 0) {
      *this = other;
      return;
    }
    const int common = std::max(exponent, other.exponent);
    rescale(common);
    other.rescale(common);
    const double weight = static_cast<double>(other.count) / (static_cast<double>(count) + static_cast<double>(other.count));
    const double delta = other.mean - mean;
    mean += delta * weight;
    m2 += other.m2 + delta * delta * static_cast<double>(count) * weight;
    count += other.count;
  }

  double value_mean() const { return std::ldexp(mean, exponent); }
  // The population standard deviation: sqrt(M2 / count).
  double deviation() const { return std::ldexp(std::sqrt(m2 / static_cast<double>(count)), exponent); }

 private:
  void rescale(int target) {
    mean = std::ldexp(mean, exponent - target);
    m2 = std::ldexp(m2, 2 * (exponent - target));
    exponent = target;
  }
};

// The exact sum of integers, in 128 bits (two's complement): integers' mean does not depend on
// their order or on values that cancel, e.g. 0, 1, -1, INT64_MAX, INT64_MIN has mean -0.2.
struct integer_sum {
  std::uint64_t low = 0;
  std::uint64_t high = 0;

  void add(std::uint64_t value) {
    low += value;
    high += low < value ? 1 : 0;
  }
  void add(std::int64_t value) {
    add(static_cast<std::uint64_t>(value));
    if (value < 0) high -= 1;  // the sign extension of the upper word
  }
  // The sum as a double, rounded at most twice.
  double value() const {
    const bool negative = (high >> 63) != 0;
    std::uint64_t magnitude_low = negative ? ~low + 1 : low;
    std::uint64_t magnitude_high = negative ? ~high + (magnitude_low == 0 ? 1 : 0) : high;
    const double magnitude = static_cast<double>(magnitude_high) * 18446744073709551616.0 + static_cast<double>(magnitude_low);
    return negative ? -magnitude : magnitude;
  }
};

// What stats reports of one tensor. min and max are JSON numbers, exact for integers, or null
// when there is no finite value; mean and std are meaningful when finite.count is not 0.
struct summary {
  std::uint64_t nan = 0;
  std::uint64_t inf = 0;
  moments finite;
  double mean = 0;
  double std = 0;
  json min;
  json max;
  std::string note;  // why the tensor is not summarised, or empty
};

// The least and greatest of `values` so far; -0 counts as less than +0, so the result does not
// depend on their order.
struct float_range {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();

  void add(double value) {
    if (value < min || (value == min && std::signbit(value))) min = value;
    if (value > max || (value == max && !std::signbit(value))) max = value;
  }
};

template <class T>
struct integer_range {
  T min = std::numeric_limits<T>::max();
  T max = std::numeric_limits<T>::min();

  void add(T value) {
    min = std::min(min, value);
    max = std::max(max, value);
  }
};

// One pass over the tensor's bytes, chunk_elements at a time. Floats are widened to double,
// integers to int64_t or uint64_t (min and max exact, mean and deviation through double); NaN
// and infinities are counted and left out of everything else.
safetensors::result<summary> summarise(const safetensors::tensor_view& tensor, progress_bar& progress) {
  summary out;
  const value_kind kind = kind_of(tensor.dtype());
  if (kind == value_kind::complex) {
    out.note = "complex: not summarised";
    progress.advance(tensor.bytes.size());
    return out;
  }
  if (kind == value_kind::raw_bytes) {
    out.note = "sub-byte: not summarised";
    progress.advance(tensor.bytes.size());
    return out;
  }
  const std::size_t width = safetensors::dtype_bits(tensor.dtype()) / 8;
  const std::uint64_t total = tensor.info->element_count;
  std::vector<double> finite;
  std::vector<double> floats;
  std::vector<std::int64_t> signed_values;
  std::vector<std::uint64_t> unsigned_values;
  float_range float_bounds;
  integer_range<std::int64_t> signed_bounds;
  integer_range<std::uint64_t> unsigned_bounds;
  integer_sum exact_sum;
  for (std::uint64_t first = 0; first < total; first += chunk_elements) {
    const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_elements, total - first));
    finite.clear();
    switch (kind) {
      case value_kind::floating:
        if (auto done = decode(tensor, first, count, floats); !done) return done.error();
        for (double value : floats) {
          if (std::isnan(value)) {
            ++out.nan;
          } else if (std::isinf(value)) {
            ++out.inf;
          } else {
            float_bounds.add(value);
            finite.push_back(value);
          }
        }
        break;
      case value_kind::signed_integer:
        if (auto done = decode(tensor, first, count, signed_values); !done) return done.error();
        for (std::int64_t value : signed_values) {
          signed_bounds.add(value);
          exact_sum.add(value);
          finite.push_back(static_cast<double>(value));
        }
        break;
      case value_kind::unsigned_integer:
        if (auto done = decode(tensor, first, count, unsigned_values); !done) return done.error();
        for (std::uint64_t value : unsigned_values) {
          unsigned_bounds.add(value);
          exact_sum.add(value);
          finite.push_back(static_cast<double>(value));
        }
        break;
      case value_kind::boolean:
        for (std::size_t i = 0; i < count; ++i) {
          const std::uint8_t value = byte_at(tensor, first + i);
          unsigned_bounds.add(value);
          exact_sum.add(std::uint64_t{value});
          finite.push_back(value);
        }
        break;
      case value_kind::complex:
      case value_kind::raw_bytes: break;
    }
    out.finite.merge(moments::of(finite));
    progress.advance(count * width);
  }
  if (out.finite.count > 0) {
    out.mean = kind == value_kind::floating ? out.finite.value_mean()
                                            : exact_sum.value() / static_cast<double>(out.finite.count);
    out.std = out.finite.deviation();
    switch (kind) {
      case value_kind::floating:
        out.min = float_bounds.min;
        out.max = float_bounds.max;
        break;
      case value_kind::signed_integer:
        out.min = signed_bounds.min;
        out.max = signed_bounds.max;
        break;
      default:
        out.min = unsigned_bounds.min;
        out.max = unsigned_bounds.max;
        break;
    }
  }
  return out;
}

json summary_json(const safetensors::tensor_info& info, const summary& stats) {
  const bool summarised = stats.note.empty();
  const bool any = stats.finite.count > 0;
  json out;
  out["name"] = std::string(info.name);
  out["dtype"] = std::string(safetensors::dtype_name(info.dtype));
  out["count"] = info.element_count;
  out["min"] = stats.min;
  out["max"] = stats.max;
  out["mean"] = any ? json(stats.mean) : json(nullptr);
  out["std"] = any ? json(stats.std) : json(nullptr);
  out["nan"] = summarised ? json(stats.nan) : json(nullptr);
  out["inf"] = summarised ? json(stats.inf) : json(nullptr);
  out["note"] = summarised ? json(nullptr) : json(stats.note);
  return out;
}

std::string bound_text(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_number_float()) return number_text(value.get<double>());
  return value.dump();
}

// Six significant digits: enough to read; --json has every digit.
std::string rounded_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

table_row summary_row(const safetensors::tensor_info& info, const summary& stats) {
  const bool summarised = stats.note.empty();
  const bool any = stats.finite.count > 0;
  return {truncate_to_width(display_string(info.name), max_name_width),
          std::string(safetensors::dtype_name(info.dtype)),
          std::to_string(info.element_count),
          bound_text(stats.min),
          bound_text(stats.max),
          any ? rounded_text(stats.mean) : "-",
          any ? rounded_text(stats.std) : "-",
          summarised ? std::to_string(stats.nan) : "-",
          summarised ? std::to_string(stats.inf) : "-",
          stats.note};
}

// Text form: a table with a heading row and one row per tensor, in inspect's order; the note
// column is there only when some tensor was not summarised. JSON: one array of objects. Output
// is printed once every tensor is read, after the progress bar is gone.
int run_stats(const stats_options& options) {
  auto tensors = tensor_collection::open(options.path);
  if (!tensors) return report_error(options.path, tensors.error(), options.json);
  std::vector<safetensors::tensor_view> chosen;
  if (options.tensor.any()) {
    auto found = find_tensor(*tensors, options.tensor);
    if (!found) return report_error(options.path, found.error(), options.json);
    chosen.push_back(*found);
  } else {
    for (std::size_t i = 0; i < tensors->size(); ++i) {
      auto view = tensors->at(i);
      if (!view) return report_error(options.path, view.error(), options.json);
      chosen.push_back(*view);
    }
  }
  std::uint64_t total = 0;
  for (const safetensors::tensor_view& tensor : chosen) total += tensor.bytes.size();

  std::vector<table_row> rows = {{"name", "dtype", "count", "min", "max", "mean", "std", "nan", "inf", "note"}};
  bool any_note = false;
  std::string text = "[";
  progress_bar progress("stats", total);
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    auto stats = summarise(chosen[i], progress);
    if (!stats) {
      progress.finish();
      if (options.json) std::cout << text << "]\n" << std::flush;
      return report_error(options.path, stats.error(), false);
    }
    if (options.json) {
      text += (i > 0 ? "," : "") + dump(summary_json(*chosen[i].info, *stats));
    } else {
      any_note = any_note || !stats->note.empty();
      rows.push_back(summary_row(*chosen[i].info, *stats));
    }
  }
  progress.finish();
  if (options.json) {
    std::cout << text << "]\n";
    return 0;
  }
  std::vector<bool> right_aligned = {false, false, true, true, true, true, true, true, true, false};
  if (!any_note) {
    for (table_row& row : rows) row.pop_back();
    right_aligned.pop_back();
  }
  print_table(rows, right_aligned);
  return 0;
}

void add_stats_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<stats_options>();
  CLI::App* command =
      app.add_subcommand("stats", "Summarise the values of every tensor, or of one: count, min, max, mean, std");
  command->add_option("path", options->path, "A .safetensors file, or a sharded model: its index (*.json) or directory")
      ->required();
  add_tensor_choice(*command, options->tensor,
                    "Only this tensor (put -- before a name that starts with -); default: every tensor");
  command->add_flag("--json", options->json, "Print one JSON array of objects instead of a table");
  command->footer(
      "Per tensor: count (elements), min, max, mean, std (population standard deviation) of the finite\n"
      "values, and how many are NaN and how many infinite. Floats (F8_* included) are widened to double;\n"
      "integers' min and max are exact, their mean and std computed in double; BOOL counts as its byte.\n"
      "C64 (\"complex: not summarised\") and F4, F6_* (\"sub-byte: not summarised\") are listed with a note.\n"
      "The table shows mean and std to 6 digits; --json gives {\"name\", \"dtype\", \"count\", \"min\", \"max\",\n"
      "\"mean\", \"std\", \"nan\", \"inf\", \"note\"} per tensor, null where there is nothing to report.\n"
      "Rows come in inspect's order: data order for a file, name order for a model. While reading, a progress\n"
      "bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 printed, 1 invalid file or no such tensor, 2 unreadable file or missing shard.");
  command->callback([options, &exit_code] { exit_code = run_stats(*options); });
}

// ---------------------------------------------------------------------------------------------
// validate
// ---------------------------------------------------------------------------------------------

struct validate_options {
  std::vector<std::string> paths;
};

// What validate says of a valid path, "9 tensors" for a file or "5000 tensors in 6 shards" for a
// model (a directory or an index: every shard opened and checked against the index, and the
// index's total_size), or why the path is not valid.
safetensors::result<std::string> validate_path(const std::string& path) {
  if (!is_model_path(path)) {
    auto reader = safetensors::try_open(path);
    if (!reader) return reader.error();
    return plural(reader->size(), "tensor", "tensors");
  }
  auto model = safetensors::try_open_model(path);
  if (!model) return model.error();
  if (auto valid = model->validate(); !valid) return valid.error();
  return plural(model->size(), "tensor", "tensors") + " in " + plural(model->shard_paths().size(), "shard", "shards");
}

// One line per path, in the order given: `ok "PATH" (N tensors)`, `ok "PATH" (N tensors in K
// shards)` or `FAIL "PATH": Kind: message` (paths as JSON string literals, as elsewhere). The
// exit status is 1 when any is invalid, else 2 when any could not be read, else 0.
int run_validate(const validate_options& options) {
  bool any_invalid = false;
  bool any_unreadable = false;
  for (const std::string& path : options.paths) {
    auto checked = validate_path(path);
    if (checked) {
      std::cout << "ok " << display_string(path) << " (" << *checked << ")\n";
      continue;
    }
    const safetensors::error& error = checked.error();
    (exit_code_for(error) == 2 ? any_unreadable : any_invalid) = true;
    std::cout << "FAIL " << display_string(path) << ": " << safetensors::error_kind_name(error.kind()) << ": "
              << error.message() << '\n';
  }
  return any_invalid ? 1 : any_unreadable ? 2 : 0;
}

void add_validate_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<validate_options>();
  CLI::App* command = app.add_subcommand("validate", "Check that files and sharded models are valid");
  command->add_option("paths", options->paths,
                      "The .safetensors files, or sharded models: an index (*.json) or a directory")
      ->required();
  command->footer(
      "Prints one line per path: ok \"FILE\" (N tensors), ok \"MODEL\" (N tensors in K shards), or\n"
      "FAIL \"PATH\": Kind: message. A model has every shard opened and checked against its index\n"
      "(each tensor in the shard the index names), and the index's total_size checked.\n"
      "Exit status: 0 every path is valid, 1 some is invalid, else 2 some could not be read.");
  command->callback([options, &exit_code] { exit_code = run_validate(*options); });
}

// ---------------------------------------------------------------------------------------------
// convert
// ---------------------------------------------------------------------------------------------

struct convert_options {
  std::string input;
  std::string output;
  std::string dtype;
};

// The tensors convert changes: the IEEE-style floats. The F8 types are left alone: they hold
// quantized data whose scales live in other tensors, which widening them would not apply.
bool is_converted(safetensors::dtype type) {
  using safetensors::dtype;
  return type == dtype::F16 || type == dtype::BF16 || type == dtype::F32 || type == dtype::F64;
}

// Fills `piece`, the bytes at `offset` of `info` converted to `target`, from the source bytes
// read with pread. The writer hands out pieces by output bytes, whose element size differs from
// the input's, so the piece is mapped back to the source elements it holds. Pieces are 1 MiB
// (or the whole tensor), a multiple of every element size; produce() does not promise it, so a
// piece that cut an element is reported rather than converted.
template <class Reader>
safetensors::result<void> convert_piece(const Reader& reader, const safetensors::tensor_info& info,
                                        safetensors::dtype target, safetensors::span<std::byte> piece,
                                        std::uint64_t offset, std::vector<std::byte>& source) {
  const std::size_t in_width = safetensors::dtype_bits(info.dtype) / 8;
  const std::size_t out_width = safetensors::dtype_bits(target) / 8;
  if (offset % out_width != 0 || piece.size() % out_width != 0)
    return safetensors::error(safetensors::error_kind::invalid_argument,
                              "tensor " + display_string(info.name) + ": the writer asked for " +
                                  std::to_string(piece.size()) + " bytes at offset " + std::to_string(offset) +
                                  ", not whole " + std::to_string(out_width) + "-byte elements");
  source.resize(piece.size() / out_width * in_width);
  if (auto read = reader.try_read_part(info, offset / out_width * in_width, source); !read) return read;
  auto converted = safetensors::convert(source, info.dtype, piece, target);
  if (!converted)
    return safetensors::error(converted.error().kind(),
                              "tensor " + display_string(info.name) + ": " + converted.error().message());
  return {};
}

// Like rewrite, streaming with pread and the file writer in bounded memory; converted tensors
// get the new dtype in their declaration, so the output's layout follows from the new sizes.
int run_convert(const convert_options& options) {
  const safetensors::dtype target = *safetensors::dtype_from_name(options.dtype);
  auto reader = safetensors::try_open_pread(options.input);
  if (!reader) return report_error(options.input, reader.error(), false);
  std::vector<safetensors::tensor_declaration> declarations;
  declarations.reserve(reader->size());
  for (const safetensors::tensor_info& info : reader->tensors()) {
    declarations.push_back(safetensors::tensor_declaration::from(info));
    if (is_converted(info.dtype)) declarations.back().dtype = target;
  }
  const auto metadata = safetensors::metadata_entries::from(*reader);

  auto writer = safetensors::try_make_file_writer(options.output, std::move(declarations), metadata);
  if (!writer) return report_error(options.output, writer.error(), false);
  std::vector<std::byte> source;
  progress_bar progress("convert", writer->layout().data_size());
  for (const safetensors::tensor_info& info : reader->tensors()) {
    const bool convert = is_converted(info.dtype) && info.dtype != target;
    auto copied = writer->produce(info.name, [&](safetensors::span<std::byte> piece, std::uint64_t offset) {
      if (!convert) return copy_piece(*reader, info, piece, offset, progress);
      auto converted = convert_piece(*reader, info, target, piece, offset, source);
      if (converted) progress.advance(piece.size());
      return converted;
    });
    if (!copied) return report_error(options.input, copied.error(), false);
  }
  if (auto finished = writer->finish(); !finished) return report_error(options.output, finished.error(), false);
  return 0;
}

void add_convert_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<convert_options>();
  CLI::App* command = app.add_subcommand(
      "convert", "Write IN to OUT with every F16, BF16, F32 and F64 tensor converted to one dtype, streaming");
  command->add_option("in", options->input, "The .safetensors file to read")->required();
  command->add_option("out", options->output, "The file to write (replaced atomically)")->required();
  command->add_option("--dtype", options->dtype, "The dtype of the converted tensors")
      ->required()
      ->check(CLI::IsMember({"BF16", "F16", "F32"}));
  command->footer(
      "Floats are rounded to nearest, ties to even; values beyond the target's range become infinities,\n"
      "NaN stays NaN. Every other tensor (integers, BOOL, C64, F4, F6_*, and the F8 types, which hold\n"
      "quantized data whose scales are other tensors) is copied unchanged, and so are names, shapes and\n"
      "metadata. Nothing is written unless the whole file is. A progress bar is drawn on stderr if it is a\n"
      "terminal.\n"
      "Exit status: 0 written, 1 invalid input file, 2 unreadable input or unwritable output.");
  command->callback([options, &exit_code] { exit_code = run_convert(*options); });
}

// ---------------------------------------------------------------------------------------------
// split
// ---------------------------------------------------------------------------------------------

struct split_options {
  std::string input;
  std::string directory;
  std::uint64_t max_shard_size = 5000000000ULL;
};

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// `path` without trailing separators ("out/" and "out" name the same directory; "/" stays).
std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// Creates `directory` if it is missing. Refuses one that already holds a .safetensors file or
// an index: new shards beside old ones would leave a directory that model_reader cannot open
// (two indexes, or an index and a lone file) or an index beside stale shards.
safetensors::result<void> prepare_directory(const std::string& directory) {
  using safetensors::error;
  using safetensors::error_kind;
  std::error_code failure;
  std::filesystem::create_directories(directory, failure);
  if (failure || !std::filesystem::is_directory(directory, failure))
    return error(error_kind::io_error, "cannot create the directory " + display_string(directory) +
                                           (failure ? ": " + failure.message() : std::string(": not a directory")));
  std::vector<std::string> found;
  for (std::filesystem::directory_iterator it(directory, failure), end; !failure && it != end; it.increment(failure)) {
    const std::string name = it->path().filename().string();
    if (ends_with(name, ".safetensors") || ends_with(name, ".safetensors.index.json")) found.push_back(name);
  }
  if (failure)
    return error(error_kind::io_error, "cannot list " + display_string(directory) + ": " + failure.message());
  if (!found.empty()) {
    std::sort(found.begin(), found.end());
    const std::string others = found.size() > 1 ? " and " + plural(found.size() - 1, "other", "others") : "";
    return error(error_kind::io_error, "the directory already holds " + display_string(found.front()) + others +
                                           ": split writes only where no model is");
  }
  return {};
}

// Reads IN with pread and writes its tensors in its file order to shards of at most
// --max-shard-size tensor bytes (a larger tensor alone in its shard), streaming, with IN's
// metadata in every shard, or {"format": "pt"} (as transformers writes) if IN has none.
int run_split(const split_options& options) {
  auto reader = safetensors::try_open_pread(options.input);
  if (!reader) return report_error(options.input, reader.error(), false);
  const std::string directory = without_trailing_slashes(options.directory);
  if (auto ready = prepare_directory(directory); !ready) return report_error(options.directory, ready.error(), false);

  std::vector<safetensors::tensor_declaration> declarations;
  declarations.reserve(reader->size());
  std::uint64_t total = 0;
  for (const safetensors::tensor_info& info : reader->tensors()) {
    declarations.push_back(safetensors::tensor_declaration::from(info));
    total += info.byte_size();
  }
  safetensors::shard_options shard_options;
  shard_options.max_shard_size = options.max_shard_size;
  shard_options.metadata = reader->has_metadata() ? safetensors::metadata_entries::from(*reader)
                                                  : std::map<std::string, std::string>{{"format", "pt"}};
  auto writer = safetensors::try_make_sharded_writer(directory, std::move(declarations), shard_options);
  if (!writer) return report_error(options.directory, writer.error(), false);

  progress_bar progress("split", total);
  for (const safetensors::tensor_info& info : reader->tensors()) {
    auto copied = writer->produce(info.name, [&](safetensors::span<std::byte> piece, std::uint64_t offset) {
      return copy_piece(*reader, info, piece, offset, progress);
    });
    if (!copied) return report_error(options.input, copied.error(), false);
  }
  if (auto finished = writer->finish(); !finished) {
    // Shards finished before the failure are already in place; without the index they are not
    // a model, and the directory held none before.
    std::error_code ignored;
    for (const std::string& name : writer->file_names()) std::filesystem::remove(directory + "/" + name, ignored);
    return report_error(options.directory, finished.error(), false);
  }
  return 0;
}

void add_split_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<split_options>();
  CLI::App* command = app.add_subcommand(
      "split", "Write the tensors of IN as a sharded model in OUTDIR, with its model.safetensors.index.json");
  command->add_option("in", options->input, "The .safetensors file to read")->required();
  command->add_option("outdir", options->directory, "The directory to write (created if missing; must hold no model)")
      ->required();
  command
      ->add_option("--max-shard-size", options->max_shard_size,
                   "Most tensor bytes per shard: an integer with an optional unit B, KB, MB, GB, TB (powers of "
                   "1000) or KiB, MiB, GiB, TiB (powers of 1024); case matters")
      ->type_name("SIZE")
      ->transform(byte_size)
      ->default_str("5GB");
  command->footer(
      "Tensors go to shards in IN's file order, each shard holding at most SIZE tensor bytes; a tensor larger\n"
      "than SIZE gets a shard of its own. The shards are named model-00001-of-0000N.safetensors, each with\n"
      "IN's metadata (or {\"format\": \"pt\"} when IN has none), and the index model.safetensors.index.json\n"
      "is written as transformers writes it (2-space indentation, sorted keys, metadata.total_size, a final\n"
      "newline). When every tensor fits in one shard, the output is one model.safetensors and no index.\n"
      "Streaming: every shard stays open until the end, with up to 1 MiB of buffered data each; each file\n"
      "appears only once complete. OUTDIR is created if missing and must not already hold a .safetensors\n"
      "file or an index. A progress bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 written, 1 invalid input file, 2 unreadable input or unwritable output (or OUTDIR\n"
      "already holding a model), 100 or more a bad command line (such as an unknown size unit).");
  command->callback([options, &exit_code] { exit_code = run_split(*options); });
}

// ---------------------------------------------------------------------------------------------
// merge
// ---------------------------------------------------------------------------------------------

struct merge_options {
  std::string input;
  std::string output;
};

// Checks the whole model first (every shard against the index, and total_size), then copies
// every tensor into one file, shard by shard in path order and each shard in data order, so that
// each shard is read front to back. The output's metadata is the first shard's (in path order,
// model-00001-of-0000N), none if it has none.
int run_merge(const merge_options& options) {
  auto model = safetensors::try_open_model(options.input);
  if (!model) return report_error(options.input, model.error(), false);
  if (auto valid = model->validate(); !valid) return report_error(options.input, valid.error(), false);

  std::vector<const safetensors::mapped_reader*> shards;
  for (std::size_t shard = 0; shard < model->shard_paths().size(); ++shard) {
    auto reader = model->try_shard(shard);
    if (!reader) return report_error(options.input, reader.error(), false);
    shards.push_back(*reader);
  }
  const auto metadata =
      shards.empty() ? safetensors::metadata_entries() : safetensors::metadata_entries::from(*shards[0]);
  return copy_into_file("merge", shards, options.input, options.output, metadata, {});
}

void add_merge_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<merge_options>();
  CLI::App* command =
      app.add_subcommand("merge", "Write every tensor of a sharded model into one .safetensors file, streaming");
  command->add_option("model", options->input, "The model: its index (*.json) or its directory")->required();
  command->add_option("out", options->output, "The file to write (replaced atomically)")->required();
  command->footer(
      "The model is checked whole first: every shard present, each holding exactly the tensors the index\n"
      "places in it, and the index's total_size. OUT gets every tensor (names, dtypes, shapes, bytes) laid out\n"
      "as the official writer lays them out, with the metadata of the first shard in path order\n"
      "(model-00001-of-0000N.safetensors), none if it has none. Streaming, in bounded memory; nothing is\n"
      "written unless the whole file is. A progress bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 written, 1 invalid shard or index (InvalidIndex), 2 missing or unreadable shard, or\n"
      "unwritable output.");
  command->callback([options, &exit_code] { exit_code = run_merge(*options); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Look inside safetensors files and sharded models; rewrite, convert, split and merge them.",
               std::string(program_name)};
  app.footer(
      "Exit status: 0 success, 1 invalid file, 2 unreadable file, 100 or more: bad command line.\n"
      "Long work (rewrite, convert, split, merge, stats) draws a progress bar on stderr when it is a terminal.");
  app.require_subcommand(1);

  int exit_code = 0;
  add_inspect_command(app, exit_code);
  add_dump_command(app, exit_code);
  add_stats_command(app, exit_code);
  add_validate_command(app, exit_code);
  add_rewrite_command(app, exit_code);
  add_convert_command(app, exit_code);
  add_split_command(app, exit_code);
  add_merge_command(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  return exit_code;
}
