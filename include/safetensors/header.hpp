// safetensors-hpp: the header of a file: checked sizes, the name table, metadata_map and the header parser that validates every rule of the format.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_HEADER_HPP
#define SAFETENSORS_HEADER_HPP

#include "json_scanner.hpp"
#include "tensor.hpp"
#include "config.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if !defined(SAFETENSORS_NO_FILESYSTEM) && !defined(_WIN32)
// getrandom for the name-hash seed: glibc 2.25 and later, musl, Android from API 28.
#if defined(__linux__) && defined(__has_include)
#if __has_include(<sys/random.h>) && (!defined(__ANDROID__) || __ANDROID_API__ >= 28)
#include <sys/random.h>
#define SAFETENSORS_DETAIL_HAS_GETRANDOM 1
#endif
#endif
#endif

namespace safetensors {

namespace detail {
struct metadata_access;
}  // namespace detail

/// The header's `__metadata__`: string keys to string values, sorted by key (keys are unique).
class metadata_map {
 public:
  using entry = std::pair<std::string, std::string>;

  /// The value of `key`, or nullptr.
  const std::string* find(std::string_view key) const noexcept {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                               [](const entry& e, std::string_view k) { return e.first < k; });
    if (it == entries_.end() || it->first != key) return nullptr;
    return &it->second;
  }
  /// Number of entries.
  std::size_t size() const noexcept { return entries_.size(); }
  /// True when there are no entries.
  bool empty() const noexcept { return entries_.empty(); }
  /// Entries in key order.
  std::vector<entry>::const_iterator begin() const noexcept { return entries_.begin(); }
  /// End of the entries.
  std::vector<entry>::const_iterator end() const noexcept { return entries_.end(); }

 private:
  friend struct detail::metadata_access;
  std::vector<entry> entries_;
};

namespace detail {
/// Grants the parser access to metadata_map's entries.
struct metadata_access {
  static std::vector<metadata_map::entry>& entries(metadata_map& map) { return map.entries_; }
};
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Parsing, in detail: checked arithmetic, the size rule, UTF-8, the name table, the JSON and
// header scanners
// ---------------------------------------------------------------------------------------------

namespace detail {

/// a * b, or false when it overflows.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// a + b, or false when it overflows.
inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (b > std::numeric_limits<std::uint64_t>::max() - a) return false;
  out = a + b;
  return true;
}

/// A tensor's element count and byte size.
struct tensor_size {
  std::uint64_t elements;
  std::uint64_t bytes;
};

/// docs/FORMAT.md rules 8 and 9 for one tensor, the one check the reader and the writer share: the element
/// count by checked multiplication left to right over `shape` (so [2^32, 2^32, 0] overflows before
/// the zero is reached), then the bit count, which must fill whole bytes. True with `out` set when
/// both hold; size_error() then says which broke. Split so that the reader's loop over every
/// tensor stays a few inlined instructions.
inline bool fits_size_rules(dtype type, span<const std::uint64_t> shape, tensor_size& out) noexcept {
  std::uint64_t elements = 1;
  for (std::uint64_t dim : shape) {
    if (!checked_mul(elements, dim, elements)) return false;
  }
  std::uint64_t bits = 0;
  if (!checked_mul(elements, dtype_bits(type), bits) || bits % 8 != 0) return false;
  out = {elements, bits / 8};
  return true;
}

/// The error of a tensor that fits_size_rules refused, naming it and the rule.
inline error size_error(std::string_view name, dtype type, span<const std::uint64_t> shape) {
  std::uint64_t elements = 1;
  for (std::uint64_t dim : shape) {
    if (!checked_mul(elements, dim, elements))
      return error(error_kind::validation_overflow,
                   "tensor " + quote(name) + ": the element count of its shape overflows 64 bits");
  }
  std::uint64_t bits = 0;
  if (!checked_mul(elements, dtype_bits(type), bits))
    return error(error_kind::validation_overflow, "tensor " + quote(name) + ": " + std::to_string(elements) + " " +
                                                      std::string(dtype_name(type)) +
                                                      " elements overflow 64 bits when counted in bits");
  return error(error_kind::misaligned_slice, "tensor " + quote(name) + ": " + std::to_string(elements) + " " +
                                                 std::string(dtype_name(type)) + " elements fill " +
                                                 std::to_string(bits) + " bits, not a whole number of bytes");
}

/// docs/FORMAT.md rules 8 and 9 for one tensor (see fits_size_rules), as a result naming the tensor.
inline result<tensor_size> size_of_tensor(std::string_view name, dtype type, span<const std::uint64_t> shape) {
  tensor_size size{};
  if (fits_size_rules(type, shape, size)) return size;
  return size_error(name, type, shape);
}

/// A seed for hash_name, different in every process and unknown outside it: the name table
/// cannot be flooded by a file whose names were chosen offline to collide. From the system's
/// random source where the library knows one (getrandom on Linux, arc4random_buf on Apple's
/// systems and the BSDs); else, as on Windows or with SAFETENSORS_NO_FILESYSTEM, from the clock
/// and an address that moves with address-space layout randomisation.
inline std::uint64_t hash_seed() noexcept {
  static const std::uint64_t seed = [] {
    std::uint64_t random = 0;
#if defined(SAFETENSORS_DETAIL_HAS_GETRANDOM)
    if (::getrandom(&random, sizeof random, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof random)) return random;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
    ::arc4random_buf(&random, sizeof random);
    return random;
#endif
    static const int anchor = 0;
    random = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
             (static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&anchor)) << 17);
    random = (random ^ (random >> 30)) * 0xbf58476d1ce4e5b9ULL;
    random = (random ^ (random >> 27)) * 0x94d049bb133111ebULL;
    return random ^ (random >> 31);
  }();
  return seed;
}

