// safetensors-hpp: the reader: read_options, basic_reader<Storage> and the functions that open files and buffers.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_READER_HPP
#define SAFETENSORS_READER_HPP

#include "file.hpp"
#include "header.hpp"
#include "load_plan.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------------------------

namespace detail {
/// The elements of `tensor` as values of T, converted from the bytes `bytes_of(held)` gives (a
/// view, or a copy it reads into `held`): what every reader's try_read_as does once it has the
/// tensor. Errors name `file`.
template <class T, class BytesOf>
result<std::vector<T>> read_values(const tensor_info& tensor, std::string_view file, packing order,
                                   BytesOf&& bytes_of) {
  if (tensor.element_count > std::numeric_limits<std::size_t>::max() / sizeof(T))
    return about(file, error(error_kind::io_error, "tensor " + quote(tensor.name) + " does not fit in memory"));
  std::vector<T> values(static_cast<std::size_t>(tensor.element_count));
  std::vector<std::byte> held;
  auto bytes = bytes_of(held);
  if (!bytes) return bytes.error();
  if (auto converted = try_copy_to(tensor_view{&tensor, *bytes}, span<T>(values), order); !converted)
    return about(file, converted.error());
  return values;
}
}  // namespace detail

/// Options for opening a file.
struct read_options {
  /// Accept bytes after the end of the last tensor (some old writers leave a few). Off by default:
  /// the official reader rejects them as MetadataIncompleteBuffer.
  bool allow_trailing_bytes = false;
  /// Mapped files: keep the kernel from reading around the pages that are touched (MADV_RANDOM),
  /// so touching a tensor loads its pages and no others; prefetch() then reads ahead on request.
  /// Off by default: the kernel's read-ahead serves a cold sequential read best. Either way,
  /// opening reads only the header's pages.
  bool random_access = false;
  /// How F4 and F6 elements lie in their bytes, for the conversions the reader makes (read_as).
  safetensors::packing packing = safetensors::packing::low_first;
  /// The largest header accepted, in bytes (HeaderTooLarge past it), and the largest index of a
  /// sharded model (InvalidIndex past it), local or remote. The format's limit by default; an
  /// engine that only opens small files may lower it to bound the memory a hostile file can ask
  /// for before anything else is checked.
  std::uint64_t max_header_size = format_max_header_size;
};

/// A validated safetensors file over a storage policy. Immutable after opening: any number of
/// threads may use one reader at once. Errors about a file with a path name it first:
/// `"model.safetensors": tensor "b": ...`.
template <class Storage>
class basic_reader : public detail::plan_loads<basic_reader<Storage>> {
  static_assert(detail::is_storage<Storage>::value,
                "a storage needs `std::uint64_t size() const` and `result<void> read_at(std::uint64_t offset, "
                "std::byte* destination, std::size_t count) const`, safe to call from many threads at once");

 public:
  using detail::plan_loads<basic_reader>::try_load_into;
  using detail::plan_loads<basic_reader>::load_into;

  /// True when the storage is in memory and views are zero-copy.
  static constexpr bool has_views = detail::has_data<Storage>::value;

