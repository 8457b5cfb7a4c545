// safetensors-hpp: the writer: declarations, sources, metadata, the layout of a file, sinks, basic_writer<Sink>, serialize and save.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_WRITER_HPP
#define SAFETENSORS_WRITER_HPP

#include "reader.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ios>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------------

/// A tensor to be written: its name, dtype and shape. The data comes separately.
struct tensor_declaration {
  /// The tensor's name: any valid UTF-8 except "__metadata__".
  std::string name;
  /// The element type.
  safetensors::dtype dtype = safetensors::dtype::U8;
  /// Size of each dimension, leading first; empty for a scalar.
  std::vector<std::uint64_t> shape;

  /// The declaration matching a tensor read from a file.
  static tensor_declaration from(const tensor_info& info) {
    return {std::string(info.name), info.dtype, std::vector<std::uint64_t>(info.shape.begin(), info.shape.end())};
  }
  /// A tensor of elements of type T (dtype_for<T>: float is F32, bfloat16 BF16, ...).
  template <class T>
  static tensor_declaration of(std::string name, std::vector<std::uint64_t> shape) {
    return {std::move(name), dtype_for<T>, std::move(shape)};
  }
};

/// A tensor to be written together with its bytes (little-endian, byte_size of the declaration).
struct tensor_source {
  /// No tensor: fill in the fields.
  tensor_source() = default;
  /// The tensor `what` with the bytes `data` (little-endian), which the caller keeps alive.
  tensor_source(tensor_declaration what, span<const std::byte> data) : declaration(std::move(what)), bytes(data) {}
  /// The tensor `name` of shape `shape` holding `values` (a std::vector, std::array or span of
  /// elements of one type T: every arithmetic type, std::complex<float>, and the number types
  /// such as bfloat16), whose dtype is dtype_for<T>. The values are in host byte order (swapped
  /// as they are written on a big-endian host); the caller keeps them alive. Their count must be
  /// the shape's (checked when written).
  template <class Container,
            class T = std::remove_cv_t<std::remove_pointer_t<decltype(std::declval<const Container&>().data())>>,
            class = decltype(detail::dtype_of<T>::value)>
  tensor_source(std::string name, const Container& values, std::vector<std::uint64_t> shape)
      : declaration{std::move(name), dtype_for<T>, std::move(shape)},
        bytes(reinterpret_cast<const std::byte*>(values.data()), values.size() * sizeof(T)),
        host_order(true) {}

  /// Name, dtype and shape.
  tensor_declaration declaration;
  /// The tensor's bytes, which the caller keeps alive until the write returns.
  span<const std::byte> bytes;
  /// True when `bytes` hold elements in host byte order rather than the file's little-endian.
  bool host_order = false;
};

/// The `__metadata__` of a file to write. Default-constructed: none, and the header has no
/// `__metadata__` key. Made from a map: those entries, written in key byte order; an empty map
/// writes `"__metadata__":{}`.
class metadata_entries {
 public:
  /// No metadata.
  metadata_entries() = default;
  /// These entries (implicit, so a map can be passed where metadata is expected).
  metadata_entries(std::map<std::string, std::string> entries) : entries_(std::move(entries)), present_(true) {}
  /// The entries of a file that was read (a basic_reader or an any_reader), or none when it had
  /// no `__metadata__`.
  template <class Reader>
  static metadata_entries from(const Reader& reader) {
    if (!reader.has_metadata()) return {};
    return std::map<std::string, std::string>(reader.metadata().begin(), reader.metadata().end());
  }

  /// True when a `__metadata__` object is to be written.
  bool present() const noexcept { return present_; }
  /// The entries, in key order.
  const std::map<std::string, std::string>& entries() const noexcept { return entries_; }

 private:
  std::map<std::string, std::string> entries_;
  bool present_ = false;
};

