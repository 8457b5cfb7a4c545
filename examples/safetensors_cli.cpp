// safetensors-cli: look inside safetensors files.
//
//   safetensors-cli inspect FILE [--json]
//   safetensors-cli rewrite IN OUT [--align N]
//
// Exit status: 0 success, 1 the file was rejected as invalid, 2 the file could not be read,
// 100 or more (CLI11's codes) for a bad command line.
//
// Each subcommand is one add_<name>_command function that registers its options and the code
// to run; main() only parses the command line.

#include <safetensors/safetensors.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iostream>
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

constexpr std::size_t column_count = 5;
using table_row = std::array<std::string, column_count>;

// Sizes read best right-aligned; every other column is text.
constexpr std::array<bool, column_count> right_aligned = {false, false, false, true, false};

// Longer names would push the other columns off screen; the JSON output has them in full.
constexpr std::size_t max_name_width = 60;

void print_table(const std::vector<table_row>& rows) {
  std::array<std::size_t, column_count> widths{};
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
  print_table(rows);
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Look inside safetensors files.", std::string(program_name)};
  app.footer("Exit status: 0 success, 1 invalid file, 2 unreadable file, 100 or more: bad command line.");
  app.require_subcommand(1);

  int exit_code = 0;
  add_inspect_command(app, exit_code);
  add_rewrite_command(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  return exit_code;
}
