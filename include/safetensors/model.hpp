// safetensors-hpp: sharded models, read and written with their model.safetensors.index.json.
// A companion of safetensors.hpp (which it includes), needing nothing more: the index is read
// with the core's JSON scanner. Whoever reads only single files never needs it.
//
//   model_index              an index file, parsed and checked (model_index::parse)
//   basic_model_reader<S>    a model (index, directory or single file) over storage S:
//                            model_reader (mapped shards), pread_model_reader (pread shards)
//   try_open_model, ...      open a local model
//   try_read_quant_config    the quantization_config of config.json beside a model
//   sharded_writer           write a model as shards and an index, streaming and crash-safe
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_MODEL_HPP
#define SAFETENSORS_MODEL_HPP

#include "safetensors.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef SAFETENSORS_NO_FILESYSTEM
#include <filesystem>
#endif

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// The index: model.safetensors.index.json
// ---------------------------------------------------------------------------------------------

/// A tensor of a model: its name and the position of its shard.
struct model_entry {
  /// The tensor's name.
  std::string_view name;
  /// The shard's position in model_index::shard_files() (and a model's shard_paths()).
  std::size_t shard = 0;
};

class model_index;

namespace detail {

/// A shard's file name as an index lists it: a plain name in the index's directory. Anything
/// that could lead elsewhere (a separator, "..") is refused: indexes come from the internet.
inline bool is_plain_file_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\\') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

/// Scans an index: a JSON object with a "weight_map" object of tensor name to shard file name,
/// and optionally "metadata" (an object whose "total_size" is an unsigned integer); other keys
/// are checked as JSON and ignored. Keys are unique at every depth.
class index_scanner : private json_scanner {
 public:
  index_scanner(const char* text, std::size_t size) noexcept : json_scanner(text, size, "index") {}

  template <class OnEntry>
  result<void> scan(std::optional<std::uint64_t>& total_size, char* unescaped, OnEntry&& on_entry) {
    unescaped_ = unescaped;
    skip_whitespace();
    if (cur_ == end_ || *cur_ != '{') return fail("an index must be a JSON object");
    ++cur_;
    skip_whitespace();
    bool seen_weight_map = false;
    std::vector<std::string> keys;
    if (cur_ < end_ && *cur_ == '}') {
      ++cur_;
    } else {
      for (;;) {
        std::string_view key;
        if (cur_ == end_) return fail("unexpected end of index, expected a key");
        if (!scan_key(key)) return failure();
        keys.emplace_back(key);
        if (!expect_colon()) return failure();
        if (key == "weight_map") {
          if (!scan_weight_map(on_entry)) return failure();
          seen_weight_map = true;
        } else if (key == "metadata") {
          if (!scan_metadata(total_size)) return failure();
        } else if (!skip_value(2)) {
          return failure();
        }
        skip_whitespace();
        if (cur_ == end_) return fail("unexpected end of index, expected ',' or '}'");
        if (*cur_ == '}') {
          ++cur_;
          break;
        }
        if (*cur_ != ',') return fail("expected ',' or '}' after a key's value");
        ++cur_;
        skip_whitespace();
      }
    }
    skip_whitespace();
    if (cur_ != end_) return fail("unexpected bytes after the index's closing '}'");
    std::sort(keys.begin(), keys.end());
    auto repeated = std::adjacent_find(keys.begin(), keys.end());
    if (repeated != keys.end())
      return error(error_kind::invalid_index, "the key " + quote(*repeated) + " appears twice");
    if (!seen_weight_map) return error(error_kind::invalid_index, "the index has no weight_map");
    return {};
  }

 private:
  result<void> failure() const { return error(error_kind::invalid_index, error_); }
  result<void> fail(const std::string& what) {
    set_error(what);
    return failure();
  }

  bool scan_metadata(std::optional<std::uint64_t>& total_size) {
    if (cur_ < end_ && *cur_ == 'n') return skip_literal("null");
    if (cur_ == end_ || *cur_ != '{') return set_error("metadata must be an object or null");
    // Checked whole (unique keys, depth) by skip_value, then read for total_size.
    const char* object = cur_;
    if (!skip_value(2)) return false;
    const char* after = cur_;
    cur_ = object + 1;
    skip_whitespace();
    while (cur_ < after && *cur_ != '}') {
      std::string_view key;
      scan_key(key);
      const bool is_total = key == "total_size";
      expect_colon();
      if (is_total) {
        if (cur_ == end_ || *cur_ < '0' || *cur_ > '9')
          return set_error("metadata.total_size must be an unsigned integer");
        std::uint64_t value = 0;
        if (!scan_unsigned(value, [] { return std::string("metadata.total_size"); })) return false;
        total_size = value;
      } else {
        skip_value(3);
      }
      skip_whitespace();
      if (cur_ < after && *cur_ == ',') ++cur_;
      skip_whitespace();
    }
    cur_ = after;
    return true;
  }

  template <class OnEntry>
  bool scan_weight_map(OnEntry& on_entry) {
    if (cur_ == end_ || *cur_ != '{') return set_error("weight_map must be an object of tensor names to file names");
    ++cur_;
    const auto where = [] { return "in weight_map"; };
    return scan_object(where, [&] {
      std::string_view name;
      if (!scan_name(name)) return false;
      if (!expect_colon()) return false;
      if (cur_ == end_ || *cur_ != '"')
        return set_error("the shard of tensor " + quote(name) + " must be a file name (a string)");
      std::string_view file;
      if (!scan_key(file)) return false;
      return on_entry(name, file, position());
    });
  }

  // A tensor name: a view of the index text when it has no escape, else of its unescaped copy
  // in the arena (the size of the text, which unescaping never outgrows).
  bool scan_name(std::string_view& out) {
    if (cur_ < end_ && *cur_ == '"') {
      const char* stop = find_run_end(cur_ + 1);
      if (stop < end_ && *stop == '"') {
        out = std::string_view(cur_ + 1, static_cast<std::size_t>(stop - cur_ - 1));
        cur_ = stop + 1;
        return true;
      }
    }
    const std::size_t first = unescaped_used_;
    const bool scanned = scan_string([&](const char* bytes, std::size_t count) {
      std::memcpy(unescaped_ + unescaped_used_, bytes, count);
      unescaped_used_ += count;
    });
    out = std::string_view(unescaped_ + first, unescaped_used_ - first);
    return scanned;
  }

 public:
  /// The error of the last failed step, for on_entry's own failures.
  bool refuse(const std::string& what) { return set_error(what); }
  /// The message of the last failure.
  const std::string& message() const noexcept { return error_; }

 private:
  char* unescaped_ = nullptr;
  std::size_t unescaped_used_ = 0;
};
}  // namespace detail

