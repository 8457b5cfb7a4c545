// What the commands read: a file, standard input ("-"), or a sharded model.
#pragma once

#include "arguments.hpp"

#include <safetensors/model.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
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

using standard_input_reader = safetensors::basic_reader<standard_input_bytes>;

// A file as dump, stats and inspect read it: mapped, or standard input in memory.
using viewed_file = std::variant<safetensors::mapped_reader, standard_input_reader>;
// A file as the writing commands read it: with pread, or standard input in memory.
using streamed_file = std::variant<safetensors::pread_reader, standard_input_reader>;

// A visitor of std::variant made of one lambda per alternative.
template <class... Visit>
struct overloaded : Visit... {
  using Visit::operator()...;
};
template <class... Visit>
overloaded(Visit...) -> overloaded<Visit...>;

// True for "-", which names standard input.
bool is_standard_input(std::string_view path);

// A path that names a model rather than one file: a directory, or an index (a path ending in
// .json). Both are opened with model_reader, which finds the index (or the only file) in a
// directory.
bool is_model_path(const std::string& path);

// Opens the file at `path`, or standard input for "-".
safetensors::result<viewed_file> open_viewed(const std::string& path);
safetensors::result<streamed_file> open_streamed(const std::string& path);

// Every tensor's bytes, for a file.
template <class Reader>
std::uint64_t tensor_bytes(const Reader& reader) {
  std::uint64_t sum = 0;
  for (const safetensors::tensor_info& info : reader.tensors()) sum += info.byte_size();
  return sum;
}

// What dump and stats read: one file, its tensors in data order, or a model (a directory or an
// index), its tensors in name order; in either case the order of inspect's listing, which
// --index counts in.
class tensor_collection {
 public:
  static safetensors::result<tensor_collection> open(const std::string& path);

  std::size_t size() const;
  bool is_model() const { return std::holds_alternative<safetensors::model_reader>(source_); }

  // The tensor at `position` (less than size()) in listing order.
  safetensors::result<safetensors::tensor_view> at(std::size_t position) const;
  safetensors::result<safetensors::tensor_view> find(std::string_view name) const;
  // The tensor `choice` names, by name or by position in listing order.
  safetensors::result<safetensors::tensor_view> choose(const tensor_choice& choice) const;
  // A slice of the tensor named `name`; its errors name the file.
  safetensors::result<safetensors::tensor_slice> slice(std::string_view name,
                                                       std::vector<safetensors::slice_dim> dims) const;

 private:
  using source = std::variant<safetensors::mapped_reader, standard_input_reader, safetensors::model_reader>;
  tensor_collection(std::string path, source opened) : path_(std::move(path)), source_(std::move(opened)) {}

  std::string path_;
  source source_;
};

}  // namespace cli
