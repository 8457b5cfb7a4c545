// safetensors-hpp: storages, where a reader's bytes are: borrowed_bytes, owned_bytes, and the storage concept every storage (the files of file.hpp included) meets.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_STORAGE_HPP
#define SAFETENSORS_STORAGE_HPP

#include "error.hpp"
#include "span.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L && defined(__has_include)
#if __has_include(<concepts>)
#include <concepts>
#define SAFETENSORS_DETAIL_HAS_CONCEPTS 1
#endif
#endif

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// Storage policies
//
// A storage holds a file's bytes or reaches them. Every storage has
//   std::uint64_t size() const;
//   result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const;
// and read_at must be safe to call from many threads at once, on any ranges: a reader promises
// thread safety and its loads read with several threads. Under C++20 this is the concept
// safetensors::storage; under C++17 detail::is_storage checks the same, and basic_reader says
// what is missing in a static_assert. A storage may also offer (each found at compile time):
//   const std::byte* data() const;              the bytes are in memory: zero-copy views
//   const std::string& path() const;            where the bytes come from: every error names it
//   std::size_t first_read_size() const;        bytes worth reading at once when opening (the
//                                               header is read in one go when it fits)
//   result<void> read_direct_at(std::uint64_t offset, std::byte* destination, std::size_t count) const;
//                                               reads past the page cache (offset, count and
//                                               destination multiples of direct_io_alignment;
//                                               fewer bytes only at the end of the file)
//   void set_random_access(bool) const;         residency advice: read-around off or on
//   void opened();                              the header is read: what was kept for it may go
//   result<void> prefetch(std::uint64_t offset, std::uint64_t count) const;   read ahead
//   result<void> release(std::uint64_t offset, std::uint64_t count) const;    give memory back
// ---------------------------------------------------------------------------------------------

/// Bytes the caller owns and keeps alive (and unchanged) for as long as the reader.
class borrowed_bytes {
 public:
  /// The `size` bytes at `data`.
  borrowed_bytes(const void* data, std::size_t size) noexcept
      : data_(static_cast<const std::byte*>(data)), size_(size) {}

  /// First byte.
  const std::byte* data() const noexcept { return data_; }
  /// Number of bytes.
  std::uint64_t size() const noexcept { return size_; }
  /// Copies `count` bytes at `offset` to `destination`.
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    if (offset > size_ || count > size_ - offset) return error(error_kind::io_error, "read past the end of the buffer");
    if (count != 0) std::memcpy(destination, data_ + offset, count);
    return {};
  }

 private:
  const std::byte* data_;
  std::size_t size_;
};

/// Bytes the reader owns, e.g. a file read into memory or received over a network.
class owned_bytes {
 public:
  /// Takes ownership of `bytes`.
  explicit owned_bytes(std::vector<std::byte> bytes) noexcept : bytes_(std::move(bytes)) {}

  /// First byte.
  const std::byte* data() const noexcept { return bytes_.data(); }
  /// Number of bytes.
  std::uint64_t size() const noexcept { return bytes_.size(); }
  /// Copies `count` bytes at `offset` to `destination`.
  result<void> read_at(std::uint64_t offset, std::byte* destination, std::size_t count) const {
    return borrowed_bytes(bytes_.data(), bytes_.size()).read_at(offset, destination, count);
  }

 private:
  std::vector<std::byte> bytes_;
};

/// Offsets, lengths and addresses of direct reads (O_DIRECT) are multiples of this: the largest
/// logical block size in common use.
inline constexpr std::size_t direct_io_alignment = 4096;

namespace detail {
template <class Storage, class = void>
struct is_storage : std::false_type {};
template <class Storage>
struct is_storage<
    Storage, std::enable_if_t<std::is_convertible_v<decltype(std::declval<const Storage&>().size()), std::uint64_t> &&
                              std::is_same_v<decltype(std::declval<const Storage&>().read_at(
                                                 std::uint64_t{}, std::declval<std::byte*>(), std::size_t{})),
                                             result<void>>>> : std::true_type {};

template <class Storage, class = void>
struct has_data : std::false_type {};
template <class Storage>
struct has_data<Storage, std::void_t<decltype(std::declval<const Storage&>().data())>> : std::true_type {};

template <class Storage, class = void>
struct has_path : std::false_type {};
template <class Storage>
struct has_path<Storage, std::void_t<decltype(std::string_view(std::declval<const Storage&>().path()))>>
    : std::true_type {};

template <class Storage, class = void>
struct has_first_read_size : std::false_type {};
template <class Storage>
struct has_first_read_size<Storage, std::void_t<decltype(std::declval<const Storage&>().first_read_size())>>
    : std::true_type {};

template <class Storage, class = void>
struct has_direct_io : std::false_type {};
template <class Storage>
struct has_direct_io<Storage, std::void_t<decltype(std::declval<const Storage&>().read_direct_at(
                                  std::uint64_t{}, std::declval<std::byte*>(), std::size_t{}))>> : std::true_type {};

template <class Storage, class = void>
struct has_access_advice : std::false_type {};
template <class Storage>
struct has_access_advice<Storage, std::void_t<decltype(std::declval<const Storage&>().set_random_access(true))>>
    : std::true_type {};

template <class Storage, class = void>
struct has_open_hook : std::false_type {};
template <class Storage>
struct has_open_hook<Storage, std::void_t<decltype(std::declval<Storage&>().opened())>> : std::true_type {};

template <class Storage, class = void>
struct has_residency_control : std::false_type {};
template <class Storage>
struct has_residency_control<Storage, std::void_t<decltype(std::declval<const Storage&>().prefetch(0, 0)),
                                                  decltype(std::declval<const Storage&>().release(0, 0))>>
    : std::true_type {};

static_assert(is_storage<borrowed_bytes>::value && has_data<borrowed_bytes>::value,
              "borrowed_bytes is a storage with views");
static_assert(is_storage<owned_bytes>::value && has_data<owned_bytes>::value, "owned_bytes is a storage with views");

/// Where a storage's bytes come from, for messages: its path, or nothing for bytes in memory.
template <class Storage>
std::string_view storage_name(const Storage& storage) noexcept {
  if constexpr (has_path<Storage>::value) {
    return storage.path();
  } else {
    (void)storage;
    return {};
  }
}
}  // namespace detail

#if defined(SAFETENSORS_DETAIL_HAS_CONCEPTS)
/// What basic_reader asks of its Storage (C++20): the size, and read_at, which many threads may
/// call at once. The optional members are listed above.
template <class Storage>
concept storage = requires(const Storage& bytes, std::uint64_t offset, std::byte* destination, std::size_t count) {
  { bytes.size() } -> std::convertible_to<std::uint64_t>;
  { bytes.read_at(offset, destination, count) } -> std::same_as<result<void>>;
};
static_assert(storage<borrowed_bytes> && storage<owned_bytes>);
#endif

}  // namespace safetensors

#endif  // SAFETENSORS_STORAGE_HPP
