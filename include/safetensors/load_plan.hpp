// safetensors-hpp: loading: load_options, load_request, load_piece, load_plan and the plan builder and executor.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_LOAD_PLAN_HPP
#define SAFETENSORS_LOAD_PLAN_HPP

#include "storage.hpp"
#include "file.hpp"
#include "thread_pool.hpp"
#include "slice.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if SAFETENSORS_IO_URING
#include <liburing.h>
#endif

namespace safetensors {

/// How a load issues its reads of files read with positioned reads (pread_file, and the models
/// over them). Mapped and in-memory storages are copied from, remote ones fetched: this is only
/// for the first.
enum class io_engine : std::uint8_t {
  /// io_uring for direct I/O (load_options::direct_io), where many reads in flight are what the
  /// device needs, and threads for reads through the page cache, where the thread-pool reader
  /// measured faster (bench/README.md: 1.7x cold, 1.9x warm on a 2-core machine); io_uring only
  /// where this build has it (SAFETENSORS_IO_URING) and the kernel allows it. The environment
  /// variable SAFETENSORS_IO_ENGINE, "threads" or "io_uring", chooses for both instead (read once
  /// per process): how a test suite runs under each.
  automatic,
  /// Each reading thread issues one pread at a time.
  threads,
  /// Each reading thread keeps up to load_options::queue_depth reads in flight with io_uring,
  /// across every file of the plan; threads where io_uring is unavailable (a kernel before 5.6, a
  /// container whose seccomp filter refuses it, a build without it), silently.
  io_uring,
};

/// The engine's name: "automatic", "threads" or "io_uring".
constexpr std::string_view io_engine_name(io_engine engine) noexcept {
  switch (engine) {
    case io_engine::automatic: return "automatic";
    case io_engine::threads: return "threads";
    default: return "io_uring";
  }
}

/// Whether this process can read with io_uring: the build has it (SAFETENSORS_IO_URING) and the
/// kernel sets up a ring (probed once). False says why in `reason` when given: "not built in", or
/// the system's refusal ("Operation not permitted" under a seccomp filter, "Function not
/// implemented" on an old kernel).
inline bool io_uring_available(std::string* reason = nullptr) {
#if SAFETENSORS_IO_URING
  static const int refusal = [] {
    io_uring ring;
    const int made = ::io_uring_queue_init(2, &ring, 0);
    if (made == 0) ::io_uring_queue_exit(&ring);
    return made < 0 ? -made : 0;
  }();
  if (refusal != 0 && reason != nullptr) *reason = std::strerror(refusal);
  return refusal == 0;
#else
  if (reason != nullptr) *reason = "not built in (SAFETENSORS_IO_URING)";
  return false;
#endif
}

/// The engine a load with `engine` (and `direct_io`, for automatic) uses: threads or io_uring,
/// after the environment variable and io_uring's availability. For reports, such as
/// safetensors-cli's --verbose.
inline io_engine effective_io_engine(io_engine engine, bool direct_io = false) {
  if (engine == io_engine::automatic) {
    static const std::optional<io_engine> named = []() -> std::optional<io_engine> {
      const char* value = std::getenv("SAFETENSORS_IO_ENGINE");
      if (value == nullptr) return std::nullopt;
      if (std::string_view(value) == "threads") return io_engine::threads;
      if (std::string_view(value) == "io_uring") return io_engine::io_uring;
      return std::nullopt;
    }();
    engine = named.value_or(direct_io ? io_engine::io_uring : io_engine::threads);
  }
  return engine == io_engine::io_uring && io_uring_available() ? io_engine::io_uring : io_engine::threads;
}

/// How a load reads: threads, block size, merging, direct I/O, and for consumers the memory
/// budget and where the consumer runs.
struct load_options {
  /// Reading threads (the calling thread is one of them). 0: the pool's size, or without a pool
  /// thread_pool::default_size() (the machine's cores, at least 2). Several keep an NVMe queue,
  /// a network file system or an HTTP server busy.
  unsigned threads = 0;
  /// Most bytes in one read (at least 4096 are used). Reads of a range larger than this are cut
  /// into blocks of it, which threads read at once.
  std::size_t block_size = std::size_t{8} << 20;
  /// Byte runs no further apart than this in a file are read as one range, the bytes between
  /// them read and dropped (counted in load_plan::bytes_read()). 0, the default, reads exactly
  /// what is asked, adjacent runs as one range: a tensor-parallel rank reads its share and
  /// nothing else, even of a narrow matrix cut by columns. Raise it where a request costs more
  /// than the bytes skipped: a round trip for remote storages (1 MiB), a syscall per few KiB on
  /// a local file.
  std::uint64_t merge_gap = 0;
  /// Read past the page cache where the storage can (pread_file on Linux: O_DIRECT): reads are
  /// widened to multiples of direct_io_alignment, and blocks are read into aligned staging memory
  /// (or straight into a destination whose address, file offset and size are all aligned).
  bool direct_io = false;
  /// Consumers: the staging memory, in bytes, that blocks are read into before the consumer sees
  /// them; it must hold one block of the plan. try_load plans blocks no larger than the budget;
  /// a plan made beforehand and executed with a budget under its block size is refused
  /// (InvalidArgument). Memory stays at this whatever the model's size.
  std::uint64_t budget = std::uint64_t{256} << 20;
  /// Consumers: call the consumer on one thread of its own (the calling thread), one piece at a
  /// time, while `threads` other threads read; otherwise each reading thread calls it for the
  /// blocks it read, so calls come from several threads at once.
  bool consumer_thread = false;
  /// Threads to run on; nullptr starts threads for this load alone.
  thread_pool* pool = nullptr;
  /// How reads of pread files are issued (see io_engine).
  io_engine engine = io_engine::automatic;
  /// io_uring: the reads each reading thread keeps in flight (at least 1). NVMe drives and
  /// network block devices want 16 to 64; a block of the plan is one read, or a few.
  unsigned queue_depth = 32;
  /// load_into: the destinations are fresh memory (a load_arena's): each reading thread faults
  /// in a block's destination pages at once (Linux: MADV_POPULATE_WRITE, 2 MiB at a time where
  /// the memory has huge pages) just before it reads into them, rather than a fault per page in
  /// the middle of the copy. A hint: where the system cannot, the copy faults them as usual.
  bool populate = false;
};

/// A tensor, or a slice of one, to load, and where its bytes go.
struct load_request {
  /// No tensor: fill in the fields.
  load_request() = default;
  /// The tensor `of` (or the `selection` of it) into `into`, from shard `in_shard` of a model.
  load_request(const tensor_info* of, span<std::byte> into = {}, std::vector<slice_dim> selection = {},
               std::size_t in_shard = 0)
      : tensor(of), destination(into), slice(std::move(selection)), shard(in_shard) {}