/// The 128-bit product of `a` and `b` from 32-bit halves, its two halves xor-ed: fold_multiply
/// where the compiler has no 128-bit integer (MSVC), and what the tests compare it with.
inline std::uint64_t fold_multiply_by_halves(std::uint64_t a, std::uint64_t b) noexcept {
  const std::uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32, b_lo = b & 0xffffffffu, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
  const std::uint64_t middle = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;  // < 2^64: no carry lost
  const std::uint64_t low = (middle << 32) | (lo_lo & 0xffffffffu);
  const std::uint64_t high = hi_hi + (hi_lo >> 32) + (middle >> 32);
  return low ^ high;
}

/// The 128-bit product of `a` and `b`, its two halves xor-ed: every bit of the result depends on
/// every bit of both operands, which a 64-bit product (low bits from low bits only) cannot give.
inline std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) noexcept {
#if defined(__SIZEOF_INT128__)
  __extension__ typedef unsigned __int128 u128;
  const u128 product = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
#else
  return fold_multiply_by_halves(a, b);
#endif
}

/// 64-bit hash of a name under `seed`, eight bytes at a time. The seed enters every round through
/// a folded 128-bit product, so which names share the low bits of their hashes (the table slot)
/// changes with the seed: names cannot be chosen offline to collide under a seed they do not know.
inline std::uint64_t hash_name(std::string_view name, std::uint64_t seed) noexcept {
  constexpr std::uint64_t word_key = 0xa0761d6478bd642fULL, state_key = 0xe7037ed1a0b428dbULL;
  std::uint64_t h = fold_multiply(seed ^ word_key, name.size() ^ state_key);
  std::size_t i = 0;
  for (; i + 8 <= name.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, name.data() + i, 8);
    h = fold_multiply(word ^ seed ^ word_key, h ^ state_key);
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, name.data() + i, name.size() - i);
  h = fold_multiply(tail ^ seed ^ word_key, h ^ state_key);
  return fold_multiply(h ^ word_key, seed ^ state_key);
}

/// Tensor names to positions in an array, by open addressing with linear probing. A slot holds
/// the top 32 bits of the name's hash (its tag) and the position + 1 (0 marks an empty slot):
/// probes compare tags first and read a name only when they match, so names that merely share a
/// slot cost no cache miss and no compare. Names hash under the process's seed (hash_seed), so
/// no file can be made offline whose names collide. The names themselves stay where they are:
/// every call takes `name_at(position)`, which gives the name at a position.
class name_table {
 public:
  /// What find() gives for a name that is not there.
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

