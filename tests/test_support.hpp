// Helpers shared by the tests: building files from hand-written bytes, and temporary files.
#pragma once

#include <safetensors/safetensors.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
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

/// The bytes `dims` select from `tensor` (non-negative dims), element by element in row-major
/// order: the naive answer.
inline std::vector<std::byte> naive_slice(safetensors::span<const std::byte> tensor, const safetensors::tensor_info& info,
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
          want.single ? start + 1 : (want.stop == safetensors::to_end ? info.shape[d] : static_cast<std::uint64_t>(want.stop));
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

/// A file in the temporary directory, removed when the object goes away.
class temp_file {
 public:
  explicit temp_file(const std::vector<std::byte>& bytes) {
    char name[] = "/tmp/safetensors_test_XXXXXX";
    int fd = ::mkstemp(name);
    path_ = name;
    if (fd >= 0) {
      if (!bytes.empty() && ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) path_.clear();
      ::close(fd);
    }
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// The whole content of a file.
inline std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  if (!chars.empty()) std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

}  // namespace test