  /// The tensor, from the reader (or model) that loads it.
  const tensor_info* tensor = nullptr;
  /// Where its bytes go (load_into): exactly the bytes delivered. Unused by consumers.
  span<std::byte> destination;
  /// Per dimension at(), range() or all(), as for slices; empty for the whole tensor. The bytes
  /// delivered are the selection's, in row-major order.
  std::vector<slice_dim> slice;
  /// Models: the shard holding `tensor` (model_reader::request fills it in). 0 for one file.
  std::size_t shard = 0;
};

namespace detail {
/// The bytes `request` delivers: its tensor's, or its slice's (the slice's error when it does not
/// fit the tensor).
inline result<std::uint64_t> delivered_bytes(const load_request& request) {
  if (request.slice.empty()) return request.tensor->byte_size();
  auto slice = tensor_slice::try_make(*request.tensor, request.slice);
  if (!slice) return slice.error();
  return slice->byte_size();
}
}  // namespace detail

/// Bytes of one request delivered to a consumer: `bytes` are the request's bytes from `offset`
/// on. They are valid until the consumer returns.
struct load_piece {
  /// The request's position in the list the plan was made from.
  std::size_t request = 0;
  /// Where `bytes` go in the request's bytes.
  std::uint64_t offset = 0;
  /// The bytes, little-endian as in the file.
  span<const std::byte> bytes;
};

namespace detail {
/// A storage as a plan sees it: its file's facts and its operations, type-erased so that one
/// plan spans shards and one executor serves every storage.
struct plan_source {
  const void* storage = nullptr;
  /// Path or URL for messages (the storage's own, which outlives the plan); empty in memory.
  std::string_view name;
  /// The file's bytes, for in-memory storages: copied from directly.
  const std::byte* memory = nullptr;
  std::uint64_t size = 0;
  std::uint64_t data_start = 0;
  /// The reader's tensors: a request's tensor must be one of them.
  span<const tensor_info> tensors;
  result<void> (*read)(const void*, std::uint64_t, std::byte*, std::size_t) = nullptr;
  result<void> (*read_direct)(const void*, std::uint64_t, std::byte*, std::size_t) = nullptr;
  result<void> (*prefetch)(const void*, std::uint64_t, std::uint64_t) = nullptr;
  result<void> (*release)(const void*, std::uint64_t, std::uint64_t) = nullptr;
#ifndef SAFETENSORS_NO_FILESYSTEM
  /// A pread file's descriptors, which io_uring reads borrow: nullptr for other storages.
  descriptor_cache::file_entry* file = nullptr;
#endif
};

/// The plan_source of a reader's storage.
template <class Storage>
plan_source make_plan_source(const Storage& storage, std::uint64_t data_start, span<const tensor_info> tensors) {
  plan_source source;
  source.storage = &storage;
  source.name = storage_name(storage);
  if constexpr (has_data<Storage>::value) source.memory = storage.data();
  source.size = storage.size();
  source.data_start = data_start;
  source.tensors = tensors;
  source.read = [](const void* s, std::uint64_t offset, std::byte* destination, std::size_t count) {
    return static_cast<const Storage*>(s)->read_at(offset, destination, count);
  };
  if constexpr (has_direct_io<Storage>::value) {
    source.read_direct = [](const void* s, std::uint64_t offset, std::byte* destination, std::size_t count) {
      return static_cast<const Storage*>(s)->read_direct_at(offset, destination, count);
    };
  }
#ifndef SAFETENSORS_NO_FILESYSTEM
  if constexpr (std::is_same_v<Storage, pread_file>) source.file = &file_entry_of(storage);
#endif
  if constexpr (has_residency_control<Storage>::value) {
    source.prefetch = [](const void* s, std::uint64_t offset, std::uint64_t count) {
      return static_cast<const Storage*>(s)->prefetch(offset, count);
    };
    source.release = [](const void* s, std::uint64_t offset, std::uint64_t count) {
      return static_cast<const Storage*>(s)->release(offset, count);
    };
  }
  return source;
}

/// Faults in the pages of [begin, begin + size) for writing, without changing a byte
/// (load_options::populate); a hint, ignored where the system has no way.
inline void populate(std::byte* begin, std::size_t size) noexcept {
#if defined(__linux__) && !defined(SAFETENSORS_NO_FILESYSTEM)
  // MADV_POPULATE_WRITE (Linux 5.14): spelt out, since C libraries before 2.35 do not name it.
  constexpr int populate_write = 23;
  if (size == 0) return;
  constexpr std::uintptr_t page = 4096;
  const std::uintptr_t first = reinterpret_cast<std::uintptr_t>(begin) / page * page;
  const std::uintptr_t last = (reinterpret_cast<std::uintptr_t>(begin) + size + page - 1) / page * page;
  ::madvise(reinterpret_cast<void*>(first), last - first, populate_write);
#else
  (void)begin;
  (void)size;
#endif
}

/// Memory aligned for direct I/O, freed on destruction; allocation failure leaves it empty.
class aligned_bytes {
 public:
  aligned_bytes() noexcept = default;
  explicit aligned_bytes(std::size_t size) noexcept
      : data_(static_cast<std::byte*>(::operator new(size, std::align_val_t(direct_io_alignment), std::nothrow))) {}
  aligned_bytes(aligned_bytes&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}
  aligned_bytes& operator=(aligned_bytes&& other) noexcept {
    std::swap(data_, other.data_);
    return *this;
  }
  aligned_bytes(const aligned_bytes&) = delete;
  aligned_bytes& operator=(const aligned_bytes&) = delete;
  ~aligned_bytes() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t(direct_io_alignment));
  }
  std::byte* get() const noexcept { return data_; }

 private:
  std::byte* data_ = nullptr;
};

/// `options` for a load through a consumer: blocks no larger than the budget (whole multiples of
/// direct_io_alignment, at least one), so that staging stays within it.
inline load_options within_budget(load_options options) {
  const std::uint64_t most =
      std::max<std::uint64_t>(options.budget / direct_io_alignment * direct_io_alignment, direct_io_alignment);
  if (options.block_size > most) options.block_size = static_cast<std::size_t>(most);
  return options;
}

/// A consumer of pieces, type-erased: `call(context, piece)`.
struct piece_sink {
  void* context = nullptr;
  result<void> (*call)(void*, const load_piece&) = nullptr;
};

class plan_builder;
class plan_executor;
}  // namespace detail

