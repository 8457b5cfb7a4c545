// What the commands read: a file, standard input ("-"), a URL (http://, https://, s3://), or a
// sharded model (a directory or an index, local or remote), each read as a model_reader over
// the storage it needs, so that every command reads all of them the same way.
#pragma once

#include "arguments.hpp"

#include <safetensors/model.hpp>
#if SAFETENSORS_CLI_REMOTE
#include <safetensors/remote.hpp>
#endif

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace cli {

// A file read whole from standard input, as a storage: in memory (zero-copy views), and named
// "-" in every error the reader reports, as a path would be.
class standard_input_bytes {
 public:
  explicit standard_input_bytes(std::vector<std::byte> bytes) : bytes_(std::move(bytes)) {}

  const std::byte* data() const noexcept { return bytes_.data(); }
  std::uint64_t size() const noexcept { return bytes_.size(); }
  const std::string& path() const noexcept { return path_; }
  safetensors::result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    return safetensors::borrowed_bytes(bytes_.data(), bytes_.size()).read_at(offset, destination, count);
  }

 private:
  std::vector<std::byte> bytes_;
  std::string path_ = "-";
};

// How URLs are reached: the options of every command that reads.
struct remote_access {
  unsigned connections = 0;  // 0: the library's default
  std::string token;         // sent as a bearer token to the URL's host
  unsigned timeout = 300;    // seconds one read (every attempt and wait) may take
};

// Adds --connections N, --token TOKEN and --timeout SECONDS to `command`.
void add_remote_options(CLI::App& command, remote_access& access);

// Where a local file's bytes come from: mapped (views without a copy) or read with pread (memory
// stays bounded, the page cache aside).
enum class storage_kind { mapped, pread };

struct open_options {
  storage_kind storage = storage_kind::mapped;
  remote_access remote;
  // PATH is one file even when it names a directory or ends in .json (the writing commands'
  // inputs): a directory is then an unreadable file, as it always was for them.
  bool as_file = false;
};

// True for "-", which names standard input.
bool is_standard_input(std::string_view path);

// True for http://, https:// and s3:// paths.
bool is_url(std::string_view path);

// A path that names a model rather than one file: a directory, or an index (a path, or a URL's
// path, ending in .json).
bool is_model_path(const std::string& path);

// The last part of a path or URL (no directory, query or fragment): how hash and verify name a
// file, so that a copy elsewhere has the same name.
std::string file_name_of(std::string_view path);

// One file of a collection as hash reads it: its name (file_name_of its path), size, where its
// data starts, its tensors in data order, and its bytes.
struct file_access {
  std::string name;
  std::uint64_t size = 0;
  std::uint64_t data_start = 0;
  std::vector<const safetensors::tensor_info*> tensors;
  std::function<safetensors::result<void>(std::uint64_t offset, safetensors::span<std::byte> destination)> read;
};

// The tensors a command reads: one file (in data order) or a model (in name order), in either
// case the order of inspect's listing, which --index counts in. A file is a model of one file
// with no index; whether it was given as a file or as a model decides how it is shown.
class tensor_collection {
 public:
  static safetensors::result<tensor_collection> open(const std::string& path, const open_options& options = {});

  const std::string& path() const { return path_; }
  // True for a directory or an index; false for one file.
  bool is_model() const { return is_model_; }
  std::size_t size() const;

  // The tensor at `position` (less than size()) in listing order.
  safetensors::result<const safetensors::tensor_info*> at(std::size_t position) const;
  safetensors::result<const safetensors::tensor_info*> find(std::string_view name) const;
  // The tensor `choice` names, by name or by position in listing order.
  safetensors::result<const safetensors::tensor_info*> choose(const tensor_choice& choice) const;
  // A slice of the tensor named `name`; its errors name the file.
  safetensors::result<safetensors::tensor_slice> slice(std::string_view name,
                                                       std::vector<safetensors::slice_dim> dims) const;
  // Copies the destination.size() bytes of `info` from `offset` on.
  safetensors::result<void> read_part(const safetensors::tensor_info& info, std::uint64_t offset,
                                      safetensors::span<std::byte> destination) const;
  // A load request (for a consumer) of `info`, or of the `dims` slice of it.
  safetensors::result<safetensors::load_request> request(const safetensors::tensor_info& info,
                                                         std::vector<safetensors::slice_dim> dims) const;
  safetensors::result<safetensors::load_plan> plan(safetensors::span<const safetensors::load_request> requests,
                                                   const safetensors::load_options& options) const;
  // Opens every shard and checks it against the index, and the index's total_size.
  safetensors::result<void> validate() const;
  // The metadata of the file, or of a model's first shard (in path order), as merge keeps it.
  safetensors::result<safetensors::metadata_map> metadata() const;

  // Files: 1 for a file, the shards of a model (in path order).
  std::size_t file_count() const;
  safetensors::result<file_access> file(std::size_t index) const;

  // The model (a file is a model of one shard), whichever storage it reads.
  const safetensors::any_model& model() const { return model_; }

 private:
  tensor_collection(std::string path, bool is_model, safetensors::any_model opened)
      : path_(std::move(path)), is_model_(is_model), model_(std::move(opened)) {}

  std::string path_;
  bool is_model_;
  safetensors::any_model model_;
};

// The quantized groups of `tensors` (safetensors::try_quant_groups), FP8's block size taken from
// the config.json beside a local file or model (try_read_quant_config); remote ones use the
// default, 128x128.
safetensors::result<std::vector<safetensors::quant_group>> quantized_groups(const tensor_collection& tensors);

}  // namespace cli