  /// The hash of `name` under the process's seed.
  static std::uint64_t hash(std::string_view name) noexcept { return hash_name(name, hash_seed()); }

  /// Empties the table and sizes it for `count` names (fewer than 2^32), at most half full.
  void reset(std::size_t count) {
    std::size_t size = 4;
    while (size < count * 2) size *= 2;
    slots_.assign(size, 0);
  }

  /// Asks the cache for the slot where a name hashed to `hash` starts probing, soon to be written:
  /// a caller inserting many names prefetches some ahead, since once the table outgrows the cache
  /// each insertion would otherwise wait for memory.
  void prefetch(std::uint64_t hash) const noexcept {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(&slots_[hash & (slots_.size() - 1)], 1);
#else
    (void)hash;
#endif
  }

  /// The position of `name` (hashed to `hash`), or npos.
  template <class NameAt>
  std::size_t find(std::string_view name, std::uint64_t hash, NameAt&& name_at) const {
    if (slots_.empty()) return npos;
    const std::uint64_t entry = slots_[probe(name, hash, name_at)];
    return entry == 0 ? npos : position_of(entry);
  }

  /// Inserts `position`, whose name `name` hashes to `hash`. Returns the position that already
  /// held that name (which `position` replaces), or `position` itself.
  template <class NameAt>
  std::size_t insert(std::size_t position, std::string_view name, std::uint64_t hash, NameAt&& name_at) {
    std::uint64_t& slot = slots_[probe(name, hash, name_at)];
    const std::size_t earlier = slot == 0 ? position : position_of(slot);
    slot = (hash & 0xffffffff00000000ULL) | (static_cast<std::uint64_t>(position) + 1);
    return earlier;
  }

 private:
  // The slot holding `name`, or the empty slot where it would go.
  template <class NameAt>
  std::size_t probe(std::string_view name, std::uint64_t hash, NameAt& name_at) const {
    const std::size_t mask = slots_.size() - 1;
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
      const std::uint64_t entry = slots_[slot];
      if (entry == 0 || (static_cast<std::uint32_t>(entry >> 32) == tag && name_at(position_of(entry)) == name))
        return slot;
    }
  }

  static std::size_t position_of(std::uint64_t entry) noexcept {
    return static_cast<std::size_t>(entry & 0xffffffffu) - 1;
  }

  std::vector<std::uint64_t> slots_;
};

/// Everything a header holds once scanned and validated. Names point into the header bytes (kept
/// by the storage, or in `owned_header`) or, when escaped, into `unescaped_names`; shapes into
/// `dims`. None of these move once built, so the views in `tensors` survive moving the index.
struct header_index {
  std::vector<tensor_info> tensors;         // in data order
  std::unique_ptr<char[]> owned_header;     // the header bytes, when the storage does not keep them
  std::unique_ptr<char[]> unescaped_names;  // names that had escapes, unescaped, back to back
  std::vector<std::uint64_t> dims;          // every shape, back to back
  name_table names;                         // positions in `tensors`
  metadata_map metadata;
  bool has_metadata = false;
  std::uint64_t header_length = 0;
  std::uint64_t data_size = 0;

  const tensor_info* find(std::string_view name) const {
    const std::size_t at = names.find(name, name_table::hash(name), [&](std::size_t i) { return tensors[i].name; });
    return at == name_table::npos ? nullptr : &tensors[at];
  }
};

}  // namespace detail

namespace detail {

/// Scans header JSON with the grammar of a safetensors header, enforcing docs/FORMAT.md rules 5 and 6:
/// strict JSON (json_scanner), root object, typed tensor entries, metadata of strings, unique
/// keys, nesting below 128 levels. Numbers in shape and data_offsets must be plain unsigned
/// integers.
class header_scanner : private json_scanner {
 public:
  header_scanner(const char* text, std::size_t size) noexcept : json_scanner(text, size, "header") {}

