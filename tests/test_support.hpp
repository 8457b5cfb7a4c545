// Helpers shared by the tests: building files from hand-written bytes, and temporary files.
#pragma once

#include <safetensors/safetensors.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace test {

/// The bytes of a safetensors file: the 8-byte little-endian length of `header`, `header`, `data`.
inline std::vector<std::byte> file_bytes(const std::string& header, const std::string& data = {}) {
  std::vector<std::byte> bytes(8 + header.size() + data.size());
  std::uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::byte>((length >> (8 * i)) & 0xff);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  std::memcpy(bytes.data() + 8 + header.size(), data.data(), data.size());
  return bytes;
}

/// A byte that depends on its position `offset` (in a file or a buffer), so that a byte read from
/// the wrong place never passes for the right one.
inline std::byte pattern_byte(std::uint64_t offset) { return static_cast<std::byte>((offset * 131 + 7) % 251); }

/// Byte `offset` of tensor number `tensor` of a generated file: every tensor's bytes differ from
/// its neighbours'.
inline std::byte fill_byte(std::size_t tensor, std::uint64_t offset) {
  return static_cast<std::byte>((tensor * 131 + offset * 7 + (offset >> 8)) & 0xff);
}

/// `values` as the little-endian bytes a file holds them in (floats by their bits).
template <class T>
std::vector<std::byte> le_bytes(std::initializer_list<T> values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  std::size_t offset = 0;
  for (T value : values) {
    if constexpr (std::is_same_v<T, double>) {
      safetensors::detail::store_le(bytes.data() + offset, safetensors::detail::bit_cast<std::uint64_t>(value));
    } else if constexpr (std::is_same_v<T, float>) {
      safetensors::detail::store_le(bytes.data() + offset, safetensors::detail::bit_cast<std::uint32_t>(value));
    } else {
      safetensors::detail::store_le(bytes.data() + offset, value);
    }
    offset += sizeof(T);
  }
  return bytes;
}

/// The bytes `dims` select from `tensor` (non-negative dims), element by element in row-major
/// order: the naive answer.
inline std::vector<std::byte> naive_slice(safetensors::span<const std::byte> tensor,
                                          const safetensors::tensor_info& info,
                                          const std::vector<safetensors::slice_dim>& dims) {
  const std::size_t width = safetensors::dtype_bits(info.dtype) / 8;
  std::vector<std::byte> out;
  for (std::uint64_t flat = 0; flat < info.element_count; ++flat) {
    std::uint64_t rest = flat;
    bool taken = true;
    for (std::size_t d = info.shape.size(); d-- > 0;) {
      const std::uint64_t i = rest % info.shape[d];
      rest /= info.shape[d];
      if (d >= dims.size()) continue;
      const safetensors::slice_dim& want = dims[d];
      const auto start = static_cast<std::uint64_t>(want.start);
      const std::uint64_t stop =
          want.single ? start + 1
                      : (want.stop == safetensors::to_end ? info.shape[d] : static_cast<std::uint64_t>(want.stop));
      taken = taken && i >= start && i < stop && (i - start) % want.step == 0;
    }
    if (taken) out.insert(out.end(), tensor.data() + flat * width, tensor.data() + (flat + 1) * width);
  }
  return out;
}

/// Parses `header` followed by `data` from memory: the result of the reader on those bytes.
inline safetensors::result<safetensors::buffer_reader> open_header(const std::string& header,
                                                                   const std::string& data = {},
                                                                   const safetensors::read_options& options = {}) {
  return safetensors::try_open_buffer(file_bytes(header, data), options);
}

/// The error kind's name of a failed result, or "ok".
template <class Result>
std::string outcome(const Result& result) {
  if (result) return "ok";
  return std::string(safetensors::error_kind_name(result.error().kind()));
}

/// A name in the temporary directory that nothing has yet, starting with `prefix`: the process id
/// and a counter make it unique among the tests running at once.
inline std::string unique_temp_path(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  static const auto seed = static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (;;) {
    const std::filesystem::path candidate =
        std::filesystem::temp_directory_path() / (prefix + std::to_string(seed) + "_" + std::to_string(counter++));
    std::error_code ignored;
    if (!std::filesystem::exists(candidate, ignored)) return candidate.generic_string();
  }
}

/// A file in the temporary directory, removed when the object goes away.
class temp_file {
 public:
  explicit temp_file(const std::vector<std::byte>& bytes) : path_(unique_temp_path("safetensors_test_")) {
    std::ofstream out(path_, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) path_.clear();
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// A fresh directory, removed with everything in it.
struct temp_directory {
  temp_directory() : path(unique_temp_path("safetensors_test_dir_")) { std::filesystem::create_directories(path); }
  temp_directory(const temp_directory&) = delete;
  temp_directory& operator=(const temp_directory&) = delete;
  ~temp_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  /// The path of `name` in the directory.
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

/// Cuts the file at `path` to `size` bytes, as another process might while a reader has it open.
/// Windows refuses to shrink a file another handle has open (or mapped), so the tests of files
/// that shrink under a reader run on POSIX systems only.
inline bool shrink_file(const std::string& path, std::uint64_t size) {
  std::error_code failure;
  std::filesystem::resize_file(path, size, failure);
  return !failure;
}

/// The temporary files a writer leaves beside `path` (PATH.tmp.*), with their paths.
inline std::vector<std::string> temp_files_beside(const std::string& path) {
  const std::string directory = path.substr(0, path.rfind('/'));
  const std::string prefix = path.substr(path.rfind('/') + 1) + ".tmp.";
  std::vector<std::string> found;
  std::error_code failure;
  for (const auto& entry : std::filesystem::directory_iterator(directory, failure)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) found.push_back(directory + "/" + name);
  }
  return found;
}

#ifdef SAFETENSORS_TEST_DATA
/// The reference corpus's directory (tests/data/reference/), with a trailing slash.
inline const std::string reference_dir = std::string(SAFETENSORS_TEST_DATA) + "/reference/";
#endif

/// Every .safetensors file under `root` (the reference corpus's directory, say), sorted.
inline std::vector<std::string> corpus_files(const std::string& root) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    const std::string path = entry.path().string();
    if (path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0) files.push_back(path);
  }
  std::sort(files.begin(), files.end());
  return files;
}

/// The whole content of a text file.
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Writes `text` as the whole content of the file at `path`.
inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// The whole content of a file.
inline std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

}  // namespace test