  /// Validates the file held by `storage` (every rule of the format) and indexes its tensors.
  /// The header is read in one read when it fits in the storage's first_read_size(), else in two.
  static result<basic_reader> try_open(Storage storage, const read_options& options = {}) {
    const std::string_view name = detail::storage_name(storage);
    auto fail = [&](error_kind kind, std::string message) {
      return detail::about(name, error(kind, std::move(message)));
    };
    // Reading the header must not read around it: the kernel would load megabytes of tensor data.
    if constexpr (detail::has_access_advice<Storage>::value) storage.set_random_access(true);
    const std::uint64_t size = storage.size();
    if (size < 8)
      return fail(error_kind::header_too_small,
                  "the file holds " + std::to_string(size) + " bytes, fewer than the 8-byte header length");
    std::size_t first_read = 8;
    if constexpr (!has_views && detail::has_first_read_size<Storage>::value)
      first_read = static_cast<std::size_t>(std::clamp<std::uint64_t>(storage.first_read_size(), 8, size));
    std::unique_ptr<char[]> prefix(new char[first_read]);
    if (auto read = storage.read_at(0, reinterpret_cast<std::byte*>(prefix.get()), first_read); !read)
      return read.error();
    const auto header_length = detail::load_le<std::uint64_t>(reinterpret_cast<const std::byte*>(prefix.get()));
    if (header_length > options.max_header_size)
      return fail(error_kind::header_too_large, "header length " + std::to_string(header_length) +
                                                    " exceeds the limit of " + std::to_string(options.max_header_size) +
                                                    " bytes");
    if (header_length > size - 8)
      return fail(error_kind::invalid_header_length, "header length " + std::to_string(header_length) +
                                                         " runs past the end of the file (" + std::to_string(size) +
                                                         " bytes)");
    const std::uint64_t data_size = size - 8 - header_length;
    const auto header_bytes = static_cast<std::size_t>(header_length);
    result<detail::header_index> index = [&]() -> result<detail::header_index> {
      if constexpr (has_views) {
        return detail::parse_header(reinterpret_cast<const char*>(storage.data()) + 8, header_bytes, data_size,
                                    options.allow_trailing_bytes);
      } else {
        // Names point into the header: the buffer that holds it goes to the index.
        if (8 + header_bytes <= first_read) {
          if (first_read - 8 - header_bytes <= 4096) {
            const char* text = prefix.get() + 8;
            return detail::parse_header(text, header_bytes, data_size, options.allow_trailing_bytes, std::move(prefix));
          }
          // A first read far larger than the header (a remote file's 1 MiB): the index keeps the
          // header alone, so that an open file costs its header, not its first read.
          std::unique_ptr<char[]> header(new char[header_bytes]);
          if (header_bytes != 0) std::memcpy(header.get(), prefix.get() + 8, header_bytes);
          const char* text = header.get();
          return detail::parse_header(text, header_bytes, data_size, options.allow_trailing_bytes, std::move(header));
        }
        // The prefix holds the header's start: only the rest is read.
        std::unique_ptr<char[]> header(new char[header_bytes]);
        const std::size_t have = first_read - 8;
        std::memcpy(header.get(), prefix.get() + 8, have);
        if (auto read =
                storage.read_at(first_read, reinterpret_cast<std::byte*>(header.get()) + have, header_bytes - have);
            !read)
          return read.error();
        const char* text = header.get();
        return detail::parse_header(text, header_bytes, data_size, options.allow_trailing_bytes, std::move(header));
      }
    }();
    if (!index) {
      // The storage's own errors already name the file.
      const std::string named = detail::quote(name);
      if (!name.empty() && index.error().message().compare(0, named.size(), named) == 0) return index.error();
      return detail::about(name, index.error());
    }
    if constexpr (detail::has_access_advice<Storage>::value) storage.set_random_access(options.random_access);
    if constexpr (detail::has_open_hook<Storage>::value) storage.opened();
    return basic_reader(std::move(storage), std::make_unique<detail::header_index>(std::move(*index)), options.packing);
  }
  /// As try_open; throws safetensors::exception (aborts without exceptions) on failure.
  static basic_reader open(Storage storage, const read_options& options = {}) {
    return try_open(std::move(storage), options).value();
  }

  /// Every tensor, in data order (by data_offsets, ties by name).
  span<const tensor_info> tensors() const noexcept { return {index_->tensors.data(), index_->tensors.size()}; }
  /// Number of tensors.
  std::size_t size() const noexcept { return index_->tensors.size(); }
  /// The tensor named `name`, or nullptr. O(1).
  const tensor_info* find(std::string_view name) const noexcept { return index_->find(name); }
  /// True when a tensor is named `name`.
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

  /// The tensor named `name`, or TensorNotFound.
  result<const tensor_info*> try_info(std::string_view name) const {
    if (const tensor_info* info = find(name)) return info;
    return named(error(error_kind::tensor_not_found, "no tensor named " + detail::quote(name)));
  }
  /// The tensor named `name`; throws TensorNotFound.
  const tensor_info& info(std::string_view name) const { return *try_info(name).value(); }

