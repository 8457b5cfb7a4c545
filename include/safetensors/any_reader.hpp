// safetensors-hpp: any_reader, a reader whose storage is chosen at run time (mapped, pread,
// memory, remote, or a storage of the user's) behind one type.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_ANY_READER_HPP
#define SAFETENSORS_ANY_READER_HPP

#include "reader.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace safetensors {

namespace detail {

/// What any_reader asks of the reader it holds: basic_reader's members that do not depend on the
/// storage's type.
class reader_interface {
 public:
  virtual ~reader_interface() = default;
  virtual span<const tensor_info> tensors() const noexcept = 0;
  virtual const tensor_info* find(std::string_view name) const noexcept = 0;
  virtual bool has_views() const noexcept = 0;
  virtual result<tensor_view> try_view(std::string_view name) const = 0;
  virtual result<tensor_slice> try_slice(std::string_view name, std::vector<slice_dim> dims) const = 0;
  virtual result<void> try_read_into(const tensor_info& info, span<std::byte> destination) const = 0;
  virtual result<void> try_read_into(const tensor_slice& slice, span<std::byte> destination) const = 0;
  virtual result<void> try_read_part(const tensor_info& info, std::uint64_t offset,
                                     span<std::byte> destination) const = 0;
  virtual result<std::vector<std::byte>> try_read(std::string_view name) const = 0;
  virtual result<std::vector<std::byte>> try_read(const tensor_slice& slice) const = 0;
  virtual result<load_plan> try_plan(span<const load_request> requests, const load_options& options) const = 0;
  virtual result<void> try_prefetch(const tensor_info& info) const = 0;
  virtual result<void> try_release(const tensor_info& info) const = 0;
  virtual result<void> try_read_at(std::uint64_t offset, span<std::byte> destination) const = 0;
  virtual const metadata_map& metadata() const noexcept = 0;
  virtual bool has_metadata() const noexcept = 0;
  virtual std::uint64_t header_length() const noexcept = 0;
  virtual std::uint64_t data_size() const noexcept = 0;
  virtual std::uint64_t file_size() const noexcept = 0;
  virtual std::string_view name() const noexcept = 0;
  virtual packing element_packing() const noexcept = 0;
  virtual const void* reader_address(const void* storage_type) const noexcept = 0;
};

/// A distinct address per storage type, which any_reader::get compares without RTTI (so that it
/// works under -fno-rtti too).
template <class Storage>
const void* storage_type_tag() noexcept {
  static const char tag = 0;
  return &tag;
}

/// The error of a residency call on a storage that has none.
inline error no_residency_control(std::string_view name, std::string_view what) {
  return about(name, error(error_kind::invalid_argument,
                           std::string(what) + " needs a storage that controls residency (a mapped file)"));
}

template <class Storage>
class reader_holder final : public reader_interface {
 public:
  using reader_type = basic_reader<Storage>;
  explicit reader_holder(std::shared_ptr<const reader_type> reader) noexcept : reader_(std::move(reader)) {}

  span<const tensor_info> tensors() const noexcept override { return reader_->tensors(); }
  const tensor_info* find(std::string_view name) const noexcept override { return reader_->find(name); }
  bool has_views() const noexcept override { return reader_type::has_views; }
  result<tensor_view> try_view(std::string_view name) const override {
    if constexpr (reader_type::has_views) {
      return reader_->try_view(name);
    } else {
      return about(reader_->name(),
                   error(error_kind::invalid_argument,
                         "tensor " + quote(name) + " has no view: its storage holds no bytes in memory"));
    }
  }
  result<tensor_slice> try_slice(std::string_view name, std::vector<slice_dim> dims) const override {
    return reader_->try_slice(name, std::move(dims));
  }
  result<void> try_read_into(const tensor_info& info, span<std::byte> destination) const override {
    return reader_->try_read_into(info, destination);
  }
  result<void> try_read_into(const tensor_slice& slice, span<std::byte> destination) const override {
    return reader_->try_read_into(slice, destination);
  }
  result<void> try_read_part(const tensor_info& info, std::uint64_t offset,
                             span<std::byte> destination) const override {
    return reader_->try_read_part(info, offset, destination);
  }
  result<std::vector<std::byte>> try_read(std::string_view name) const override { return reader_->try_read(name); }
  result<std::vector<std::byte>> try_read(const tensor_slice& slice) const override { return reader_->try_read(slice); }
  result<load_plan> try_plan(span<const load_request> requests, const load_options& options) const override {
    return reader_->try_plan(requests, options);
  }
  result<void> try_prefetch(const tensor_info& info) const override {
    if constexpr (has_residency_control<Storage>::value) {
      return reader_->try_prefetch(info);
    } else {
      (void)info;
      return no_residency_control(reader_->name(), "prefetch");
    }
  }
  result<void> try_release(const tensor_info& info) const override {
    if constexpr (has_residency_control<Storage>::value) {
      return reader_->try_release(info);
    } else {
      (void)info;
      return no_residency_control(reader_->name(), "release");
    }
  }
  result<void> try_read_at(std::uint64_t offset, span<std::byte> destination) const override {
    return reader_->storage().read_at(offset, destination.data(), destination.size());
  }
  const metadata_map& metadata() const noexcept override { return reader_->metadata(); }
  bool has_metadata() const noexcept override { return reader_->has_metadata(); }
  std::uint64_t header_length() const noexcept override { return reader_->header_length(); }
  std::uint64_t data_size() const noexcept override { return reader_->data_size(); }
  std::uint64_t file_size() const noexcept override { return reader_->storage().size(); }
  std::string_view name() const noexcept override { return reader_->name(); }
  packing element_packing() const noexcept override { return reader_->element_packing(); }
  const void* reader_address(const void* storage_type) const noexcept override {
    return storage_type == storage_type_tag<Storage>() ? reader_.get() : nullptr;
  }

