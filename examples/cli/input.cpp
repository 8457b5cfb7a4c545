#include "input.hpp"

#include "output.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>

#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#endif

namespace cli {

namespace {

using safetensors::error;
using safetensors::error_kind;
using safetensors::result;

// a + b, or the largest value when that overflows.
std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return b > std::numeric_limits<std::uint64_t>::max() - a ? std::numeric_limits<std::uint64_t>::max() : a + b;
}

// Appends standard input to `bytes` until it holds `wanted` bytes or the input ends. Memory
// grows with the bytes that arrive, never with what the input claims to hold.
result<void> read_until(std::vector<std::byte>& bytes, std::uint64_t wanted) {
  constexpr std::size_t piece = std::size_t{1} << 16;
  while (bytes.size() < wanted) {
    const std::size_t before = bytes.size();
    bytes.resize(before + static_cast<std::size_t>(std::min<std::uint64_t>(piece, wanted - before)));
    const std::size_t got = std::fread(bytes.data() + before, 1, bytes.size() - before, stdin);
    bytes.resize(before + got);
    if (got == 0) {
      if (std::ferror(stdin))
        return error(error_kind::io_error, display_string("-") + ": cannot read standard input: " + std::strerror(errno));
      return {};
    }
  }
  return {};
}

// The data size the header in `text` claims (the largest end of its tensors' data_offsets), or
// nothing when it is not JSON the reader could accept. Only a bound on what is worth reading:
// the reader checks the header itself.
std::optional<std::uint64_t> claimed_data_size(const char* text, std::size_t size) {
  const auto header = nlohmann::json::parse(text, text + size, nullptr, false);
  if (!header.is_object()) return std::nullopt;
  std::uint64_t end = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__" || !entry.is_object()) continue;
    const auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[1].is_number_unsigned())
      continue;
    end = std::max(end, (*offsets)[1].get<std::uint64_t>());
  }
  return end;
}

// Standard input read as far as a file is: the 8-byte header length is checked against the
// limit before anything more is read, then the header, then the data it describes and one byte
// more (so that bytes past the data are refused as in a file). What stops the reading early is
// left for the reader to report, as it would for a file holding those bytes.
result<std::vector<std::byte>> read_standard_input() {
#if defined(_WIN32)
  _setmode(_fileno(stdin), _O_BINARY);
#endif
  std::vector<std::byte> bytes;
  if (auto read = read_until(bytes, 8); !read) return read.error();
  if (bytes.size() < 8) return bytes;
  std::uint64_t header_length = 0;
  for (std::size_t i = 8; i-- > 0;) header_length = (header_length << 8) | std::to_integer<std::uint64_t>(bytes[i]);
  if (header_length > SAFETENSORS_MAX_HEADER_SIZE) return bytes;
  const std::uint64_t data_start = 8 + header_length;
  if (auto read = read_until(bytes, data_start); !read) return read.error();
  if (bytes.size() < data_start) return bytes;
  const auto data_size =
      claimed_data_size(reinterpret_cast<const char*>(bytes.data()) + 8, static_cast<std::size_t>(header_length));
  if (!data_size) return bytes;
  if (auto read = read_until(bytes, saturating_add(data_start, saturating_add(*data_size, 1))); !read)
    return read.error();
  return bytes;
}

result<standard_input_reader> open_standard_input() {
  auto bytes = read_standard_input();
  if (!bytes) return bytes.error();
  return standard_input_reader::open(standard_input_bytes(std::move(*bytes)));
}

// Opens `path` as FileReader with `open_file`, or standard input for "-".
template <class Opened, class OpenFile>
result<Opened> open_input(const std::string& path, OpenFile open_file) {
  if (is_standard_input(path)) {
    auto reader = open_standard_input();
    if (!reader) return reader.error();
    return Opened(std::move(*reader));
  }
  auto reader = open_file(path);
  if (!reader) return reader.error();
  return Opened(std::move(*reader));
}

}  // namespace

bool is_standard_input(std::string_view path) { return path == "-"; }

bool is_model_path(const std::string& path) {
  std::error_code failure;
  if (std::filesystem::is_directory(path, failure)) return true;
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
}

result<viewed_file> open_viewed(const std::string& path) {
  return open_input<viewed_file>(path, [](const std::string& p) { return safetensors::try_open(p); });
}

result<streamed_file> open_streamed(const std::string& path) {
  return open_input<streamed_file>(path, [](const std::string& p) { return safetensors::try_open_pread(p); });
}

result<tensor_collection> tensor_collection::open(const std::string& path) {
  if (is_model_path(path)) {
    auto model = safetensors::try_open_model(path);
    if (!model) return model.error();
    return tensor_collection(path, std::move(*model));
  }
  auto file = open_viewed(path);
  if (!file) return file.error();
  return std::visit([&](auto& reader) { return tensor_collection(path, std::move(reader)); }, *file);
}

std::size_t tensor_collection::size() const {
  return std::visit([](const auto& reader) { return reader.size(); }, source_);
}

result<safetensors::tensor_view> tensor_collection::at(std::size_t position) const {
  return std::visit(
      overloaded{[&](const safetensors::model_reader& model) -> result<safetensors::tensor_view> {
                   return model.try_view(model.tensor_names()[position].name);
                 },
                 [&](const auto& file) -> result<safetensors::tensor_view> { return file.view(file.tensors()[position]); }},
      source_);
}

result<safetensors::tensor_view> tensor_collection::find(std::string_view name) const {
  return std::visit(overloaded{[&](const safetensors::model_reader& model) { return model.try_view(name); },
                               [&](const auto& file) -> result<safetensors::tensor_view> {
                                 auto info = file.try_info(name);
                                 if (!info) return info.error();
                                 return file.view(**info);
                               }},
                    source_);
}

result<safetensors::tensor_view> tensor_collection::choose(const tensor_choice& choice) const {
  if (!choice.by_index()) return find(choice.name);
  if (choice.index >= size())
    return error(error_kind::tensor_not_found, display_string(path_) + ": no tensor at index " +
                                                   std::to_string(choice.index) + ": the " +
                                                   (is_model() ? "model" : "file") + " has " +
                                                   plural(size(), "tensor", "tensors"));
  return at(static_cast<std::size_t>(choice.index));
}

result<safetensors::tensor_slice> tensor_collection::slice(std::string_view name,
                                                          std::vector<safetensors::slice_dim> dims) const {
  return std::visit([&](const auto& reader) { return reader.try_slice(name, std::move(dims)); }, source_);
}

}  // namespace cli
