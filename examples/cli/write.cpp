// rewrite, convert, split and merge: the commands that write files, each streaming the tensors
// it reads into a writer through one loop.
#include "arguments.hpp"
#include "commands.hpp"
#include "input.hpp"
#include "output.hpp"
#include "progress.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>

namespace cli {

namespace {

using safetensors::error;
using safetensors::error_kind;
using safetensors::result;

// One tensor to write: read from `reader`, and converted to `target` when that is set.
template <class Reader>
struct streamed_tensor {
  const Reader* reader;
  const safetensors::tensor_info* info;
  std::optional<safetensors::dtype> target;

  safetensors::tensor_declaration declaration() const {
    safetensors::tensor_declaration declared = safetensors::tensor_declaration::from(*info);
    declared.dtype = target.value_or(info->dtype);
    return declared;
  }
  // Its size once written: converted tensors are of whole-byte float types.
  std::uint64_t output_bytes() const {
    return target ? info->element_count * (safetensors::dtype_bits(*target) / 8) : info->byte_size();
  }
};

// Every tensor of `reader`, in data order, copied unchanged.
template <class Reader>
void add_copies(const Reader& reader, std::vector<streamed_tensor<Reader>>& tensors) {
  for (const safetensors::tensor_info& info : reader.tensors()) tensors.push_back({&reader, &info, std::nullopt});
}

// Fills `piece`, the bytes at `offset` of `info` converted to `target`, from the source bytes.
// The writer hands out pieces by output bytes, whose element size differs from the input's, so
// the piece is mapped back to the source elements it holds (a piece holds whole elements).
template <class Reader>
result<void> convert_piece(const Reader& reader, const safetensors::tensor_info& info, safetensors::dtype target,
                           safetensors::span<std::byte> piece, std::uint64_t offset, std::vector<std::byte>& source) {
  const std::size_t in_width = safetensors::dtype_bits(info.dtype) / 8;
  const std::size_t out_width = safetensors::dtype_bits(target) / 8;
  source.resize(piece.size() / out_width * in_width);
  if (auto read = reader.try_read_part(info, offset / out_width * in_width, source); !read) return read;
  auto converted = safetensors::convert(source, info.dtype, piece, target);
  if (!converted)
    return error(converted.error().kind(), display_string(reader.name()) + ": tensor " + display_string(info.name) +
                                               ": " + converted.error().message());
  return {};
}

// Declares `tensors` to the writer make_writer(declarations) returns, streams each into it, one
// producer piece at a time (bounded memory for any size) under a progress bar labelled `label`,
// and finishes it; the writer leaves nothing behind unless the whole output is written. The
// result is the exit status.
template <class Reader, class MakeWriter>
int write_tensors(const char* label, const std::vector<streamed_tensor<Reader>>& tensors, MakeWriter&& make_writer) {
  std::vector<safetensors::tensor_declaration> declarations;
  declarations.reserve(tensors.size());
  std::uint64_t total = 0;
  for (const streamed_tensor<Reader>& tensor : tensors) {
    declarations.push_back(tensor.declaration());
    total += tensor.output_bytes();
  }
  auto writer = make_writer(std::move(declarations));
  if (!writer) return report_error(writer.error(), false);
  progress_bar progress(label, total);
  std::vector<std::byte> source;
  for (const streamed_tensor<Reader>& tensor : tensors) {
    auto produced = writer->try_produce(tensor.info->name, [&](safetensors::span<std::byte> piece, std::uint64_t offset) {
      auto filled = tensor.target ? convert_piece(*tensor.reader, *tensor.info, *tensor.target, piece, offset, source)
                                  : tensor.reader->try_read_part(*tensor.info, offset, piece);
      if (filled) progress.advance(piece.size());
      return filled;
    });
    if (!produced) return report_error(produced.error(), false);
  }
  if (auto finished = writer->try_finish(); !finished) return report_error(finished.error(), false);
  return exit_status::success;
}

// ---------------------------------------------------------------------------------------------
// rewrite and convert
// ---------------------------------------------------------------------------------------------

// rewrite is convert to no dtype: both write the tensors of one file to another.
struct copy_options {
  std::string input;
  std::string output;
  std::uint64_t alignment = 8;
  std::string dtype;  // convert's --dtype; empty for rewrite
};

// The tensors convert changes: the IEEE-style floats. The F8 types are left alone: they hold
// quantized data whose scales live in other tensors, which widening them would not apply.
bool is_converted(safetensors::dtype type) {
  using safetensors::dtype;
  return type == dtype::F16 || type == dtype::BF16 || type == dtype::F32 || type == dtype::F64;
}

int run_copy(const char* label, const copy_options& options) {
  std::optional<safetensors::dtype> target;
  if (!options.dtype.empty()) target = safetensors::dtype_from_name(options.dtype);
  auto file = open_streamed(options.input);
  if (!file) return report_error(file.error(), false);
  return std::visit(
      [&](const auto& reader) {
        using reader_type = std::decay_t<decltype(reader)>;
        std::vector<streamed_tensor<reader_type>> tensors;
        for (const safetensors::tensor_info& info : reader.tensors()) {
          const bool converted = target && is_converted(info.dtype) && info.dtype != *target;
          tensors.push_back({&reader, &info, converted ? target : std::nullopt});
        }
        safetensors::write_options write_options;
        write_options.alignment = options.alignment;
        return write_tensors(label, tensors, [&](std::vector<safetensors::tensor_declaration> declarations) {
          return safetensors::try_make_file_writer(options.output, std::move(declarations),
                                                   safetensors::metadata_entries::from(reader), write_options);
        });
      },
      *file);
}

const std::string input_help = "The .safetensors file to read, or - for standard input";

// IN and OUT, the arguments of rewrite and convert.
void add_input_and_output(CLI::App& command, copy_options& options) {
  command.add_option("in", options.input, input_help)->required();
  command.add_option("out", options.output, "The file to write (replaced atomically)")->required();
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
result<void> prepare_directory(const std::string& directory) {
  const std::string named = display_string(directory) + ": ";
  std::error_code failure;
  std::filesystem::create_directories(directory, failure);
  if (failure || !std::filesystem::is_directory(directory, failure))
    return error(error_kind::io_error, named + "cannot create the directory" +
                                           (failure ? ": " + failure.message() : std::string(": not a directory")));
  std::vector<std::string> found;
  for (std::filesystem::directory_iterator it(directory, failure), end; !failure && it != end; it.increment(failure)) {
    const std::string name = it->path().filename().string();
    if (ends_with(name, ".safetensors") || ends_with(name, ".safetensors.index.json")) found.push_back(name);
  }
  if (failure) return error(error_kind::io_error, named + "cannot list the directory: " + failure.message());
  if (!found.empty()) {
    std::sort(found.begin(), found.end());
    const std::string others = found.size() > 1 ? " and " + plural(found.size() - 1, "other", "others") : "";
    return error(error_kind::io_error, named + "the directory already holds " + display_string(found.front()) +
                                           others + ": split writes only where no model is");
  }
  return {};
}

// Tensors go to shards in IN's file order, with IN's metadata in every shard, or {"format":
// "pt"} (as transformers writes) if IN has none.
int run_split(const split_options& options) {
  auto file = open_streamed(options.input);
  if (!file) return report_error(file.error(), false);
  const std::string directory = without_trailing_slashes(options.directory);
  if (auto ready = prepare_directory(directory); !ready) return report_error(ready.error(), false);
  return std::visit(
      [&](const auto& reader) {
        using reader_type = std::decay_t<decltype(reader)>;
        std::vector<streamed_tensor<reader_type>> tensors;
        add_copies(reader, tensors);
        safetensors::shard_options shard_options;
        shard_options.max_shard_size = options.max_shard_size;
        shard_options.metadata = reader.has_metadata() ? safetensors::metadata_entries::from(reader)
                                                       : std::map<std::string, std::string>{{"format", "pt"}};
        return write_tensors("split", tensors, [&](std::vector<safetensors::tensor_declaration> declarations) {
          return safetensors::try_make_sharded_writer(directory, std::move(declarations), shard_options);
        });
      },
      *file);
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
  if (!model) return report_error(model.error(), false);
  if (auto valid = model->validate(); !valid) return report_error(valid.error(), false);
  std::vector<streamed_tensor<safetensors::mapped_reader>> tensors;
  for (std::size_t shard = 0; shard < model->shard_count(); ++shard) {
    auto reader = model->try_shard(shard);
    if (!reader) return report_error(reader.error(), false);
    add_copies(**reader, tensors);
  }
  const auto metadata = model->shard_count() == 0 ? safetensors::metadata_entries()
                                                  : safetensors::metadata_entries::from(**model->try_shard(0));
  return write_tensors("merge", tensors, [&](std::vector<safetensors::tensor_declaration> declarations) {
    return safetensors::try_make_file_writer(options.output, std::move(declarations), metadata);
  });
}

}  // namespace

command_runner define_rewrite(CLI::App& command) {
  auto options = std::make_shared<copy_options>();
  add_input_and_output(command, *options);
  command
      .add_option("--align", options->alignment,
                  "Start the data section at a multiple of N bytes (a power of two from 8 to 2^30)")
      ->capture_default_str()
      ->check(data_alignment);
  command.footer(
      "The output has the same tensors (names, dtypes, shapes, bytes) and metadata, laid out as the official\n"
      "writer lays them out, so a file it wrote with at most one metadata key comes back byte for byte.\n"
      "Nothing is written unless the whole file is. A progress bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 written, 1 invalid input file, 2 unreadable input or unwritable output, 64 usage error\n"
      "(a bad --align among them).");
  return [options] { return run_copy("rewrite", *options); };
}

command_runner define_convert(CLI::App& command) {
  auto options = std::make_shared<copy_options>();
  add_input_and_output(command, *options);
  command.add_option("--dtype", options->dtype, "The dtype of the converted tensors")
      ->required()
      ->check(CLI::IsMember({"BF16", "F16", "F32"}));
  command.footer(
      "Floats are rounded to nearest, ties to even; values beyond the target's range become infinities,\n"
      "NaN stays NaN. Every other tensor (integers, BOOL, C64, F4, F6_*, and the F8 types, which hold\n"
      "quantized data whose scales are other tensors) is copied unchanged, and so are names, shapes and\n"
      "metadata. Nothing is written unless the whole file is. A progress bar is drawn on stderr if it is a\n"
      "terminal.\n"
      "Exit status: 0 written, 1 invalid input file, 2 unreadable input or unwritable output, 64 usage error.");
  return [options] { return run_copy("convert", *options); };
}

command_runner define_split(CLI::App& command) {
  auto options = std::make_shared<split_options>();
  command.add_option("in", options->input, input_help)->required();
  command.add_option("outdir", options->directory, "The directory to write (created if missing; must hold no model)")
      ->required();
  command
      .add_option("--max-shard-size", options->max_shard_size,
                  "Most tensor bytes per shard: an integer with an optional unit B, KB, MB, GB, TB (powers of "
                  "1000) or KiB, MiB, GiB, TiB (powers of 1024); case matters")
      ->type_name("SIZE")
      ->transform(byte_size)
      ->default_str("5GB");
  command.footer(
      "Tensors go to shards in IN's file order, each shard holding at most SIZE tensor bytes; a tensor larger\n"
      "than SIZE gets a shard of its own. The shards are named model-00001-of-0000N.safetensors, each with\n"
      "IN's metadata (or {\"format\": \"pt\"} when IN has none), and the index model.safetensors.index.json\n"
      "is written as transformers writes it (2-space indentation, sorted keys, metadata.total_size, a final\n"
      "newline). When every tensor fits in one shard, the output is one model.safetensors and no index.\n"
      "Streaming: one file is open at a time, with up to 1 MiB of buffered data; each shard is closed as\n"
      "soon as its tensors are written, under a temporary name, and the shards take their names, then the\n"
      "index is written, only once every shard is complete; a failure leaves no shard behind. OUTDIR is\n"
      "created if missing and must not already hold a .safetensors file or an index. A progress bar is\n"
      "drawn on stderr if it is a terminal.\n"
      "Exit status: 0 written, 1 invalid input file, 2 unreadable input or unwritable output (or OUTDIR\n"
      "already holding a model), 64 usage error (such as an unknown size unit).");
  return [options] { return run_split(*options); };
}

command_runner define_merge(CLI::App& command) {
  auto options = std::make_shared<merge_options>();
  command.add_option("model", options->input, "The model: its index (*.json) or its directory")->required();
  command.add_option("out", options->output, "The file to write (replaced atomically)")->required();
  command.footer(
      "The model is checked whole first: every shard present, each holding exactly the tensors the index\n"
      "places in it, and the index's total_size. OUT gets every tensor (names, dtypes, shapes, bytes) laid out\n"
      "as the official writer lays them out, with the metadata of the first shard in path order\n"
      "(model-00001-of-0000N.safetensors), none if it has none. Streaming, in bounded memory; nothing is\n"
      "written unless the whole file is. A progress bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 written, 1 invalid shard or index (InvalidIndex), 2 missing or unreadable shard, or\n"
      "unwritable output, 64 usage error.");
  return [options] { return run_merge(*options); };
}

}  // namespace cli
