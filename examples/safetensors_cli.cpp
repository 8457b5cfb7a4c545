// safetensors-cli: look inside safetensors files.
//
//   safetensors-cli inspect FILE [--json]
//   safetensors-cli dump FILE (TENSOR | --index K) [--json] [--limit N]
//   safetensors-cli stats FILE [TENSOR | --index K] [--json]
//   safetensors-cli validate FILE...
//   safetensors-cli rewrite IN OUT [--align N]
//   safetensors-cli convert IN OUT --dtype BF16|F16|F32
//
// Exit status: 0 success, 1 the file was rejected as invalid (or a tensor was not found, or a
// value could not be converted), 2 the file could not be read or written, 100 or more (CLI11's
// codes) for a bad command line.
//
// Each subcommand is one add_<name>_command function that registers its options and the code
// to run; main() only parses the command line.

#include <safetensors/safetensors.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
// Tensors and their values
// ---------------------------------------------------------------------------------------------

// Which tensor a command works on: a name, or the position in the file's data order (the order
// of inspect's listing), for names a command line cannot hold (NUL) or that read as options.
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
                                          "The tensor at position K (from 0) in data order, as inspect lists them; "
                                          "instead of TENSOR")
                           ->type_name("K")
                           ->check(unsigned_decimal);
  name->excludes(index);
  choice.name_option = name;
  choice.index_option = index;
}

