#include "input.hpp"

#include "output.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
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

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A URL without its query and fragment.
std::string_view url_path(std::string_view url) { return url.substr(0, url.find_first_of("?#")); }

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
        return error(error_kind::io_error,
                     display_string("-") + ": cannot read standard input: " + std::strerror(errno));
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
  if (header_length > safetensors::format_max_header_size) return bytes;
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

#if SAFETENSORS_CLI_REMOTE
// The host of an http(s) URL, lower-case, without user information or port.
std::string url_host(std::string_view url) {
  std::string_view rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (starts_with(rest, "[")) {
    rest = rest.substr(0, rest.find(']') + 1);
  } else {
    rest = rest.substr(0, rest.find(':'));
  }
  std::string host(rest);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host;
}

// True when `host` is `domain` or one of its subdomains ("cdn.hf.co" is in "hf.co";
// "nothf.co" is not).
bool in_domain(std::string_view host, std::string_view domain) {
  return host == domain ||
         (host.size() > domain.size() && ends_with(host, domain) && host[host.size() - domain.size() - 1] == '.');
}

// The library's options for `url`: --connections, and a bearer token for http(s) only: --token
// for the URL's host, else HF_TOKEN from the environment, and that only for the Hugging Face
// hub's hosts, so that a token never goes to a server it was not meant for.
safetensors::remote_options remote_options_for(const std::string& url, const remote_access& access) {
  safetensors::remote_options options;
  if (access.connections != 0) options.connections = access.connections;
  options.retry.deadline = std::chrono::seconds(access.timeout);
  if (!starts_with(url, "http://") && !starts_with(url, "https://")) return options;
  const char* hub_token = std::getenv("HF_TOKEN");
  const std::string host = url_host(url);
  if (!access.token.empty()) {
    options.bearer_token = access.token;
  } else if (hub_token != nullptr && *hub_token != '\0' &&
             (in_domain(host, "huggingface.co") || in_domain(host, "hf.co"))) {
    options.bearer_token = hub_token;
  }
  return options;
}
#endif

// A file opened as a model of one file, with `open_file(location)` opening its storage.
template <class Storage, class OpenFile>
result<safetensors::any_model> open_single(const std::string& path, OpenFile open_file) {
  auto model = safetensors::basic_model_reader<Storage>::try_from_file(path, open_file);
  if (!model) return model.error();
  return safetensors::any_model(std::move(*model));
}

template <class Model>
result<safetensors::any_model> as_source(result<Model> model) {
  if (!model) return model.error();
  return safetensors::any_model(std::move(*model));
}

result<safetensors::any_model> open_source(const std::string& path, bool model, const open_options& options) {
  if (is_standard_input(path)) {
    auto bytes = read_standard_input();
    if (!bytes) return bytes.error();
    // Opened once, by from_file: the bytes move into the storage.
    auto held = std::make_shared<std::vector<std::byte>>(std::move(*bytes));
    return open_single<standard_input_bytes>(path, [held](const std::string&) -> result<standard_input_bytes> {
      return standard_input_bytes(std::move(*held));
    });
  }
  if (is_url(path)) {
#if SAFETENSORS_CLI_REMOTE
    const safetensors::remote_options remote = remote_options_for(path, options.remote);
    if (model) return as_source(safetensors::try_open_remote_model(path, remote));
    return open_single<safetensors::remote_file>(
        path, [remote](const std::string& location) { return safetensors::remote_file::try_open(location, remote); });
#else
    return error(error_kind::io_error, display_string(path) +
                                           ": this safetensors-cli was built without remote support (libcurl), so it "
                                           "reads no URL");
#endif
  }
  if (options.storage == storage_kind::pread) {
    if (model) return as_source(safetensors::try_open_model_pread(path));
    return open_single<safetensors::pread_file>(
        path, [](const std::string& location) { return safetensors::pread_file::try_open(location); });
  }
  if (model) return as_source(safetensors::try_open_model(path));
  return open_single<safetensors::mapped_file>(
      path, [](const std::string& location) { return safetensors::mapped_file::try_open(location); });
}

}  // namespace