  /// A zero-copy view of the tensor named `name`, or TensorNotFound. In-memory storages only.
  template <bool enabled = has_views, std::enable_if_t<enabled, int> = 0>
  result<tensor_view> try_view(std::string_view name) const {
    auto info = try_info(name);
    if (!info) return info.error();
    return view(**info);
  }
  /// A zero-copy view of the tensor named `name`; throws TensorNotFound. In-memory storages only.
  template <bool enabled = has_views, std::enable_if_t<enabled, int> = 0>
  tensor_view view(std::string_view name) const {
    return try_view(name).value();
  }
  /// A zero-copy view of a tensor of this reader. In-memory storages only.
  template <bool enabled = has_views, std::enable_if_t<enabled, int> = 0>
  tensor_view view(const tensor_info& info) const noexcept {
    const std::byte* start = storage_.data() + data_start() + info.data_offsets[0];
    return {&info, span<const std::byte>(start, static_cast<std::size_t>(info.byte_size()))};
  }

  /// A slice of the tensor named `name`: per dimension at(i), range(start, stop, step) or all(),
  /// leading dimensions first. On in-memory storages it can be viewed and copied directly; on
  /// every storage, read_into() and load requests read its bytes and no others.
  result<tensor_slice> try_slice(std::string_view name, std::vector<slice_dim> dims) const {
    auto info = try_info(name);
    if (!info) return info.error();
    result<tensor_slice> slice = [&] {
      if constexpr (has_views) {
        return tensor_slice::try_make(view(**info), std::move(dims));
      } else {
        return tensor_slice::try_make(**info, std::move(dims));
      }
    }();
    if (!slice) return named(slice.error());
    return slice;
  }
  /// A slice of the tensor named `name`; throws on TensorNotFound or a slice that does not fit.
  tensor_slice slice(std::string_view name, std::vector<slice_dim> dims) const {
    return try_slice(name, std::move(dims)).value();
  }