/// A sharded model's index (model.safetensors.index.json, the Hugging Face convention), parsed
/// and checked: a JSON object whose weight_map maps each tensor name, once, to the plain name of
/// a file in the index's directory; metadata.total_size, when present, an unsigned integer.
/// Parsing costs one pass over the text (a 500,000-entry index of 60 MB parses in a small
/// multiple of the time it takes to read it); lookups by name are O(1).
class model_index {
 public:
  /// Parses `text`, which the index keeps (names point into it). Errors are InvalidIndex, with
  /// the position in the text.
  static result<model_index> try_parse(std::string text) {
    model_index index;
    index.text_ = std::make_unique<std::string>(std::move(text));
    const std::string& kept = *index.text_;
    index.unescaped_.reset(new char[kept.size() + 1]);
    // Shards are numbered in order of first appearance while scanning, then renumbered in
    // file-name order. Consecutive tensors usually share a shard: the last one is checked first.
    std::vector<std::string> files;
    std::map<std::string, std::size_t, std::less<>> numbers;
    std::size_t last = 0;
    detail::index_scanner scanner(kept.data(), kept.size());
    auto on_entry = [&](std::string_view name, std::string_view file, std::size_t) {
      std::size_t number = last;
      if (files.empty() || files[last] != file) {
        auto found = numbers.find(file);
        if (found == numbers.end()) {
          if (!detail::is_plain_file_name(file))
            return scanner.refuse("shard " + detail::quote(file) + " of tensor " + detail::quote(name) +
                                  " is not a plain file name in the index's directory");
          found = numbers.emplace(std::string(file), files.size()).first;
          files.emplace_back(file);
        }
        number = found->second;
        last = number;
      }
      index.entries_.push_back({name, number});
      return true;
    };
    if (auto scanned = scanner.scan(index.total_size_, index.unescaped_.get(), on_entry); !scanned)
      return scanned.error();

    std::vector<std::size_t> renumbered(files.size());
    for (const auto& [file, number] : numbers) {
      renumbered[number] = index.shard_files_.size();
      index.shard_files_.push_back(file);
    }
    for (model_entry& entry : index.entries_) entry.shard = renumbered[entry.shard];
    if (auto indexed = index.index_names(); !indexed) return indexed.error();
    return index;
  }
  /// As try_parse; throws safetensors::exception (aborts without exceptions) on failure.
  static model_index parse(std::string text) { return try_parse(std::move(text)).value(); }

  /// Every tensor with its shard, sorted by name.
  span<const model_entry> entries() const noexcept { return {entries_.data(), entries_.size()}; }
  /// Number of tensors.
  std::size_t size() const noexcept { return entries_.size(); }
  /// The shards' file names, in file-name order.
  const std::vector<std::string>& shard_files() const noexcept { return shard_files_; }
  /// metadata.total_size, if the index has one.
  std::optional<std::uint64_t> total_size() const noexcept { return total_size_; }
  /// The tensor named `name`, or nullptr. O(1).
  const model_entry* find(std::string_view name) const {
    const std::size_t at =
        names_.find(name, detail::name_table::hash(name), [&](std::size_t i) { return entries_[i].name; });
    return at == detail::name_table::npos ? nullptr : &entries_[at];
  }

 private:
  template <class Storage>
  friend class basic_model_reader;

  model_index() = default;

  // The index of a single file: its tensors, all in shard 0, `file`.
  static model_index of_file(std::string file, span<const tensor_info> tensors) {
    model_index index;
    index.shard_files_.push_back(std::move(file));
    index.entries_.reserve(tensors.size());
    for (const tensor_info& info : tensors) index.entries_.push_back({info.name, 0});
    (void)index.index_names();  // cannot fail: the reader checked that the file's names are unique
    return index;
  }

  // Sorts the entries by name (writers sort them already: checked in one pass) and builds the
  // name table, refusing a name listed twice.
  result<void> index_names() {
    auto by_name = [](const model_entry& a, const model_entry& b) { return a.name < b.name; };
    if (!std::is_sorted(entries_.begin(), entries_.end(), by_name))
      std::sort(entries_.begin(), entries_.end(), by_name);
    names_.reset(entries_.size());
    auto name_at = [&](std::size_t i) { return entries_[i].name; };
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const std::string_view name = entries_[i].name;
      if (names_.insert(i, name, detail::name_table::hash(name), name_at) != i)
        return error(error_kind::invalid_index, "the key " + detail::quote(name) + " appears twice in weight_map");
    }
    return {};
  }

  std::unique_ptr<std::string> text_;  // the index's text: names point into it
  std::unique_ptr<char[]> unescaped_;  // names that had escapes, unescaped
  std::vector<model_entry> entries_;
  std::vector<std::string> shard_files_;
  detail::name_table names_;
  std::optional<std::uint64_t> total_size_;
};

// ---------------------------------------------------------------------------------------------
// Reading a model
// ---------------------------------------------------------------------------------------------

/// A model stored as one safetensors file or as shards listed by an index, read as one set of
/// tensors over a storage: everything a basic_reader offers for one file (info, views on
/// in-memory storages, slices, reads, plans, loads into memory or through a consumer) works
/// across the shards. Shards are opened on first use and shared; like a reader, a model may be
/// used from many threads.
///
/// A shard is checked against the index when it is first opened: every tensor the index places
/// there is in it, and it holds no other. try_validate() opens every shard and also checks
/// metadata.total_size. Errors name the index or the shard file, and the tensor.
template <class Storage>
class basic_model_reader : public detail::plan_loads<basic_model_reader<Storage>> {
 public:
  /// The reader of one shard.
  using reader_type = basic_reader<Storage>;
  /// How a shard's storage is opened from its location (a path or URL).
  using shard_opener = std::function<result<Storage>(const std::string& location)>;
  /// True when the shards are in memory (mapped) and views are zero-copy.
  static constexpr bool has_views = reader_type::has_views;

  /// A model whose index, found at `index_location`, is `index`: the shard named F is opened,
  /// when first used, with open_shard(D + F), where D is `index_location` up to and including
  /// its last separator ('/', and on Windows '\\' too; nothing when it has none).
  static basic_model_reader from_index(std::string index_location, model_index index, shard_opener open_shard,
                                       const read_options& options = {}) {
    basic_model_reader model(std::move(open_shard), options);
    const std::string directory = index_location.substr(0, detail::file_name_start(index_location));
    for (const std::string& file : index.shard_files()) model.locations_.push_back(directory + file);
    model.index_ = std::move(index);
    model.index_location_ = std::move(index_location);
    model.make_slots();
    return model;
  }

  /// A model of the single file at `location`, opened now with `open_shard`.
  static result<basic_model_reader> try_from_file(std::string location, shard_opener open_shard,
                                                  const read_options& options = {}) {
    basic_model_reader model(std::move(open_shard), options);
    model.locations_.push_back(location);
    model.make_slots();
    auto single = model.try_shard(0);
    if (!single) return single.error();
    model.index_ = model_index::of_file(std::move(location), (*single)->tensors());
    return model;
  }
  /// As try_from_file; throws safetensors::exception (aborts without exceptions) on failure.
  static basic_model_reader from_file(std::string location, shard_opener open_shard, const read_options& options = {}) {
    return try_from_file(std::move(location), std::move(open_shard), options).value();
  }

  basic_model_reader(basic_model_reader&&) noexcept = default;
  basic_model_reader& operator=(basic_model_reader&&) noexcept = default;

  /// Number of tensors.
  std::size_t size() const noexcept { return index_.size(); }
  /// Every tensor's name with its shard's position in shard_paths(), sorted by name.
  span<const model_entry> tensor_names() const noexcept { return index_.entries(); }
  /// The shards' locations (paths or URLs), in file-name order (one for a single file).
  const std::vector<std::string>& shard_paths() const noexcept { return locations_; }
  /// Number of shards.
  std::size_t shard_count() const noexcept { return locations_.size(); }
  /// The index's location, empty for a single file.
  const std::string& index_path() const noexcept { return index_location_; }
  /// metadata.total_size from the index, if it had one.
  std::optional<std::uint64_t> total_size() const noexcept { return index_.total_size(); }
  /// The index's entry of the tensor named `name` (its shard), or nullptr. O(1), and opens no shard.
  const model_entry* find_entry(std::string_view name) const { return index_.find(name); }
  /// The tensor named `name`, as a file's reader gives it, or nullptr when the model has none or
  /// its shard cannot be opened (try_info says why). Opens the shard if it was not.
  const tensor_info* find(std::string_view name) const {
    auto located = locate(name);
    return located ? located->second : nullptr;
  }
  /// True when a tensor is named `name`. Opens no shard.
  bool contains(std::string_view name) const { return find_entry(name) != nullptr; }

