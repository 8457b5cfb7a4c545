// safetensors-hpp: sharded models, read and written with their model.safetensors.index.json.
// A companion of safetensors.hpp (which it includes); whoever reads only single files never
// needs it.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_MODEL_HPP
#define SAFETENSORS_MODEL_HPP

#include "safetensors.hpp"

#ifndef SAFETENSORS_NO_FILESYSTEM

#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

namespace safetensors {

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints: model-00001-of-00003.safetensors ... with model.safetensors.index.json
// ---------------------------------------------------------------------------------------------


namespace detail {
/// The directory part of `path` ("." when it has none) and its file name.
inline std::pair<std::string, std::string> split_path(const std::string& path) {
  const std::string::size_type slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

/// A shard's file name as an index lists it: a plain name in the index's directory. Anything
/// that could lead elsewhere (a separator, "..") is refused: indexes come from the internet.
inline bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

inline error index_error(const std::string& index_path, const std::string& what) {
  return error(error_kind::invalid_index, "index " + quote(index_path) + ": " + what);
}
}  // namespace detail

/// A model stored as one safetensors file or as shards listed by an index
/// (model.safetensors.index.json, the Hugging Face convention), read as one set of tensors.
/// Shards are mapped on first use and shared; like a reader, it may be used from many threads.
///
/// Opening checks the index itself (a JSON object whose weight_map maps each tensor to a shard
/// file once, plain file names, every shard present). A shard is checked against the index when
/// it is first opened: every tensor the index places there is in it, and it holds no other.
/// validate() opens every shard and also checks metadata.total_size.
class model_reader {
 public:
  /// Opens `path`: an index (a path ending in .json); a directory holding one
  /// (model.safetensors.index.json, or its only *.safetensors.index.json) or else exactly one
  /// .safetensors file; or any other path, read as a single safetensors file. A missing shard,
  /// or a directory with no single index or file, is an IoError; a malformed index InvalidIndex.
  static result<model_reader> open(const std::string& path, const read_options& options = {}) {
    std::error_code failure;
    const std::filesystem::path location(path);
    if (std::filesystem::is_directory(location, failure)) {
      auto found = find_in_directory(location);
      if (!found) return found.error();
      return open(*found, options);
    }
    const bool is_index = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
    model_reader model;
    model.options_ = options;
    if (!is_index) {
      model.shard_paths_.push_back(path);
      model.shards_.push_back(std::make_unique<shard>());
      auto single = model.try_shard(0);
      if (!single) return single.error();
      for (const tensor_info& info : (*single)->tensors()) model.weight_map_.emplace_back(std::string(info.name), 0);
      std::sort(model.weight_map_.begin(), model.weight_map_.end());
      return model;
    }
    if (auto read = model.read_index(path); !read) return read.error();
    return model;
  }

  /// Number of tensors.
  std::size_t size() const noexcept { return weight_map_.size(); }
  /// Every tensor's name with the position of its shard in shard_paths(), sorted by name.
  const std::vector<std::pair<std::string, std::size_t>>& tensor_names() const noexcept { return weight_map_; }
  /// The shards' paths, in file-name order (one for a single file).
  const std::vector<std::string>& shard_paths() const noexcept { return shard_paths_; }
  /// The index's path, empty for a single file.
  const std::string& index_path() const noexcept { return index_path_; }
  /// metadata.total_size from the index, if it had one.
  std::optional<std::uint64_t> total_size() const noexcept { return total_size_; }
  /// True when a tensor is named `name`.
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

