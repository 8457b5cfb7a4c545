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