/// Options for writing.
struct write_options {
  /// The data buffer starts at a multiple of this many bytes from the start of the file: a power
  /// of two from 8 (the official writer's, and the default) to 2^30, else InvalidArgument. 64 or
  /// 4096 suit DMA and direct I/O; the header is padded with spaces, which every reader accepts.
  std::uint64_t alignment = 8;
  /// Path targets: flush the file to stable storage before renaming it into place, and the
  /// directory after (a failure to flush the directory is ignored: the file itself is safe).
  /// Slower; survives power loss, not only crashes.
  bool sync = false;
};

namespace detail {

/// Appends `text` as a JSON string literal escaped exactly as the official writer (serde_json)
/// does: a quote and a backslash escaped, the two-character escapes for backspace, form feed,
/// newline, return and tab, and a u-escape with lowercase hex digits for other control bytes.
inline void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (byte < 0x20) {
          append_unicode_escape(out, byte);
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

inline bool is_valid_utf8(std::string_view text) noexcept {
  return utf8_invalid_at(reinterpret_cast<const unsigned char*>(text.data()), text.size()) == text.size();
}

}  // namespace detail

/// The layout of a file to be written, computed from the declarations alone, as the official
/// writer lays it out: tensors ordered by dtype (largest alignment first) then name, packed back
/// to back, compact header JSON padded with spaces. Knowing it, the header can be written first
/// and the data streamed after.
class file_layout {
 public:
  /// One tensor's place in the file.
  struct entry {
    /// The declaration.
    tensor_declaration declaration;
    /// [begin, end) relative to the data buffer.
    std::array<std::uint64_t, 2> data_offsets{};
    /// data_offsets[1] - data_offsets[0].
    std::uint64_t byte_size() const noexcept { return data_offsets[1] - data_offsets[0]; }
  };