  /// The reader of shard `index`, opened and checked against the index on first use and kept.
  /// A failure is not kept: the next call tries again, so a shard that was still being copied
  /// or briefly unreadable (too many open files, say) opens once it is whole. A shard that stays
  /// broken is therefore opened and parsed again by every lookup that reaches it.
  result<const mapped_reader*> try_shard(std::size_t index) const {
    if (index >= shards_.size())
      return error(error_kind::invalid_argument, "there are " + std::to_string(shards_.size()) + " shards, not " +
                                                     std::to_string(index + 1));
    shard& slot = *shards_[index];
    std::lock_guard<std::mutex> lock(slot.lock);
    if (!slot.reader) {
      auto opened = safetensors::try_open(shard_paths_[index], options_);
      if (!opened) return opened.error();
      if (auto agrees = check_shard(index, *opened); !agrees) return agrees.error();
      slot.reader = std::make_unique<mapped_reader>(std::move(*opened));
    }
    return static_cast<const mapped_reader*>(slot.reader.get());
  }

  /// The tensor named `name`, from its shard, or TensorNotFound.
  result<const tensor_info*> try_info(std::string_view name) const {
    auto located = locate(name);
    if (!located) return located.error();
    return located->second;
  }
  /// A zero-copy view of the tensor named `name`, or TensorNotFound (or the shard's error).
  result<tensor_view> try_view(std::string_view name) const {
    auto located = locate(name);
    if (!located) return located.error();
    return located->first->view(*located->second);
  }
  /// A zero-copy view of the tensor named `name`; throws safetensors::exception.
  tensor_view view(std::string_view name) const { return try_view(name).value(); }
  /// The reader holding the tensor named `name`, for slices, loads and residency control.
  result<const mapped_reader*> try_reader_of(std::string_view name) const {
    auto located = locate(name);
    if (!located) return located.error();
    return located->first;
  }

  /// Opens every shard (each checked against the index) and checks that metadata.total_size,
  /// when the index has one, is the sum of the tensors' byte sizes.
  result<void> validate() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      auto reader = try_shard(i);
      if (!reader) return reader.error();
      for (const tensor_info& info : (*reader)->tensors()) sum += info.byte_size();
    }
    if (total_size_ && *total_size_ != sum)
      return detail::index_error(index_path_, "metadata.total_size is " + std::to_string(*total_size_) +
                                                  " but the tensors hold " + std::to_string(sum) + " bytes");
    return {};
  }

 private:
  struct shard {
    std::mutex lock;
    std::unique_ptr<mapped_reader> reader;
  };

  model_reader() = default;

  const std::pair<std::string, std::size_t>* find(std::string_view name) const noexcept {
    auto it = std::lower_bound(weight_map_.begin(), weight_map_.end(), name,
                               [](const auto& entry, std::string_view n) { return entry.first < n; });
    if (it == weight_map_.end() || it->first != name) return nullptr;
    return &*it;
  }

  result<std::pair<const mapped_reader*, const tensor_info*>> locate(std::string_view name) const {
    const auto* entry = find(name);
    if (entry == nullptr) return error(error_kind::tensor_not_found, "no tensor named " + detail::quote(name));
    auto reader = try_shard(entry->second);
    if (!reader) return reader.error();
    return std::make_pair(*reader, (*reader)->find(name));
  }

  static result<std::string> find_in_directory(const std::filesystem::path& directory) {
    std::error_code failure;
    const std::filesystem::path standard = directory / "model.safetensors.index.json";
    if (std::filesystem::is_regular_file(standard, failure)) return standard.string();
    std::vector<std::string> indexes, files;
    for (std::filesystem::directory_iterator it(directory, failure), end; !failure && it != end; it.increment(failure)) {
      const std::string name = it->path().filename().string();
      auto ends_with = [&](std::string_view suffix) {
        return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
      };
      if (ends_with(".safetensors.index.json")) indexes.push_back(it->path().string());
      if (ends_with(".safetensors")) files.push_back(it->path().string());
    }
    if (failure) return error(error_kind::io_error, "cannot list " + detail::quote(directory.string()) + ": " + failure.message());
    if (indexes.size() == 1) return indexes[0];
    if (indexes.empty() && files.size() == 1) return files[0];
    return error(error_kind::io_error, "directory " + detail::quote(directory.string()) + " holds " +
                                           std::to_string(indexes.size()) + " index files and " +
                                           std::to_string(files.size()) +
                                           " .safetensors files: name the index or the file to open");
  }