  /// The reader of shard `index`, opened and checked against the index on first use and kept.
  /// A failure is not kept: the next call tries again, so a shard that was still being copied
  /// or briefly unreadable (too many open files, say) opens once it is whole. A shard that stays
  /// broken is therefore opened and parsed again by every lookup that reaches it.
  result<const reader_type*> try_shard(std::size_t index) const {
    if (index >= slots_.size())
      return error(error_kind::invalid_argument,
                   "there are " + std::to_string(slots_.size()) + " shards, not " + std::to_string(index + 1));
    slot& s = *slots_[index];
    std::lock_guard<std::mutex> lock(s.lock);
    if (!s.reader) {
      auto storage = open_shard_(locations_[index]);
      if (!storage) return storage.error();
      auto opened = reader_type::try_open(std::move(*storage), options_);
      if (!opened) return opened.error();
      if (auto agrees = check_shard(index, *opened); !agrees) return agrees.error();
      s.reader = std::make_unique<reader_type>(std::move(*opened));
    }
    return static_cast<const reader_type*>(s.reader.get());
  }
  /// The reader of shard `index`, opened if it was not; throws safetensors::exception on an error.
  const reader_type& shard(std::size_t index) const { return *try_shard(index).value(); }

  /// The reader holding the tensor named `name`, or TensorNotFound (or the shard's error).
  result<const reader_type*> try_reader_of(std::string_view name) const {
    auto located = locate(name);
    if (!located) return located.error();
    return located->first;
  }
  /// The reader of the shard that holds `name`; throws safetensors::exception on an error.
  const reader_type& reader_of(std::string_view name) const { return *try_reader_of(name).value(); }
  /// The tensor named `name`, from its shard, or TensorNotFound (or the shard's error).
  result<const tensor_info*> try_info(std::string_view name) const {
    auto located = locate(name);
    if (!located) return located.error();
    return located->second;
  }
  /// The tensor named `name`; throws safetensors::exception.
  const tensor_info& info(std::string_view name) const { return *try_info(name).value(); }

  /// A zero-copy view of the tensor named `name` (mapped shards).
  template <bool enabled = has_views, std::enable_if_t<enabled, int> = 0>
  result<tensor_view> try_view(std::string_view name) const {
    auto located = locate(name);
    if (!located) return located.error();
    return located->first->view(*located->second);
  }
  /// A zero-copy view of the tensor named `name`; throws safetensors::exception.
  template <bool enabled = has_views, std::enable_if_t<enabled, int> = 0>
  tensor_view view(std::string_view name) const {
    return try_view(name).value();
  }

  /// A slice of the tensor named `name` (see basic_reader::try_slice).
  result<tensor_slice> try_slice(std::string_view name, std::vector<slice_dim> dims) const {
    auto reader = try_reader_of(name);
    if (!reader) return reader.error();
    return (*reader)->try_slice(name, std::move(dims));
  }
  /// A slice of the tensor named `name`; throws safetensors::exception.
  tensor_slice slice(std::string_view name, std::vector<slice_dim> dims) const {
    return try_slice(name, std::move(dims)).value();
  }