  /// Validates the declarations (unique names, no "__metadata__", valid UTF-8, whole bytes, no
  /// overflow, header within the limit) and lays the file out.
  static result<file_layout> try_make(std::vector<tensor_declaration> declarations,
                                      const metadata_entries& metadata = {}, const write_options& options = {}) {
    if (options.alignment < 8 || (options.alignment & (options.alignment - 1)) != 0 || options.alignment > (1u << 30))
      return error(error_kind::invalid_argument,
                   "alignment " + std::to_string(options.alignment) + " is not a power of two between 8 and 2^30");
    file_layout layout;
    layout.entries_.reserve(declarations.size());
    for (tensor_declaration& declaration : declarations) layout.entries_.push_back({std::move(declaration), {}});
    std::sort(layout.entries_.begin(), layout.entries_.end(), [](const entry& a, const entry& b) {
      if (a.declaration.dtype != b.declaration.dtype) return a.declaration.dtype > b.declaration.dtype;
      return a.declaration.name < b.declaration.name;
    });

    std::vector<const std::string*> names;
    names.reserve(layout.entries_.size());
    for (const entry& e : layout.entries_) names.push_back(&e.declaration.name);
    std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    for (std::size_t i = 1; i < names.size(); ++i) {
      if (*names[i] == *names[i - 1])
        return error(error_kind::invalid_header_deserialization,
                     "two tensors are named " + detail::quote(*names[i]) + ": names must be unique");
    }

    std::uint64_t offset = 0;
    for (entry& e : layout.entries_) {
      const tensor_declaration& d = e.declaration;
      if (d.name == "__metadata__")
        return error(error_kind::invalid_header_deserialization,
                     "a tensor cannot be named \"__metadata__\": the name is reserved for metadata");
      if (!detail::is_valid_utf8(d.name))
        return error(error_kind::invalid_header, "tensor name " + detail::quote(d.name) + " is not valid UTF-8");
      auto size = detail::size_of_tensor(d.name, d.dtype, d.shape);
      if (!size) return size.error();
      std::uint64_t end = 0;
      if (!detail::checked_add(offset, size->bytes, end))
        return error(error_kind::validation_overflow,
                     "tensor " + detail::quote(d.name) + ": the data buffer's size overflows 64 bits");
      e.data_offsets = {offset, end};
      offset = end;
    }
    layout.data_size_ = offset;

    std::string& json = layout.header_;
    json.assign(8, '\0');
    json += '{';
    if (metadata.present()) {
      json += "\"__metadata__\":{";
      bool first = true;
      for (const auto& [key, value] : metadata.entries()) {
        if (!detail::is_valid_utf8(key) || !detail::is_valid_utf8(value))
          return error(error_kind::invalid_header,
                       "metadata key " + detail::quote(key) + " or its value is not valid UTF-8");
        if (!first) json += ',';
        first = false;
        detail::append_json_string(json, key);
        json += ':';
        detail::append_json_string(json, value);
      }
      json += '}';
      if (!layout.entries_.empty()) json += ',';
    }
    for (std::size_t i = 0; i < layout.entries_.size(); ++i) {
      const entry& e = layout.entries_[i];
      if (i) json += ',';
      detail::append_json_string(json, e.declaration.name);
      json += ":{\"dtype\":\"";
      json += dtype_name(e.declaration.dtype);
      json += "\",\"shape\":[";
      for (std::size_t d = 0; d < e.declaration.shape.size(); ++d) {
        if (d) json += ',';
        json += std::to_string(e.declaration.shape[d]);
      }
      json += "],\"data_offsets\":[";
      json += std::to_string(e.data_offsets[0]);
      json += ',';
      json += std::to_string(e.data_offsets[1]);
      json += "]}";
    }
    json += '}';
    const std::uint64_t unpadded = json.size();
    const std::uint64_t padded = (unpadded + options.alignment - 1) / options.alignment * options.alignment;
    const std::uint64_t header_length = padded - 8;
    if (header_length > format_max_header_size)
      return error(error_kind::header_too_large, "the header would be " + std::to_string(header_length) +
                                                     " bytes, over the limit of " +
                                                     std::to_string(format_max_header_size));
    std::uint64_t file_size = 0;
    if (!detail::checked_add(padded, layout.data_size_, file_size))
      return error(error_kind::validation_overflow, "the file's size overflows 64 bits");
    json.append(static_cast<std::size_t>(padded - unpadded), ' ');
    for (int i = 0; i < 8; ++i)
      json[static_cast<std::size_t>(i)] = static_cast<char>((header_length >> (8 * i)) & 0xff);

    layout.by_name_.resize(layout.entries_.size());
    for (std::size_t i = 0; i < layout.entries_.size(); ++i) layout.by_name_[i] = i;
    std::sort(layout.by_name_.begin(), layout.by_name_.end(), [&](std::size_t a, std::size_t b) {
      return layout.entries_[a].declaration.name < layout.entries_[b].declaration.name;
    });
    return layout;
  }
  /// As try_make; throws safetensors::exception (aborts without exceptions) on failure.
  static file_layout make(std::vector<tensor_declaration> declarations, const metadata_entries& metadata = {},
                          const write_options& options = {}) {
    return try_make(std::move(declarations), metadata, options).value();
  }

  /// Tensors in file order.
  const std::vector<entry>& entries() const noexcept { return entries_; }
  /// Position in entries() of the tensor named `name`, or nullopt. O(log n).
  std::optional<std::size_t> find(std::string_view name) const noexcept {
    auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                               [&](std::size_t i, std::string_view n) { return entries_[i].declaration.name < n; });
    if (it == by_name_.end() || entries_[*it].declaration.name != name) return std::nullopt;
    return *it;
  }
  /// The first 8 + N bytes of the file: length prefix, JSON and padding.
  std::string_view header() const noexcept { return header_; }
  /// 8 + N: where the data buffer starts.
  std::uint64_t data_start() const noexcept { return header_.size(); }
  /// Size of the data buffer.
  std::uint64_t data_size() const noexcept { return data_size_; }
  /// Size of the whole file.
  std::uint64_t file_size() const noexcept { return header_.size() + data_size_; }