  /// Copies a tensor's bytes into `destination`, which must be exactly byte_size() long.
  result<void> try_read_into(const tensor_info& info, span<std::byte> destination) const {
    if (destination.size() != info.byte_size())
      return named(error(error_kind::invalid_tensor_view,
                         "tensor " + detail::quote(info.name) + " has " + std::to_string(info.byte_size()) +
                             " bytes but the destination holds " + std::to_string(destination.size())));
    return storage_.read_at(data_start() + info.data_offsets[0], destination.data(), destination.size());
  }
  /// Copies a tensor's bytes into `destination`; throws on a size mismatch or an I/O error.
  void read_into(const tensor_info& info, span<std::byte> destination) const {
    try_read_into(info, destination).value();
  }
  /// Copies the bytes a slice of one of this reader's tensors selects (in the tensor's dtype,
  /// little-endian, row-major) into `destination`, exactly slice.byte_size() long, reading those
  /// bytes and no others (runs a page or less apart are read as one).
  result<void> try_read_into(const tensor_slice& slice, span<std::byte> destination) const {
    load_options one_thread;
    one_thread.threads = 1;
    auto plan = detail::plan_builder::build(sources(), slice, destination, one_thread);
    if (!plan) return plan.error();
    return plan->try_execute_into(one_thread);
  }
  /// Copies the bytes a slice selects into `destination`; throws on an error.
  void read_into(const tensor_slice& slice, span<std::byte> destination) const {
    try_read_into(slice, destination).value();
  }
  /// Copies the destination.size() bytes of a tensor that start `offset` bytes into it: a tensor
  /// read piece by piece in bounded memory.
  result<void> try_read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    if (offset > info.byte_size() || destination.size() > info.byte_size() - offset)
      return named(error(error_kind::invalid_tensor_view,
                         "tensor " + detail::quote(info.name) + " has " + std::to_string(info.byte_size()) +
                             " bytes; cannot read " + std::to_string(destination.size()) + " at offset " +
                             std::to_string(offset)));
    return storage_.read_at(data_start() + info.data_offsets[0] + offset, destination.data(), destination.size());
  }
  /// As try_read_part; throws safetensors::exception (aborts without exceptions) on an error.
  void read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    try_read_part(info, offset, destination).value();
  }
  /// A copy of the bytes of the tensor named `name`.
  result<std::vector<std::byte>> try_read(std::string_view name) const {
    auto info = try_info(name);
    if (!info) return info.error();
    auto bytes = allocate((*info)->byte_size(), (*info)->name);
    if (!bytes) return bytes.error();
    if (auto read = try_read_into(**info, *bytes); !read) return read.error();
    return bytes;
  }
  /// A copy of the bytes of the tensor named `name`; throws on TensorNotFound or an I/O error.
  std::vector<std::byte> read(std::string_view name) const { return try_read(name).value(); }
  /// The elements of the tensor named `name` as values of T (float, std::int64_t, bfloat16, ...),
  /// converted exactly as try_convert() does (F4 and F6 unpacked as read_options::packing says) and
  /// in host byte order: Python's
  /// get_tensor(name).float() in one call. Storages not in memory read the bytes first, so the
  /// tensor's bytes are held twice while it converts.
  template <class T>
  result<std::vector<T>> try_read_as(std::string_view name) const {
    auto info = try_info(name);
    if (!info) return info.error();
    return detail::read_values<T>(**info, this->name(), packing_,
                                  [&](std::vector<std::byte>& held) -> result<span<const std::byte>> {
                                    if constexpr (has_views) {
                                      (void)held;
                                      return view(**info).bytes;
                                    } else {
                                      auto bytes = try_read(name);
                                      if (!bytes) return bytes.error();  // a read's error names the file already
                                      held = std::move(*bytes);
                                      return span<const std::byte>(held);
                                    }
                                  });
  }
  /// The elements of the tensor named `name` as values of T; throws on an error.
  template <class T>
  std::vector<T> read_as(std::string_view name) const {
    return try_read_as<T>(name).value();
  }
  /// A copy of the bytes a slice selects (see try_read_into for slices).
  result<std::vector<std::byte>> try_read(const tensor_slice& slice) const {
    auto bytes = allocate(slice.byte_size(), slice.info().name);
    if (!bytes) return bytes.error();
    if (auto read = try_read_into(slice, *bytes); !read) return read.error();
    return bytes;
  }
  /// A copy of the bytes a slice selects; throws on an error.
  std::vector<std::byte> read(const tensor_slice& slice) const { return try_read(slice).value(); }

  /// Plans the reads of `requests` (see load_plan): for inspection (bytes, bytes_read), for
  /// prefetch(), or to execute later, while this reader and the destinations live.
  result<load_plan> try_plan(span<const load_request> requests, const load_options& options = {}) const {
    return detail::plan_builder::build(sources(), requests, options);
  }
  /// Copies one tensor into `destination` (exactly its byte_size()); see the list form.
  result<void> try_load_into(const tensor_info& info, span<std::byte> destination,
                             const load_options& options = {}) const {
    const load_request request{&info, destination};
    return try_load_into(span<const load_request>(&request, 1), options);
  }
  /// Copies one tensor into `destination`; throws on a size mismatch or an I/O error.
  void load_into(const tensor_info& info, span<std::byte> destination, const load_options& options = {}) const {
    try_load_into(info, destination, options).value();
  }
  /// Starts reading a tensor's pages in ahead of use (mapped files only).
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  result<void> try_prefetch(const tensor_info& info) const {
    return storage_.prefetch(data_start() + info.data_offsets[0], info.byte_size());
  }
  /// As try_prefetch; throws safetensors::exception (aborts without exceptions) on failure.
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  void prefetch(const tensor_info& info) const {
    try_prefetch(info).value();
  }
  /// Gives back the memory of a tensor's pages, e.g. once it has been copied to a device (mapped
  /// files only). Pages shared with a neighbouring tensor are released too; they read back in
  /// from the file when touched.
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  result<void> try_release(const tensor_info& info) const {
    return storage_.release(data_start() + info.data_offsets[0], info.byte_size());
  }
  /// As try_release; throws safetensors::exception (aborts without exceptions) on failure.
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  void release(const tensor_info& info) const {
    try_release(info).value();
  }

  /// How this reader unpacks sub-byte elements (read_options::packing).
  safetensors::packing element_packing() const noexcept { return packing_; }
  /// The header's `__metadata__` (empty when there is none).
  const metadata_map& metadata() const noexcept { return index_->metadata; }
  /// True when the header has a `__metadata__` object (false for none or null).
  bool has_metadata() const noexcept { return index_->has_metadata; }
  /// N: the header's length in bytes, from the file's first 8 bytes.
  std::uint64_t header_length() const noexcept { return index_->header_length; }
  /// 8 + N: where the data buffer starts in the file.
  std::uint64_t data_start() const noexcept { return 8 + index_->header_length; }
  /// Size of the data buffer in bytes.
  std::uint64_t data_size() const noexcept { return index_->data_size; }
  /// The storage the reader reads from.
  const Storage& storage() const noexcept { return storage_; }
  /// The storage's path (or URL), empty for bytes in memory: what errors name.
  std::string_view name() const noexcept { return detail::storage_name(storage_); }

  /// This reader as one source of a plan: for models, which plan over many readers.
  detail::plan_source plan_source() const { return detail::make_plan_source(storage_, data_start(), tensors()); }

 private:
  basic_reader(Storage storage, std::unique_ptr<detail::header_index> index, safetensors::packing order)
      : storage_(std::move(storage)), index_(std::move(index)), packing_(order) {}

  error named(const error& err) const { return detail::about(name(), err); }

  std::vector<detail::plan_source> sources() const { return {plan_source()}; }

  result<std::vector<std::byte>> allocate(std::uint64_t size, std::string_view tensor) const {
    if (size > std::numeric_limits<std::size_t>::max())
      return named(error(error_kind::io_error, "tensor " + detail::quote(tensor) + " does not fit in memory"));
    return std::vector<std::byte>(static_cast<std::size_t>(size));
  }

  Storage storage_;
  std::unique_ptr<detail::header_index> index_;
  safetensors::packing packing_;
};