  /// A copy of the bytes of the tensor named `name`.
  result<std::vector<std::byte>> try_read(std::string_view name) const {
    auto reader = try_reader_of(name);
    if (!reader) return reader.error();
    return (*reader)->try_read(name);
  }
  /// A copy of the bytes of the tensor named `name`; throws safetensors::exception.
  std::vector<std::byte> read(std::string_view name) const { return try_read(name).value(); }
  /// The elements of the tensor named `name` converted to T (see basic_reader::try_read_as).
  template <class T>
  result<std::vector<T>> try_read_as(std::string_view name) const {
    auto reader = try_reader_of(name);
    if (!reader) return reader.error();
    return (*reader)->template try_read_as<T>(name);
  }
  /// The elements of the tensor named `name` converted to T; throws safetensors::exception.
  template <class T>
  std::vector<T> read_as(std::string_view name) const {
    return try_read_as<T>(name).value();
  }
  /// Copies the bytes of a tensor of this model (from try_info) into `destination`, exactly its
  /// byte_size().
  result<void> try_read_into(const tensor_info& info, span<std::byte> destination) const {
    auto reader = owner_of(info);
    if (!reader) return reader.error();
    return (*reader)->try_read_into(info, destination);
  }
  /// Copies as try_read_into does; throws safetensors::exception (aborts without exceptions).
  void read_into(const tensor_info& info, span<std::byte> destination) const {
    try_read_into(info, destination).value();
  }
  /// Copies a piece of a tensor of this model (see basic_reader::try_read_part).
  result<void> try_read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    auto reader = owner_of(info);
    if (!reader) return reader.error();
    return (*reader)->try_read_part(info, offset, destination);
  }
  /// As try_read_part; throws safetensors::exception on an error.
  void read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    try_read_part(info, offset, destination).value();
  }
  /// A copy of the bytes a slice of a tensor of this model selects.
  result<std::vector<std::byte>> try_read(const tensor_slice& slice) const {
    auto reader = owner_of(slice.info());
    if (!reader) return reader.error();
    return (*reader)->try_read(slice);
  }
  /// A copy of the bytes a slice selects; throws safetensors::exception on an error.
  std::vector<std::byte> read(const tensor_slice& slice) const { return try_read(slice).value(); }
  /// Copies the bytes a slice of a tensor of this model selects into `destination`.
  result<void> try_read_into(const tensor_slice& slice, span<std::byte> destination) const {
    auto reader = owner_of(slice.info());
    if (!reader) return reader.error();
    return (*reader)->try_read_into(slice, destination);
  }
  /// Copies as try_read_into does; throws safetensors::exception (aborts without exceptions).
  void read_into(const tensor_slice& slice, span<std::byte> destination) const {
    try_read_into(slice, destination).value();
  }

  /// The `__metadata__` of the model: its first shard's (in the index's order of shards), as
  /// writers of sharded checkpoints put the same metadata in every shard. Opens that shard.
  result<const metadata_map*> try_metadata() const {
    auto first = try_shard(0);
    if (!first) return first.error();
    return &(*first)->metadata();
  }
  /// The metadata as try_metadata gives it; throws safetensors::exception on failure.
  const metadata_map& metadata() const { return *try_metadata().value(); }

  /// Starts reading the pages of a tensor of this model ahead of use (mapped shards only).
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  result<void> try_prefetch(const tensor_info& info) const {
    auto reader = owner_of(info);
    if (!reader) return reader.error();
    return (*reader)->try_prefetch(info);
  }
  /// As try_prefetch; throws safetensors::exception on failure.
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  void prefetch(const tensor_info& info) const {
    try_prefetch(info).value();
  }
  /// Gives back the memory of a tensor's pages (mapped shards only), as basic_reader::try_release.
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  result<void> try_release(const tensor_info& info) const {
    auto reader = owner_of(info);
    if (!reader) return reader.error();
    return (*reader)->try_release(info);
  }
  /// As try_release; throws safetensors::exception on failure.
  template <bool enabled = detail::has_residency_control<Storage>::value, std::enable_if_t<enabled, int> = 0>
  void release(const tensor_info& info) const {
    try_release(info).value();
  }

  /// A load request for the tensor named `name` (or the `slice` of it) into `destination`
  /// (empty for a consumer), its shard filled in: the shard is opened if it was not.
  result<load_request> try_request(std::string_view name, span<std::byte> destination = {},
                                   std::vector<slice_dim> slice = {}) const {
    const model_entry* entry = find_entry(name);
    if (entry == nullptr) return not_found(name);
    auto reader = try_shard(entry->shard);
    if (!reader) return reader.error();
    return load_request((*reader)->find(name), destination, std::move(slice), entry->shard);
  }
  /// A load request for the tensor named `name`; throws safetensors::exception.
  load_request request(std::string_view name, span<std::byte> destination = {},
                       std::vector<slice_dim> slice = {}) const {
    return try_request(name, destination, std::move(slice)).value();
  }

  /// Plans the reads of `requests` across every shard at once (see load_plan). Each request's
  /// shard is the one try_request named.
  result<load_plan> try_plan(span<const load_request> requests, const load_options& options = {}) const {
    std::vector<detail::plan_source> sources(slots_.size());
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      std::lock_guard<std::mutex> lock(slots_[i]->lock);
      if (slots_[i]->reader) {
        sources[i] = slots_[i]->reader->plan_source();
      } else {
        sources[i].name = locations_[i];
      }
    }
    return detail::plan_builder::build(std::move(sources), requests, options);
  }
  /// Opens every shard (each checked against the index) and checks that metadata.total_size,
  /// when the index has one, is the sum of the tensors' byte sizes.
  result<void> try_validate() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      auto reader = try_shard(i);
      if (!reader) return reader.error();
      for (const tensor_info& info : (*reader)->tensors()) sum += info.byte_size();
    }
    if (total_size() && *total_size() != sum)
      return index_error("metadata.total_size is " + std::to_string(*total_size()) + " but the tensors hold " +
                         std::to_string(sum) + " bytes");
    return {};
  }
  /// As try_validate; throws safetensors::exception (aborts without exceptions) on failure.
  void validate() const { try_validate().value(); }

 private:
  struct slot {
    std::mutex lock;
    std::unique_ptr<reader_type> reader;
  };

  basic_model_reader(shard_opener open_shard, const read_options& options)
      : open_shard_(std::move(open_shard)), options_(options) {}

  void make_slots() {
    slots_.clear();
    for (std::size_t i = 0; i < locations_.size(); ++i) slots_.push_back(std::make_unique<slot>());
  }

  error index_error(const std::string& what) const {
    return detail::about(index_location_, error(error_kind::invalid_index, what));
  }
  error not_found(std::string_view name) const {
    return detail::about(index_location_.empty() ? std::string_view(locations_[0]) : std::string_view(index_location_),
                         error(error_kind::tensor_not_found, "no tensor named " + detail::quote(name)));
  }

  result<std::pair<const reader_type*, const tensor_info*>> locate(std::string_view name) const {
    const model_entry* entry = find_entry(name);
    if (entry == nullptr) return not_found(name);
    auto reader = try_shard(entry->shard);
    if (!reader) return reader.error();
    return std::make_pair(*reader, (*reader)->find(name));
  }

  // The shard reader that holds `info` (found by its name, then checked by address).
  result<const reader_type*> owner_of(const tensor_info& info) const {
    auto located = locate(info.name);
    if (!located) return located.error();
    if (located->second != &info)
      return detail::about(
          located->first->name(),
          error(error_kind::invalid_argument,
                "tensor " + detail::quote(info.name) + " is not this model's: take it from the model's try_info"));
    return located->first;
  }

  // Every tensor the index places in shard `index` is there, and the shard holds no other.
  result<void> check_shard(std::size_t index, const reader_type& reader) const {
    if (index_location_.empty()) return {};
    const std::string shard_name = detail::quote(locations_[index]);
    for (const tensor_info& info : reader.tensors()) {
      const model_entry* entry = find_entry(info.name);
      if (entry == nullptr)
        return index_error("shard " + shard_name + " holds tensor " + detail::quote(info.name) +
                           ", which the index does not list");
      if (entry->shard != index)
        return index_error("tensor " + detail::quote(info.name) + " is in shard " + shard_name +
                           " but the index lists it in " + detail::quote(locations_[entry->shard]));
    }
    for (const model_entry& entry : index_.entries()) {
      if (entry.shard == index && !reader.contains(entry.name))
        return index_error("the index lists tensor " + detail::quote(entry.name) + " in shard " + shard_name +
                           ", which does not hold it");
    }
    return {};
  }

  shard_opener open_shard_;
  read_options options_;
  model_index index_;
  std::string index_location_;
  std::vector<std::string> locations_;
  std::vector<std::unique_ptr<slot>> slots_;
};

namespace detail {

/// What any_model asks of the model it holds: basic_model_reader's members that do not depend
/// on the storage's type.
class model_interface {
 public:
  virtual ~model_interface() = default;
  virtual std::size_t size() const noexcept = 0;
  virtual span<const model_entry> tensor_names() const noexcept = 0;
  virtual const std::vector<std::string>& shard_paths() const noexcept = 0;
  virtual const std::string& index_path() const noexcept = 0;
  virtual std::optional<std::uint64_t> total_size() const noexcept = 0;
  virtual const model_entry* find_entry(std::string_view name) const = 0;
  virtual result<any_reader> try_shard(std::size_t index) const = 0;
  virtual result<const tensor_info*> try_info(std::string_view name) const = 0;
  virtual result<load_request> try_request(std::string_view name, span<std::byte> destination,
                                           std::vector<slice_dim> slice) const = 0;
  virtual result<load_plan> try_plan(span<const load_request> requests, const load_options& options) const = 0;
  virtual result<void> try_validate() const = 0;
};

template <class Storage>
class model_holder final : public model_interface {
 public:
  explicit model_holder(basic_model_reader<Storage> model) : model_(std::move(model)) {}

  std::size_t size() const noexcept override { return model_.size(); }
  span<const model_entry> tensor_names() const noexcept override { return model_.tensor_names(); }
  const std::vector<std::string>& shard_paths() const noexcept override { return model_.shard_paths(); }
  const std::string& index_path() const noexcept override { return model_.index_path(); }
  std::optional<std::uint64_t> total_size() const noexcept override { return model_.total_size(); }
  const model_entry* find_entry(std::string_view name) const override { return model_.find_entry(name); }
  result<any_reader> try_shard(std::size_t index) const override {
    auto shard = model_.try_shard(index);
    if (!shard) return shard.error();
    return any_reader::borrowing(**shard);
  }
  result<const tensor_info*> try_info(std::string_view name) const override { return model_.try_info(name); }
  result<load_request> try_request(std::string_view name, span<std::byte> destination,
                                   std::vector<slice_dim> slice) const override {
    return model_.try_request(name, destination, std::move(slice));
  }
  result<load_plan> try_plan(span<const load_request> requests, const load_options& options) const override {
    return model_.try_plan(requests, options);
  }
  result<void> try_validate() const override { return model_.try_validate(); }

 private:
  basic_model_reader<Storage> model_;
};

}  // namespace detail

/// A model of any storage, chosen at run time (mapped or pread shards, remote ones, a file read
/// into memory, a storage of your own) behind one type: basic_model_reader's members, in both
/// forms, for programs that pick the storage from what they are given (the command-line tool
/// does). A single file is a model of one shard. Shards are handed out as any_reader, valid while
/// the model lives. Copies share the model.
///
/// ```cpp
/// safetensors::any_model model = pread ? safetensors::any_model(safetensors::open_model_pread(path))
///                                      : safetensors::any_model(safetensors::open_model(path));
/// std::vector<float> bias = model.read_as<float>(model.tensor_names()[0].name);
/// ```
class any_model : public detail::plan_loads<any_model> {
 public:
  /// Holds `model`, whatever its storage.
  template <class Storage>
  any_model(basic_model_reader<Storage> model)  // NOLINT: implicit, as a model converts to any_model
      : model_(std::make_shared<detail::model_holder<Storage>>(std::move(model))) {}