 private:
  std::vector<entry> entries_;
  std::vector<std::size_t> by_name_;
  std::string header_;
  std::uint64_t data_size_ = 0;
};

// Sinks: where a writer's bytes go. Each has
//   static constexpr bool positioned;       // accepts tensors in any order
//   result<void> write_at(std::uint64_t offset, const std::byte* bytes, std::size_t count);
//   result<void> commit();                  // every byte is written: make the file visible
//   void discard() noexcept;                // the write failed: leave no trace
// A sequential sink (positioned == false) is always written at increasing, contiguous offsets.

/// A sink that fills a byte vector sized to the whole file.
class vector_sink {
 public:
  static constexpr bool positioned = true;
  /// Writes into `bytes`, which is resized to `file_size` now.
  static result<vector_sink> try_create(std::vector<std::byte>& bytes, std::uint64_t file_size) {
    if (file_size > std::numeric_limits<std::size_t>::max() / 2)
      return error(error_kind::io_error, "a file of " + std::to_string(file_size) + " bytes does not fit in memory");
    bytes.assign(static_cast<std::size_t>(file_size), std::byte{0});
    return vector_sink(bytes);
  }
  /// As try_create; throws safetensors::exception (aborts without exceptions) on failure.
  static vector_sink create(std::vector<std::byte>& bytes, std::uint64_t file_size) {
    return try_create(bytes, file_size).value();
  }
  result<void> write_at(std::uint64_t offset, const std::byte* data, std::size_t count) {
    if (count != 0) std::memcpy(bytes_->data() + offset, data, count);
    return {};
  }
  result<void> commit() { return {}; }
  void discard() noexcept { bytes_->clear(); }

 private:
  explicit vector_sink(std::vector<std::byte>& bytes) : bytes_(&bytes) {}
  std::vector<std::byte>* bytes_;
};

/// A sink that writes to a std::ostream, in file order.
class ostream_sink {
 public:
  static constexpr bool positioned = false;
  /// Writes to `stream`, which must outlive the writer.
  explicit ostream_sink(std::ostream& stream) : stream_(&stream) {}
  result<void> write_at(std::uint64_t, const std::byte* data, std::size_t count) {
    stream_->write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count));
    if (!*stream_) return error(error_kind::io_error, "the output stream failed");
    return {};
  }
  result<void> commit() {
    stream_->flush();
    if (!*stream_) return error(error_kind::io_error, "the output stream failed");
    return {};
  }

  /// Bytes already in the stream stay there: a stream cannot be unwritten.
  void discard() noexcept {}

 private:
  std::ostream* stream_;
};

/// Writes a file whose layout is fixed up front: the header at creation, then each tensor's bytes
/// in any number of chunks, then finish(). Positioned sinks (vector, path) take tensors in any
/// order; a stream takes them in file order. Memory stays at the header plus a bounded buffer,
/// whatever the file's size.
template <class Sink>
class basic_writer {
 public:
  // Move-only: a copy taken in the middle of a tensor would write its bytes twice.
  basic_writer(basic_writer&&) noexcept = default;
  basic_writer& operator=(basic_writer&&) noexcept = default;
  basic_writer(const basic_writer&) = delete;
  basic_writer& operator=(const basic_writer&) = delete;
  ~basic_writer() = default;

  /// Bytes gathered before they go to the sink; larger chunks go straight through.
  static constexpr std::size_t buffer_size = std::size_t{1} << 20;

  /// Writes the header of `layout` to `sink`.
  static result<basic_writer> try_start(file_layout layout, Sink sink) {
    basic_writer writer(std::move(layout), std::move(sink));
    const std::string_view header = writer.layout_.header();
    if (auto wrote = writer.sink_.write_at(0, reinterpret_cast<const std::byte*>(header.data()), header.size()); !wrote)
      return wrote.error();
    writer.written_.assign(writer.layout_.entries().size(), 0);
    writer.stream_position_ = header.size();
    return writer;
  }
  /// As try_start; throws safetensors::exception (aborts without exceptions) on failure.
  static basic_writer start(file_layout layout, Sink sink) {
    return try_start(std::move(layout), std::move(sink)).value();
  }