safetensors::result<const safetensors::tensor_info*> find_tensor(const safetensors::mapped_reader& reader,
                                                                  const tensor_choice& choice) {
  if (!choice.by_index()) return reader.try_info(choice.name);
  if (choice.index >= reader.size())
    return safetensors::error(safetensors::error_kind::tensor_not_found,
                              "no tensor at index " + std::to_string(choice.index) + ": the file has " +
                                  std::to_string(reader.size()) + (reader.size() == 1 ? " tensor" : " tensors"));
  return &reader.tensors()[static_cast<std::size_t>(choice.index)];
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

int run_inspect(const inspect_options& options) {
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
  CLI::App* command = app.add_subcommand("inspect", "Validate a file and list its header, metadata and tensors");
  command->add_option("file", options->path, "The .safetensors file")->required();
  command->add_flag("--json", options->json, "Print one JSON object instead of a table");
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

// Reads with pread and writes through the streaming writer, one bounded piece at a time, so a
// file of any size is rewritten in constant memory.
int run_rewrite(const rewrite_options& options) {
  auto reader = safetensors::try_open_pread(options.input);
  if (!reader) return report_error(options.input, reader.error(), false);
  std::vector<safetensors::tensor_declaration> declarations;
  declarations.reserve(reader->size());
  for (const safetensors::tensor_info& info : reader->tensors())
    declarations.push_back(safetensors::tensor_declaration::from(info));
  const auto metadata = safetensors::metadata_entries::from(*reader);
  safetensors::write_options write_options;
  write_options.alignment = options.alignment;

  auto writer = safetensors::try_make_file_writer(options.output, std::move(declarations), metadata, write_options);
  if (!writer) return report_error(options.output, writer.error(), false);
  for (const safetensors::tensor_info& info : reader->tensors()) {
    auto copied = writer->produce(info.name, [&](safetensors::span<std::byte> piece, std::uint64_t offset) {
      return reader->try_read_part(info, offset, piece);
    });
    if (!copied) return report_error(options.input, copied.error(), false);
  }
  if (auto finished = writer->finish(); !finished) return report_error(options.output, finished.error(), false);
  return 0;
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
  auto reader = safetensors::try_open(options.path);
  if (!reader) return report_error(options.path, reader.error(), options.json);
  auto info = find_tensor(*reader, options.tensor);
  if (!info) return report_error(options.path, info.error(), options.json);
  const safetensors::tensor_view tensor = reader->view(**info);
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
  command->add_option("file", options->path, "The .safetensors file")->required();
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
safetensors::result<summary> summarise(const safetensors::tensor_view& tensor) {
  summary out;
  const value_kind kind = kind_of(tensor.dtype());
  if (kind == value_kind::complex) {
    out.note = "complex: not summarised";
    return out;
  }
  if (kind == value_kind::raw_bytes) {
    out.note = "sub-byte: not summarised";
    return out;
  }
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

// Text form: a table with a heading row and one row per tensor, in data order; the note
// column is there only when some tensor was not summarised. JSON: one array of objects.
int run_stats(const stats_options& options) {
  auto reader = safetensors::try_open(options.path);
  if (!reader) return report_error(options.path, reader.error(), options.json);
  std::vector<const safetensors::tensor_info*> chosen;
  if (options.tensor.any()) {
    auto info = find_tensor(*reader, options.tensor);
    if (!info) return report_error(options.path, info.error(), options.json);
    chosen.push_back(*info);
  } else {
    for (const safetensors::tensor_info& info : reader->tensors()) chosen.push_back(&info);
  }

  std::vector<table_row> rows = {{"name", "dtype", "count", "min", "max", "mean", "std", "nan", "inf", "note"}};
  bool any_note = false;
  if (options.json) std::cout << '[';
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    auto stats = summarise(reader->view(*chosen[i]));
    if (!stats) {
      if (options.json) std::cout << "]\n" << std::flush;
      return report_error(options.path, stats.error(), false);
    }
    if (options.json) {
      std::cout << (i > 0 ? "," : "") << dump(summary_json(*chosen[i], *stats));
    } else {
      any_note = any_note || !stats->note.empty();
      rows.push_back(summary_row(*chosen[i], *stats));
    }
  }
  if (options.json) {
    std::cout << "]\n";
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
  command->add_option("file", options->path, "The .safetensors file")->required();
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
      "Exit status: 0 printed, 1 invalid file or no such tensor, 2 unreadable file.");
  command->callback([options, &exit_code] { exit_code = run_stats(*options); });
}

// ---------------------------------------------------------------------------------------------
// validate
// ---------------------------------------------------------------------------------------------

struct validate_options {
  std::vector<std::string> paths;
};

// One line per file, in the order given: `ok "PATH" (N tensors)` or
// `FAIL "PATH": Kind: message` (paths as JSON string literals, as elsewhere). The exit status
// is 1 when any file is invalid, else 2 when any could not be read, else 0.
int run_validate(const validate_options& options) {
  bool any_invalid = false;
  bool any_unreadable = false;
  for (const std::string& path : options.paths) {
    auto reader = safetensors::try_open(path);
    if (reader) {
      std::cout << "ok " << display_string(path) << " (" << reader->size()
                << (reader->size() == 1 ? " tensor)\n" : " tensors)\n");
      continue;
    }
    const safetensors::error& error = reader.error();
    (exit_code_for(error) == 2 ? any_unreadable : any_invalid) = true;
    std::cout << "FAIL " << display_string(path) << ": " << safetensors::error_kind_name(error.kind()) << ": "
              << error.message() << '\n';
  }
  return any_invalid ? 1 : any_unreadable ? 2 : 0;
}

void add_validate_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<validate_options>();
  CLI::App* command = app.add_subcommand("validate", "Check that files are valid safetensors files");
  command->add_option("files", options->paths, "The .safetensors files")->required();
  command->footer(
      "Prints one line per file: ok \"FILE\" (N tensors), or FAIL \"FILE\": Kind: message.\n"
      "Exit status: 0 every file is valid, 1 some file is invalid, else 2 some file could not be read.");
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
  for (const safetensors::tensor_info& info : reader->tensors()) {
    const bool convert = is_converted(info.dtype) && info.dtype != target;
    auto copied = writer->produce(info.name, [&](safetensors::span<std::byte> piece, std::uint64_t offset) {
      if (!convert) return reader->try_read_part(info, offset, piece);
      return convert_piece(*reader, info, target, piece, offset, source);
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
      "metadata. Nothing is written unless the whole file is.\n"
      "Exit status: 0 written, 1 invalid input file, 2 unreadable input or unwritable output.");
  command->callback([options, &exit_code] { exit_code = run_convert(*options); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Look inside safetensors files.", std::string(program_name)};
  app.footer("Exit status: 0 success, 1 invalid file, 2 unreadable file, 100 or more: bad command line.");
  app.require_subcommand(1);

  int exit_code = 0;
  add_inspect_command(app, exit_code);
  add_dump_command(app, exit_code);
  add_stats_command(app, exit_code);
  add_validate_command(app, exit_code);
  add_rewrite_command(app, exit_code);
  add_convert_command(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  return exit_code;
}
