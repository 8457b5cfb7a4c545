#include "digest.hpp"

#if defined(_WIN32)
#include <windows.h>
#include <bcrypt.h>
#else
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#endif

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>
#include <optional>
#include <thread>

namespace cli {

namespace {

std::string hex_of(const unsigned char* bytes, unsigned size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  text.reserve(2 * size);
  for (unsigned i = 0; i < size; ++i) {
    text += digits[bytes[i] >> 4];
    text += digits[bytes[i] & 15];
  }
  return text;
}

constexpr std::size_t block_size = std::size_t{4} << 20;

// One thread's share of the work: a file's whole bytes (for its digest), or a run of its
// tensors, which tile its data from `begin` to `end`.
struct job {
  std::size_t file;
  bool whole_file;
  std::size_t first_tensor;
  std::size_t tensor_count;
  std::uint64_t begin;
  std::uint64_t end;
};

// Runs of whole tensors of about `target` bytes each, over the data of `file`, as jobs.
void add_tensor_jobs(const file_access& file, std::size_t index, std::uint64_t target, std::vector<job>& jobs) {
  std::size_t first = 0;
  std::uint64_t begin = file.data_start;
  for (std::size_t t = 0; t < file.tensors.size(); ++t) {
    const std::uint64_t end = file.data_start + file.tensors[t]->data_offsets[1];
    if (end - begin >= target || t + 1 == file.tensors.size()) {
      jobs.push_back({index, false, first, t + 1 - first, begin, end});
      first = t + 1;
      begin = end;
    }
  }
}

// Shares jobs among threads and keeps the first error; every digest is written by one thread.
class digest_run {
 public:
  digest_run(const std::vector<file_access>& files, const std::vector<job>& jobs, digests& results,
             progress_bar& progress)
      : files_(files), jobs_(jobs), results_(results), progress_(progress) {}

  safetensors::result<void> go(unsigned threads) {
    const auto count = static_cast<unsigned>(std::min<std::size_t>(std::max(threads, 1u), jobs_.size()));
    std::vector<std::thread> others;
    for (unsigned i = 1; i < count; ++i) others.emplace_back([this] { work(); });
    work();
    for (std::thread& thread : others) thread.join();
    if (failure_) return *failure_;
    return {};
  }

 private:
  void work() {
    std::vector<std::byte> buffer(block_size);
    for (;;) {
      const std::size_t next = next_job_.fetch_add(1);
      if (next >= jobs_.size() || stopped_.load()) return;
      if (auto done = run(jobs_[next], buffer); !done) {
        std::lock_guard<std::mutex> lock(lock_);
        if (!failure_) failure_ = done.error();
        stopped_.store(true);
        return;
      }
    }
  }

  // Reads the job's bytes in blocks, front to back, and hashes them: the whole file, or each of
  // its tensors in turn.
  safetensors::result<void> run(const job& j, std::vector<std::byte>& buffer) {
    const file_access& file = files_[j.file];
    sha256 whole;
    std::vector<sha256> tensors(j.tensor_count);
    std::size_t current = 0;  // the tensor the next bytes belong to
    for (std::uint64_t at = j.begin; at < j.end && !stopped_.load();) {
      const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), j.end - at));
      const safetensors::span<std::byte> block(buffer.data(), size);
      if (auto read = file.read(at, block); !read) return read;
      if (j.whole_file) {
        whole.update(block);
      } else {
        for (std::uint64_t fed = 0; fed < size;) {
          const safetensors::tensor_info& info = *file.tensors[j.first_tensor + current];
          const std::uint64_t tensor_end = file.data_start + info.data_offsets[1];
          const auto part = static_cast<std::size_t>(std::min<std::uint64_t>(size - fed, tensor_end - (at + fed)));
          tensors[current].update(block.subspan(static_cast<std::size_t>(fed), part));
          fed += part;
          if (at + fed == tensor_end) ++current;
        }
      }
      at += size;
      std::lock_guard<std::mutex> lock(lock_);
      progress_.advance(size);
    }
    std::lock_guard<std::mutex> lock(lock_);
    if (j.whole_file) {
      results_.files[j.file].second = whole.hex();
    } else {
      for (std::size_t t = 0; t < j.tensor_count; ++t)
        results_.tensors[std::string(file.tensors[j.first_tensor + t]->name)] = tensors[t].hex();
    }
    return {};
  }

  const std::vector<file_access>& files_;
  const std::vector<job>& jobs_;
  digests& results_;
  progress_bar& progress_;
  std::atomic<std::size_t> next_job_{0};
  std::atomic<bool> stopped_{false};
  std::mutex lock_;  // guards results_, progress_ and failure_
  std::optional<safetensors::error> failure_;
};

}  // namespace