  /// The layout being written.
  const file_layout& layout() const noexcept { return layout_; }
  /// True when every tensor has all its bytes (finish() can succeed).
  bool complete() const noexcept {
    for (std::size_t i = 0; i < written_.size(); ++i) {
      if (written_[i] != layout_.entries()[i].byte_size()) return false;
    }
    return true;
  }
  /// True once finish() was called.
  bool finished() const noexcept { return finished_; }

  /// Appends `chunk` to the bytes written so far of the tensor named `name`. Refuses a chunk that
  /// would overrun the tensor, and on a stream, a tensor out of file order.
  result<void> try_write(std::string_view name, span<const std::byte> chunk) {
    auto index = index_of(name);
    if (!index) return index.error();
    return write_chunk(*index, chunk.data(), chunk.size());
  }
  /// Appends `chunk` to the tensor named `name` (see try_write); throws on an error.
  void write(std::string_view name, span<const std::byte> chunk) { try_write(name, chunk).value(); }

  /// Fills the tensor named `name` from `producer(span<std::byte> destination, std::uint64_t
  /// tensor_offset)`, called with successive pieces of at most buffer_size bytes until the tensor
  /// is complete; `producer` fills all of `destination` and returns void or result<void> (an error
  /// stops the write). For data made on the fly (a conversion, a generator) without a full copy.
  /// buffer_size is a multiple of every element size, so a piece always holds whole elements.
  template <class Producer>
  result<void> try_produce(std::string_view name, Producer&& producer) {
    auto index = index_of(name);
    if (!index) return index.error();
    if (auto ordered = check_stream_order(*index); !ordered) return ordered;
    const auto& entry = layout_.entries()[*index];
    std::vector<std::byte> piece(static_cast<std::size_t>(std::min<std::uint64_t>(buffer_size, entry.byte_size())));
    while (written_[*index] < entry.byte_size()) {
      const auto count =
          static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), entry.byte_size() - written_[*index]));
      span<std::byte> destination(piece.data(), count);
      if constexpr (std::is_void_v<decltype(producer(destination, written_[*index]))>) {
        producer(destination, written_[*index]);
      } else {
        if (auto made = producer(destination, written_[*index]); !made) return made.error();
      }
      if (auto wrote = write_chunk(*index, piece.data(), count); !wrote) return wrote.error();
    }
    return {};
  }
  /// Fills the tensor named `name` from a producer (see try_produce); throws on an error.
  template <class Producer>
  void produce(std::string_view name, Producer&& producer) {
    try_produce(name, std::forward<Producer>(producer)).value();
  }

  /// Checks that every tensor is complete, flushes, and commits the sink (for a path: renames the
  /// temporary file over the target). The writer is done afterwards, whatever the outcome; on a
  /// failure nothing is left behind (for a path: the temporary file is removed at once).
  result<void> try_finish() {
    if (finished_) return error(error_kind::invalid_argument, "the writer has already finished");
    finished_ = true;
    result<void> outcome = closed_ ? sink_.commit() : complete_and_commit();
    if (!outcome) sink_.discard();
    buffer_ = std::vector<std::byte>();
    return outcome;
  }
  /// Completes the file (see try_finish); throws on an error.
  void finish() { try_finish().value(); }

  /// Sinks that can close (a path): checks that every tensor is complete, flushes, and closes the
  /// file without publishing it (it stays under its temporary name, and no file is open);
  /// finish() then renames it into place. The writer takes no more bytes. An incomplete tensor
  /// is an error that leaves the writer as it was; a failure to close ends the writer.
  template <class S = Sink, class = decltype(std::declval<S&>().close())>
  result<void> try_close() {
    if (finished_) return error(error_kind::invalid_argument, "the writer has already finished");
    if (closed_) return {};
    if (auto complete = check_complete(); !complete) return complete;
    result<void> outcome = flush();
    if (outcome) outcome = sink_.close();
    if (!outcome) {
      finished_ = true;
      sink_.discard();
      return outcome;
    }
    closed_ = true;
    buffer_ = std::vector<std::byte>();
    return {};
  }
  /// Closes the complete file without publishing it (see try_close); throws on an error.
  template <class S = Sink, class = decltype(std::declval<S&>().close())>
  void close() {
    try_close().value();
  }
  /// True once close() succeeded.
  bool closed() const noexcept { return closed_; }

 private:
  basic_writer(file_layout layout, Sink sink) : layout_(std::move(layout)), sink_(std::move(sink)) {}

  result<void> check_complete() const {
    for (std::size_t i = 0; i < written_.size(); ++i) {
      const auto& entry = layout_.entries()[i];
      if (written_[i] != entry.byte_size())
        return error(error_kind::tensor_invalid_info, "tensor " + detail::quote(entry.declaration.name) + " got " +
                                                          std::to_string(written_[i]) + " of its " +
                                                          std::to_string(entry.byte_size()) + " bytes");
    }
    return {};
  }

  result<void> complete_and_commit() {
    if (auto complete = check_complete(); !complete) return complete;
    if (auto flushed = flush(); !flushed) return flushed;
    return sink_.commit();
  }

  // A stream takes bytes only at its end: the tensor must be the next one in file order.
  result<void> check_stream_order(std::size_t index) const {
    if constexpr (!Sink::positioned) {
      const auto& entry = layout_.entries()[index];
      if (layout_.data_start() + entry.data_offsets[0] + written_[index] != stream_position_)
        return error(error_kind::invalid_argument,
                     "tensor " + detail::quote(entry.declaration.name) +
                         " is out of file order: a stream takes every tensor's bytes in file order, and " +
                         detail::quote(next_in_file_order()) + " comes next");
    }
    (void)index;
    return {};
  }

  result<std::size_t> index_of(std::string_view name) const {
    if (finished_) return error(error_kind::invalid_argument, "the writer has already finished");
    if (closed_) return error(error_kind::invalid_argument, "the writer's file is complete and closed");
    auto index = layout_.find(name);
    if (!index) return error(error_kind::tensor_not_found, "no tensor named " + detail::quote(name) + " was declared");
    return *index;
  }

  result<void> write_chunk(std::size_t index, const std::byte* data, std::size_t count) {
    const auto& entry = layout_.entries()[index];
    const std::uint64_t done = written_[index];
    if (count > entry.byte_size() - done)
      return error(error_kind::tensor_invalid_info, "tensor " + detail::quote(entry.declaration.name) + " has " +
                                                        std::to_string(entry.byte_size()) + " bytes; " +
                                                        std::to_string(done) + " are written and a chunk of " +
                                                        std::to_string(count) + " would overrun it");
    const std::uint64_t offset = layout_.data_start() + entry.data_offsets[0] + done;
    if (auto ordered = check_stream_order(index); !ordered) return ordered;
    if (count == 0) return {};
    // Contiguous small chunks are gathered so the sink sees few large writes.
    if (offset != buffered_start_ + buffer_.size() || buffer_.size() + count > buffer_size) {
      if (auto flushed = flush(); !flushed) return flushed;
      buffered_start_ = offset;
    }
    if (count >= buffer_size) {
      if (auto wrote = sink_.write_at(offset, data, count); !wrote) return wrote;
      buffered_start_ = offset + count;
    } else {
      if (buffer_.capacity() == 0) buffer_.reserve(buffer_size);
      buffer_.insert(buffer_.end(), data, data + count);
    }
    written_[index] = done + count;
    stream_position_ = offset + count;
    return {};
  }

  result<void> flush() {
    if (buffer_.empty()) return {};
    auto wrote = sink_.write_at(buffered_start_, buffer_.data(), buffer_.size());
    buffered_start_ += buffer_.size();
    buffer_.clear();
    return wrote;
  }

  std::string next_in_file_order() const {
    for (std::size_t i = 0; i < written_.size(); ++i) {
      if (written_[i] != layout_.entries()[i].byte_size()) return layout_.entries()[i].declaration.name;
    }
    return "";
  }

  file_layout layout_;
  Sink sink_;
  std::vector<std::uint64_t> written_;
  std::vector<std::byte> buffer_;
  std::uint64_t buffered_start_ = 0;
  std::uint64_t stream_position_ = 0;
  bool finished_ = false;
  bool closed_ = false;
};