/// Reads planned across every file of a load at once: the requests' byte ranges, sorted, merged
/// where adjacent (or at most load_options::merge_gap apart), cut into blocks. Executing it reads
/// the blocks with a pool of threads, several files and several blocks in flight together, into
/// the requests' destinations (try_execute_into) or into bounded staging memory handed to a
/// consumer (try_execute). Made by a reader's or a model's try_plan, try_load_into and try_load;
/// it refers to the readers and destinations it was made with, which must outlive it.
///
/// Blocks are taken in turn from each file (the first block of every file, then the second...).
/// A failed read, a consumer's error or an exception stops the plan cleanly: no new block is
/// started, every thread is joined and every buffer freed, and the first error is returned,
/// naming the file and the tensor. Destinations then hold a mix of old and new bytes.
class load_plan {
 public:
  /// Number of requests.
  std::size_t size() const noexcept { return requests_.size(); }
  /// Bytes delivered: the requests' (whole tensors' or slices') bytes.
  std::uint64_t bytes() const noexcept { return bytes_; }
  /// Bytes read from the files: the merged ranges, gaps between runs included, and with direct
  /// I/O the widening to aligned offsets.
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }
  /// Number of ranges read after merging.
  std::size_t read_count() const noexcept { return read_count_; }
  /// Number of blocks.
  std::size_t block_count() const noexcept { return blocks_.size(); }
  /// The blocks' largest size.
  std::size_t block_size() const noexcept { return block_size_; }

  /// Reads every request's bytes into its destination, which must hold exactly them
  /// (InvalidTensorView otherwise, before anything is read).
  result<void> try_execute_into(const load_options& options = {}) const;
  /// Reads every request's bytes into its destination; throws on an error.
  void execute_into(const load_options& options = {}) const { try_execute_into(options).value(); }

  /// Reads the blocks into staging buffers of at most options.budget bytes in all and calls
  /// `consumer(const load_piece&)` for each piece of each request as it arrives, in no set
  /// order; a buffer is reused once the consumer returns. `consumer` returns void or
  /// result<void> (an error stops the plan); see load_options::consumer_thread for the thread it
  /// runs on. From in-memory storages (mapped files) pieces point into the storage itself and no
  /// staging is used. A strided slice arrives run by run.
  template <class Consumer>
  result<void> try_execute(Consumer&& consumer, const load_options& options = {}) const {
    using consumer_type = std::remove_reference_t<Consumer>;
    detail::piece_sink sink;
    sink.context = const_cast<void*>(static_cast<const void*>(std::addressof(consumer)));
    sink.call = [](void* context, const load_piece& piece) -> result<void> {
      auto& call = *static_cast<consumer_type*>(context);
      if constexpr (std::is_void_v<decltype(call(piece))>) {
        call(piece);
        return {};
      } else {
        return call(piece);
      }
    };
    return run(options, &sink);
  }
  /// Calls `consumer` for every piece (see try_execute); throws on an error.
  template <class Consumer>
  void execute(Consumer&& consumer, const load_options& options = {}) const {
    try_execute(std::forward<Consumer>(consumer), options).value();
  }

  /// Asks the kernel to read the plan's ranges ahead, in the order the plan reads them (storages
  /// that can: mapped files); for engines that stay on mapped views.
  result<void> try_prefetch() const { return advise(false); }
  /// As try_prefetch; throws safetensors::exception (aborts without exceptions) on failure.
  void prefetch() const { try_prefetch().value(); }
  /// Gives back the memory of the plan's ranges (mapped files), e.g. once copied to a device.
  result<void> try_release() const { return advise(true); }
  /// As try_release; throws on failure.
  void release() const { try_release().value(); }

 private:
  friend class detail::plan_builder;
  friend class detail::plan_executor;

  struct request {
    const tensor_info* tensor;
    span<std::byte> destination;
    std::uint64_t bytes;
    std::size_t source;
    bool sliced;
  };
  // Runs of a block that go to one request: `runs` runs of `run_bytes`, `stride` apart in the
  // block from `block_offset`, delivered back to back from `request_offset`.
  struct copy {
    std::size_t request;
    std::uint64_t request_offset;
    std::uint64_t block_offset;
    std::uint64_t run_bytes;
    std::uint64_t stride;
    std::uint64_t runs;
  };
  struct block {
    std::size_t source;
    std::uint64_t offset;
    std::uint64_t size;   // bytes read (a direct read's widening included)
    std::uint64_t valid;  // of them, the bytes before the end of the file
    std::size_t first_copy;
    std::size_t copy_count;
  };

  std::string describe(const request& r) const {
    return std::string(r.sliced ? "slice of tensor " : "tensor ") + detail::quote(r.tensor->name);
  }

  // Runs the plan once (defined after detail::plan_executor).
  result<void> run(const load_options& options, const detail::piece_sink* sink) const;

  result<void> advise(bool release_pages) const {
    for (const block& b : blocks_) {
      const detail::plan_source& s = sources_[b.source];
      auto call = release_pages ? s.release : s.prefetch;
      if (call == nullptr) continue;
      if (auto advised = call(s.storage, b.offset, b.valid); !advised) return advised;
    }
    return {};
  }

  std::vector<detail::plan_source> sources_;
  std::vector<request> requests_;
  std::vector<copy> copies_;
  std::vector<block> blocks_;  // in the order they are read
  std::uint64_t bytes_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::size_t read_count_ = 0;
  std::size_t block_size_ = 0;
};

namespace detail {

/// One run of a load_plan: its threads, staging memory and first error. try_execute_into and
/// try_execute make one for each run and the plan stays unchanged, so that a plan can run again.
class plan_executor {
  using request = load_plan::request;
  using copy = load_plan::copy;
  using block = load_plan::block;

  // A block of at most this many contiguous runs is read into its destinations run by run: a
  // read each (an HTTP request each, for a remote storage) against a second pass over the bytes.
  static constexpr std::size_t max_runs_read_in_place = 4;

 public:
  plan_executor(const load_plan& plan, const load_options& options, const piece_sink* sink)
      : plan_(plan), options_(options), sink_(sink) {}
  plan_executor(const plan_executor&) = delete;
  plan_executor& operator=(const plan_executor&) = delete;
#if SAFETENSORS_IO_URING
  ~plan_executor() { release_rings(); }
#endif

  result<void> go() {
    const std::size_t block_count = plan_.blocks_.size();
    if (block_count == 0) return {};
    unsigned threads = options_.threads != 0
                           ? options_.threads
                           : (options_.pool != nullptr ? options_.pool->size() : thread_pool::default_size());
    if (options_.pool != nullptr) threads = std::min(threads, options_.pool->size());
    readers_ = static_cast<unsigned>(std::min<std::size_t>(std::max(threads, 1u), block_count));
    // A consumer thread of its own is the calling thread, beside the readers, when the pool has
    // room for both.
    consumer_thread_ =
        sink_ != nullptr && options_.consumer_thread && (options_.pool == nullptr || options_.pool->size() >= 2);
    if (consumer_thread_ && options_.pool != nullptr) readers_ = std::min(readers_, options_.pool->size() - 1);
    if (sink_ != nullptr) {
      if (auto staged = allocate_staging(); !staged) return staged;
    }
#if SAFETENSORS_IO_URING
    // A ring per reading thread, set up before any reads: once reads hold descriptors, a ring
    // (a descriptor too) may not be had. Any that cannot be set up: every thread reads with pread.
    if (effective_io_engine(options_.engine, options_.direct_io) == io_engine::io_uring &&
        std::any_of(plan_.sources_.begin(), plan_.sources_.end(),
                    [](const detail::plan_source& source) { return source.file != nullptr; })) {
      const unsigned depth = std::max(1u, std::min(options_.queue_depth, 4096u));
      rings_ = std::vector<io_uring>(readers_);
      for (io_uring& ring : rings_) {
        if (::io_uring_queue_init(depth, &ring, 0) < 0) break;
        ++rings_made_;
      }
      if (rings_made_ < readers_) release_rings();
    }
#endif
    remaining_readers_ = readers_;
    const unsigned workers = readers_ + (consumer_thread_ ? 1u : 0u);
    auto task = [this](unsigned worker) { work(worker); };
    if (workers == 1) {
      task(0u);
    } else if (options_.pool != nullptr) {
      options_.pool->run(workers, task);
    } else {
      auto own = thread_pool::try_make(workers);
      if (!own) return own.error();
      (*own)->run(workers, task);
    }
#if SAFETENSORS_IO_URING
    release_rings();
#endif
#if SAFETENSORS_EXCEPTIONS
    if (exception_) std::rethrow_exception(exception_);
#endif
    if (first_error_) return *first_error_;
    return {};
  }

 private:
  result<void> allocate_staging() {
    // In-memory storages deliver from their own bytes: they need no staging.
    for (const block& b : plan_.blocks_) needs_staging_ = needs_staging_ || plan_.sources_[b.source].memory == nullptr;
    if (!needs_staging_) return {};
    const std::uint64_t size = plan_.block_size_;
    if (options_.budget < size)
      return error(error_kind::invalid_argument, "a budget of " + std::to_string(options_.budget) +
                                                     " bytes holds no block of " + std::to_string(size) +
                                                     " bytes: plan with a smaller block_size");
    const std::uint64_t count = std::min<std::uint64_t>(options_.budget / size, plan_.blocks_.size());
    for (std::uint64_t i = 0; i < count; ++i) {
      detail::aligned_bytes buffer(static_cast<std::size_t>(size));
      if (buffer.get() == nullptr)
        return error(error_kind::io_error, "cannot allocate a staging buffer of " + std::to_string(size) + " bytes");
      free_buffers_.push_back(buffer.get());
      staging_.push_back(std::move(buffer));
    }
    return {};
  }