#if defined(_WIN32)

namespace {
// BCrypt fails only when memory runs out or the algorithm is missing.
void require(NTSTATUS status) {
  if (!BCRYPT_SUCCESS(status)) throw std::bad_alloc();
}

// The SHA-256 provider, opened once for the process.
BCRYPT_ALG_HANDLE sha256_algorithm() {
  static const BCRYPT_ALG_HANDLE algorithm = [] {
    BCRYPT_ALG_HANDLE opened = nullptr;
    require(BCryptOpenAlgorithmProvider(&opened, BCRYPT_SHA256_ALGORITHM, nullptr, 0));
    return opened;
  }();
  return algorithm;
}
}  // namespace

struct sha256::state {
  BCRYPT_HASH_HANDLE hash = nullptr;
};

void sha256::state_deleter::operator()(state* hashing) const {
  if (hashing->hash != nullptr) BCryptDestroyHash(hashing->hash);
  delete hashing;
}

sha256::sha256() : state_(new state) {
  require(BCryptCreateHash(sha256_algorithm(), &state_->hash, nullptr, 0, nullptr, 0, 0));
}

void sha256::update(safetensors::span<const std::byte> bytes) {
  // BCryptHashData takes at most 4 GiB - 1 at a time.
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ULONG count = static_cast<ULONG>(std::min<std::size_t>(bytes.size() - done, 1u << 30));
    require(
        BCryptHashData(state_->hash, reinterpret_cast<PUCHAR>(const_cast<std::byte*>(bytes.data() + done)), count, 0));
    done += count;
  }
}

std::string sha256::hex() {
  unsigned char digest[32];
  require(BCryptFinishHash(state_->hash, digest, sizeof digest, 0));
  return hex_of(digest, sizeof digest);
}

#else

namespace {
// The SHA-256 implementation, fetched once: OpenSSL 3 looks an algorithm up on every
// initialisation that names it implicitly (EVP_sha256()), which an explicit fetch avoids.
const EVP_MD* sha256_algorithm() {
#if OPENSSL_VERSION_MAJOR >= 3
  struct algorithm_deleter {
    void operator()(EVP_MD* algorithm) const { EVP_MD_free(algorithm); }
  };
  static const std::unique_ptr<EVP_MD, algorithm_deleter> fetched(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  return fetched.get();
#else
  return EVP_sha256();
#endif
}

// libcrypto fails only when memory runs out or the algorithm is missing from its providers.
void require(int status) {
  if (status != 1) throw std::bad_alloc();
}

}  // namespace

struct sha256::state {
  EVP_MD_CTX* context = nullptr;
};

void sha256::state_deleter::operator()(state* hashing) const {
  EVP_MD_CTX_free(hashing->context);
  delete hashing;
}

sha256::sha256() : state_(new state) {
  state_->context = EVP_MD_CTX_new();
  if (state_->context == nullptr) throw std::bad_alloc();
  require(EVP_DigestInit_ex(state_->context, sha256_algorithm(), nullptr));
}

void sha256::update(safetensors::span<const std::byte> bytes) {
  require(EVP_DigestUpdate(state_->context, bytes.data(), bytes.size()));
}

std::string sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  require(EVP_DigestFinal_ex(state_->context, digest, &size));
  return hex_of(digest, size);
}

#endif

unsigned default_threads() { return std::max(std::thread::hardware_concurrency(), 1u); }

safetensors::result<digests> compute_digests(const tensor_collection& tensors, bool with_files, unsigned threads,
                                             progress_bar& progress) {
  std::vector<file_access> files;
  std::uint64_t data_bytes = 0;
  for (std::size_t i = 0; i < tensors.file_count(); ++i) {
    auto file = tensors.file(i);
    if (!file) return file.error();
    if (!file->tensors.empty()) data_bytes += file->tensors.back()->data_offsets[1];
    files.push_back(std::move(*file));
  }
  // Runs of at least 64 MiB: enough tensors to keep every thread busy on a large file, few
  // enough that a model of many small tensors is not cut into crumbs.
  const std::uint64_t target = std::max<std::uint64_t>(data_bytes / std::max(threads, 1u), std::uint64_t{64} << 20);
  std::vector<job> jobs;
  digests results;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (with_files) {
      results.files.emplace_back(files[i].name, std::string());
      jobs.push_back({i, true, 0, 0, 0, files[i].size});
    }
    add_tensor_jobs(files[i], i, target, jobs);
  }
  // The largest jobs first, so that the last one to end is a short one.
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const job& a, const job& b) { return a.end - a.begin > b.end - b.begin; });
  digest_run run(files, jobs, results, progress);
  if (auto done = run.go(threads); !done) return done.error();
  return results;
}

}  // namespace cli