 private:
  std::shared_ptr<const reader_type> reader_;
};

}  // namespace detail

/// A reader of any storage, chosen at run time: a mapped file, pread, bytes in memory, a remote
/// file or a storage of your own, behind one type, for programs (a tool, a binding to another
/// language) that pick the storage from what they are given. It has basic_reader's members, in
/// both forms (try_ returning result, and throwing); views and residency calls answer with an
/// error where the storage has none (has_views() says which). Copies share the reader: cheap,
/// and safe to use from many threads as the reader is.
///
/// ```cpp
/// safetensors::any_reader reader = use_pread ? safetensors::any_reader(safetensors::open_pread(path))
///                                            : safetensors::any_reader(safetensors::open(path));
/// std::vector<float> bias = reader.read_as<float>("bias");
/// ```
class any_reader : public detail::plan_loads<any_reader> {
 public:
  /// Holds `reader`, whatever its storage.
  template <class Storage>
  any_reader(basic_reader<Storage> reader)  // NOLINT: implicit, as a reader converts to any_reader
      : reader_(std::make_shared<detail::reader_holder<Storage>>(
            std::make_shared<const basic_reader<Storage>>(std::move(reader)))) {}

  /// Refers to `reader` without owning it: `reader` must outlive this any_reader and its copies
  /// (a model's shards are given out this way).
  template <class Storage>
  static any_reader borrowing(const basic_reader<Storage>& reader) {
    return any_reader(std::make_shared<detail::reader_holder<Storage>>(
        std::shared_ptr<const basic_reader<Storage>>(std::shared_ptr<const void>(), &reader)));
  }

  /// The reader held, when its storage is `Storage`; else nullptr.
  template <class Storage>
  const basic_reader<Storage>* get() const noexcept {
    return static_cast<const basic_reader<Storage>*>(reader_->reader_address(detail::storage_type_tag<Storage>()));
  }