  /// Scans the whole header into `index`: tensors in parse order, their shapes and the metadata.
  /// Each tensor's element_count holds, until index_tensors, its dims offset << 32 | dims count.
  result<void> scan(header_index& index) {
    index_ = &index;
    // An entry takes at least 49 bytes ("":{"dtype":"F4","shape":[],"data_offsets":[0,0]}), which
    // bounds the count: reserving for it avoids copies and touches only the pages used.
    const std::size_t most_tensors = static_cast<std::size_t>(end_ - start_) / 49 + 1;
    index.tensors.reserve(most_tensors);
    index.dims.reserve(most_tensors * 4);
    skip_whitespace();
    if (cur_ == end_) return fail("the header is empty, expected a JSON object");
    if (*cur_ != '{') return fail("the header must be a JSON object");
    ++cur_;
    skip_whitespace();
    bool seen_metadata = false;
    if (cur_ < end_ && *cur_ == '}') {
      ++cur_;
    } else {
      for (;;) {
        std::string_view key;
        if (!scan_name(key)) return failure();
        if (!expect_colon()) return failure();
        if (key == "__metadata__") {
          if (seen_metadata) return fail("duplicate key \"__metadata__\"");
          seen_metadata = true;
          if (!scan_metadata(index)) return failure();
        } else {
          tensor_info& tensor = index.tensors.emplace_back();
          tensor.name = key;
          if (!scan_tensor_entry(key, tensor, index.dims)) return failure();
        }
        skip_whitespace();
        if (cur_ == end_) return fail("unexpected end of header, expected ',' or '}'");
        if (*cur_ == ',') {
          ++cur_;
          skip_whitespace();
          continue;
        }
        if (*cur_ == '}') {
          ++cur_;
          break;
        }
        return fail("expected ',' or '}' after an entry");
      }
    }
    skip_whitespace();
    if (cur_ != end_) return fail("unexpected bytes after the header's closing '}'");
    return {};
  }

 private:
  header_index* index_ = nullptr;
  std::size_t unescaped_used_ = 0;

  result<void> failure() { return safetensors::error(error_kind::invalid_header_deserialization, error_); }
  result<void> fail(const std::string& what) {
    set_error(what);
    return failure();
  }
  // A tensor name: a view of the header bytes when it has no escape (nearly always), else of its
  // unescaped copy. Unescaped text never outgrows its JSON spelling, so the copies' arena, sized to
  // the whole header, never overflows or moves.
  bool scan_name(std::string_view& out) {
    if (cur_ < end_ && *cur_ == '"') {
      const char* stop = find_run_end(cur_ + 1);
      if (stop < end_ && *stop == '"') {
        out = std::string_view(cur_ + 1, static_cast<std::size_t>(stop - cur_ - 1));
        cur_ = stop + 1;
        return true;
      }
    }
    if (!index_->unescaped_names) index_->unescaped_names.reset(new char[static_cast<std::size_t>(end_ - start_)]);
    char* arena = index_->unescaped_names.get();
    const std::size_t first = unescaped_used_;
    bool scanned = scan_string([&](const char* bytes, std::size_t count) {
      std::memcpy(arena + unescaped_used_, bytes, count);
      unescaped_used_ += count;
    });
    out = std::string_view(arena + first, unescaped_used_ - first);
    return scanned;
  }

  bool scan_metadata(header_index& index) {
    if (cur_ < end_ && *cur_ == 'n') {
      if (!skip_literal("null")) return false;
      return true;
    }
    if (cur_ == end_ || *cur_ != '{') return set_error("__metadata__ must be an object of strings or null");
    ++cur_;
    index.has_metadata = true;
    auto& entries = metadata_access::entries(index.metadata);
    const auto where = [] { return "in __metadata__"; };
    const bool scanned = scan_object(where, [&] {
      std::string key;
      std::string value;
      if (!scan_string_into(key)) return false;
      if (!expect_colon()) return false;
      if (cur_ == end_ || *cur_ != '"')
        return set_error("__metadata__ value of key " + quote(key) + " must be a string");
      if (!scan_string_into(value)) return false;
      entries.emplace_back(std::move(key), std::move(value));
      return true;
    });
    if (!scanned) return false;
    std::sort(entries.begin(), entries.end());
    auto repeated = std::adjacent_find(entries.begin(), entries.end(),
                                       [](const auto& a, const auto& b) { return a.first == b.first; });
    if (repeated != entries.end()) return set_error("duplicate key " + quote(repeated->first) + " in __metadata__");
    return true;
  }