void add_remote_options(CLI::App& command, remote_access& access) {
#if SAFETENSORS_CLI_REMOTE
  const std::string default_connections = std::to_string(safetensors::remote_options{}.connections);
#else
  const std::string default_connections = "the library's";
#endif
  command
      .add_option("--connections", access.connections,
                  "URLs: most connections to a file's server at once (default " + default_connections + ")")
      ->type_name("N")
      ->check(counted("the number of connections", 1, 1024));
  command
      .add_option("--timeout", access.timeout,
                  "URLs: the longest one read may take, retries and their waits included, in seconds (default 300)")
      ->type_name("SECONDS")
      ->check(counted("the timeout in seconds", 1, 86400));
  command
      .add_option("--token", access.token,
                  "http(s) URLs: send 'Authorization: Bearer TOKEN' to the URL's host (without it, HF_TOKEN "
                  "from the environment goes to huggingface.co and hf.co alone)")
      ->type_name("TOKEN");
}

bool is_standard_input(std::string_view path) { return path == "-"; }

bool is_url(std::string_view path) {
  return starts_with(path, "http://") || starts_with(path, "https://") || starts_with(path, "s3://");
}

bool is_model_path(const std::string& path) {
  if (is_url(path)) return ends_with(url_path(path), ".json");
  std::error_code failure;
  if (std::filesystem::is_directory(path, failure)) return true;
  return ends_with(path, ".json");
}

std::string file_name_of(std::string_view path) {
  if (is_url(path)) path = url_path(path);
  const std::size_t slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

result<tensor_collection> tensor_collection::open(const std::string& path, const open_options& options) {
  const bool model = !options.as_file && !is_standard_input(path) && is_model_path(path);
  auto opened = open_source(path, model, options);
  if (!opened) return opened.error();
  return tensor_collection(path, model, std::move(*opened));
}

std::size_t tensor_collection::size() const { return model_.size(); }

result<const safetensors::tensor_info*> tensor_collection::at(std::size_t position) const {
  if (is_model_) return model_.try_info(model_.tensor_names()[position].name);
  auto file = model_.try_shard(0);
  if (!file) return file.error();
  return &file->tensors()[position];
}

result<const safetensors::tensor_info*> tensor_collection::find(std::string_view name) const {
  return model_.try_info(name);
}

result<const safetensors::tensor_info*> tensor_collection::choose(const tensor_choice& choice) const {
  if (!choice.by_index()) return find(choice.name);
  if (choice.index >= size())
    return error(error_kind::tensor_not_found,
                 display_string(path_) + ": no tensor at index " + std::to_string(choice.index) + ": the " +
                     (is_model() ? "model" : "file") + " has " + plural(size(), "tensor", "tensors"));
  return at(static_cast<std::size_t>(choice.index));
}

result<safetensors::tensor_slice> tensor_collection::slice(std::string_view name,
                                                           std::vector<safetensors::slice_dim> dims) const {
  return model_.try_slice(name, std::move(dims));
}

result<void> tensor_collection::read_part(const safetensors::tensor_info& info, std::uint64_t offset,
                                          safetensors::span<std::byte> destination) const {
  return model_.try_read_part(info, offset, destination);
}

result<safetensors::load_request> tensor_collection::request(const safetensors::tensor_info& info,
                                                             std::vector<safetensors::slice_dim> dims) const {
  return model_.try_request(info.name, {}, std::move(dims));
}

result<safetensors::load_plan> tensor_collection::plan(safetensors::span<const safetensors::load_request> requests,
                                                       const safetensors::load_options& options) const {
  return model_.try_plan(requests, options);
}

result<void> tensor_collection::validate() const { return model_.try_validate(); }

result<safetensors::metadata_map> tensor_collection::metadata() const {
  if (model_.shard_count() == 0) return safetensors::metadata_map();
  auto metadata = model_.try_metadata();
  if (!metadata) return metadata.error();
  return **metadata;
}

std::size_t tensor_collection::file_count() const { return model_.shard_count(); }

result<file_access> tensor_collection::file(std::size_t index) const {
  auto shard = model_.try_shard(index);
  if (!shard) return shard.error();
  file_access access;
  access.name = file_name_of(is_model_ ? model_.shard_paths()[index] : path_);
  access.size = shard->file_size();
  access.data_start = shard->data_start();
  for (const safetensors::tensor_info& info : shard->tensors()) access.tensors.push_back(&info);
  access.read = [reader = *shard](std::uint64_t offset, safetensors::span<std::byte> destination) {
    return reader.try_read_at(offset, destination);
  };
  return access;
}

safetensors::result<std::vector<safetensors::quant_group>> quantized_groups(const tensor_collection& tensors) {
  safetensors::quant_config config;
  if (!is_url(tensors.path()) && !is_standard_input(tensors.path())) {
    auto read = safetensors::try_read_quant_config(tensors.path());
    if (!read) return read.error();
    config = std::move(*read);
  }
  return safetensors::try_quant_groups(tensors.model(), config.fp8_block);
}

}  // namespace cli
