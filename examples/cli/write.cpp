// rewrite, convert, split and merge: the commands that write files, each streaming the tensors
// it reads into a writer through one loop.
#include "arguments.hpp"
#include "commands.hpp"
#include "digest.hpp"
#include "input.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "values.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <type_traits>

namespace cli {

namespace {

using safetensors::error;
using safetensors::error_kind;
using safetensors::result;

// One tensor to write: read from `reader`, and converted to `target` when that is set; or, when
// `group` is set, the quantized weight whose values `info` holds, dequantized to `target` with
// its scales read from `model`.
template <class Reader>
struct streamed_tensor {
  const Reader* reader;
  const safetensors::tensor_info* info;
  std::optional<safetensors::dtype> target;
  safetensors::packing packing = safetensors::packing::low_first;
  const safetensors::quant_group* group = nullptr;
  const safetensors::any_model* model = nullptr;

  safetensors::tensor_declaration declaration() const {
    if (group != nullptr) return {group->weight, *target, group->shape};
    safetensors::tensor_declaration declared = safetensors::tensor_declaration::from(*info);
    declared.dtype = target.value_or(info->dtype);
    return declared;
  }
  // Its size once written.
  std::uint64_t output_bytes() const {
    if (group != nullptr)
      return std::accumulate(group->shape.begin(), group->shape.end(), bytes_of(*target, 1),
                             std::multiplies<std::uint64_t>());
    return target ? bytes_of(*target, info->element_count) : info->byte_size();
  }
};

// Every tensor of `reader`, in data order, copied unchanged.
template <class Reader>
void add_copies(const Reader& reader, std::vector<streamed_tensor<Reader>>& tensors) {
  for (const safetensors::tensor_info& info : reader.tensors()) tensors.push_back({&reader, &info, std::nullopt});
}

// The memory a conversion stages its elements in, reused from piece to piece.
struct conversion_buffers {
  std::vector<std::byte> source;
  std::vector<std::byte> converted;
};

// Fills `piece`, the bytes at `offset` of `tensor` converted to its target, from the source
// bytes. The writer hands out pieces by output bytes, whose element size differs from the
// input's, and a piece may cut through the bytes a group of sub-byte elements shares (3 bytes
// of F6 hold 4 elements): the elements converted are those of the whole groups, on both sides,
// that the piece touches, and the piece is copied from them.
template <class Reader>
result<void> convert_piece(const streamed_tensor<Reader>& tensor, safetensors::span<std::byte> piece,
                           std::uint64_t offset, conversion_buffers& buffers) {
  const safetensors::tensor_info& info = *tensor.info;
  const safetensors::dtype target = *tensor.target;
  const std::uint64_t group = std::lcm(elements_per_byte_group(info.dtype), elements_per_byte_group(target));
  const std::uint64_t group_bits = group * safetensors::dtype_bits(target);
  const std::uint64_t first = offset * 8 / group_bits * group;
  const std::uint64_t end =
      std::min(info.element_count, ((offset + piece.size()) * 8 + group_bits - 1) / group_bits * group);
  buffers.source.resize(static_cast<std::size_t>(bytes_of(info.dtype, end - first)));
  if (auto read = tensor.reader->try_read_part(info, bytes_of(info.dtype, first), buffers.source); !read) return read;
  const bool exact = bytes_of(target, first) == offset && bytes_of(target, end - first) == piece.size();
  buffers.converted.resize(exact ? 0 : static_cast<std::size_t>(bytes_of(target, end - first)));
  const safetensors::span<std::byte> into = exact ? piece : safetensors::span<std::byte>(buffers.converted);
  if (auto converted = safetensors::try_convert(buffers.source, info.dtype, into, target, tensor.packing); !converted)
    return error(converted.error().kind(), display_string(tensor.reader->name()) + ": tensor " +
                                               display_string(info.name) + ": " + converted.error().message());
  if (!exact) std::memcpy(piece.data(), buffers.converted.data() + (offset - bytes_of(target, first)), piece.size());
  return {};
}

// Fills `piece`, the bytes at `offset` of the dequantized weight `part` makes from `tensor`'s
// values: the value bytes under the piece (a byte of values gives several of the target, and a
// piece may start or end inside them), dequantized whole, and the piece copied out of them.
template <class Reader>
result<void> dequantize_piece(const streamed_tensor<Reader>& tensor, const safetensors::dequantizer& part,
                              safetensors::span<std::byte> piece, std::uint64_t offset, conversion_buffers& buffers) {
  const std::uint64_t per_byte = part.bytes_per_value_byte();
  const std::uint64_t first = offset / per_byte, end = (offset + piece.size() + per_byte - 1) / per_byte;
  buffers.source.resize(static_cast<std::size_t>(end - first));
  if (auto read = tensor.reader->try_read_part(*tensor.info, first, buffers.source); !read) return read;
  buffers.converted.resize(static_cast<std::size_t>((end - first) * per_byte));
  if (auto made = part.try_dequantize(first, buffers.source, buffers.converted); !made)
    return error(made.error().kind(), display_string(tensor.reader->name()) + ": " + made.error().message());
  std::memcpy(piece.data(), buffers.converted.data() + (offset - first * per_byte), piece.size());
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
  conversion_buffers buffers;
  // A dequantized weight's scales, in memory while it is written and no longer.
  std::optional<safetensors::dequantizer> part;
  for (const streamed_tensor<Reader>& tensor : tensors) {
    part.reset();
    if (tensor.group != nullptr) {
      auto made = safetensors::dequantizer::try_make(*tensor.model, *tensor.group, *tensor.target);
      if (!made) return report_error(made.error(), false);
      part = std::move(*made);
    }
    const std::string name = tensor.group != nullptr ? tensor.group->weight : std::string(tensor.info->name);
    auto produced = writer->try_produce(name, [&](safetensors::span<std::byte> piece, std::uint64_t offset) {
      auto filled = part            ? dequantize_piece(tensor, *part, piece, offset, buffers)
                    : tensor.target ? convert_piece(tensor, piece, offset, buffers)
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
  safetensors::packing packing = safetensors::packing::low_first;
  bool embed_hashes = false;
  remote_access remote;
};

// The tensors convert changes: the IEEE-style floats and the sub-byte ones. The F8 types are left
// alone: they hold quantized data whose scales live in other tensors, which widening them would
// not apply.
bool is_converted(safetensors::dtype type) {
  using safetensors::dtype;
  return type == dtype::F16 || type == dtype::BF16 || type == dtype::F32 || type == dtype::F64 ||
         elements_per_byte_group(type) > 1;
}

// The prefix of the metadata keys that hold tensors' sha256, as rewrite --embed-hashes writes
// them and verify reads them.
// `reader`'s metadata with a key sha256:NAME for every tensor (replacing any there was).
template <class Reader>
result<safetensors::metadata_entries> with_hashes(const tensor_collection& input, const Reader& reader) {
  std::map<std::string, std::string> entries = safetensors::metadata_entries::from(reader).entries();
  for (auto it = entries.begin(); it != entries.end();) {
    it = it->first.compare(0, embedded_hash_prefix.size(), embedded_hash_prefix) == 0 ? entries.erase(it)
                                                                                      : std::next(it);
  }
  progress_bar progress("hash", reader.data_size());
  auto computed = compute_digests(input, false, default_threads(), progress);
  if (!computed) return computed.error();
  for (const auto& [name, hex] : computed->tensors) entries[embedded_hash_prefix + name] = hex;
  return safetensors::metadata_entries(std::move(entries));
}

// The input of rewrite, convert and split: one file (local, standard input or a URL), read with
// pread, never mapped, so that memory stays bounded.
result<tensor_collection> open_input_file(const std::string& path, const remote_access& remote) {
  open_options opening;
  opening.storage = storage_kind::pread;
  opening.remote = remote;
  opening.as_file = true;
  return tensor_collection::open(path, opening);
}

// Opens IN as open_input_file does and returns `write(input, reader)` for its one file's reader, or
// reports the error that kept it from opening.
template <class Write>
int with_input_file(const std::string& path, const remote_access& remote, Write&& write) {
  auto input = open_input_file(path, remote);
  if (!input) return report_error(input.error(), false);
  auto file = input->model().try_shard(0);
  if (!file) return report_error(file.error(), false);
  return write(*input, *file);
}

int run_copy(const char* label, const copy_options& options) {
  std::optional<safetensors::dtype> target;
  if (!options.dtype.empty()) target = safetensors::dtype_from_name(options.dtype);
  return with_input_file(options.input, options.remote, [&](const tensor_collection& input, const auto& reader) {
    using reader_type = std::decay_t<decltype(reader)>;
    std::vector<streamed_tensor<reader_type>> tensors;
    for (const safetensors::tensor_info& info : reader.tensors()) {
      const bool converted = target && is_converted(info.dtype) && info.dtype != *target;
      tensors.push_back({&reader, &info, converted ? target : std::nullopt, options.packing});
    }
    auto metadata = options.embed_hashes
                        ? with_hashes(input, reader)
                        : result<safetensors::metadata_entries>(safetensors::metadata_entries::from(reader));
    if (!metadata) return report_error(metadata.error(), false);
    safetensors::write_options write_options;
    write_options.alignment = options.alignment;
    return write_tensors(label, tensors, [&](std::vector<safetensors::tensor_declaration> declarations) {
      return safetensors::try_make_file_writer(options.output, std::move(declarations), *metadata, write_options);
    });
  });
}

const std::string input_help = "The .safetensors file to read: a path, - for standard input, or a URL";

// IN and OUT, the arguments of rewrite and convert.
void add_input_and_output(CLI::App& command, copy_options& options) {
  command.add_option("in", options.input, input_help)->required();
  command.add_option("out", options.output, "The file to write (replaced atomically)")->required();
}

// `path` without trailing separators ("out/" and "out" name the same directory; "/" stays).
std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// The sharded writer for OUTDIR, its refusal of a directory that holds a model told in the tool's
// words: the library names shard_options::replace, the tool's users --replace.
result<safetensors::sharded_writer> make_model_writer(const std::string& directory,
                                                      std::vector<safetensors::tensor_declaration> declarations,
                                                      const safetensors::shard_options& options) {
  auto writer =
      safetensors::try_make_sharded_writer(without_trailing_slashes(directory), std::move(declarations), options);
  if (writer) return writer;
  std::string message = writer.error().message();
  constexpr std::string_view library_words = "(shard_options::replace)";
  const std::size_t at = message.rfind(library_words);
  if (at != std::string::npos) message.replace(at, library_words.size(), "(--replace)");
  return error(writer.error().kind(), message);
}

// ---------------------------------------------------------------------------------------------
// split
// ---------------------------------------------------------------------------------------------

struct split_options {
  std::string input;
  std::string directory;
  std::uint64_t max_shard_size = 5000000000ULL;
  bool replace = false;
  remote_access remote;
};

// Tensors go to shards in IN's file order, with IN's metadata in every shard, or {"format":
// "pt"} (as transformers writes) if IN has none. The writer refuses a directory that holds a
// model, unless --replace: new shards beside old ones would leave a directory that opens as
// the wrong model.
int run_split(const split_options& options) {
  return with_input_file(options.input, options.remote, [&](const tensor_collection&, const auto& reader) {
    using reader_type = std::decay_t<decltype(reader)>;
    std::vector<streamed_tensor<reader_type>> tensors;
    add_copies(reader, tensors);
    safetensors::shard_options shard_options;
    shard_options.max_shard_size = options.max_shard_size;
    shard_options.replace = options.replace;
    shard_options.metadata = reader.has_metadata() ? safetensors::metadata_entries::from(reader)
                                                   : std::map<std::string, std::string>{{"format", "pt"}};
    return write_tensors("split", tensors, [&](std::vector<safetensors::tensor_declaration> declarations) {
      return make_model_writer(options.directory, std::move(declarations), shard_options);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// merge
// ---------------------------------------------------------------------------------------------

struct merge_options {
  std::string input;
  std::string output;
  remote_access remote;
};

// Checks the whole model first (every shard against the index, and total_size), then copies
// every tensor into one file, shard by shard in path order and each shard in data order, so that
// each shard is read front to back. The output's metadata is the first shard's (in path order,
// model-00001-of-0000N), none if it has none.
int run_merge(const merge_options& options) {
  open_options opening;
  opening.storage = storage_kind::pread;
  opening.remote = options.remote;
  auto input = tensor_collection::open(options.input, opening);
  if (!input) return report_error(input.error(), false);
  if (auto valid = input->validate(); !valid) return report_error(valid.error(), false);
  const safetensors::any_model& model = input->model();
  // The output must not be one of the model's own files (by inode, not only by name): merging
  // into a shard would leave the index pointing at a file that holds everything.
  std::vector<std::string> own_files = model.shard_paths();
  if (!model.index_path().empty()) own_files.push_back(model.index_path());
  for (const std::string& own : own_files) {
    std::error_code failure;
    if (!is_url(own) && std::filesystem::equivalent(options.output, own, failure))
      return report_error(
          error(error_kind::invalid_argument, display_string(options.output) + " is " + display_string(own) +
                                                  ", a file of the model being merged: write elsewhere"),
          false);
  }
  // Validated: every shard is open, and the readers outlive the tensors that point to them.
  std::vector<safetensors::any_reader> shards;
  for (std::size_t shard = 0; shard < model.shard_count(); ++shard) shards.push_back(model.shard(shard));
  std::vector<streamed_tensor<safetensors::any_reader>> tensors;
  for (const safetensors::any_reader& shard : shards) add_copies(shard, tensors);
  const auto metadata =
      shards.empty() ? safetensors::metadata_entries() : safetensors::metadata_entries::from(shards[0]);
  return write_tensors("merge", tensors, [&](std::vector<safetensors::tensor_declaration> declarations) {
    return safetensors::try_make_file_writer(options.output, std::move(declarations), metadata);
  });
}

// ---------------------------------------------------------------------------------------------
// dequantize
// ---------------------------------------------------------------------------------------------

struct dequantize_options {
  std::string input;
  std::string output;
  std::string dtype;
  std::uint64_t max_shard_size = 5000000000ULL;
  bool replace = false;
  remote_access remote;
};

// Every tensor of every shard, in path order and each shard in data order (each file read front
// to back): a group's values become its dequantized weight, its scale tensors go, the rest is
// copied. A model is checked whole first, as merge does; it becomes a model in OUT, re-sharded
// by --max-shard-size (the weights grow), with its first shard's metadata.
int run_dequantize(const dequantize_options& options) {
  open_options opening;
  opening.storage = storage_kind::pread;
  opening.remote = options.remote;
  auto input = tensor_collection::open(options.input, opening);
  if (!input) return report_error(input.error(), false);
  if (input->is_model())
    if (auto valid = input->validate(); !valid) return report_error(valid.error(), false);
  auto groups = quantized_groups(*input);
  if (!groups) return report_error(groups.error(), false);
  const safetensors::dtype target = *safetensors::dtype_from_name(options.dtype);
  std::map<std::string_view, const safetensors::quant_group*> by_values;
  std::map<std::string_view, bool> dropped;
  for (const safetensors::quant_group& group : *groups) {
    by_values[group.values] = &group;
    dropped[group.scales] = true;
    if (!group.global_scale.empty()) dropped[group.global_scale] = true;
  }
  const safetensors::any_model& model = input->model();
  std::vector<safetensors::any_reader> shards;
  for (std::size_t shard = 0; shard < model.shard_count(); ++shard) shards.push_back(model.shard(shard));
  std::vector<streamed_tensor<safetensors::any_reader>> tensors;
  std::size_t copied = 0;
  for (const safetensors::any_reader& shard : shards) {
    for (const safetensors::tensor_info& info : shard.tensors()) {
      if (dropped.count(info.name) != 0) continue;
      const auto group = by_values.find(info.name);
      if (group == by_values.end()) {
        tensors.push_back({&shard, &info, std::nullopt});
        ++copied;
      } else {
        tensors.push_back({&shard, &info, target, safetensors::packing::low_first, group->second, &model});
      }
    }
  }
  if (groups->empty())
    std::cerr << program_name << ": dequantize: no quantized weights recognised; every tensor is copied\n";
  const safetensors::metadata_entries metadata =
      shards.empty() ? safetensors::metadata_entries() : safetensors::metadata_entries::from(shards[0]);
  int status = exit_status::success;
  if (!input->is_model()) {
    status = write_tensors("dequantize", tensors, [&](std::vector<safetensors::tensor_declaration> declarations) {
      return safetensors::try_make_file_writer(options.output, std::move(declarations), metadata);
    });
  } else {
    safetensors::shard_options shard_options;
    shard_options.max_shard_size = options.max_shard_size;
    shard_options.replace = options.replace;
    if (!shards.empty() && shards[0].has_metadata()) shard_options.metadata = metadata;
    status = write_tensors("dequantize", tensors, [&](std::vector<safetensors::tensor_declaration> declarations) {
      return make_model_writer(options.output, std::move(declarations), shard_options);
    });
  }
  if (status == exit_status::success)
    out() << display_string(options.output) << ": " << plural(groups->size(), "weight", "weights") << " dequantized to "
          << options.dtype << ", " << plural(copied, "tensor", "tensors") << " copied, "
          << plural(dropped.size(), "scale tensor", "scale tensors") << " dropped\n";
  return status;
}

}  // namespace

command_runner define_dequantize(CLI::App& command) {
  auto options = std::make_shared<dequantize_options>();
  command.add_option("in", options->input, path_help)->required();
  command.add_option("out", options->output, "The file to write (replaced atomically), or for a model the directory")
      ->required();
  command.add_option("--dtype", options->dtype, "The dtype of the dequantized weights")
      ->required()
      ->check(CLI::IsMember({"F32", "BF16", "F16"}));
  command
      .add_option("--max-shard-size", options->max_shard_size,
                  "A model: most tensor bytes per output shard (units as for split)")
      ->type_name("SIZE")
      ->transform(byte_size)
      ->default_str("5GB");
  command.add_flag("--replace", options->replace,
                   "A model: write even where OUT holds a model, which is removed once the new one is complete");
  add_remote_options(command, options->remote);
  command.footer(
      "Every quantized weight inspect lists (NVFP4 as compressed-tensors or ModelOpt write it, gpt-oss's\n"
      "MXFP4, block-scaled FP8 with the block size of the config.json beside a local model) becomes one tensor\n"
      "of --dtype named for the weight (X.weight, or X for MXFP4), its values computed in float32 as the\n"
      "scheme says and rounded once; its scale tensors are dropped; every other tensor is copied unchanged,\n"
      "with the metadata. IN a file: OUT is a file. IN a model (checked whole first): OUT is a directory\n"
      "holding a model written as split writes one (--max-shard-size, --replace); config.json is not copied.\n"
      "Streaming: one weight's scales are in memory at a time, its values read and written piece by piece.\n"
      "Nothing is written unless the whole output is. Prints one line: the weights dequantized, the tensors\n"
      "copied, the scale tensors dropped. A progress bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 written, 1 invalid input or a tensor named as a quantized weight but not laid out as\n"
      "one (InvalidArgument naming it), 2 unreadable input or unwritable output, 64 usage error.");
  return [options] { return run_dequantize(*options); };
}

command_runner define_rewrite(CLI::App& command) {
  auto options = std::make_shared<copy_options>();
  add_input_and_output(command, *options);
  command
      .add_option("--align", options->alignment,
                  "Start the data section at a multiple of N bytes (a power of two from 8 to 2^30)")
      ->capture_default_str()
      ->check(data_alignment);
  command.add_flag("--embed-hashes", options->embed_hashes,
                   "Add a metadata key sha256:NAME per tensor, its bytes' sha256 (replacing such keys IN has), for "
                   "verify PATH without a manifest");
  add_remote_options(command, options->remote);
  command.footer(
      "The output has the same tensors (names, dtypes, shapes, bytes) and metadata, laid out as the official\n"
      "writer lays them out, so a file it wrote with at most one metadata key comes back byte for byte.\n"
      "--embed-hashes reads IN once more first, to hash its tensors (in parallel, one thread a core); metadata\n"
      "is a map of strings, so the official reader accepts the keys.\n"
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
      ->check(CLI::IsMember({"BF16", "F16", "F32", "F4", "F6_E2M3", "F6_E3M2"}));
  add_packing_option(command, options->packing);
  add_remote_options(command, options->remote);
  command.footer(
      "The floats are converted: F16, BF16, F32, F64, F4 and F6_* (F4 is OCP MX E2M1, F6_E2M3 and F6_E3M2\n"
      "the MX 6-bit formats, packed as --packing says, on both sides). Values are rounded to nearest, ties to\n"
      "even; beyond the target's range they become infinities, except in F4 and F6, which have none and\n"
      "saturate to their largest value (6, 7.5, 28); NaN stays NaN, but F4 and F6 have no NaN, so a NaN\n"
      "there is an error. A tensor in F4 or F6 must fill whole bytes (an even count of F4 elements, a\n"
      "multiple of 4 of F6). Every other tensor (integers, BOOL, C64, and the F8 types, which hold\n"
      "quantized data whose scales are other tensors) is copied unchanged, and so are names, shapes and\n"
      "metadata. Nothing is written unless the whole file is. A progress bar is drawn on stderr if it is a\n"
      "terminal.\n"
      "Exit status: 0 written, 1 invalid input file or a value the target cannot hold (InvalidConversion), 2\n"
      "unreadable input or unwritable output, 64 usage error.");
  return [options] { return run_copy("convert", *options); };
}

command_runner define_split(CLI::App& command) {
  auto options = std::make_shared<split_options>();
  command.add_option("in", options->input, input_help)->required();
  command.add_option("outdir", options->directory, "The directory to write (created if missing)")->required();
  command
      .add_option("--max-shard-size", options->max_shard_size,
                  "Most tensor bytes per shard: an integer with an optional unit B, KB, MB, GB, TB (powers of "
                  "1000) or KiB, MiB, GiB, TiB (powers of 1024); case matters")
      ->type_name("SIZE")
      ->transform(byte_size)
      ->default_str("5GB");
  command.add_flag("--replace", options->replace,
                   "Write even where OUTDIR holds a model, which is removed once the new one is complete");
  add_remote_options(command, options->remote);
  command.footer(
      "Tensors go to shards in IN's file order, each shard holding at most SIZE tensor bytes; a tensor larger\n"
      "than SIZE gets a shard of its own. The shards are named model-00001-of-0000N.safetensors, each with\n"
      "IN's metadata (or {\"format\": \"pt\"} when IN has none), and the index model.safetensors.index.json\n"
      "is written as transformers writes it (2-space indentation, sorted keys, metadata.total_size, a final\n"
      "newline). When every tensor fits in one shard, the output is one model.safetensors and no index.\n"
      "Streaming: one file is open at a time, with up to 1 MiB of buffered data; each shard is closed as\n"
      "soon as its tensors are written, under a temporary name, and the shards take their names, then the\n"
      "index is written, only once every shard is complete; a failure leaves no shard behind. OUTDIR is\n"
      "created if missing. One that already holds a model (a .safetensors file or an index) is refused\n"
      "(InvalidArgument), since new shards beside old ones would open as the wrong model, unless --replace:\n"
      "then the old model's files (its indexes and the shards they name) go once the new model is complete.\n"
      "A progress bar is drawn on stderr if it is a terminal.\n"
      "Exit status: 0 written, 1 invalid input file or OUTDIR holding a model, 2 unreadable input or\n"
      "unwritable output, 64 usage error (such as an unknown size unit).");
  return [options] { return run_split(*options); };
}

command_runner define_merge(CLI::App& command) {
  auto options = std::make_shared<merge_options>();
  command.add_option("model", options->input, "The model: its index (*.json) or its directory, or a URL")->required();
  command.add_option("out", options->output, "The file to write (replaced atomically)")->required();
  add_remote_options(command, options->remote);
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
