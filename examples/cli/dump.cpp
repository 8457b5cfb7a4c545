// dump: the values of one tensor, or of a slice of it, row by row.
#include "arguments.hpp"
#include "commands.hpp"
#include "input.hpp"
#include "output.hpp"
#include "values.hpp"

#include <limits>
#include <memory>
#include <optional>

namespace cli {

namespace {

struct dump_options {
  std::string path;
  tensor_choice tensor;
  std::optional<std::string> slice;
  bool json = false;
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  safetensors::packing packing = safetensors::packing::low_first;
  remote_access remote;
};

// Collects values into text and writes it out in blocks, so that a tensor of any size is
// printed in bounded memory: comma-separated for JSON, else a line per row of `row_length`
// values (all on one line when it is 0).
class value_writer {
 public:
  value_writer(bool json, std::uint64_t row_length) : json_(json), row_length_(row_length) {}

  void add(const std::string& value) {
    if (count_ > 0) text_ += json_ ? "," : row_length_ != 0 && count_ % row_length_ == 0 ? "\n" : " ";
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
    out() << text_;
    text_.clear();
  }

  bool json_;
  std::uint64_t row_length_;
  std::uint64_t count_ = 0;
  std::string text_;
};

std::string value_text(double value, bool json) { return json ? number_json(value) : number_text(value); }
std::string value_text(std::int64_t value, bool) { return std::to_string(value); }
std::string value_text(std::uint64_t value, bool) { return std::to_string(value); }
std::string value_text(std::uint8_t value, bool) { return std::to_string(value); }
std::string value_text(std::complex<float> value, bool json) {
  return "[" + value_text(double{value.real()}, json) + (json ? "," : ", ") + value_text(double{value.imag()}, json) +
         "]";
}

// What dump prints of a tensor: the whole tensor, or a slice of it.
struct selection {
  std::optional<safetensors::tensor_slice> slice;
  std::vector<std::uint64_t> shape;
  std::uint64_t total = 0;  // elements