  bool scan_shape(std::string_view name, tensor_info& tensor, std::vector<std::uint64_t>& dims) {
    if (cur_ == end_ || *cur_ != '[') return set_error("shape of tensor " + quote(name) + " must be an array");
    ++cur_;
    const std::size_t first_dim = dims.size();
    tensor.element_count = pack_dims(first_dim, 0);
    const auto where = [&] { return "in the shape of tensor " + quote(name); };
    return scan_array(where, [&] {
      std::uint64_t dim = 0;
      if (!scan_unsigned(dim, [&] { return "a shape dimension of tensor " + quote(name); })) return false;
      dims.push_back(dim);
      tensor.element_count = pack_dims(first_dim, dims.size() - first_dim);
      return true;
    });
  }

  bool scan_offsets(std::string_view name, tensor_info& tensor) {
    const char* rule = "data_offsets must be an array of exactly two unsigned integers";
    if (cur_ == end_ || *cur_ != '[') return set_error(std::string(rule) + " in tensor " + quote(name));
    ++cur_;
    std::uint64_t values[2];
    for (int i = 0; i < 2; ++i) {
      skip_whitespace();
      if (!scan_unsigned(values[i], [&] { return "a data offset of tensor " + quote(name); })) return false;
      skip_whitespace();
      char want = i == 0 ? ',' : ']';
      if (cur_ == end_ || *cur_ != want) return set_error(std::string(rule) + " in tensor " + quote(name));
      ++cur_;
    }
    tensor.data_offsets = {values[0], values[1]};
    return true;
  }

  // A shape's place in dims, kept in element_count until index_tensors: both fit 32 bits, since
  // the header is at most 100,000,000 bytes.
  static std::uint64_t pack_dims(std::size_t offset, std::size_t count) noexcept {
    return (static_cast<std::uint64_t>(offset) << 32) | static_cast<std::uint64_t>(count);
  }

  // The entry exactly as writers produce it, {"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}:
  // literal matches instead of a general scan. Returns false, having consumed part of the entry,
  // at the first difference; the caller then scans the entry again in full.
  bool match_canonical_entry(tensor_info& tensor, std::vector<std::uint64_t>& dims) {
    if (!match("{\"dtype\":\"")) return false;
    const char* spelled = cur_;
    while (cur_ < end_ && ((*cur_ >= 'A' && *cur_ <= 'Z') || (*cur_ >= '0' && *cur_ <= '9') || *cur_ == '_')) ++cur_;
    auto type = dtype_from_name(std::string_view(spelled, static_cast<std::size_t>(cur_ - spelled)));
    if (!type || !match("\",\"shape\":[")) return false;
    tensor.dtype = *type;
    const std::size_t first_dim = dims.size();
    if (!match("]")) {
      for (;;) {
        std::uint64_t dim = 0;
        if (!match_small_unsigned(dim)) return false;
        dims.push_back(dim);
        if (match("]")) break;
        if (!match(",")) return false;
      }
    }
    tensor.element_count = pack_dims(first_dim, dims.size() - first_dim);
    return match(",\"data_offsets\":[") && match_small_unsigned(tensor.data_offsets[0]) && match(",") &&
           match_small_unsigned(tensor.data_offsets[1]) && match("]}");
  }