  void work(unsigned worker) {
#if SAFETENSORS_EXCEPTIONS
    try {
#endif
      if (consumer_thread_ && worker == 0) {
        consume_queue();
      } else {
        read_blocks(worker - (consumer_thread_ ? 1u : 0u));
      }
#if SAFETENSORS_EXCEPTIONS
    } catch (...) {
      keep_current_exception();
    }
#endif
    if (!(consumer_thread_ && worker == 0)) {
      std::lock_guard<std::mutex> lock(lock_);
      if (--remaining_readers_ == 0) ready_.notify_all();
    }
  }

  // Reading thread `reader`'s loop: blocks claimed in turn until none is left or the plan stops.
  void read_blocks([[maybe_unused]] unsigned reader) {
#if SAFETENSORS_IO_URING
    if (!rings_.empty()) {
      read_blocks_in_flight(rings_[reader]);
      return;
    }
#endif
    detail::aligned_bytes own_staging;  // load_into: blocks that are not read in place
    for (;;) {
      if (stopped_.load(std::memory_order_acquire)) return;
      const std::size_t index = next_block_.fetch_add(1, std::memory_order_relaxed);
      if (index >= plan_.blocks_.size()) return;
      const block& b = plan_.blocks_[index];
      const detail::plan_source& source = plan_.sources_[b.source];
      if (sink_ == nullptr) {
        if (!fill_destinations(b, source, own_staging)) return;
        continue;
      }
      // An in-memory storage's block is delivered where it lies, without a staging buffer.
      std::byte* buffer = nullptr;
      if (source.memory == nullptr) {
        buffer = take_buffer();
        if (buffer == nullptr) return;
        if (auto read = read_block(b, source, buffer); !read) {
          fail(read.error(), b);
          give_back(buffer);
          return;
        }
      }
      if (consumer_thread_) {
        std::lock_guard<std::mutex> lock(lock_);
        filled_.push_back({index, buffer});
        ready_.notify_one();
      } else {
        const bool delivered = deliver(b, buffer != nullptr ? buffer : source.memory + b.offset);
        if (buffer != nullptr) give_back(buffer);
        if (!delivered) return;
      }
    }
  }

#if SAFETENSORS_IO_URING
  // io_uring: a thread keeps up to queue_depth reads in flight. A block being read, and the reads
  // of it that have not completed.
  struct block_in_flight {
    std::size_t index = 0;
    std::byte* buffer = nullptr;  // where its bytes land when not in their destinations
    bool own_buffer = false;      // one of this thread's staging buffers (load_into), not the budget's
    unsigned pending = 0;
    std::optional<descriptor_cache::lease> lease;
  };
  // One read: `asked` bytes at `offset` into `into`, of which `needed` must arrive (a direct
  // read's widening past the end of the file need not).
  struct read_in_flight {
    block_in_flight* block = nullptr;
    std::uint64_t offset = 0;
    std::byte* into = nullptr;
    std::size_t asked = 0;
    std::size_t needed = 0;
    std::size_t done = 0;
    int fd = -1;
  };
  // load_into: staging buffers a thread may have in flight at once, for blocks that are not read
  // in place (strided runs, many small tensors).
  static constexpr std::size_t staged_blocks_in_flight = 4;

  void release_rings() {
    for (unsigned made = 0; made < rings_made_; ++made) ::io_uring_queue_exit(&rings_[made]);
    rings_made_ = 0;
    rings_.clear();
  }

