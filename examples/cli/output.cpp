#include "output.hpp"

#include "progress.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

namespace cli {

namespace {

// Blocks this large keep a dump of a large tensor to few writes.
constexpr std::size_t flush_size = std::size_t{1} << 16;

// The reader of standard output is gone: end as SIGPIPE ends cat, quietly, whether or not the
// signal was ignored when the tool started (it then reaches us as EPIPE).
[[noreturn]] void end_for_closed_reader() {
#if defined(SIGPIPE)
  std::signal(SIGPIPE, SIG_DFL);
  std::raise(SIGPIPE);
#endif
  // Where there is no SIGPIPE, or it is blocked: the status a shell shows for a death by it.
  std::_Exit(128 + 13);
}

}  // namespace

standard_output& standard_output::operator<<(std::string_view text) {
  pending_.append(text.data(), text.size());
  if (pending_.size() >= flush_size) flush();
  return *this;
}

standard_output& standard_output::operator<<(char c) { return *this << std::string_view(&c, 1); }

void standard_output::flush() {
  const bool written = std::fwrite(pending_.data(), 1, pending_.size(), stdout) == pending_.size();
  const int failure = errno;
  pending_.clear();
  if (written && std::fflush(stdout) == 0) return;
  const int reason = written ? errno : failure;
  if (reason == EPIPE) end_for_closed_reader();
  throw output_failure(std::string("cannot write to standard output: ") + std::strerror(reason));
}

standard_output& out() {
  static standard_output output;
  return output;
}

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

int exit_status_for(const safetensors::error& error) {
  return error.kind() == safetensors::error_kind::io_error ? io_failure : rejected_input;
}

json failure_object(const safetensors::error& error, const std::string* path) {
  json object;
  object["ok"] = false;
  if (path != nullptr) object["path"] = shown_location(*path);
  object["error"] = safetensors::error_kind_name(error.kind());
  object["message"] = error.message();
  return object;
}

int report_error(const safetensors::error& error, bool as_json) {
  progress_bar::finish_current();
  if (as_json) {
    out() << dump(failure_object(error)) << '\n';
  } else {
    // What was printed before the error comes first, on a terminal showing both.
    out().flush();
    std::cerr << program_name << ": " << safetensors::error_kind_name(error.kind()) << ": " << error.message() << '\n';
  }
  return exit_status_for(error);
}

namespace {

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

void append_unicode_escape(std::string& text, char32_t c) {
  static constexpr char hex[] = "0123456789abcdef";
  text += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) text += hex[(c >> shift) & 0xf];
}

bool starts_character(char byte) { return (static_cast<unsigned char>(byte) & 0xc0) != 0x80; }

}  // namespace

std::string shown_location(std::string_view location) {
  // A scheme (letters, digits, '+', '-', '.') then "://": http, https, s3, hf and the rest.
  const std::size_t scheme_end = location.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return std::string(location);
  for (char c : location.substr(0, scheme_end))
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '-' && c != '.')
      return std::string(location);
  return safetensors::detail::redact_url(location);
}

std::string display_string(std::string_view location_or_text) {
  const std::string redacted = shown_location(location_or_text);
  std::string_view text = redacted;
  std::string shown = "\"";
  while (!text.empty()) {
    char32_t c = 0;
    std::size_t length = decode_utf8(text, c);
    if (length == 0) {
      shown += "\xef\xbf\xbd";
      length = 1;
    } else if (c == '"' || c == '\\') {
      shown += '\\';
      shown += static_cast<char>(c);
    } else if (c == '\n') {
      shown += "\\n";
    } else if (c == '\t') {
      shown += "\\t";
    } else if (c == '\r') {
      shown += "\\r";
    } else if (is_terminal_control(c)) {
      append_unicode_escape(shown, c);
    } else {
      shown.append(text.data(), length);
    }
    text.remove_prefix(length);
  }
  shown += '"';
  return shown;
}

// Wide CJK characters and combining marks make a row a little off, which is tolerable for a
// listing.
std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), starts_character));
}

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
  std::string text = "[";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d > 0) text += ", ";
    text += std::to_string(shape[d]);
  }
  return text + "]";
}

std::string plural(std::uint64_t count, std::string_view one, std::string_view many) {
  return std::to_string(count) + " " + std::string(count == 1 ? one : many);
}

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
    out() << line << '\n';
  }
}

}  // namespace cli