  result<void> read_index(const std::string& path) {
    index_path_ = path;
    auto file = pread_file::open(path);
    if (!file) return file.error();
    if (file->size() > SAFETENSORS_MAX_HEADER_SIZE)
      return detail::index_error(path, "larger than " + std::to_string(SAFETENSORS_MAX_HEADER_SIZE) + " bytes");
    std::string text(static_cast<std::size_t>(file->size()), '\0');
    if (auto read = file->read_at(0, reinterpret_cast<std::byte*>(text.data()), text.size()); !read) return read.error();

    // nlohmann keeps the last of two equal keys without a word; the callback sees every key, and
    // a tensor listed twice would otherwise hide one of its shards.
    // Keys are watched in the root object and the objects directly in it (metadata, weight_map).
    std::string repeated;
    std::array<std::set<std::string>, 3> keys_at_depth;
    auto watch_keys = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      const auto level = static_cast<std::size_t>(depth);
      if (event == nlohmann::json::parse_event_t::object_start && level + 1 < keys_at_depth.size()) {
        keys_at_depth[level + 1].clear();
      } else if (event == nlohmann::json::parse_event_t::key && level < keys_at_depth.size() && parsed.is_string() &&
                 !keys_at_depth[level].insert(parsed.get<std::string>()).second && repeated.empty()) {
        repeated = parsed.get<std::string>();
      }
      return true;
    };
    nlohmann::json index = nlohmann::json::parse(text, watch_keys, false);
    if (index.is_discarded()) return detail::index_error(path, "not valid JSON");
    if (!repeated.empty()) return detail::index_error(path, "the key " + detail::quote(repeated) + " appears twice");
    if (!index.is_object()) return detail::index_error(path, "not a JSON object");
    const auto metadata = index.find("metadata");
    if (metadata != index.end() && !metadata->is_null()) {
      if (!metadata->is_object()) return detail::index_error(path, "metadata is not an object");
      const auto total = metadata->find("total_size");
      if (total != metadata->end()) {
        if (!total->is_number_unsigned()) return detail::index_error(path, "metadata.total_size is not an unsigned integer");
        total_size_ = total->get<std::uint64_t>();
      }
    }
    const auto weight_map = index.find("weight_map");
    if (weight_map == index.end() || !weight_map->is_object())
      return detail::index_error(path, "weight_map is missing or not an object");

    const std::string directory = detail::split_path(path).first;
    std::map<std::string, std::size_t> shard_numbers;  // shards in file-name order
    for (const auto& [name, file] : weight_map->items()) {
      if (!file.is_string())
        return detail::index_error(path, "the shard of tensor " + detail::quote(name) + " is not a string");
      const std::string& file_name = file.get_ref<const std::string&>();
      if (!detail::is_plain_file_name(file_name))
        return detail::index_error(path, "shard " + detail::quote(file_name) + " of tensor " + detail::quote(name) +
                                             " is not a plain file name in the index's directory");
      shard_numbers.emplace(file_name, 0);
    }
    for (auto& [file_name, number] : shard_numbers) {
      std::string shard_path = directory + "/" + file_name;
      std::error_code failure;
      if (!std::filesystem::is_regular_file(shard_path, failure))
        return error(error_kind::io_error, "index " + detail::quote(path) + " lists shard " + detail::quote(file_name) +
                                               ", which is missing");
      number = shard_paths_.size();
      shard_paths_.push_back(std::move(shard_path));
      shards_.push_back(std::make_unique<shard>());
    }
    for (const auto& [name, file] : weight_map->items())
      weight_map_.emplace_back(name, shard_numbers[file.get_ref<const std::string&>()]);
    std::sort(weight_map_.begin(), weight_map_.end());
    return {};
  }

  // Every tensor the index places in shard `index` is there, and the shard holds no other.
  result<void> check_shard(std::size_t index, const mapped_reader& reader) const {
    if (index_path_.empty()) return {};
    const std::string& shard_name = shard_paths_[index];
    for (const tensor_info& info : reader.tensors()) {
      const auto* entry = find(info.name);
      if (entry == nullptr)
        return detail::index_error(index_path_, "shard " + detail::quote(shard_name) + " holds tensor " +
                                                    detail::quote(info.name) + ", which the index does not list");
      if (entry->second != index)
        return detail::index_error(index_path_, "tensor " + detail::quote(info.name) + " is in shard " +
                                                    detail::quote(shard_name) + " but the index lists it in " +
                                                    detail::quote(shard_paths_[entry->second]));
    }
    for (const auto& [name, shard_index] : weight_map_) {
      if (shard_index == index && !reader.contains(name))
        return detail::index_error(index_path_, "the index lists tensor " + detail::quote(name) + " in shard " +
                                                    detail::quote(shard_name) + ", which does not hold it");
    }
    return {};
  }

  std::vector<std::string> shard_paths_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::vector<std::pair<std::string, std::size_t>> weight_map_;
  std::string index_path_;
  std::optional<std::uint64_t> total_size_;
  read_options options_;
};