  // Reads blocks with `ring` until there are none left or the plan stops.
  void read_blocks_in_flight(io_uring& ring) {
    const unsigned depth = std::max(1u, std::min(options_.queue_depth, 4096u));
    std::vector<block_in_flight> blocks(depth);
    std::vector<read_in_flight> reads(depth);
    std::vector<block_in_flight*> free_blocks;
    std::vector<read_in_flight*> free_reads;
    for (auto& b : blocks) free_blocks.push_back(&b);
    for (auto& r : reads) free_reads.push_back(&r);
    std::vector<detail::aligned_bytes> staging;
    std::vector<std::byte*> free_staging;
    unsigned in_flight = 0;
    std::size_t last_started = 0;

    auto submit = [&](read_in_flight& r) {
      io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
      if (sqe == nullptr) {  // never with one entry per read in flight; a full queue is sent first
        ::io_uring_submit(&ring);
        sqe = ::io_uring_get_sqe(&ring);
      }
      const auto length = static_cast<unsigned>(std::min<std::size_t>(r.asked - r.done, std::size_t{1} << 30));
      ::io_uring_prep_read(sqe, r.fd, r.into + r.done, length, static_cast<__u64>(r.offset + r.done));
      ::io_uring_sqe_set_data(sqe, &r);
    };
    auto add_read =
        [&](block_in_flight& b, int fd, std::uint64_t offset, std::byte* into, std::size_t asked, std::size_t needed) {
      read_in_flight& r = *free_reads.back();
      free_reads.pop_back();
      r = read_in_flight{&b, offset, into, asked, needed, 0, fd};
      ++b.pending;
      ++in_flight;
      submit(r);
    };
    // Ends a block: its buffer back where it came from, its descriptor given back.
    auto release = [&](block_in_flight& b) {
      if (b.buffer != nullptr) {
        if (b.own_buffer) {
          free_staging.push_back(b.buffer);
        } else if (sink_ != nullptr) {
          give_back(b.buffer);
        }
      }
      b.buffer = nullptr;
      b.own_buffer = false;
      b.pending = 0;
      if (b.lease) {
        b.lease.reset();
        --leases_held_;
      }
      free_blocks.push_back(&b);
    };
    // A block whose reads all completed: copied out (load_into) or delivered (a consumer).
    auto complete = [&](block_in_flight& b) {
      const block& planned = plan_.blocks_[b.index];
      bool going_on = true;
      if (sink_ == nullptr) {
        if (b.buffer != nullptr) {
          const copy* first = plan_.copies_.data() + planned.first_copy;
          for (std::size_t c = 0; c < planned.copy_count; ++c) copy_out(first[c], b.buffer);
        }
      } else if (consumer_thread_) {
        std::lock_guard<std::mutex> lock(lock_);
        filled_.push_back({b.index, std::exchange(b.buffer, nullptr)});
        ready_.notify_one();
      } else {
        going_on = deliver(planned, b.buffer);
      }
      release(b);
      return going_on;
    };
    // The descriptor a block is read with: the file's O_DIRECT one for direct I/O, unless its
    // file system refuses the flag (then, as read_direct_at does, the buffered one).
    auto borrow = [&](const detail::plan_source& source, bool& direct) -> result<descriptor_cache::lease> {
      if (direct) {
        auto lease = descriptor_cache::instance().borrow(*source.file, true);
        if (!lease || lease->get() != nullptr) return lease;
        direct = false;
      }
      return descriptor_cache::instance().borrow(*source.file, false);
    };
    // Starts block `index`: its reads queued, or, for storages io_uring does not read, read here.
    // `later` when its file's descriptor cannot be had while this thread's reads hold others (the
    // process is out of descriptors): it starts again once some complete.
    enum class started : std::uint8_t { yes, failed, later };
    auto start = [&](std::size_t index, std::byte* budget_buffer) -> started {
      const block& b = plan_.blocks_[index];
      const detail::plan_source& source = plan_.sources_[b.source];
      if (source.file == nullptr) {
        if (sink_ == nullptr) {
          detail::aligned_bytes own_staging;
          return fill_destinations(b, source, own_staging) ? started::yes : started::failed;
        }
        if (source.memory == nullptr) {
          if (auto read = read_block(b, source, budget_buffer); !read) {
            fail(read.error(), b);
            give_back(budget_buffer);
            return started::failed;
          }
        }
        if (consumer_thread_) {
          std::lock_guard<std::mutex> lock(lock_);
          filled_.push_back({index, budget_buffer});
          ready_.notify_one();
          return started::yes;
        }
        const bool delivered = deliver(b, budget_buffer != nullptr ? budget_buffer : source.memory + b.offset);
        if (budget_buffer != nullptr) give_back(budget_buffer);
        return delivered ? started::yes : started::failed;
      }
      bool direct = options_.direct_io;
      auto lease = borrow(source, direct);
      if (!lease) {
        if (leases_held_.load() > 0) return started::later;
        fail(lease.error(), b);
        if (budget_buffer != nullptr) give_back(budget_buffer);
        return started::failed;
      }
      block_in_flight& flight = *free_blocks.back();
      free_blocks.pop_back();
      flight.index = index;
      flight.lease.emplace(std::move(*lease));
      ++leases_held_;
      last_started = index;
      const int fd = flight.lease->get()->get();
      const auto whole = static_cast<std::size_t>(direct ? b.size : b.valid);
      const auto valid = static_cast<std::size_t>(b.valid);
      if (sink_ != nullptr) {
        flight.buffer = budget_buffer;
        add_read(flight, fd, b.offset, budget_buffer, whole, valid);
        return started::yes;
      }
      const copy* first = plan_.copies_.data() + b.first_copy;
      if (options_.populate) populate_destinations(b);
      const bool contiguous = std::all_of(first, first + b.copy_count, [](const copy& c) { return c.runs == 1; });
      const bool one_whole_run =
          contiguous && b.copy_count == 1 && first->block_offset == 0 && first->run_bytes == b.size;
      if (one_whole_run && options_.direct_io) {
        std::byte* into = plan_.requests_[first->request].destination.data() + first->request_offset;
        const bool aligned = reinterpret_cast<std::uintptr_t>(into) % direct_io_alignment == 0 &&
                             b.offset % direct_io_alignment == 0 && b.size % direct_io_alignment == 0;
        if (aligned || !direct) {
          add_read(flight, fd, b.offset, into, whole, valid);
          return started::yes;
        }
      }
      if (!options_.direct_io && contiguous && b.copy_count <= free_reads.size() &&
          b.copy_count <= max_runs_read_in_place) {
        for (std::size_t c = 0; c < b.copy_count; ++c) {
          std::byte* into = plan_.requests_[first[c].request].destination.data() + first[c].request_offset;
          const auto run = static_cast<std::size_t>(first[c].run_bytes);
          add_read(flight, fd, b.offset + first[c].block_offset, into, run, run);
        }
        return started::yes;
      }
      if (free_staging.empty()) {
        detail::aligned_bytes buffer(plan_.block_size_);
        if (buffer.get() == nullptr) {
          fail(error(error_kind::io_error,
                     "cannot allocate a staging buffer of " + std::to_string(plan_.block_size_) + " bytes"),
               b);
          release(flight);
          return started::failed;
        }
        free_staging.push_back(buffer.get());
        staging.push_back(std::move(buffer));
      }
      flight.buffer = free_staging.back();
      flight.own_buffer = true;
      free_staging.pop_back();
      add_read(flight, fd, b.offset, flight.buffer, whole, valid);
      return started::yes;
    };
    // Claims and starts blocks while there is room: a free read, a free block and, for a
    // consumer, a staging buffer of the budget (waited for only when nothing of this thread's is
    // in flight, since its completions may be what frees one). False once no block is left.
    std::optional<std::pair<std::size_t, std::byte*>> deferred;  // a block to start again, its buffer
    const std::size_t budget_share = std::max<std::size_t>(1, staging_.size() / readers_);
    auto claim = [&]() -> bool {
      while (!stopped_.load(std::memory_order_acquire) && !free_blocks.empty() && !free_reads.empty() &&
             (sink_ != nullptr || !free_staging.empty() || staging.size() < staged_blocks_in_flight)) {
        std::size_t index = 0;
        std::byte* budget_buffer = nullptr;
        if (deferred) {
          std::tie(index, budget_buffer) = *deferred;
          deferred.reset();
        } else {
          if (sink_ != nullptr && needs_staging_) {
            // At most this thread's share of the budget's buffers in flight: the others' threads
            // read too.
            if (in_flight > 0 && blocks.size() - free_blocks.size() >= budget_share) return true;
            budget_buffer = in_flight > 0 ? try_take_buffer() : take_buffer();
            if (budget_buffer == nullptr) return in_flight > 0;
          }
          index = next_block_.fetch_add(1, std::memory_order_relaxed);
          if (index >= plan_.blocks_.size()) {
            if (budget_buffer != nullptr) give_back(budget_buffer);
            return false;
          }
          if (budget_buffer != nullptr && plan_.sources_[plan_.blocks_[index].source].memory != nullptr) {
            give_back(budget_buffer);
            budget_buffer = nullptr;
          }
        }
        const started outcome = start(index, budget_buffer);
        if (outcome == started::later) {
          deferred.emplace(index, budget_buffer);
          return true;
        }
        if (outcome == started::failed) return false;
      }
      return !stopped_.load(std::memory_order_acquire);
    };
    // One completion: the read's rest asked again after a short read, or the read done, and its
    // block completed with its last read. False on an error.
    auto reap = [&](io_uring_cqe* cqe, bool going_on) -> bool {
      auto& r = *static_cast<read_in_flight*>(::io_uring_cqe_get_data(cqe));
      const int got = cqe->res;
      ::io_uring_cqe_seen(&ring, cqe);
      block_in_flight& b = *r.block;
      const block& planned = plan_.blocks_[b.index];
      if (going_on && (got == -EINTR || got == -EAGAIN)) {
        submit(r);
        return true;
      }
      if (going_on && (got < 0 || (got == 0 && r.done < r.needed))) {
        const std::string path = detail::quote(plan_.sources_[planned.source].name);
        fail(got < 0 ? error(error_kind::io_error, path + ": cannot read: " + std::strerror(-got))
                     : error(error_kind::io_error, path + ": ended at byte " + std::to_string(r.offset + r.done) +
                                                       ": it shrank after it was opened"),
             planned);
        going_on = false;
      } else if (got > 0) {
        r.done += static_cast<std::size_t>(got);
        if (going_on && r.done < r.needed) {
          submit(r);
          return true;
        }
      }
      free_reads.push_back(&r);
      --in_flight;
      if (--b.pending > 0) return going_on;
      if (going_on && !stopped_.load(std::memory_order_acquire)) return complete(b);
      release(b);
      return going_on;
    };

    bool claiming = true, going_on = true;
#if SAFETENSORS_EXCEPTIONS
    try {
#endif
      while (going_on) {
        if (claiming) claiming = claim();
        if (in_flight == 0) {
          // A block waits for a descriptor while other threads' blocks hold theirs: until they end.
          if (!deferred || !claiming) break;
          std::this_thread::sleep_for(std::chrono::microseconds(100));
          continue;
        }
        const int submitted = ::io_uring_submit_and_wait(&ring, 1);
        if (submitted < 0 && submitted != -EINTR) {
          fail(error(error_kind::io_error, std::string("io_uring: ") + std::strerror(-submitted)),
               plan_.blocks_[last_started]);
          break;
        }
        io_uring_cqe* cqe = nullptr;
        while (going_on && ::io_uring_peek_cqe(&ring, &cqe) == 0) going_on = reap(cqe, true);
        if (stopped_.load(std::memory_order_acquire)) going_on = false;
      }
#if SAFETENSORS_EXCEPTIONS
    } catch (...) {
      keep_current_exception();
    }
#endif
    if (deferred && deferred->second != nullptr) give_back(deferred->second);
    // Reads still in flight land in memory that must outlive them: wait for every one.
    while (in_flight > 0) {
      const int waited = ::io_uring_submit_and_wait(&ring, 1);
      if (waited < 0 && waited != -EINTR) break;
      io_uring_cqe* cqe = nullptr;
      while (in_flight > 0 && ::io_uring_peek_cqe(&ring, &cqe) == 0) reap(cqe, false);
    }
  }