  /// Number of tensors.
  std::size_t size() const noexcept { return model_->size(); }
  /// Every tensor's name and shard, in name order.
  span<const model_entry> tensor_names() const noexcept { return model_->tensor_names(); }
  /// The shards' paths or URLs, in the index's order.
  const std::vector<std::string>& shard_paths() const noexcept { return model_->shard_paths(); }
  /// Number of shards.
  std::size_t shard_count() const noexcept { return shard_paths().size(); }
  /// The index's path, or empty for a model of one file.
  const std::string& index_path() const noexcept { return model_->index_path(); }
  /// metadata.total_size from the index, if it had one.
  std::optional<std::uint64_t> total_size() const noexcept { return model_->total_size(); }
  /// The index's entry of the tensor named `name`, or nullptr. Opens no shard.
  const model_entry* find_entry(std::string_view name) const { return model_->find_entry(name); }
  /// The tensor named `name`, or nullptr when there is none or its shard cannot be opened.
  const tensor_info* find(std::string_view name) const {
    auto found = try_info(name);
    return found ? *found : nullptr;
  }
  /// True when a tensor is named `name`. Opens no shard.
  bool contains(std::string_view name) const { return find_entry(name) != nullptr; }

  /// Shard `index`, opened on first use, as an any_reader valid while this model lives.
  result<any_reader> try_shard(std::size_t index) const { return model_->try_shard(index); }
  /// Shard `index`; throws safetensors::exception on an error.
  any_reader shard(std::size_t index) const { return try_shard(index).value(); }
  /// The shard that holds the tensor named `name`.
  result<any_reader> try_reader_of(std::string_view name) const {
    const model_entry* entry = find_entry(name);
    if (entry == nullptr) return try_info(name).error();
    return try_shard(entry->shard);
  }
  /// The shard that holds `name`; throws safetensors::exception on an error.
  any_reader reader_of(std::string_view name) const { return try_reader_of(name).value(); }
  /// The tensor named `name` (its shard opened), or TensorNotFound.
  result<const tensor_info*> try_info(std::string_view name) const { return model_->try_info(name); }
  /// The tensor named `name`; throws safetensors::exception on an error.
  const tensor_info& info(std::string_view name) const { return *try_info(name).value(); }

  /// A zero-copy view of the tensor named `name` (an error where the storage has no views).
  result<tensor_view> try_view(std::string_view name) const {
    auto reader = try_reader_of(name);
    if (!reader) return reader.error();
    return reader->try_view(name);
  }
  /// A zero-copy view; throws safetensors::exception on an error.
  tensor_view view(std::string_view name) const { return try_view(name).value(); }
  /// A slice of the tensor named `name`.
  result<tensor_slice> try_slice(std::string_view name, std::vector<slice_dim> dims) const {
    auto reader = try_reader_of(name);
    if (!reader) return reader.error();
    return reader->try_slice(name, std::move(dims));
  }
  /// A slice; throws safetensors::exception on an error.
  tensor_slice slice(std::string_view name, std::vector<slice_dim> dims) const {
    return try_slice(name, std::move(dims)).value();
  }
  /// A copy of the bytes of the tensor named `name`.
  result<std::vector<std::byte>> try_read(std::string_view name) const {
    auto reader = try_reader_of(name);
    if (!reader) return reader.error();
    return reader->try_read(name);
  }
  /// A copy of a tensor's bytes; throws safetensors::exception on an error.
  std::vector<std::byte> read(std::string_view name) const { return try_read(name).value(); }
  /// The elements of the tensor named `name` as values of T (see basic_reader::try_read_as).
  template <class T>
  result<std::vector<T>> try_read_as(std::string_view name) const {
    auto reader = try_reader_of(name);
    if (!reader) return reader.error();
    return reader->template try_read_as<T>(name);
  }
  /// The elements as values of T; throws safetensors::exception on an error.
  template <class T>
  std::vector<T> read_as(std::string_view name) const {
    return try_read_as<T>(name).value();
  }
  /// Copies the bytes of `info` (from try_info) into `destination`.
  result<void> try_read_into(const tensor_info& info, span<std::byte> destination) const {
    auto reader = owner_of(info);
    if (!reader) return reader.error();
    return reader->try_read_into(info, destination);
  }
  /// As try_read_into; throws safetensors::exception on an error.
  void read_into(const tensor_info& info, span<std::byte> destination) const {
    try_read_into(info, destination).value();
  }
  /// Copies the bytes a slice selects into `destination`.
  result<void> try_read_into(const tensor_slice& slice, span<std::byte> destination) const {
    auto reader = owner_of(slice.info());
    if (!reader) return reader.error();
    return reader->try_read_into(slice, destination);
  }
  /// As try_read_into; throws safetensors::exception on an error.
  void read_into(const tensor_slice& slice, span<std::byte> destination) const {
    try_read_into(slice, destination).value();
  }
  /// Copies destination.size() bytes of `info` from `offset` on.
  result<void> try_read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    auto reader = owner_of(info);
    if (!reader) return reader.error();
    return reader->try_read_part(info, offset, destination);
  }
  /// As try_read_part; throws safetensors::exception on an error.
  void read_part(const tensor_info& info, std::uint64_t offset, span<std::byte> destination) const {
    try_read_part(info, offset, destination).value();
  }

  /// The model's `__metadata__`: its first shard's (see basic_model_reader::try_metadata).
  result<const metadata_map*> try_metadata() const {
    auto first = try_shard(0);
    if (!first) return first.error();
    return &first->metadata();
  }
  /// The metadata; throws safetensors::exception on an error.
  const metadata_map& metadata() const { return *try_metadata().value(); }

  /// Starts reading the pages of `info` ahead of use; InvalidArgument where the storage cannot.
  result<void> try_prefetch(const tensor_info& info) const {
    auto reader = owner_of(info);
    if (!reader) return reader.error();
    return reader->try_prefetch(info);
  }
  /// As try_prefetch; throws safetensors::exception on an error.
  void prefetch(const tensor_info& info) const { try_prefetch(info).value(); }
  /// Gives back the memory of the pages of `info`; InvalidArgument where the storage cannot.
  result<void> try_release(const tensor_info& info) const {
    auto reader = owner_of(info);
    if (!reader) return reader.error();
    return reader->try_release(info);
  }
  /// As try_release; throws safetensors::exception on an error.
  void release(const tensor_info& info) const { try_release(info).value(); }

  /// A load request for the tensor named `name` (or a slice of it), its shard filled in.
  result<load_request> try_request(std::string_view name, span<std::byte> destination = {},
                                   std::vector<slice_dim> slice = {}) const {
    return model_->try_request(name, destination, std::move(slice));
  }
  /// A load request; throws safetensors::exception on an error.
  load_request request(std::string_view name, span<std::byte> destination = {},
                       std::vector<slice_dim> slice = {}) const {
    return try_request(name, destination, std::move(slice)).value();
  }
  /// Plans the reads of `requests` across every shard (see basic_model_reader::try_plan).
  result<load_plan> try_plan(span<const load_request> requests, const load_options& options = {}) const {
    return model_->try_plan(requests, options);
  }
  /// Opens every shard and checks it against the index and total_size.
  result<void> try_validate() const { return model_->try_validate(); }
  /// As try_validate; throws safetensors::exception on an error.
  void validate() const { try_validate().value(); }

 private:
  // The shard holding `info`, which must be this model's (from try_info).
  result<any_reader> owner_of(const tensor_info& info) const {
    auto reader = try_reader_of(info.name);
    if (!reader) return reader.error();
    if (reader->find(info.name) != &info)
      return detail::about(reader->name(), error(error_kind::invalid_argument,
                                                 "tensor " + detail::quote(info.name) +
                                                     " is not this model's: take it from the model's try_info"));
    return reader;
  }

  std::shared_ptr<const detail::model_interface> model_;
};