namespace detail {
inline result<file_layout> layout_of(const std::vector<tensor_source>& tensors, const metadata_entries& metadata,
                                     const write_options& options) {
  std::vector<tensor_declaration> declarations;
  declarations.reserve(tensors.size());
  for (const tensor_source& t : tensors) declarations.push_back(t.declaration);
  return file_layout::try_make(std::move(declarations), metadata, options);
}

// The layout of `tensors`, whose data must match their declarations: checked before any sink is
// made, so that nothing is allocated or created for a size the data does not have.
inline result<file_layout> checked_layout(const std::vector<tensor_source>& tensors, const metadata_entries& metadata,
                                          const write_options& options) {
  auto layout = layout_of(tensors, metadata, options);
  if (!layout) return layout.error();
  for (const tensor_source& t : tensors) {
    const auto& entry = layout->entries()[*layout->find(t.declaration.name)];
    if (t.bytes.size() != entry.byte_size())
      return error(error_kind::tensor_invalid_info, "tensor " + quote(t.declaration.name) + " has " +
                                                        std::to_string(t.bytes.size()) + " bytes of data but " +
                                                        std::string(dtype_name(t.declaration.dtype)) +
                                                        " of its shape needs " + std::to_string(entry.byte_size()));
  }
  return layout;
}

// Writes every tensor of `tensors` (checked by checked_layout) through a writer over `sink`, in
// file order, which every sink takes.
template <class Sink>
result<void> write_all(file_layout layout, Sink sink, const std::vector<tensor_source>& tensors) {
  std::vector<const tensor_source*> in_file_order(tensors.size(), nullptr);
  for (const tensor_source& t : tensors) in_file_order[*layout.find(t.declaration.name)] = &t;
  auto writer = basic_writer<Sink>::try_start(std::move(layout), std::move(sink));
  if (!writer) return writer.error();
  for (const tensor_source* t : in_file_order) {
    if constexpr (host_is_big_endian) {
      if (t->host_order) {
        // Swapped piece by piece into the file's byte order (pieces hold whole elements).
        auto swapped = writer->try_produce(t->declaration.name, [&](span<std::byte> piece, std::uint64_t offset) {
          std::memcpy(piece.data(), t->bytes.data() + offset, piece.size());
          to_host_order(piece, t->declaration.dtype);
        });
        if (!swapped) return swapped;
        continue;
      }
    }
    if (auto wrote = writer->try_write(t->declaration.name, t->bytes); !wrote) return wrote;
  }
  return writer->try_finish();
}
}  // namespace detail