  // A staging buffer of the budget if one is free now, else nullptr (or when the plan stopped).
  std::byte* try_take_buffer() {
    std::lock_guard<std::mutex> lock(lock_);
    if (stopped_.load() || free_buffers_.empty()) return nullptr;
    std::byte* buffer = free_buffers_.back();
    free_buffers_.pop_back();
    return buffer;
  }
#endif

  // load_into: a block that is one run of one destination is read straight into it; others go
  // through staging memory and are copied out run by run.
  bool fill_destinations(const block& b, const detail::plan_source& source, detail::aligned_bytes& staging) {
    const copy* first = plan_.copies_.data() + b.first_copy;
    if (options_.populate) populate_destinations(b);
    if (source.memory != nullptr) {
      for (std::size_t c = 0; c < b.copy_count; ++c) copy_out(first[c], source.memory + b.offset);
      return true;
    }
    const bool direct = options_.direct_io && source.read_direct != nullptr;
    const bool contiguous = std::all_of(first, first + b.copy_count, [](const copy& c) { return c.runs == 1; });
    // A direct read lands in place only when one destination takes the whole, aligned block.
    if (direct && contiguous && b.copy_count == 1 && first->block_offset == 0 && first->run_bytes == b.size) {
      std::byte* into = plan_.requests_[first->request].destination.data() + first->request_offset;
      const bool aligned = reinterpret_cast<std::uintptr_t>(into) % direct_io_alignment == 0 &&
                           b.offset % direct_io_alignment == 0 && b.size % direct_io_alignment == 0;
      auto read = aligned ? source.read_direct(source.storage, b.offset, into, static_cast<std::size_t>(b.size))
                          : source.read(source.storage, b.offset, into, static_cast<std::size_t>(b.valid));
      if (!read) fail(read.error(), b);
      return static_cast<bool>(read);
    }
    // Other reads land in place when the block holds a few contiguous runs (one tensor, or the
    // end of one, a small one and the start of the next), a read per run: staging them would pass
    // over their bytes twice. Many runs and strided runs go through staging, in one read.
    if (!direct && contiguous && b.copy_count <= max_runs_read_in_place) {
      for (std::size_t c = 0; c < b.copy_count; ++c) {
        std::byte* into = plan_.requests_[first[c].request].destination.data() + first[c].request_offset;
        auto read = source.read(source.storage, b.offset + first[c].block_offset, into,
                                static_cast<std::size_t>(first[c].run_bytes));
        if (!read) {
          fail(read.error(), b);
          return false;
        }
      }
      return true;
    }
    if (staging.get() == nullptr) {
      staging = detail::aligned_bytes(plan_.block_size_);
      if (staging.get() == nullptr) {
        fail(error(error_kind::io_error,
                   "cannot allocate a staging buffer of " + std::to_string(plan_.block_size_) + " bytes"),
             b);
        return false;
      }
    }
    if (auto read = read_block(b, source, staging.get()); !read) {
      fail(read.error(), b);
      return false;
    }
    for (std::size_t c = 0; c < b.copy_count; ++c) copy_out(first[c], staging.get());
    return true;
  }

  // load_options::populate: the pages every copy of block `b` writes, faulted in at once.
  void populate_destinations(const block& b) const {
    const copy* first = plan_.copies_.data() + b.first_copy;
    for (std::size_t c = 0; c < b.copy_count; ++c)
      detail::populate(plan_.requests_[first[c].request].destination.data() + first[c].request_offset,
                       static_cast<std::size_t>(first[c].runs * first[c].run_bytes));
  }

  result<void> read_block(const block& b, const detail::plan_source& source, std::byte* into) const {
    if (options_.direct_io && source.read_direct != nullptr)
      return source.read_direct(source.storage, b.offset, into, static_cast<std::size_t>(b.size));
    return source.read(source.storage, b.offset, into, static_cast<std::size_t>(b.valid));
  }

  void copy_out(const copy& c, const std::byte* block_bytes) const {
    std::byte* to = plan_.requests_[c.request].destination.data() + c.request_offset;
    const std::byte* from = block_bytes + c.block_offset;
    const auto run = static_cast<std::size_t>(c.run_bytes);
    for (std::uint64_t r = 0; r < c.runs; ++r) {
      std::memcpy(to, from, run);
      to += run;
      from += c.stride;
    }
  }

  bool deliver(const block& b, const std::byte* block_bytes) {
    const copy* first = plan_.copies_.data() + b.first_copy;
    for (std::size_t c = 0; c < b.copy_count; ++c) {
      const copy& piece = first[c];
      for (std::uint64_t r = 0; r < piece.runs; ++r) {
        if (stopped_.load(std::memory_order_acquire)) return false;
        load_piece delivered;
        delivered.request = piece.request;
        delivered.offset = piece.request_offset + r * piece.run_bytes;
        delivered.bytes = span<const std::byte>(block_bytes + piece.block_offset + r * piece.stride,
                                                static_cast<std::size_t>(piece.run_bytes));
        if (auto consumed = sink_->call(sink_->context, delivered); !consumed) {
          const request& target = plan_.requests_[piece.request];
          fail(error(consumed.error().kind(), plan_.describe(target) + ": the consumer failed at byte " +
                                                  std::to_string(delivered.offset) + ": " + consumed.error().message()),
               b, false);
          return false;
        }
      }
    }
    return true;
  }

  void consume_queue() {
    std::unique_lock<std::mutex> lock(lock_);
    for (;;) {
      ready_.wait(lock, [&] { return !filled_.empty() || remaining_readers_ == 0 || stopped_.load(); });
      if (stopped_.load() || filled_.empty()) return;
      const std::pair<std::size_t, std::byte*> next = filled_.front();
      filled_.pop_front();
      lock.unlock();
      // A block of an in-memory storage comes without a buffer: it is read where it lies.
      const block& b = plan_.blocks_[next.first];
      const bool delivered =
          deliver(b, next.second != nullptr ? next.second : plan_.sources_[b.source].memory + b.offset);
      if (next.second != nullptr) give_back(next.second);
      lock.lock();
      if (!delivered) return;
    }
  }

  std::byte* take_buffer() {
    std::unique_lock<std::mutex> lock(lock_);
    returned_.wait(lock, [&] { return !free_buffers_.empty() || stopped_.load(); });
    if (stopped_.load()) return nullptr;
    std::byte* buffer = free_buffers_.back();
    free_buffers_.pop_back();
    return buffer;
  }

  void give_back(std::byte* buffer) {
    std::lock_guard<std::mutex> lock(lock_);
    free_buffers_.push_back(buffer);
    returned_.notify_one();
  }

