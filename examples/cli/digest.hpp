// sha256 (OpenSSL's libcrypto; Windows' BCrypt there), and the digests of files and tensors that hash, verify,
// load --digest and rewrite --embed-hashes compute.
#pragma once

#include "input.hpp"
#include "progress.hpp"

#include <safetensors/safetensors.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace cli {

// The prefix of the metadata keys that hold tensors' digests, sha256:NAME, as rewrite
// --embed-hashes writes them and verify reads them.
inline const std::string embedded_hash_prefix = "sha256:";

// A sha256 computation: bytes in, then the digest as 64 lower-case hex digits.
class sha256 {
 public:
  sha256();
  void update(safetensors::span<const std::byte> bytes);
  // The digest of everything added; the object is then spent.
  std::string hex();

 private:
  struct state;  // the platform's hash object
  struct state_deleter {
    void operator()(state* hashing) const;
  };
  std::unique_ptr<state, state_deleter> state_;
};

// What the digests of a file or a model are: each file's (by file_name_of, in path order) and
// each tensor's (by name).
struct digests {
  std::vector<std::pair<std::string, std::string>> files;
  std::map<std::string, std::string, std::less<>> tensors;
};

// The sha256 of every tensor's bytes, and with `with_files` of every file's, read in bounded
// memory (a block of 4 MiB per thread) by up to `threads` threads at once: each file is read
// front to back for its own digest, and its data, cut into runs of whole tensors, for theirs, so
// that files, the two kinds and the runs go on at the same time. `progress` counts the bytes.
safetensors::result<digests> compute_digests(const tensor_collection& tensors, bool with_files, unsigned threads,
                                             progress_bar& progress);

// Threads to use by default: the machine's cores (at least 1).
unsigned default_threads();

}  // namespace cli