/// A writer into a byte vector.
using vector_writer = basic_writer<vector_sink>;
/// A writer to a std::ostream (tensors in file order).
using stream_writer = basic_writer<ostream_sink>;

/// The bytes of a file holding `tensors` and `metadata`, laid out as the official writer does.
inline result<std::vector<std::byte>> try_serialize(const std::vector<tensor_source>& tensors,
                                                    const metadata_entries& metadata = {},
                                                    const write_options& options = {}) {
  auto layout = detail::checked_layout(tensors, metadata, options);
  if (!layout) return layout.error();
  std::vector<std::byte> bytes;
  auto sink = vector_sink::try_create(bytes, layout->file_size());
  if (!sink) return sink.error();
  if (auto wrote = detail::write_all(std::move(*layout), std::move(*sink), tensors); !wrote) return wrote.error();
  return bytes;
}
/// The bytes of a file holding `tensors` and `metadata`; throws safetensors::exception.
inline std::vector<std::byte> serialize(const std::vector<tensor_source>& tensors,
                                        const metadata_entries& metadata = {}, const write_options& options = {}) {
  return try_serialize(tensors, metadata, options).value();
}

/// Writes a file holding `tensors` and `metadata` to `stream`.
inline result<void> try_serialize(std::ostream& stream, const std::vector<tensor_source>& tensors,
                                  const metadata_entries& metadata = {}, const write_options& options = {}) {
  auto layout = detail::checked_layout(tensors, metadata, options);
  if (!layout) return layout.error();
  return detail::write_all(std::move(*layout), ostream_sink(stream), tensors);
}
/// Writes a file holding `tensors` and `metadata` to `stream`; throws safetensors::exception.
inline void serialize(std::ostream& stream, const std::vector<tensor_source>& tensors,
                      const metadata_entries& metadata = {}, const write_options& options = {}) {
  try_serialize(stream, tensors, metadata, options).value();
}