  // Records the first error, naming the file (storage errors already do) and the tensor the
  // block was read for, and stops the plan.
  void fail(const error& err, const block& b, bool name_file = true) {
    std::lock_guard<std::mutex> lock(lock_);
    if (!first_error_ && !exception_) {
      const detail::plan_source& source = plan_.sources_[b.source];
      std::string message = err.message();
      if (name_file && b.copy_count > 0)
        message += " (reading bytes [" + std::to_string(b.offset) + ", " + std::to_string(b.offset + b.valid) +
                   ") for " + plan_.describe(plan_.requests_[plan_.copies_[b.first_copy].request]) + ")";
      const std::string prefix = detail::quote(source.name);
      const bool named = !source.name.empty() && message.compare(0, prefix.size(), prefix) == 0;
      first_error_ = named ? error(err.kind(), message) : detail::about(source.name, error(err.kind(), message));
    }
    stop_locked();
  }

#if SAFETENSORS_EXCEPTIONS
  // Keeps the exception being handled, unless an error or an exception came first, and stops the
  // plan: go() rethrows it once every thread is joined.
  void keep_current_exception() {
    std::lock_guard<std::mutex> lock(lock_);
    if (!exception_ && !first_error_) exception_ = std::current_exception();
    stop_locked();
  }
#endif

  void stop_locked() {
    stopped_.store(true, std::memory_order_release);
    returned_.notify_all();
    ready_.notify_all();
  }

  const load_plan& plan_;
  const load_options& options_;
  const piece_sink* sink_;
  unsigned readers_ = 1;
  bool consumer_thread_ = false;
  bool needs_staging_ = false;  // some block is read into staging (a consumer's, from a file)
#if SAFETENSORS_IO_URING
  std::vector<io_uring> rings_;  // one per reading thread; empty: every thread reads with pread
  unsigned rings_made_ = 0;
  std::atomic<unsigned> leases_held_{0};  // descriptors the io_uring threads' blocks hold
#endif
  std::atomic<std::size_t> next_block_{0};
  std::atomic<bool> stopped_{false};
  std::mutex lock_;                   // guards everything below
  std::condition_variable returned_;  // a staging buffer is free
  std::condition_variable ready_;     // a filled buffer waits for the consumer, or readers ended
  std::vector<detail::aligned_bytes> staging_;
  std::vector<std::byte*> free_buffers_;
  std::deque<std::pair<std::size_t, std::byte*>> filled_;  // block, and its staging buffer if any
  unsigned remaining_readers_ = 0;
  std::optional<error> first_error_;
#if SAFETENSORS_EXCEPTIONS
  std::exception_ptr exception_;
#else
  bool exception_ = false;
#endif
};

}  // namespace detail

inline result<void> load_plan::run(const load_options& options, const detail::piece_sink* sink) const {
  return detail::plan_executor(*this, options, sink).go();
}

inline result<void> load_plan::try_execute_into(const load_options& options) const {
  for (const request& r : requests_) {
    if (r.destination.size() != r.bytes)
      return detail::about(sources_[r.source].name,
                           error(error_kind::invalid_tensor_view, describe(r) + " has " + std::to_string(r.bytes) +
                                                                      " bytes but the destination holds " +
                                                                      std::to_string(r.destination.size())));
  }
  return run(options, nullptr);
}

namespace detail {

/// The loads that readers and models offer, made from their try_plan: one definition for
/// basic_reader, basic_model_reader, any_reader and any_model.
template <class Reader>
class plan_loads {
 public:
  /// Copies tensors, or slices of them, into memory the engine owns (pinned staging buffers, an
  /// arena), through a plan read by options.threads threads. Each destination holds exactly the
  /// bytes its request delivers. On an error the destinations hold a mix of old and new bytes.
  result<void> try_load_into(span<const load_request> requests, const load_options& options = {}) const {
    auto plan = reader().try_plan(requests, options);
    if (!plan) return plan.error();
    return plan->try_execute_into(options);
  }
  /// Copies tensors into memory the engine owns; throws on a size mismatch or an I/O error.
  void load_into(span<const load_request> requests, const load_options& options = {}) const {
    try_load_into(requests, options).value();
  }
  /// The plan of `requests`, as try_plan makes it; throws safetensors::exception on an error.
  load_plan plan(span<const load_request> requests, const load_options& options = {}) const {
    return reader().try_plan(requests, options).value();
  }
  /// Reads `requests` into staging memory of at most options.budget bytes and hands each piece
  /// to `consumer(const load_piece&)` as it arrives (see load_plan::try_execute): reading
  /// overlaps with what the consumer does (an upload to a device), in bounded memory. Blocks are
  /// made no larger than the budget.
  template <class Consumer>
  result<void> try_load(span<const load_request> requests, Consumer&& consumer,
                        const load_options& options = {}) const {
    auto plan = reader().try_plan(requests, within_budget(options));
    if (!plan) return plan.error();
    return plan->try_execute(std::forward<Consumer>(consumer), options);
  }
  /// Reads `requests` and hands them to `consumer` (see try_load); throws on an error.
  template <class Consumer>
  void load(span<const load_request> requests, Consumer&& consumer, const load_options& options = {}) const {
    try_load(requests, std::forward<Consumer>(consumer), options).value();
  }

 private:
  const Reader& reader() const noexcept { return static_cast<const Reader&>(*this); }
};

}  // namespace detail

namespace detail {
/// Turns load requests into a load_plan (see load_plan for what it does).
class plan_builder {
 public:
  static result<load_plan> build(std::vector<plan_source> sources, span<const load_request> requests,
                                 const load_options& options) {
    plan_builder builder(std::move(sources), options);
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const load_request& r = requests[i];
      if (auto checked = builder.check(i, r.tensor, r.shard); !checked) return checked.error();
      if (r.slice.empty()) {
        builder.add(i, r.shard, *r.tensor, nullptr, r.destination);
        continue;
      }
      auto slice = tensor_slice::try_make(*r.tensor, r.slice);
      if (!slice) return about(builder.plan_.sources_[r.shard].name, slice.error());
      builder.add(i, r.shard, *r.tensor, &*slice, r.destination);
    }
    builder.lay_out();
    return std::move(builder.plan_);
  }

  /// The plan that reads one slice of a tensor of `sources`' first file into `destination`.
  static result<load_plan> build(std::vector<plan_source> sources, const tensor_slice& slice,
                                 span<std::byte> destination, const load_options& options) {
    plan_builder builder(std::move(sources), options);
    if (auto checked = builder.check(0, &slice.info(), 0); !checked) return checked.error();
    builder.add(0, 0, slice.info(), &slice, destination);
    builder.lay_out();
    return std::move(builder.plan_);
  }

 private:
  // Equally spaced runs of one request in one file.
  struct group {
    std::size_t source;
    std::uint64_t start;  // file offset of the first run
    std::uint64_t stride;
    std::uint64_t run_bytes;
    std::uint64_t runs;
    std::size_t request;
    std::uint64_t request_offset;
    std::uint64_t end() const noexcept { return start + (runs - 1) * stride + run_bytes; }
  };

  plan_builder(std::vector<plan_source> sources, const load_options& options)
      : block_size_(
            std::max<std::size_t>(options.block_size / direct_io_alignment * direct_io_alignment, direct_io_alignment)),
        merge_gap_(options.merge_gap),
        direct_(options.direct_io) {
    plan_.sources_ = std::move(sources);
  }

  // Request `index` names a tensor of shard `shard`.
  result<void> check(std::size_t index, const tensor_info* tensor, std::size_t shard) const {
    const std::string which = "load request " + std::to_string(index);
    if (tensor == nullptr) return error(error_kind::invalid_tensor_view, which + " names no tensor");
    if (shard >= plan_.sources_.size())
      return error(error_kind::invalid_argument,
                   which + " names shard " + std::to_string(shard) + " of " + std::to_string(plan_.sources_.size()));
    const plan_source& source = plan_.sources_[shard];
    if (source.storage == nullptr)
      return about(source.name, error(error_kind::invalid_argument,
                                      which + " names shard " + std::to_string(shard) +
                                          ", which is not open: take a model's requests from its try_request"));
    // Pointers into one array compare with std::less, which is a total order even across arrays.
    const std::less<const tensor_info*> before;
    if (before(tensor, source.tensors.data()) || !before(tensor, source.tensors.data() + source.tensors.size()))
      return about(source.name, error(error_kind::invalid_argument, which + ": tensor " + quote(tensor->name) +
                                                                        " is not one of this file's tensors"));
    return {};
  }