/// Opens a model: an index, a directory, or a single file (see model_reader::open).
inline result<model_reader> try_open_model(const std::string& path, const read_options& options = {}) {
  return model_reader::open(path, options);
}
/// Opens a model; throws safetensors::exception.
inline model_reader open_model(const std::string& path, const read_options& options = {}) {
  return try_open_model(path, options).value();
}

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
};

/// Writes a model as shards of at most max_shard_size tensor bytes, split in declaration order,
/// with the index written as transformers writes it (2-space indentation, sorted keys, a final
/// newline); one shard and no index when everything fits. The directory is created if needed.
/// Streaming and crash-safe like file_writer: each shard's file is created on its first write,
/// under a temporary name, and renamed into place once all its tensors are complete (or by
/// finish()), the index last, so an index never names a shard that is not complete. Written
/// shard by shard, a model keeps one file open at a time.
class sharded_writer {
 public:
  /// Plans the shards and starts writing each one in `directory`.
  static result<sharded_writer> create(const std::string& directory, std::vector<tensor_declaration> declarations,
                                       const shard_options& options = {}) {
    auto checked = file_layout::make(declarations, {}, options.write);
    if (!checked) return checked.error();
    std::error_code failure;
    std::filesystem::create_directories(directory, failure);
    if (failure) return error(error_kind::io_error, "cannot create " + detail::quote(directory) + ": " + failure.message());
    sharded_writer writer;
    std::vector<std::vector<tensor_declaration>> groups;
    std::uint64_t group_size = 0;
    for (tensor_declaration& declaration : declarations) {
      const std::uint64_t size = checked->entries()[*checked->find(declaration.name)].byte_size();
      if (groups.empty() || (group_size > 0 && size > options.max_shard_size - std::min(group_size, options.max_shard_size))) {
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
      std::string file_name = count == 1 ? options.base_name + ".safetensors"
                                         : options.base_name + "-" + number(i + 1) + "-of-" + number(count) + ".safetensors";
      for (const tensor_declaration& d : groups[i]) writer.shard_of_.emplace_back(d.name, i);
      auto layout = file_layout::make(std::move(groups[i]), options.metadata, options.write);
      if (!layout) return layout.error();
      writer.shards_.push_back({std::move(*layout), std::nullopt});
      writer.file_names_.push_back(std::move(file_name));
    }
    std::sort(writer.shard_of_.begin(), writer.shard_of_.end());
    writer.directory_ = directory;
    if (count > 1) writer.index_path_ = directory + "/" + options.base_name + ".safetensors.index.json";
    writer.sync_ = options.write.sync;
    return writer;
  }

  /// The shards' file names, in order.
  const std::vector<std::string>& file_names() const noexcept { return file_names_; }
  /// The index's path, empty when there is one shard.
  const std::string& index_path() const noexcept { return index_path_; }

  /// Appends `chunk` to the tensor named `name` (see basic_writer::write). A shard whose
  /// tensors are all complete is finished at once, closing its file.
  result<void> write(std::string_view name, span<const std::byte> chunk) {
    auto shard = shard_for(name);
    if (!shard) return shard.error();
    if ((*shard)->finished()) {
      // Finished early with every byte in place: only an empty chunk still fits.
      if (chunk.empty()) return {};
      return error(error_kind::tensor_invalid_info, "tensor " + detail::quote(name) +
                                                        " is complete: a chunk of " + std::to_string(chunk.size()) +
                                                        " bytes would overrun it");
    }
    if (auto wrote = (*shard)->write(name, chunk); !wrote) return wrote;
    return finish_if_complete(**shard);
  }
  /// Fills the tensor named `name` from a producer (see basic_writer::produce).
  template <class Producer>
  result<void> produce(std::string_view name, Producer&& producer) {
    auto shard = shard_for(name);
    if (!shard) return shard.error();
    if ((*shard)->finished()) return {};  // finished early: the tensor has all its bytes already
    if (auto produced = (*shard)->produce(name, std::forward<Producer>(producer)); !produced) return produced;
    return finish_if_complete(**shard);
  }

  /// Finishes every shard not yet finished, then writes the index. Shards renamed into place stay
  /// if a later one fails; the index is written only when all are.
  result<void> finish() {
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      auto shard = writer_of(i);
      if (!shard) return shard.error();
      if ((*shard)->finished()) continue;
      if (auto finished = (*shard)->finish(); !finished) return finished;
    }
    if (index_path_.empty()) return {};
    nlohmann::json index;
    index["metadata"]["total_size"] = total_size_;
    index["weight_map"] = nlohmann::json::object();
    for (const auto& [name, shard] : shard_of_) index["weight_map"][name] = file_names_[shard];
    // As Python's json.dumps(index, indent=2, sort_keys=True) + "\n": non-ASCII escaped.
    const std::string text = index.dump(2, ' ', true) + "\n";
    auto sink = file_sink::create(index_path_, sync_);
    if (!sink) return sink.error();
    if (auto wrote = sink->write_at(0, reinterpret_cast<const std::byte*>(text.data()), text.size()); !wrote) return wrote;
    return sink->commit();
  }