/// Starts writing a file to `stream`: the header now, the tensors' bytes through the writer, in
/// file order (`layout().entries()`).
inline result<stream_writer> try_make_stream_writer(std::ostream& stream, std::vector<tensor_declaration> declarations,
                                                    const metadata_entries& metadata = {},
                                                    const write_options& options = {}) {
  auto layout = file_layout::try_make(std::move(declarations), metadata, options);
  if (!layout) return layout.error();
  return stream_writer::try_start(std::move(*layout), ostream_sink(stream));
}
/// Starts writing a file to `stream`; throws safetensors::exception.
inline stream_writer make_stream_writer(std::ostream& stream, std::vector<tensor_declaration> declarations,
                                        const metadata_entries& metadata = {}, const write_options& options = {}) {
  return try_make_stream_writer(stream, std::move(declarations), metadata, options).value();
}

#ifndef SAFETENSORS_NO_FILESYSTEM
/// A writer to a path, through a temporary file renamed into place by finish().
using file_writer = basic_writer<file_sink>;

/// Starts writing a file at `path`: tensors' bytes may then come in any order. Until finish()
/// succeeds, `path` is untouched; a writer destroyed before that removes its temporary file.
inline result<file_writer> try_make_file_writer(const std::string& path, std::vector<tensor_declaration> declarations,
                                                const metadata_entries& metadata = {},
                                                const write_options& options = {}) {
  auto layout = file_layout::try_make(std::move(declarations), metadata, options);
  if (!layout) return layout.error();
  auto sink = file_sink::try_create(path, options.sync);
  if (!sink) return sink.error();
  return file_writer::try_start(std::move(*layout), std::move(*sink));
}
/// Starts writing a file at `path`; throws safetensors::exception.
inline file_writer make_file_writer(const std::string& path, std::vector<tensor_declaration> declarations,
                                    const metadata_entries& metadata = {}, const write_options& options = {}) {
  return try_make_file_writer(path, std::move(declarations), metadata, options).value();
}

/// Writes a file holding `tensors` and `metadata` at `path`, crash-safe: the file appears whole
/// under its name, or not at all.
inline result<void> try_save(const std::string& path, const std::vector<tensor_source>& tensors,
                             const metadata_entries& metadata = {}, const write_options& options = {}) {
  auto layout = detail::checked_layout(tensors, metadata, options);
  if (!layout) return layout.error();
  auto sink = file_sink::try_create(path, options.sync);
  if (!sink) return sink.error();
  return detail::write_all(std::move(*layout), std::move(*sink), tensors);
}
/// Writes a file holding `tensors` and `metadata` at `path`; throws safetensors::exception.
inline void save(const std::string& path, const std::vector<tensor_source>& tensors,
                 const metadata_entries& metadata = {}, const write_options& options = {}) {
  try_save(path, tensors, metadata, options).value();
}
#endif

}  // namespace safetensors

#endif  // SAFETENSORS_WRITER_HPP