#ifndef SAFETENSORS_NO_FILESYSTEM

/// A model over mapped shards: zero-copy views, and loads that copy from the mapping.
using model_reader = basic_model_reader<mapped_file>;
/// A model over pread shards: loads into the engine's memory without mapping (with
/// load_options::direct_io, past the page cache).
using pread_model_reader = basic_model_reader<pread_file>;

namespace detail {
/// The whole of a small text file (an index), refused past `max_size` bytes.
inline result<std::string> read_text_file(const std::string& path, std::uint64_t max_size = format_max_header_size) {
  auto file = pread_file::try_open(path);
  if (!file) return file.error();
  if (file->size() > max_size)
    return about(path, error(error_kind::invalid_index, "larger than " + std::to_string(max_size) + " bytes"));
  std::string text(static_cast<std::size_t>(file->size()), '\0');
  if (auto read = file->read_at(0, reinterpret_cast<std::byte*>(text.data()), text.size()); !read) return read.error();
  return text;
}

/// What a directory holds of models: its index files and its .safetensors files, by name.
inline result<std::pair<std::vector<std::string>, std::vector<std::string>>> list_models(const std::string& directory) {
  std::pair<std::vector<std::string>, std::vector<std::string>> found;
  std::error_code failure;
  for (std::filesystem::directory_iterator it(directory, failure), end; !failure && it != end; it.increment(failure)) {
    const std::string name = it->path().filename().string();
    if (ends_with(name, ".safetensors.index.json")) found.first.push_back(name);
    if (ends_with(name, ".safetensors")) found.second.push_back(name);
  }
  if (failure) return error(error_kind::io_error, quote(directory) + ": cannot list: " + failure.message());
  std::sort(found.first.begin(), found.first.end());
  std::sort(found.second.begin(), found.second.end());
  return found;
}

/// The index or single file a directory holds: model.safetensors.index.json, or its only
/// *.safetensors.index.json, or else its only .safetensors file.
inline result<std::string> find_in_directory(const std::string& directory) {
  std::error_code failure;
  const std::string index = detail::join_path(directory, "model.safetensors.index.json");
  if (std::filesystem::is_regular_file(index, failure)) return index;
  auto found = list_models(directory);
  if (!found) return found.error();
  const auto& [indexes, files] = *found;
  if (indexes.size() == 1) return detail::join_path(directory, indexes[0]);
  if (indexes.empty() && files.size() == 1) return detail::join_path(directory, files[0]);
  return error(error_kind::io_error, quote(directory) + ": holds " + std::to_string(indexes.size()) +
                                         " index files and " + std::to_string(files.size()) +
                                         " .safetensors files: name the index or the file to open");
}
}  // namespace detail

/// Opens the local model at `path` with shards over Storage (mapped_file or pread_file): an index
/// (a path ending in .json); a directory holding one (model.safetensors.index.json, or its only
/// *.safetensors.index.json) or else exactly one .safetensors file; or any other path, read as a
/// single safetensors file. Every shard the index lists must exist (IoError otherwise); each is
/// opened and checked on first use. A malformed index is InvalidIndex, naming it.
template <class Storage>
result<basic_model_reader<Storage>> try_open_model_as(const std::string& path, const read_options& options = {}) {
  using model = basic_model_reader<Storage>;
  auto open_shard = [](const std::string& location) { return Storage::try_open(location); };
  std::error_code failure;
  std::string location = path;
  if (std::filesystem::is_directory(path, failure)) {
    auto found = detail::find_in_directory(path);
    if (!found) return found.error();
    location = std::move(*found);
  }
  if (!detail::ends_with(location, ".json")) return model::try_from_file(location, open_shard, options);
  auto text = detail::read_text_file(location, options.max_header_size);
  if (!text) return text.error();
  auto index = model_index::try_parse(std::move(*text));
  if (!index) return detail::about(location, index.error());
  model opened = model::from_index(location, std::move(*index), open_shard, options);
  for (std::size_t i = 0; i < opened.shard_count(); ++i) {
    const std::filesystem::file_status status = std::filesystem::status(opened.shard_paths()[i], failure);
    if (std::filesystem::is_regular_file(status)) continue;
    const char* what = !std::filesystem::exists(status)        ? "missing"
                       : std::filesystem::is_directory(status) ? "a directory, not a file"
                       : std::filesystem::is_fifo(status)      ? "a FIFO, not a regular file"
                       : std::filesystem::is_socket(status)    ? "a socket, not a regular file"
                                                               : "a device, not a regular file";
    return detail::about(location, error(error_kind::io_error, "lists shard " + detail::quote(opened.shard_paths()[i]) +
                                                                   ", which is " + what));
  }
  return opened;
}
/// Opens a local model with shards over Storage (see try_open_model_as); throws
/// safetensors::exception on an error.
template <class Storage>
basic_model_reader<Storage> open_model_as(const std::string& path, const read_options& options = {}) {
  return try_open_model_as<Storage>(path, options).value();
}

/// Opens a local model with mapped shards (see try_open_model_as).
inline result<model_reader> try_open_model(const std::string& path, const read_options& options = {}) {
  return try_open_model_as<mapped_file>(path, options);
}
/// Opens a local model with mapped shards; throws safetensors::exception.
inline model_reader open_model(const std::string& path, const read_options& options = {}) {
  return try_open_model(path, options).value();
}
/// Opens a local model with pread shards (see try_open_model_as).
inline result<pread_model_reader> try_open_model_pread(const std::string& path, const read_options& options = {}) {
  return try_open_model_as<pread_file>(path, options);
}
/// Opens a local model with pread shards; throws safetensors::exception.
inline pread_model_reader open_model_pread(const std::string& path, const read_options& options = {}) {
  return try_open_model_pread(path, options).value();
}

/// The quant_config of the local model at `path` (a directory, an index or a .safetensors
/// file): its config.json, in the directory or beside the file, as transformers saves it; the
/// defaults (no method, FP8 blocks of 128x128) when there is none. For try_quant_groups:
///
/// ```cpp
/// auto config = safetensors::try_read_quant_config("DeepSeek-V3");
/// auto groups = safetensors::try_quant_groups(model, config->fp8_block);
/// ```
inline result<quant_config> try_read_quant_config(const std::string& path) {
  std::error_code failure;
  const std::filesystem::path given(path);
  const std::filesystem::path config =
      (std::filesystem::is_directory(given, failure) ? given : given.parent_path()) / "config.json";
  if (!std::filesystem::exists(config, failure)) return quant_config{};
  auto text = detail::read_text_file(config.string());
  if (!text) return text.error();
  return quant_config::try_parse(*text);
}
/// As try_read_quant_config; throws safetensors::exception (aborts without exceptions) on failure.
inline quant_config read_quant_config(const std::string& path) { return try_read_quant_config(path).value(); }

// ---------------------------------------------------------------------------------------------
// Writing a model
// ---------------------------------------------------------------------------------------------