  bool scan_tensor_entry(std::string_view name, tensor_info& tensor, std::vector<std::uint64_t>& dims) {
    const char* entry_start = cur_;
    const std::size_t dims_before = dims.size();
    if (match_canonical_entry(tensor, dims)) return true;
    cur_ = entry_start;
    dims.resize(dims_before);
    if (cur_ == end_ || *cur_ != '{') return set_error("entry of tensor " + quote(name) + " must be an object");
    ++cur_;
    bool has_dtype = false, has_shape = false, has_offsets = false;
    std::vector<std::string> other_keys;
    const auto where = [&] { return "in tensor " + quote(name); };
    const bool scanned = scan_object(where, [&] {
      std::string_view field;
      if (!scan_key(field)) return false;
      if (!expect_colon()) return false;
      if (field == "dtype") {
        if (has_dtype) return set_error("duplicate key \"dtype\" in tensor " + quote(name));
        has_dtype = true;
        if (cur_ == end_ || *cur_ != '"') return set_error("dtype of tensor " + quote(name) + " must be a string");
        std::string_view spelled;
        if (!scan_key(spelled)) return false;
        auto type = dtype_from_name(spelled);
        if (!type) return set_error("unknown dtype " + quote(spelled) + " in tensor " + quote(name));
        tensor.dtype = *type;
      } else if (field == "shape") {
        if (has_shape) return set_error("duplicate key \"shape\" in tensor " + quote(name));
        has_shape = true;
        if (!scan_shape(name, tensor, dims)) return false;
      } else if (field == "data_offsets") {
        if (has_offsets) return set_error("duplicate key \"data_offsets\" in tensor " + quote(name));
        has_offsets = true;
        if (!scan_offsets(name, tensor)) return false;
      } else {
        other_keys.emplace_back(field);
        if (!skip_value(3)) return false;
      }
      return true;
    });
    if (!scanned) return false;
    if (!other_keys.empty()) {
      std::sort(other_keys.begin(), other_keys.end());
      auto repeated = std::adjacent_find(other_keys.begin(), other_keys.end());
      if (repeated != other_keys.end())
        return set_error("duplicate key " + quote(*repeated) + " in tensor " + quote(name));
    }
    if (!has_dtype) return set_error("tensor " + quote(name) + " has no dtype");
    if (!has_shape) return set_error("tensor " + quote(name) + " has no shape");
    if (!has_offsets) return set_error("tensor " + quote(name) + " has no data_offsets");
    return true;
  }
};

/// Checks docs/FORMAT.md rules 7-11 over the scanned tensors, in the official order, puts the tensors in
/// data order and builds the name table. `index.data_size` is the real size of the data buffer.
inline result<void> index_tensors(header_index& index, bool allow_trailing_bytes) {
  std::vector<tensor_info>& tensors = index.tensors;
  if (tensors.size() >= std::numeric_limits<std::uint32_t>::max())
    return error(error_kind::invalid_header_deserialization, "too many tensors");

  name_table& names = index.names;
  names.reset(tensors.size());
  auto name_at = [&](std::size_t at) { return tensors[at].name; };

  // A name seen twice keeps its last entry, as the official reader does; the repetition is
  // reported once the offsets have been checked.
  // Names hash `lookahead` tensors ahead of their insertion, and their slots are prefetched:
  // once the table outgrows the L2 cache (some 100,000 tensors), waiting for each slot in turn
  // made the time per tensor half as much again as for 10,000.
  constexpr std::size_t lookahead = 16;
  std::uint64_t upcoming[lookahead] = {};
  for (std::size_t at = 0; at < lookahead && at < tensors.size(); ++at) {
    upcoming[at] = name_table::hash(tensors[at].name);
    names.prefetch(upcoming[at]);
  }
  std::vector<bool> replaced;
  std::string repeated_name;
  for (std::size_t at = 0; at < tensors.size(); ++at) {
    const std::uint64_t hash = upcoming[at % lookahead];
    if (at + lookahead < tensors.size()) {
      upcoming[at % lookahead] = name_table::hash(tensors[at + lookahead].name);
      names.prefetch(upcoming[at % lookahead]);
    }
    const std::size_t earlier = names.insert(at, tensors[at].name, hash, name_at);
    if (earlier == at) continue;
    if (replaced.empty()) {
      replaced.assign(tensors.size(), false);
      repeated_name = std::string(tensors[at].name);
    }
    replaced[earlier] = true;
  }
  const bool has_repeat = !replaced.empty();
  if (has_repeat) {
    std::size_t kept = 0;
    for (std::size_t at = 0; at < tensors.size(); ++at) {
      if (!replaced[at]) tensors[kept++] = tensors[at];
    }
    tensors.resize(kept);
  }

  // Offsets compared one by one: std::array's operators call memcmp, once per tensor.
  auto before = [](const tensor_info& x, const tensor_info& y) {
    if (x.data_offsets[0] != y.data_offsets[0]) return x.data_offsets[0] < y.data_offsets[0];
    if (x.data_offsets[1] != y.data_offsets[1]) return x.data_offsets[1] < y.data_offsets[1];
    return x.name < y.name;
  };
  // Writers emit tensors in data order, so the table built above usually stands as it is.
  const bool sorted = std::is_sorted(tensors.begin(), tensors.end(), before);
  if (!sorted) std::sort(tensors.begin(), tensors.end(), before);
  if (!sorted || has_repeat) {
    names.reset(tensors.size());
    for (std::size_t at = 0; at < tensors.size(); ++at)
      names.insert(at, tensors[at].name, name_table::hash(tensors[at].name), name_at);
  }

  std::string repeat_note;
  if (has_repeat) repeat_note = " (the name " + quote(repeated_name) + " appears twice; its last entry was kept)";

  std::uint64_t expected_begin = 0;
  for (tensor_info& t : tensors) {
    const std::uint64_t packed = t.element_count;
    t.shape =
        span<const std::uint64_t>(index.dims.data() + (packed >> 32), static_cast<std::size_t>(packed & 0xffffffffu));
    const std::uint64_t begin = t.data_offsets[0];
    const std::uint64_t end = t.data_offsets[1];
    if (begin != expected_begin || end < begin) {
      std::string why = end < begin
                            ? "end before they begin"
                            : (begin < expected_begin ? "overlap the previous tensor, which ends at "
                                                      : "leave a hole after the previous tensor, which ends at ") +
                                  std::to_string(expected_begin);
      return error(error_kind::invalid_offset, "tensor " + quote(t.name) + ": data_offsets [" + std::to_string(begin) +
                                                   ", " + std::to_string(end) + "] " + why + repeat_note);
    }
    expected_begin = end;
    tensor_size size{};
    if (!fits_size_rules(t.dtype, t.shape, size)) {
      const error broken = size_error(t.name, t.dtype, t.shape);
      return error(broken.kind(), broken.message() + repeat_note);
    }
    if (end - begin != size.bytes)
      return error(error_kind::tensor_invalid_info,
                   "tensor " + quote(t.name) + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                       "] span " + std::to_string(end - begin) + " bytes but " + std::string(dtype_name(t.dtype)) +
                       " with " + std::to_string(size.elements) + " elements needs " + std::to_string(size.bytes) +
                       repeat_note);
    t.element_count = size.elements;
  }
  if (expected_begin != index.data_size && !(allow_trailing_bytes && expected_begin < index.data_size)) {
    return error(error_kind::metadata_incomplete_buffer, "the tensors cover " + std::to_string(expected_begin) +
                                                             " bytes but the data buffer holds " +
                                                             std::to_string(index.data_size) + repeat_note);
  }
  if (has_repeat)
    return error(error_kind::invalid_header_deserialization,
                 "duplicate key " + quote(repeated_name) + ": two tensors have the same name");
  return {};
}

/// Parses and validates a header (docs/FORMAT.md rules 4-11) whose bytes are `text`, followed in the file
/// by a data buffer of `data_size` bytes (of which the tensors may leave some at the end unused
/// if `allow_trailing_bytes`: read_options::allow_trailing_bytes).
/// `owner`, when given, holds `text` and is kept by the index: names point into the header.
inline result<header_index> parse_header(const char* text, std::size_t size, std::uint64_t data_size,
                                         bool allow_trailing_bytes, std::unique_ptr<char[]> owner = nullptr) {
  std::size_t bad = utf8_invalid_at(reinterpret_cast<const unsigned char*>(text), size);
  if (bad != size)
    return error(error_kind::invalid_header,
                 "the header is not valid UTF-8 (at header byte " + std::to_string(bad) + ")");
  header_index index;
  index.owned_header = std::move(owner);
  index.header_length = size;
  index.data_size = data_size;
  header_scanner scanner(text, size);
  if (auto scanned = scanner.scan(index); !scanned) return scanned.error();
  if (auto indexed = index_tensors(index, allow_trailing_bytes); !indexed) return indexed.error();
  return index;
}

}  // namespace detail

}  // namespace safetensors

#endif  // SAFETENSORS_HEADER_HPP