 private:
  sharded_writer() = default;

  // Writing shard by shard, as most callers do, keeps one file open at a time.
  static result<void> finish_if_complete(file_writer& shard) {
    if (shard.finished() || !shard.complete()) return {};
    return shard.finish();
  }

  result<file_writer*> shard_for(std::string_view name) {
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
      auto sink = file_sink::create(directory_ + "/" + file_names_[index], sync_);
      if (!sink) return sink.error();
      auto started = file_writer::start(s.layout, std::move(*sink));
      if (!started) return started.error();
      s.writer.emplace(std::move(*started));
    }
    return &*s.writer;
  }

  struct shard {
    file_layout layout;
    std::optional<file_writer> writer;
  };

  std::vector<shard> shards_;
  std::string directory_;
  std::vector<std::string> file_names_;
  std::vector<std::pair<std::string, std::size_t>> shard_of_;
  std::string index_path_;
  std::uint64_t total_size_ = 0;
  bool sync_ = false;
};

/// Starts writing a sharded model in `directory`; see sharded_writer.
inline result<sharded_writer> try_make_sharded_writer(const std::string& directory,
                                                      std::vector<tensor_declaration> declarations,
                                                      const shard_options& options = {}) {
  return sharded_writer::create(directory, std::move(declarations), options);
}
/// Starts writing a sharded model in `directory`; throws safetensors::exception.
inline sharded_writer make_sharded_writer(const std::string& directory, std::vector<tensor_declaration> declarations,
                                          const shard_options& options = {}) {
  return try_make_sharded_writer(directory, std::move(declarations), options).value();
}

}  // namespace safetensors

#endif  // SAFETENSORS_NO_FILESYSTEM

#endif  // SAFETENSORS_MODEL_HPP