/// Options for writing a sharded model.
struct shard_options {
  /// Most tensor bytes in one shard (decimal, as the Hugging Face tools count: 5 GB). A tensor
  /// larger than this gets a shard of its own.
  std::uint64_t max_shard_size = 5000000000ULL;
  /// Files are named BASE.safetensors (one shard) or BASE-00001-of-0000N.safetensors with
  /// BASE.safetensors.index.json.
  std::string base_name = "model";
  /// Each shard's `__metadata__`.
  metadata_entries metadata = std::map<std::string, std::string>{{"format", "pt"}};
  /// Alignment and sync, as for one file.
  write_options write;
  /// A directory that already holds a model (a .safetensors or .safetensors.index.json file) is
  /// refused unless this is set; then the old model (its index files and the shards they name,
  /// or its .safetensors files when it has no index) is removed once the new one is complete.
  bool replace = false;
};

namespace detail {
/// The index as transformers writes it (Python's json.dumps(index, indent=2, sort_keys=True) and
/// a newline): non-ASCII escaped with JSON's u-escapes (surrogate pairs past U+FFFF), `entries`
/// sorted.
inline std::string index_json(std::uint64_t total_size,
                              const std::vector<std::pair<std::string, std::string>>& entries) {
  auto append_ascii_string = [](std::string& out, std::string_view text) {
    std::string escaped;
    append_json_string(escaped, text);
    static constexpr char hex[] = "0123456789abcdef";
    auto append_unit = [&](unsigned unit) {
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out += hex[(unit >> shift) & 15];
    };
    for (std::size_t i = 0; i < escaped.size();) {
      const auto lead = static_cast<unsigned char>(escaped[i]);
      if (lead < 0x7f) {
        out += escaped[i++];
        continue;
      }
      if (lead == 0x7f) {  // DEL: ASCII, but outside Python's printable range, so escaped too
        append_unit(lead);
        ++i;
        continue;
      }
      // Valid UTF-8 (the writer checked every name): a lead byte and its continuation bytes.
      const std::size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
      unsigned code = lead & (0x7fu >> length);
      for (std::size_t k = 1; k < length; ++k)
        code = (code << 6) | (static_cast<unsigned char>(escaped[i + k]) & 0x3fu);
      i += length;
      if (code >= 0x10000) {
        code -= 0x10000;
        append_unit(0xd800 + (code >> 10));
        append_unit(0xdc00 + (code & 0x3ff));
      } else {
        append_unit(code);
      }
    }
  };
  std::string out =
      "{\n  \"metadata\": {\n    \"total_size\": " + std::to_string(total_size) + "\n  },\n  \"weight_map\": {";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    out += i == 0 ? "\n    " : ",\n    ";
    append_ascii_string(out, entries[i].first);
    out += ": ";
    append_ascii_string(out, entries[i].second);
  }
  out += entries.empty() ? "}\n}\n" : "\n  }\n}\n";
  return out;
}
}  // namespace detail

/// Writes a model as shards of at most max_shard_size tensor bytes, split in declaration order,
/// with the index written as transformers writes it (2-space indentation, sorted keys, a final
/// newline); one shard and no index when everything fits. The directory is created if needed;
/// one that already holds a model is refused (see shard_options::replace).
///
/// Streaming and crash-safe: each shard's file is created on its first write, under a temporary
/// name, and closed as soon as its tensors are complete, so a model written shard by shard keeps
/// one file open at a time. finish() writes the index under a temporary name too, then renames
/// every shard into place and the index last: no index ever names a shard that is not complete,
/// and a write that fails, or a writer destroyed before finish(), leaves no shard behind
/// (temporary files are removed; shards already renamed by a finish() whose later rename failed
/// are removed too). When a model is replaced and a new shard has an old one's name, the rename
/// replaces it: between that rename and the index's, the directory's old index names a new shard,
/// which a reader's check of the shard against the index refuses (InvalidIndex).
class sharded_writer {
 public:
  // Move-only, as every writer: a copy would write the same shards twice.
  sharded_writer(sharded_writer&&) noexcept = default;
  sharded_writer& operator=(sharded_writer&&) noexcept = default;
  sharded_writer(const sharded_writer&) = delete;
  sharded_writer& operator=(const sharded_writer&) = delete;
  ~sharded_writer() = default;

  /// Plans the shards in `directory`. Nothing is written yet.
  static result<sharded_writer> try_create(const std::string& directory, std::vector<tensor_declaration> declarations,
                                           const shard_options& options = {}) {
    auto checked = file_layout::try_make(declarations, {}, options.write);
    if (!checked) return checked.error();
    std::error_code failure;
    std::filesystem::create_directories(directory, failure);
    if (failure || !std::filesystem::is_directory(directory, failure))
      return error(error_kind::io_error, detail::quote(directory) + ": cannot create the directory" +
                                             (failure ? ": " + failure.message() : std::string(": not a directory")));
    sharded_writer writer;
    writer.directory_ = directory;
    if (auto old = writer.find_old_model(options.replace); !old) return old.error();

    std::vector<std::vector<tensor_declaration>> groups;
    std::uint64_t group_size = 0;
    for (tensor_declaration& declaration : declarations) {
      const std::uint64_t size = checked->entries()[*checked->find(declaration.name)].byte_size();
      if (groups.empty() ||
          (group_size > 0 && size > options.max_shard_size - std::min(group_size, options.max_shard_size))) {
        groups.emplace_back();
        group_size = 0;
      }
      group_size += size;
      writer.total_size_ += size;
      groups.back().push_back(std::move(declaration));
    }
    if (groups.empty()) groups.emplace_back();

    const std::size_t count = groups.size();
    auto number = [](std::size_t n) {
      std::string digits = std::to_string(n);
      return std::string(digits.size() < 5 ? 5 - digits.size() : 0, '0') + digits;
    };
    for (std::size_t i = 0; i < count; ++i) {
      std::string file_name = count == 1
                                  ? options.base_name + ".safetensors"
                                  : options.base_name + "-" + number(i + 1) + "-of-" + number(count) + ".safetensors";
      for (const tensor_declaration& d : groups[i]) writer.shard_of_.emplace_back(d.name, i);
      auto layout = file_layout::try_make(std::move(groups[i]), options.metadata, options.write);
      if (!layout) return layout.error();
      writer.shards_.push_back({std::move(*layout), std::nullopt});
      writer.file_names_.push_back(std::move(file_name));
    }
    std::sort(writer.shard_of_.begin(), writer.shard_of_.end());
    if (count > 1) writer.index_path_ = writer.path_of(options.base_name + ".safetensors.index.json");
    writer.sync_ = options.write.sync;
    return writer;
  }
  /// As try_create; throws safetensors::exception (aborts without exceptions) on failure.
  static sharded_writer create(const std::string& directory, std::vector<tensor_declaration> declarations,
                               const shard_options& options = {}) {
    return try_create(directory, std::move(declarations), options).value();
  }

  /// The shards' file names, in order.
  const std::vector<std::string>& file_names() const noexcept { return file_names_; }
  /// The index's path, empty when there is one shard.
  const std::string& index_path() const noexcept { return index_path_; }

