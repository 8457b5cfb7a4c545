// safetensors-hpp: load_arena: the memory an engine loads into, one block for a whole load (or a
// rank's share), in 2 MiB pages where the system allows, each request's destination laid out in
// it, faulted in by the reading threads.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_ARENA_HPP
#define SAFETENSORS_ARENA_HPP

#include "load_plan.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__) && !defined(SAFETENSORS_NO_FILESYSTEM)
#include <sys/mman.h>
#endif

namespace safetensors {

/// Memory for a whole load, as a CPU engine holds its weights: one block, in 2 MiB pages where
/// the system allows (anonymous memory with MADV_HUGEPAGE on Linux, transparent huge pages
/// permitting; 4 KiB pages otherwise), with every request's destination laid out in it in order,
/// each at a multiple of the alignment. Nothing of it is touched when it is made: the load's
/// reading threads fault its pages in, a block's pages at once just before they read into them
/// (load_options::populate, which try_load_into sets), so that no page is faulted twice and no
/// single thread pays for them all. As large as what it holds (padding to the alignment aside).
/// Move-only; the memory goes with it.
///
/// ```cpp
/// std::vector<safetensors::load_request> requests;        // or a rank's, from try_tp_requests
/// for (const auto& entry : model.tensor_names()) requests.push_back(model.request(entry.name));
/// auto arena = safetensors::load_arena::make(requests);   // destinations set
/// arena.load_into(model, requests);
/// const float* norm = reinterpret_cast<const float*>(arena.at(0).data());
/// ```
class load_arena {
 public:
  /// An arena for `requests`, whose destinations it sets: request i's delivered bytes (the whole
  /// tensor's, or its slice's) at a multiple of `alignment` (a power of two; 64 by default, a
  /// cache line; direct_io_alignment lets direct reads land in place). InvalidArgument for a
  /// request without a tensor, a slice that does not fit or a bad alignment; IoError when the
  /// memory cannot be had.
  static result<load_arena> try_make(span<load_request> requests, std::size_t alignment = 64) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > huge_page)
      return error(error_kind::invalid_argument,
                   "load_arena: the alignment " + std::to_string(alignment) + " is not a power of two up to 2 MiB");
    load_arena arena;
    std::uint64_t end = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const load_request& r = requests[i];
      if (r.tensor == nullptr)
        return error(error_kind::invalid_argument, "load_arena: request " + std::to_string(i) + " names no tensor");
      auto delivered = detail::delivered_bytes(r);
      if (!delivered) return delivered.error();
      const std::uint64_t bytes = *delivered;
      const std::uint64_t start = (end + alignment - 1) / alignment * alignment;
      if (start < end || bytes > std::numeric_limits<std::uint64_t>::max() - start ||
          start + bytes > std::numeric_limits<std::size_t>::max() - huge_page)
        return error(error_kind::invalid_argument, "load_arena: the requests do not fit in memory");
      arena.offsets_.push_back({start, bytes});
      end = start + bytes;
    }
    if (auto allocated = arena.allocate(static_cast<std::size_t>(end)); !allocated) return allocated.error();
    for (std::size_t i = 0; i < requests.size(); ++i) requests[i].destination = arena.at(i);
    return arena;
  }
  /// As try_make; throws safetensors::exception (aborts without exceptions) on failure.
  static load_arena make(span<load_request> requests, std::size_t alignment = 64) {
    return try_make(requests, alignment).value();
  }

  load_arena(load_arena&& other) noexcept
      : memory_(std::exchange(other.memory_, nullptr)),
        mapped_(std::exchange(other.mapped_, 0)),
        size_(std::exchange(other.size_, 0)),
        huge_pages_(other.huge_pages_),
        offsets_(std::move(other.offsets_)) {}
  load_arena& operator=(load_arena&& other) noexcept {
    std::swap(memory_, other.memory_);
    std::swap(mapped_, other.mapped_);
    std::swap(size_, other.size_);
    std::swap(huge_pages_, other.huge_pages_);
    std::swap(offsets_, other.offsets_);
    return *this;
  }
  load_arena(const load_arena&) = delete;
  load_arena& operator=(const load_arena&) = delete;
  ~load_arena() { free(); }

  /// Every byte of the arena: the destinations and the padding between them.
  span<std::byte> bytes() const noexcept { return {memory_, size_}; }
  /// Its size in bytes.
  std::size_t size() const noexcept { return size_; }
  /// True when the memory was given 2 MiB pages (the system took MADV_HUGEPAGE); the kernel
  /// still decides page by page, as transparent huge pages do.
  bool huge_pages() const noexcept { return huge_pages_; }
  /// The destination of request `request`, as try_make laid it out (empty past the last).
  span<std::byte> at(std::size_t request) const noexcept {
    if (request >= offsets_.size()) return {};
    return {memory_ + offsets_[request].first, static_cast<std::size_t>(offsets_[request].second)};
  }

  /// Loads `requests` (those this arena was made for) from `source`, a reader or a model, with
  /// load_options::populate set: source.try_load_into(requests, options).
  template <class Source>
  result<void> try_load_into(const Source& source, span<const load_request> requests, load_options options = {}) const {
    options.populate = true;
    return source.try_load_into(requests, options);
  }
  /// As try_load_into; throws safetensors::exception (aborts without exceptions) on failure.
  template <class Source>
  void load_into(const Source& source, span<const load_request> requests, const load_options& options = {}) const {
    try_load_into(source, requests, options).value();
  }

 private:
  static constexpr std::size_t huge_page = std::size_t{2} << 20;

  load_arena() = default;

  result<void> allocate(std::size_t size) {
    size_ = size;
    if (size == 0) return {};
#if defined(__linux__) && !defined(SAFETENSORS_NO_FILESYSTEM)
    // Mapped 2 MiB more than needed, then trimmed to start on a 2 MiB boundary: huge pages need it.
    const std::size_t rounded = (size + huge_page - 1) / huge_page * huge_page;
    void* mapped = ::mmap(nullptr, rounded + huge_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED)
      return error(error_kind::io_error, "load_arena: cannot map " + std::to_string(size) + " bytes");
    auto* start = static_cast<std::byte*>(mapped);
    const std::size_t skip = (huge_page - reinterpret_cast<std::uintptr_t>(start) % huge_page) % huge_page;
    if (skip > 0) ::munmap(start, skip);
    if (huge_page - skip > 0) ::munmap(start + skip + rounded, huge_page - skip);
    memory_ = start + skip;
    mapped_ = rounded;
    huge_pages_ = ::madvise(memory_, mapped_, MADV_HUGEPAGE) == 0;
#else
    memory_ = static_cast<std::byte*>(::operator new(size, std::align_val_t(direct_io_alignment), std::nothrow));
    if (memory_ == nullptr)
      return error(error_kind::io_error, "load_arena: cannot allocate " + std::to_string(size) + " bytes");
#endif
    return {};
  }

  void free() noexcept {
    if (memory_ == nullptr) return;
#if defined(__linux__) && !defined(SAFETENSORS_NO_FILESYSTEM)
    ::munmap(memory_, mapped_);
#else
    ::operator delete(memory_, std::align_val_t(direct_io_alignment));
#endif
    memory_ = nullptr;
  }

  std::byte* memory_ = nullptr;
  std::size_t mapped_ = 0;  // Linux: the mapping's size, whole 2 MiB pages
  std::size_t size_ = 0;
  bool huge_pages_ = false;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> offsets_;  // per request: offset, bytes
};

}  // namespace safetensors

#endif  // SAFETENSORS_ARENA_HPP