/// A reader over bytes the caller owns.
using memory_reader = basic_reader<borrowed_bytes>;
/// A reader that owns its bytes.
using buffer_reader = basic_reader<owned_bytes>;

/// Validates the `size` bytes at `data`, which the caller keeps alive as long as the reader.
inline result<memory_reader> try_open_memory(const void* data, std::size_t size, const read_options& options = {}) {
  return memory_reader::try_open(borrowed_bytes(data, size), options);
}
/// Validates the `size` bytes at `data`; throws safetensors::exception.
inline memory_reader open_memory(const void* data, std::size_t size, const read_options& options = {}) {
  return try_open_memory(data, size, options).value();
}
/// Validates `bytes` and keeps them.
inline result<buffer_reader> try_open_buffer(std::vector<std::byte> bytes, const read_options& options = {}) {
  return buffer_reader::try_open(owned_bytes(std::move(bytes)), options);
}
/// Validates `bytes` and keeps them; throws safetensors::exception.
inline buffer_reader open_buffer(std::vector<std::byte> bytes, const read_options& options = {}) {
  return try_open_buffer(std::move(bytes), options).value();
}

#ifndef SAFETENSORS_NO_FILESYSTEM
/// A reader over a memory-mapped file.
using mapped_reader = basic_reader<mapped_file>;
/// A reader that reads tensor bytes from the file on demand.
using pread_reader = basic_reader<pread_file>;

/// Maps and validates the file at `path`. Costs O(header): no data page is touched.
inline result<mapped_reader> try_open(const std::string& path, const read_options& options = {}) {
  auto file = mapped_file::try_open(path);
  if (!file) return file.error();
  return mapped_reader::try_open(std::move(*file), options);
}
/// Maps and validates the file at `path`; throws safetensors::exception.
inline mapped_reader open(const std::string& path, const read_options& options = {}) {
  return try_open(path, options).value();
}
/// Opens and validates the file at `path`, reading only its header (in one read when it is
/// under 64 KiB).
inline result<pread_reader> try_open_pread(const std::string& path, const read_options& options = {}) {
  auto file = pread_file::try_open(path);
  if (!file) return file.error();
  return pread_reader::try_open(std::move(*file), options);
}
/// Opens and validates the file at `path`, reading only its header; throws safetensors::exception.
inline pread_reader open_pread(const std::string& path, const read_options& options = {}) {
  return try_open_pread(path, options).value();
}
#endif

}  // namespace safetensors

#endif  // SAFETENSORS_READER_HPP