  // The runs of `tensor` (or of `slice` of it) for request `index`: one group for a whole tensor,
  // a group per run group of a slice, or a group per run where runs are further apart than a
  // merge (a column block of a wide matrix).
  void add(std::size_t index, std::size_t shard, const tensor_info& tensor, const tensor_slice* slice,
           span<std::byte> destination) {
    const std::uint64_t base = plan_.sources_[shard].data_start + tensor.data_offsets[0];
    std::uint64_t delivered = tensor.byte_size();
    if (slice == nullptr) {
      if (delivered != 0) groups_.push_back({shard, base, delivered, delivered, 1, index, 0});
    } else {
      delivered = slice->byte_size();
      const std::uint64_t run_bytes = slice->run_bytes();
      std::uint64_t request_offset = 0;
      slice->for_each_run_group([&](std::uint64_t first, std::uint64_t stride, std::uint64_t runs) {
        if (runs > 1 && stride - run_bytes > merge_gap_) {
          for (std::uint64_t k = 0; k < runs; ++k, request_offset += run_bytes)
            groups_.push_back({shard, base + first + k * stride, run_bytes, run_bytes, 1, index, request_offset});
        } else {
          groups_.push_back({shard, base + first, stride, run_bytes, runs, index, request_offset});
          request_offset += runs * run_bytes;
        }
        return true;
      });
    }
    plan_.requests_.push_back({&tensor, destination, delivered, shard, slice != nullptr});
    plan_.bytes_ += delivered;
  }

  bool direct_for(std::size_t source) const { return direct_ && plan_.sources_[source].read_direct != nullptr; }

  // Sorts the groups, merges them into ranges, cuts the ranges into blocks with their copies, and
  // orders the blocks file by file in turn.
  void lay_out() {
    std::sort(groups_.begin(), groups_.end(), [](const group& a, const group& b) {
      if (a.source != b.source) return a.source < b.source;
      if (a.start != b.start) return a.start < b.start;
      return a.request < b.request;
    });
    std::vector<std::vector<load_plan::block>> per_source(plan_.sources_.size());
    std::size_t first = 0;
    while (first < groups_.size()) {
      const std::size_t source = groups_[first].source;
      std::uint64_t low = widen_down(source, groups_[first].start);
      std::uint64_t high = widen_up(source, groups_[first].end());
      std::size_t last = first + 1;
      while (last < groups_.size() && groups_[last].source == source &&
             widen_down(source, groups_[last].start) <= high + std::min(merge_gap_, ~high)) {
        high = std::max(high, widen_up(source, groups_[last].end()));
        ++last;
      }
      cut(source, low, high, first, last, per_source[source]);
      ++plan_.read_count_;
      first = last;
    }
    plan_.block_size_ = block_size_;
    for (std::size_t round = 0;; ++round) {
      bool any = false;
      for (const auto& blocks : per_source) {
        if (round >= blocks.size()) continue;
        plan_.blocks_.push_back(blocks[round]);
        any = true;
      }
      if (!any) break;
    }
  }

  std::uint64_t widen_down(std::size_t source, std::uint64_t offset) const {
    return direct_for(source) ? offset / direct_io_alignment * direct_io_alignment : offset;
  }
  std::uint64_t widen_up(std::size_t source, std::uint64_t offset) const {
    if (!direct_for(source) || offset > std::numeric_limits<std::uint64_t>::max() - direct_io_alignment) return offset;
    return (offset + direct_io_alignment - 1) / direct_io_alignment * direct_io_alignment;
  }

  // Cuts the range [low, high) of `source`, which covers groups [first, last), into blocks and
  // gives each the copies of the runs (or parts of runs) inside it.
  void cut(std::size_t source, std::uint64_t low, std::uint64_t high, std::size_t first, std::size_t last,
           std::vector<load_plan::block>& blocks) {
    const std::uint64_t file_size = plan_.sources_[source].size;
    std::vector<std::size_t> active;  // groups that reach into the current block or beyond
    std::size_t next = first;
    for (std::uint64_t begin = low; begin < high;) {
      std::uint64_t end = high - begin > block_size_ ? begin + block_size_ : high;
      while (next < last && groups_[next].start < end) active.push_back(next++);
      // A block that ends where a request's bytes end, rather than a little past it, is read
      // straight into that request's destination instead of through staging memory. Direct
      // reads keep their aligned cuts.
      if (!direct_for(source)) {
        for (std::size_t g : active) {
          const std::uint64_t group_end = groups_[g].end();
          if (group_end > begin + block_size_ / 4 && group_end < end) end = group_end;
        }
      }
      const std::size_t first_copy = plan_.copies_.size();
      std::size_t kept = 0;
      for (std::size_t g : active) {
        add_copies(groups_[g], begin, end);
        if (groups_[g].end() > end) active[kept++] = g;
      }
      active.resize(kept);
      // A block inside a gap wider than a block (merge_gap above block_size) holds nothing asked for.
      if (plan_.copies_.size() != first_copy) {
        load_plan::block b{source,      begin,
                           end - begin, std::min(end, file_size) - begin,
                           first_copy,  plan_.copies_.size() - first_copy};
        plan_.bytes_read_ += b.valid;
        blocks.push_back(b);
      }
      begin = end;
    }
  }

  // The copies of group g's runs that lie in the block [begin, end).
  void add_copies(const group& g, std::uint64_t begin, std::uint64_t end) {
    if (g.end() <= begin || g.start >= end) return;
    auto emit = [&](std::uint64_t run, std::uint64_t from, std::uint64_t to, std::uint64_t runs) {
      // Runs [run, run + runs), or for one run the part [from, to) of the file.
      const std::uint64_t run_start = g.start + run * g.stride;
      plan_.copies_.push_back({g.request, g.request_offset + run * g.run_bytes + (from - run_start), from - begin,
                               runs == 1 ? to - from : g.run_bytes, g.stride, runs});
    };
    // Runs that end after `begin`, and start before `end`.
    std::uint64_t run = begin <= g.start ? 0 : (begin - g.start) / g.stride;
    if (g.start + run * g.stride + g.run_bytes <= begin) ++run;
    const std::uint64_t stop = std::min(g.runs, (end - 1 - g.start) / g.stride + 1);
    if (run >= stop) return;
    auto run_start = [&](std::uint64_t k) { return g.start + k * g.stride; };
    // A run cut by the block's start or end is copied in part, on its own.
    if (run_start(run) < begin || run_start(run) + g.run_bytes > end) {
      emit(run, std::max(run_start(run), begin), std::min(run_start(run) + g.run_bytes, end), 1);
      ++run;
    }
    if (run >= stop) return;
    std::uint64_t whole_stop = stop;
    if (run_start(stop - 1) + g.run_bytes > end) --whole_stop;
    if (whole_stop > run) emit(run, run_start(run), run_start(run) + g.run_bytes, whole_stop - run);
    if (whole_stop < stop) emit(whole_stop, run_start(whole_stop), end, 1);
  }

  load_plan plan_;
  std::vector<group> groups_;
  std::size_t block_size_;
  std::uint64_t merge_gap_;
  bool direct_;
};
}  // namespace detail

}  // namespace safetensors

#endif  // SAFETENSORS_LOAD_PLAN_HPP
