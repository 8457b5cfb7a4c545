// What the tool writes: standard output (buffered, its write errors detected), errors, JSON, and
// text made safe for a terminal.
#pragma once

#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace cli {

using json = nlohmann::ordered_json;

inline constexpr std::string_view program_name = "safetensors-cli";

// The exit statuses, as README and --help document them.
enum exit_status : int {
  success = 0,
  rejected_input = 1,  // an invalid file or index, a tensor not found, a slice that does not fit
  io_failure = 2,      // a file that could not be read or written, standard output included
  usage_error = 64,    // EX_USAGE: the command line itself is wrong
};

// Standard output could not be written (a full disk, a closed file): an IoError, exit 2.
class output_failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The tool's standard output. Text is collected and written in blocks; a block that cannot be
// written throws output_failure, or, when the reader has gone away (a closed pipe, as under
// `| head`), ends the process as SIGPIPE ends cat: quietly.
class standard_output {
 public:
  standard_output& operator<<(std::string_view text);
  standard_output& operator<<(char c);
  template <class Integer, std::enable_if_t<std::is_integral_v<Integer> && !std::is_same_v<Integer, char>, int> = 0>
  standard_output& operator<<(Integer value) {
    return *this << std::string_view(std::to_string(value));
  }
  // Writes what is collected so far; throws output_failure.
  void flush();

 private:
  std::string pending_;
};

// The one standard output every command prints through.
standard_output& out();

// `value` as one line of JSON text; invalid UTF-8 (paths can hold any bytes) becomes U+FFFD
// instead of making nlohmann_json throw.
std::string dump(const json& value);

// The exit status for a library error: 2 when a file could not be read or written, else 1.
int exit_status_for(const safetensors::error& error);

// The JSON of an error: {"ok": false, "path" (when given), "error": KIND, "message"}.
json failure_object(const safetensors::error& error, const std::string* path = nullptr);

// Reports `error` and returns its exit status: with `as_json` the object {"ok": false, "error":
// KIND, "message"} on standard output, else `safetensors-cli: KIND: MESSAGE` on standard error.
// The message is printed whole: it names the file (and the tensor) itself.
int report_error(const safetensors::error& error, bool as_json);

// `location` fit to be shown: a URL's password (user:***@host) and secret query values
// (token=***) hidden, as the library's messages hide them; any other text as it is. Every path
// the tool prints, in text or JSON, goes through this.
std::string shown_location(std::string_view location);

// `text` as a JSON string literal safe to print on one line of a terminal: names can hold
// newlines, NUL, quotes, escape sequences and bidi overrides. Invalid UTF-8 becomes U+FFFD. A
// URL's secrets are hidden (shown_location).
std::string display_string(std::string_view text);

// Columns on screen, counted as code points.
std::size_t display_width(std::string_view text);

// The first `width` columns of `text`, ending in "..." when cut, never inside a character.
std::string truncate_to_width(std::string_view text, std::size_t width);

// "[4, 6]"
std::string format_shape(safetensors::span<const std::uint64_t> shape);

// "1 tensor", "2 tensors"
std::string plural(std::uint64_t count, std::string_view one, std::string_view many);

// One row of a table: a cell per column, the same number in every row.
using table_row = std::vector<std::string>;

// Longer names would push the other columns off screen; the JSON output has them in full.
inline constexpr std::size_t max_name_width = 60;

// Prints `rows` (the first is the heading) in columns two spaces apart; a column whose
// `right_aligned` entry is true is padded on the left. The last column is not padded.
void print_table(const std::vector<table_row>& rows, const std::vector<bool>& right_aligned);

}  // namespace cli