  // Calls `visit(first, count)` for each run of consecutive elements selected, in order, until
  // it returns false.
  template <class Visit>
  void for_each_run(safetensors::dtype type, Visit&& visit) const {
    if (!slice) {
      visit(std::uint64_t{0}, total);
      return;
    }
    const std::uint64_t bits = safetensors::dtype_bits(type);
    const std::uint64_t run_elements = slice->run_bytes() * 8 / bits;
    slice->for_each_run_group([&](std::uint64_t first, std::uint64_t stride, std::uint64_t count) {
      for (std::uint64_t r = 0; r < count; ++r) {
        if (!visit((first + r * stride) * 8 / bits, run_elements)) return false;
      }
      return true;
    });
  }
};

// Layout of the text form: a line `NAME DTYPE [shape]` (NAME as a JSON string literal, as in
// inspect; a slice adds `, slice "TEXT" of shape [..]`), the values a row of the last dimension
// to a line, and when --limit cut them short, a last line "... N more values".
int run_dump(const dump_options& options) {
  if (!options.tensor.any()) throw usage_failure("dump needs TENSOR or --index K");
  open_options opening;
  opening.remote = options.remote;
  auto tensors = tensor_collection::open(options.path, opening);
  if (!tensors) return report_error(tensors.error(), options.json);
  auto found = tensors->choose(options.tensor);
  if (!found) return report_error(found.error(), options.json);
  const safetensors::tensor_info& info = **found;
  selection chosen;
  if (options.slice) {
    auto slice = tensors->slice(info.name, parse_slice(*options.slice));
    if (!slice) return report_error(slice.error(), options.json);
    chosen.shape = slice->shape();
    chosen.total = slice->element_count();
    chosen.slice.emplace(std::move(*slice));
  } else {
    chosen.shape.assign(info.shape.begin(), info.shape.end());
    chosen.total = info.element_count;
  }
  const std::uint64_t shown = std::min(chosen.total, options.limit);
  const std::vector<std::uint64_t> shape(info.shape.begin(), info.shape.end());

  if (options.json) {
    out() << "{\"name\":" << dump(std::string(info.name))
          << ",\"dtype\":" << dump(std::string(safetensors::dtype_name(info.dtype))) << ",\"shape\":" << dump(shape);
    if (options.slice) out() << ",\"slice\":" << dump(*options.slice) << ",\"slice_shape\":" << dump(chosen.shape);
    out() << ",\"values\":[";
  } else {
    out() << display_string(info.name) << ' ' << safetensors::dtype_name(info.dtype) << ' ' << format_shape(shape);
    if (options.slice)
      out() << ", slice " << display_string(*options.slice) << " of shape " << format_shape(chosen.shape);
    out() << '\n';
  }
  value_writer values(options.json, chosen.shape.empty() ? 0 : chosen.shape.back());
  value_decoder decoder(options.packing);
  auto read_part = [&](std::uint64_t offset, safetensors::span<std::byte> destination) {
    return tensors->read_part(info, offset, destination);
  };
  std::uint64_t left = shown;
  safetensors::result<void> decoded;
  if (left > 0) {
    chosen.for_each_run(info.dtype, [&](std::uint64_t first, std::uint64_t count) {
      const std::uint64_t taken = std::min(count, left);
      decoded = decoder.decode(info, first, taken, read_part, [&](auto chunk) {
        for (const auto& value : chunk) values.add(value_text(value, options.json));
      });
      left -= taken;
      return decoded && left > 0;
    });
  }
  values.finish();
  if (options.json) {
    out() << "]}\n";
  } else if (decoded && shown < chosen.total) {
    out() << "... " << plural(chosen.total - shown, "more value", "more values") << '\n';
  }
  // A storage that fails mid-way (a remote file) ends the output where it failed.
  if (!decoded) return report_error(decoded.error(), false);
  return exit_status::success;
}

}  // namespace

command_runner define_dump(CLI::App& command) {
  auto options = std::make_shared<dump_options>();
  command.add_option("path", options->path, path_help)->required();
  add_tensor_choice(command, options->tensor, "The tensor's name (put -- before a name that starts with -)");
  command
      .add_option("--slice", options->slice,
                  "Only these elements, in Python's syntax: per dimension an index or start:stop[:step], "
                  "negative indices counting from the end; e.g. \"2:6,:\" or \"-1,::2\"")
      ->type_name("SLICE")
      ->check(slice_syntax);
  command.add_flag("--json", options->json,
                   "Print one JSON object {\"name\", \"dtype\", \"shape\", \"values\"} instead of text");
  command.add_option("--limit", options->limit, "Print at most the first N values (default: all)")
      ->type_name("N")
      ->check(unsigned_decimal);
  add_packing_option(command, options->packing);
  add_remote_options(command, options->remote);
  command.footer(
      "Values: floats (F16, BF16, F32, F64, F8_*) in the shortest decimal that reads back as the same double,\n"
      "-0 keeping its sign, and nan, inf, -inf (in JSON: floats such as 1.0 and -0.0, and the strings\n"
      "\"nan\", \"inf\", \"-inf\"); integers exactly; BOOL as its byte (0 or 1); C64 as [re, im].\n"
      "F4 (E2M1), F6_E2M3 and F6_E3M2 (OCP MX formats) are floats too, unpacked as --packing says; a slice of\n"
      "them must start and end on byte boundaries.\n"
      "Text form: a line NAME DTYPE [shape], the values a row of the last dimension to a line, and\n"
      "\"... N more values\" when --limit cut them short.\n"
      "--slice takes Python's syntax, with dimensions left out taken whole; an index drops its dimension.\n"
      "Unlike Python, a bound past the end or a start after its stop is refused, not clipped. The text form\n"
      "adds ', slice \"SLICE\" of shape [..]' to its first line; --json adds \"slice\" and \"slice_shape\"\n"
      "before \"values\", which are the selection's, row-major.\n"
      "Exit status: 0 printed, 1 invalid file, no such tensor or a slice that does not fit it, 2 unreadable\n"
      "file, 64 usage error (a malformed slice among them).");
  return [options] { return run_dump(*options); };
}

}  // namespace cli