  /// Every tensor, in data order.
  span<const tensor_info> tensors() const noexcept { return reader_->tensors(); }
  /// Number of tensors.
  std::size_t size() const noexcept { return tensors().size(); }
  /// The tensor named `name`, or nullptr.
  const tensor_info* find(std::string_view name) const noexcept { return reader_->find(name); }
  /// True when a tensor is named `name`.
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }
  /// The tensor named `name`, or TensorNotFound naming the file.
  result<const tensor_info*> try_info(std::string_view name) const {
    if (const tensor_info* info = find(name)) return info;
    return detail::about(this->name(), error(error_kind::tensor_not_found, "no tensor named " + detail::quote(name)));
  }
  /// The tensor named `name`; throws safetensors::exception when there is none.
  const tensor_info& info(std::string_view name) const { return *try_info(name).value(); }

  /// True when the storage holds the bytes in memory, so that views are available.
  bool has_views() const noexcept { return reader_->has_views(); }
  /// A zero-copy view of the tensor named `name`; an error when there is none, or no views.
  result<tensor_view> try_view(std::string_view name) const { return reader_->try_view(name); }
  /// A zero-copy view; throws safetensors::exception on an error.
  tensor_view view(std::string_view name) const { return try_view(name).value(); }
  /// A slice of the tensor named `name` (see basic_reader::try_slice).
  result<tensor_slice> try_slice(std::string_view name, std::vector<slice_dim> dims) const {
    return reader_->try_slice(name, std::move(dims));
  }
  /// A slice; throws safetensors::exception on an error.
  tensor_slice slice(std::string_view name, std::vector<slice_dim> dims) const {
    return try_slice(name, std::move(dims)).value();
  }

  /// Copies the bytes of `info` (one of this reader's tensors) into `destination`.
  result<void> try_read_into(const tensor_info& info, span<std::byte> destination) const {
    return reader_->try_read_into(info, destination);
  }
  /// As try_read_into; throws safetensors::exception on an error.
  void read_into(const tensor_info& info, span<std::byte> destination) const {
    try_read_into(info, destination).value();
  }
  /// Copies the bytes a slice selects into `destination`.
  result<void> try_read_into(const tensor_slice& slice, span<std::byte> destination) const {
    return reader_->try_read_into(slice, destination);
  }
  /// As try_read_into; throws safetensors::exception on an error.
  void read_into(const tensor_slice& slice, span<std::byte> destination) const {
    try_read_into(slice, destination).value();
  }
  /// Copies destination.size() bytes of `info` from `offset` on.
  result<void> try_read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    return reader_->try_read_part(info, offset, destination);
  }
  /// As try_read_part; throws safetensors::exception on an error.
  void read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    try_read_part(info, offset, destination).value();
  }
  /// A copy of the bytes of the tensor named `name`.
  result<std::vector<std::byte>> try_read(std::string_view name) const { return reader_->try_read(name); }
  /// A copy of a tensor's bytes; throws safetensors::exception on an error.
  std::vector<std::byte> read(std::string_view name) const { return try_read(name).value(); }
  /// A copy of the bytes a slice selects.
  result<std::vector<std::byte>> try_read(const tensor_slice& slice) const { return reader_->try_read(slice); }
  /// A copy of the bytes a slice selects; throws safetensors::exception on an error.
  std::vector<std::byte> read(const tensor_slice& slice) const { return try_read(slice).value(); }

  /// The elements of the tensor named `name` as values of T, converted as basic_reader::try_read_as does.
  template <class T>
  result<std::vector<T>> try_read_as(std::string_view name) const {
    auto found = try_info(name);
    if (!found) return found.error();
    return detail::read_values<T>(**found, this->name(), element_packing(),
                                  [&](std::vector<std::byte>& held) -> result<span<const std::byte>> {
                                    if (has_views()) {
                                      auto viewed = try_view(name);
                                      if (!viewed) return viewed.error();
                                      return viewed->bytes;
                                    }
                                    auto bytes = try_read(name);
                                    if (!bytes) return bytes.error();
                                    held = std::move(*bytes);
                                    return span<const std::byte>(held);
                                  });
  }
  /// The elements as values of T; throws safetensors::exception on an error.
  template <class T>
  std::vector<T> read_as(std::string_view name) const {
    return try_read_as<T>(name).value();
  }

  /// Plans the reads of `requests` (see basic_reader::try_plan).
  result<load_plan> try_plan(span<const load_request> requests, const load_options& options = {}) const {
    return reader_->try_plan(requests, options);
  }
  /// Starts reading a tensor's pages in ahead of use; InvalidArgument where the storage cannot.
  result<void> try_prefetch(const tensor_info& info) const { return reader_->try_prefetch(info); }
  /// As try_prefetch; throws safetensors::exception on an error.
  void prefetch(const tensor_info& info) const { try_prefetch(info).value(); }
  /// Gives back the memory of a tensor's pages; InvalidArgument where the storage cannot.
  result<void> try_release(const tensor_info& info) const { return reader_->try_release(info); }
  /// As try_release; throws safetensors::exception on an error.
  void release(const tensor_info& info) const { try_release(info).value(); }

  /// Copies the file's bytes [offset, offset + destination.size()), header included: what a
  /// whole-file digest reads.
  result<void> try_read_at(std::uint64_t offset, span<std::byte> destination) const {
    return reader_->try_read_at(offset, destination);
  }
  /// As try_read_at; throws safetensors::exception on an error.
  void read_at(std::uint64_t offset, span<std::byte> destination) const { try_read_at(offset, destination).value(); }

  /// The header's `__metadata__` (empty when there is none).
  const metadata_map& metadata() const noexcept { return reader_->metadata(); }
  /// True when the header has a `__metadata__` object.
  bool has_metadata() const noexcept { return reader_->has_metadata(); }
  /// Length of the JSON header, in bytes.
  std::uint64_t header_length() const noexcept { return reader_->header_length(); }
  /// Offset of the data buffer in the file.
  std::uint64_t data_start() const noexcept { return 8 + header_length(); }
  /// Size of the data buffer.
  std::uint64_t data_size() const noexcept { return reader_->data_size(); }
  /// Size of the whole file.
  std::uint64_t file_size() const noexcept { return reader_->file_size(); }
  /// Where the bytes come from (a path or URL), or empty for bytes in memory.
  std::string_view name() const noexcept { return reader_->name(); }
  /// How sub-byte elements are unpacked (read_options::packing).
  packing element_packing() const noexcept { return reader_->element_packing(); }

 private:
  explicit any_reader(std::shared_ptr<const detail::reader_interface> reader) noexcept : reader_(std::move(reader)) {}

  std::shared_ptr<const detail::reader_interface> reader_;
};

}  // namespace safetensors

#endif  // SAFETENSORS_ANY_READER_HPP
