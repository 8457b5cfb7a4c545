// inspect and validate: what a file or a model holds, and whether it is valid.
#include "commands.hpp"
#include "input.hpp"
#include "output.hpp"
#include "schema.hpp"

#include <memory>

namespace cli {

namespace {

std::string format_offsets(const std::array<std::uint64_t, 2>& offsets) {
  return "[" + std::to_string(offsets[0]) + ", " + std::to_string(offsets[1]) + ")";
}

// Every tensor's bytes, for a file.
template <class Reader>
std::uint64_t tensor_bytes(const Reader& reader) {
  std::uint64_t sum = 0;
  for (const safetensors::tensor_info& info : reader.tensors()) sum += info.byte_size();
  return sum;
}

// The table of tensors of a file (in data order) or of a model (by name, with a last column for
// the file name of each tensor's shard).
void print_tensor_table(const std::vector<model_tensor>& tensors, const std::vector<std::string>* shard_paths) {
  std::vector<table_row> rows = {{"name", "dtype", "shape", "bytes", "offsets"}};
  if (shard_paths != nullptr) rows[0].push_back("shard");
  for (const model_tensor& tensor : tensors) {
    const safetensors::tensor_info& info = *tensor.info;
    table_row row = {truncate_to_width(display_string(info.name), max_name_width),
                     std::string(safetensors::dtype_name(info.dtype)), format_shape(info.shape),
                     std::to_string(info.byte_size()), format_offsets(info.data_offsets)};
    if (shard_paths != nullptr) row.push_back(display_string(file_name_of((*shard_paths)[tensor.shard])));
    rows.push_back(std::move(row));
  }
  // Sizes read best right-aligned; every other column is text.
  std::vector<bool> right_aligned = {false, false, false, true, false};
  if (shard_paths != nullptr) right_aligned.push_back(false);
  print_table(rows, right_aligned);
}

// Layout: a summary line, the metadata (one line, plus one per entry), then the table.
template <class Reader>
void print_file(const std::string& path, const Reader& reader) {
  out() << display_string(path) << ": header_length " << reader.header_length() << ", data_start "
        << reader.data_start() << ", " << plural(reader.size(), "tensor", "tensors") << '\n';
  if (!reader.has_metadata()) {
    out() << "metadata: none\n";
  } else {
    out() << "metadata: " << plural(reader.metadata().size(), "entry", "entries") << '\n';
    for (const auto& [key, value] : reader.metadata())
      out() << "  " << display_string(key) << " = " << display_string(value) << '\n';
  }
  std::vector<model_tensor> tensors;
  for (const safetensors::tensor_info& info : reader.tensors()) tensors.push_back({&info, 0});
  print_tensor_table(tensors, nullptr);
}

// Layout: a summary line, the index line, "shards: N" and a line per shard (path order), then
// the table by name with the shard column. Every shard is open: the model was validated.
template <class Model>
void print_model(const std::string& path, const Model& model, const std::vector<model_tensor>& tensors) {
  std::uint64_t bytes = 0;
  for (const model_tensor& tensor : tensors) bytes += tensor.info->byte_size();
  out() << display_string(path) << ": " << plural(tensors.size(), "tensor", "tensors") << " in "
        << plural(model.shard_count(), "shard", "shards") << ", " << plural(bytes, "byte", "bytes") << '\n';
  if (model.index_path().empty()) {
    out() << "index: none\n";
  } else {
    out() << "index: " << display_string(model.index_path()) << ", total_size "
          << (model.total_size() ? std::to_string(*model.total_size()) : std::string("none")) << '\n';
  }
  out() << "shards: " << model.shard_count() << '\n';
  for (std::size_t shard = 0; shard < model.shard_count(); ++shard) {
    const safetensors::any_reader reader = model.shard(shard);
    out() << "  " << display_string(model.shard_paths()[shard]) << ": " << plural(reader.size(), "tensor", "tensors")
          << ", " << plural(tensor_bytes(reader), "byte", "bytes") << '\n';
  }
  print_tensor_table(tensors, &model.shard_paths());
}

// A model is validated whole (every shard against the index, and total_size) before it is
// listed, as a single file is by opening it.
safetensors::result<tensor_collection> open_valid(const std::string& path, const remote_access& remote) {
  open_options opening;
  opening.remote = remote;
  auto tensors = tensor_collection::open(path, opening);
  if (!tensors) return tensors.error();
  if (tensors->is_model()) {
    if (auto valid = tensors->validate(); !valid) return valid.error();
  }
  return tensors;
}

struct inspect_options {
  std::string path;
  bool json = false;
  remote_access remote;
};

// The quantized groups after the table, when there are any: a line, then a table of them. A
// layout that looks quantized but does not fit one is said, without failing the listing.
void print_groups(const safetensors::result<std::vector<safetensors::quant_group>>& groups) {
  if (!groups) {
    out() << "quantized: not recognised: " << safetensors::error_kind_name(groups.error().kind()) << ": "
          << groups.error().message() << '\n';
    return;
  }
  if (groups->empty()) return;
  out() << "quantized: " << plural(groups->size(), "group", "groups") << '\n';
  std::vector<table_row> rows = {{"weight", "scheme", "shape", "block", "tensors"}};
  for (const safetensors::quant_group& group : *groups) {
    std::string tensors = display_string(group.values) + ", " + display_string(group.scales);
    if (!group.global_scale.empty()) tensors += ", " + display_string(group.global_scale);
    rows.push_back({truncate_to_width(display_string(group.weight), max_name_width),
                    std::string(safetensors::quant_scheme_name(group.scheme)), format_shape(group.shape),
                    std::to_string(group.block[0]) + "x" + std::to_string(group.block[1]), tensors});
  }
  print_table(rows, {false, false, false, false, false});
}

// "quantized": the groups, or null and "quantized_error": {"error", "message"}.
void add_groups(json& object, const safetensors::result<std::vector<safetensors::quant_group>>& groups) {
  if (!groups) {
    object["quantized"] = nullptr;
    object["quantized_error"] = {{"error", safetensors::error_kind_name(groups.error().kind())},
                                 {"message", groups.error().message()}};
    return;
  }
  object["quantized"] = json::array();
  for (const safetensors::quant_group& group : *groups) object["quantized"].push_back(quant_group_object(group));
}

int run_inspect(const inspect_options& options) {
  auto tensors = open_valid(options.path, options.remote);
  if (!tensors) return report_error(tensors.error(), options.json);
  const safetensors::any_model& model = tensors->model();
  const auto groups = quantized_groups(*tensors);
  if (!tensors->is_model()) {
    const safetensors::any_reader file = model.shard(0);
    if (options.json) {
      json object = ok_object(file_object(options.path, file));
      add_groups(object, groups);
      out() << dump(object) << '\n';
    } else {
      print_file(options.path, file);
      print_groups(groups);
    }
    return exit_status::success;
  }
  auto listed = model_tensors(model);
  if (!listed) return report_error(listed.error(), options.json);
  if (options.json) {
    json object = ok_object(model_object(options.path, model, *listed));
    add_groups(object, groups);
    out() << dump(object) << '\n';
  } else {
    print_model(options.path, model, *listed);
    print_groups(groups);
  }
  return exit_status::success;
}

struct validate_options {
  std::vector<std::string> paths;
  bool json = false;
  remote_access remote;
};

// One line per path, in the order given. The exit status is 1 when any is invalid, else 2 when
// any could not be read, else 0.
int run_validate(const validate_options& options) {
  bool any_invalid = false;
  bool any_unreadable = false;
  for (const std::string& path : options.paths) {
    auto checked = open_valid(path, options.remote);
    if (!checked) {
      const safetensors::error& error = checked.error();
      (exit_status_for(error) == io_failure ? any_unreadable : any_invalid) = true;
      if (options.json) {
        out() << dump(failure_object(error, &path)) << '\n';
      } else {
        out() << "FAIL " << safetensors::error_kind_name(error.kind()) << ": " << error.message() << '\n';
      }
    } else if (options.json) {
      out() << dump(ok_object(validation_object(path, checked->file_count(), checked->size()))) << '\n';
    } else {
      out() << "ok " << display_string(path) << " (" << plural(checked->size(), "tensor", "tensors");
      if (checked->is_model()) out() << " in " << plural(checked->file_count(), "shard", "shards");
      out() << ")\n";
    }
    // A line as soon as its path is checked: models can take long to check.
    out().flush();
  }
  return any_invalid ? rejected_input : any_unreadable ? io_failure : exit_status::success;
}

}  // namespace

command_runner define_inspect(CLI::App& command) {
  // CLI11 keeps references to the option variables until parsing ends, after this returns.
  auto options = std::make_shared<inspect_options>();
  command.add_option("path", options->path, path_help)->required();
  command.add_flag("--json", options->json, "Print one JSON object instead of a table");
  add_remote_options(command, options->remote);
  command.footer(
      "A file: a summary line (header_length, data_start, tensor count), the metadata, and a table of tensors\n"
      "in data order (name, dtype, shape, bytes, offsets). --json: a file object {\"ok\": true, \"path\",\n"
      "\"header_length\", \"data_start\", \"metadata\" (null when there is none), \"tensors\": [{\"name\", \"dtype\",\n"
      "\"shape\", \"data_offsets\"}, ..]}.\n"
      "A model (a directory, or a path ending in .json), validated whole first: a summary line, the index\n"
      "and its total_size, the shards in path order, and a table of tensors by name with a shard column.\n"
      "--json: {\"ok\": true, \"path\", \"index\" (null for a directory holding one file and no index),\n"
      "\"total_size\" (null when the index has none), \"shards\": [a file object per shard, in path order],\n"
      "\"tensors\": [{\"name\", \"dtype\", \"shape\", \"data_offsets\" (within the shard), \"shard\" (its path)}, "
      "..]}.\n"
      "Quantized weights (NVFP4 as compressed-tensors or ModelOpt write it, gpt-oss's MXFP4, block-scaled FP8;\n"
      "FP8's block from the config.json beside a local model, else 128x128) follow the table, one line each;\n"
      "--json adds \"quantized\": [{\"weight\", \"scheme\", \"shape\", \"block\", \"values\", \"scales\",\n"
      "\"global_scale\"}, ..] to both, or null and \"quantized_error\": {\"error\", \"message\"} for tensors named as\n"
      "a group but not laid out as one.\n"
      "Errors: one line on stderr, or with --json {\"ok\": false, \"error\": KIND, \"message\"} on stdout.\n"
      "Exit status: 0 listed, 1 invalid file or index, 2 unreadable file or missing shard, 64 usage error.");
  return [options] { return run_inspect(*options); };
}

command_runner define_validate(CLI::App& command) {
  auto options = std::make_shared<validate_options>();
  command.add_option("paths", options->paths, path_help + "; any number of them")->required();
  command.add_flag("--json", options->json, "Print one JSON object per path instead of a line");
  add_remote_options(command, options->remote);
  command.footer(
      "Prints one line per path: ok \"FILE\" (N tensors), ok \"MODEL\" (N tensors in K shards), or\n"
      "FAIL Kind: message (the message names the file). A model has every shard opened and checked against\n"
      "its index (each tensor in the shard the index names), and the index's total_size checked.\n"
      "--json: one object per line, for a file and a model alike: {\"ok\": true, \"path\", \"file_count\" (1 for\n"
      "a file, the shards of a model), \"tensor_count\"} or {\"ok\": false, \"path\", \"error\": KIND, \"message\"}.\n"
      "Exit status: 0 every path is valid, 1 some is invalid, else 2 some could not be read; 64 usage error.");
  return [options] { return run_validate(*options); };
}

}  // namespace cli