  /// Appends `chunk` to the tensor named `name` (see basic_writer::try_write). A shard whose
  /// tensors are all complete is closed at once.
  result<void> try_write(std::string_view name, span<const std::byte> chunk) {
    auto writer = shard_for(name);
    if (!writer) return writer.error();
    if ((*writer)->closed()) {
      // Closed early with every byte in place: only an empty chunk still fits.
      if (chunk.empty()) return {};
      return error(error_kind::tensor_invalid_info, "tensor " + detail::quote(name) + " is complete: a chunk of " +
                                                        std::to_string(chunk.size()) + " bytes would overrun it");
    }
    if (auto wrote = (*writer)->try_write(name, chunk); !wrote) return wrote;
    return close_if_complete(**writer);
  }
  /// Appends `chunk` to the tensor named `name` (see try_write); throws on an error.
  void write(std::string_view name, span<const std::byte> chunk) { try_write(name, chunk).value(); }
  /// Fills the tensor named `name` from a producer (see basic_writer::try_produce).
  template <class Producer>
  result<void> try_produce(std::string_view name, Producer&& producer) {
    auto writer = shard_for(name);
    if (!writer) return writer.error();
    if ((*writer)->closed()) return {};  // closed early: the tensor has all its bytes already
    if (auto produced = (*writer)->try_produce(name, std::forward<Producer>(producer)); !produced) return produced;
    return close_if_complete(**writer);
  }
  /// Fills the tensor named `name` from a producer (see try_produce); throws on an error.
  template <class Producer>
  void produce(std::string_view name, Producer&& producer) {
    try_produce(name, std::forward<Producer>(producer)).value();
  }

  /// Closes every shard not yet closed (each must be complete), renames them all into place,
  /// writes the index, and removes the model the directory held before, if it was to be
  /// replaced. On a failure nothing of the new model is left.
  result<void> try_finish() {
    if (finished_) return error(error_kind::invalid_argument, "the writer has already finished");
    finished_ = true;
    result<void> outcome = publish();
    if (!outcome) {
      remove_published();
      shards_.clear();  // their temporary files go with them
    }
    return outcome;
  }
  /// Completes the model (see try_finish); throws on an error.
  void finish() { try_finish().value(); }

 private:
  struct shard {
    file_layout layout;
    std::optional<file_writer> writer;
  };

  sharded_writer() = default;

  std::string path_of(const std::string& file_name) const { return detail::join_path(directory_, file_name); }

  // The files of the model the directory holds: its index files and the shards they name, or
  // without an index its .safetensors files. Refused unless `replace`.
  result<void> find_old_model(bool replace) {
    auto found = detail::list_models(directory_);
    if (!found) return found.error();
    const auto& [indexes, files] = *found;
    if (indexes.empty() && files.empty()) return {};
    if (!replace) {
      const std::string first = indexes.empty() ? files.front() : indexes.front();
      const std::size_t others = indexes.size() + files.size() - 1;
      return error(
          error_kind::invalid_argument,
          detail::quote(directory_) + ": already holds a model (" + detail::quote(first) +
              (others == 0 ? std::string() : " and " + std::to_string(others) + (others == 1 ? " other" : " others")) +
              "), which a new one replaces only when told to (shard_options::replace)");
    }
    // Only what is surely the old model goes: its index, and the files a valid index names that
    // are valid safetensors files themselves. An index that does not parse names nothing that
    // is removed (its weight_map may name config.json); it is replaced or removed itself.
    for (const std::string& index : indexes) {
      old_files_.push_back(path_of(index));
      auto text = detail::read_text_file(path_of(index));
      if (!text) continue;
      auto parsed = model_index::try_parse(std::move(*text));
      if (!parsed) continue;
      for (const std::string& file : parsed->shard_files()) {
        if (is_old_shard(file)) old_files_.push_back(path_of(file));
      }
    }
    if (indexes.empty()) {
      for (const std::string& file : files) {
        if (is_old_shard(file)) old_files_.push_back(path_of(file));
      }
    }
    return {};
  }

  // A file of the old model that may be removed: a .safetensors file that opens as one.
  bool is_old_shard(const std::string& file_name) const {
    if (!detail::ends_with(file_name, ".safetensors")) return false;
    auto file = pread_file::try_open(path_of(file_name));
    return file && basic_reader<pread_file>::try_open(std::move(*file)).has_value();
  }

  // Every file is complete and closed under a temporary name, the index too, before the first is
  // renamed into place: what can still fail then is a rename.
  result<void> publish() {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      auto writer = writer_of(i);
      if (!writer) return writer.error();
      if (auto closed = (*writer)->try_close(); !closed) return closed;
    }
    std::optional<file_sink> index;
    if (!index_path_.empty()) {
      std::vector<std::pair<std::string, std::string>> entries;
      entries.reserve(shard_of_.size());
      for (const auto& [name, number] : shard_of_) entries.emplace_back(name, file_names_[number]);
      const std::string text = detail::index_json(total_size_, entries);
      auto sink = file_sink::try_create(index_path_, sync_);
      if (!sink) return sink.error();
      if (auto wrote = sink->write_at(0, reinterpret_cast<const std::byte*>(text.data()), text.size()); !wrote)
        return wrote;
      if (auto closed = sink->close(); !closed) return closed;
      index.emplace(std::move(*sink));
    }
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      if (auto renamed = shards_[i].writer->try_finish(); !renamed) return renamed;
      published_.push_back(path_of(file_names_[i]));
    }
    if (index) {
      if (auto committed = index->commit(); !committed) return committed;
    }
    // The new model is complete: the old one's files that it did not overwrite go.
    std::vector<std::string> kept = published_;
    kept.push_back(index_path_);
    for (const std::string& old : old_files_) {
      if (std::find(kept.begin(), kept.end(), old) != kept.end()) continue;
      std::error_code ignored;
      std::filesystem::remove(old, ignored);
    }
    published_.clear();
    return {};
  }

  void remove_published() noexcept {
    for (const std::string& path : published_) {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
    published_.clear();
  }

  // Writing shard by shard, as most callers do, keeps one file open at a time.
  static result<void> close_if_complete(file_writer& shard) {
    if (shard.closed() || !shard.complete()) return {};
    return shard.try_close();
  }

  result<file_writer*> shard_for(std::string_view name) {
    if (finished_) return error(error_kind::invalid_argument, "the writer has already finished");
    auto it = std::lower_bound(shard_of_.begin(), shard_of_.end(), name,
                               [](const auto& entry, std::string_view n) { return entry.first < n; });
    if (it == shard_of_.end() || it->first != name)
      return error(error_kind::tensor_not_found, "no tensor named " + detail::quote(name) + " was declared");
    return writer_of(it->second);
  }

  // A shard's file is created on its first write, so that a model written shard by shard keeps
  // one file open at a time, however many shards it has.
  result<file_writer*> writer_of(std::size_t index) {
    shard& s = shards_[index];
    if (!s.writer) {
      auto sink = file_sink::try_create(path_of(file_names_[index]), sync_);
      if (!sink) return sink.error();
      auto started = file_writer::try_start(s.layout, std::move(*sink));
      if (!started) return started.error();
      s.writer.emplace(std::move(*started));
    }
    return &*s.writer;
  }

  std::vector<shard> shards_;
  std::string directory_;
  std::vector<std::string> file_names_;
  std::vector<std::pair<std::string, std::size_t>> shard_of_;
  std::string index_path_;
  std::vector<std::string> old_files_;  // the model being replaced
  std::vector<std::string> published_;  // new shards renamed into place by a finish() under way
  std::uint64_t total_size_ = 0;
  bool sync_ = false;
  bool finished_ = false;
};

/// Starts writing a sharded model in `directory`; see sharded_writer.
inline result<sharded_writer> try_make_sharded_writer(const std::string& directory,
                                                      std::vector<tensor_declaration> declarations,
                                                      const shard_options& options = {}) {
  return sharded_writer::try_create(directory, std::move(declarations), options);
}
/// Starts writing a sharded model in `directory`; throws safetensors::exception.
inline sharded_writer make_sharded_writer(const std::string& directory, std::vector<tensor_declaration> declarations,
                                          const shard_options& options = {}) {
  return try_make_sharded_writer(directory, std::move(declarations), options).value();
}

#endif  // SAFETENSORS_NO_FILESYSTEM

}  // namespace safetensors

#endif  // SAFETENSORS_MODEL_HPP
