// A second, independent reading of safetensors files, built on nlohmann_json: simple and slow,
// kept to check the library's own scanner against (differential tests and fuzzing). It follows
// docs/FORMAT.md rule by rule and avoids nlohmann's traps: duplicate keys are seen through the parse
// callback, numbers by their kind, the header is passed as a byte range, a BOM is refused.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace reference {

struct tensor {
  std::string name;
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

/// What a file holds, or the official name of the error it gives ("ok" when valid).
struct outcome {
  std::string kind = "ok";
  std::vector<tensor> tensors;  // by (begin, end, name)
  std::optional<std::map<std::string, std::string>> metadata;
};

namespace internal {

inline bool valid_utf8(const unsigned char* text, std::size_t size) {
  for (std::size_t i = 0; i < size;) {
    const unsigned char c = text[i];
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (size - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((text[i + k] & 0xc0) != 0x80) return false;
      code = (code << 6) | (text[i + k] & 0x3f);
    }
    static const std::uint32_t smallest[] = {0, 0x80, 0x800, 0x10000};
    if (code < smallest[extra] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

inline int dtype_bits(const std::string& dtype) {
  static const std::map<std::string, int> bits = {
      {"BOOL", 8},    {"F4", 4},      {"F6_E2M3", 6}, {"F6_E3M2", 6},     {"U8", 8},          {"I8", 8},
      {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},
      {"U16", 16},    {"F16", 16},    {"BF16", 16},   {"I32", 32},        {"U32", 32},        {"F32", 32},
      {"C64", 64},    {"F64", 64},    {"I64", 64},    {"U64", 64}};
  auto it = bits.find(dtype);
  return it == bits.end() ? 0 : it->second;
}

inline bool unsigned_list(const nlohmann::json& value, std::vector<std::uint64_t>& out) {
  if (!value.is_array()) return false;
  for (const auto& item : value) {
    if (!item.is_number_unsigned()) return false;
    out.push_back(item.get<std::uint64_t>());
  }
  return true;
}

inline bool valid_entry(const nlohmann::json& entry) {
  if (!entry.is_object()) return false;
  const auto dtype = entry.find("dtype");
  const auto shape = entry.find("shape");
  const auto offsets = entry.find("data_offsets");
  if (dtype == entry.end() || shape == entry.end() || offsets == entry.end()) return false;
  std::vector<std::uint64_t> dims, pair;
  return dtype->is_string() && dtype_bits(dtype->get<std::string>()) != 0 && unsigned_list(*shape, dims) &&
         unsigned_list(*offsets, pair) && pair.size() == 2;
}

inline bool valid_metadata(const nlohmann::json& metadata) {
  if (metadata.is_null()) return true;
  if (!metadata.is_object()) return false;
  return std::all_of(metadata.begin(), metadata.end(), [](const nlohmann::json& value) { return value.is_string(); });
}

inline bool mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  out = a * b;
  return true;
}

}  // namespace internal

/// Reads a whole file's bytes the way docs/FORMAT.md says a reader must.
inline outcome parse(const unsigned char* file, std::size_t size, bool allow_trailing_bytes = false) {
  outcome result;
  auto fail = [&](const char* kind) {
    result.kind = kind;
    result.tensors.clear();
    result.metadata.reset();
    return result;
  };
  if (size < 8) return fail("HeaderTooSmall");
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | file[i];
  if (length > 100000000) return fail("HeaderTooLarge");
  if (length > size - 8) return fail("InvalidHeaderLength");
  const unsigned char* header = file + 8;
  if (!internal::valid_utf8(header, length)) return fail("InvalidHeader");
  if (length >= 3 && header[0] == 0xef && header[1] == 0xbb && header[2] == 0xbf)
    return fail("InvalidHeaderDeserialization");
  // nlohmann's lexer takes a NUL byte for the end of input, even inside a byte range; JSON has no
  // place for a raw NUL.
  if (std::find(header, header + length, 0) != header + length) return fail("InvalidHeaderDeserialization");

  // Keys seen in each open object, nesting depth, and a tensor name given twice. Each root entry
  // is checked as it completes, as the official reader does: nlohmann's document keeps only the
  // last of two entries of one name, and the first must be valid too.
  std::vector<std::set<std::string>> open_objects;
  bool nested_duplicate = false, too_deep = false, invalid_entry = false;
  std::string repeated_tensor, root_key;
  auto watch = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using event_t = nlohmann::json::parse_event_t;
    if (event == event_t::object_start || event == event_t::array_start) {
      if (depth + 1 > 127) too_deep = true;
      if (event == event_t::object_start) open_objects.emplace_back();
    } else if (event == event_t::object_end) {
      open_objects.pop_back();
    } else if (event == event_t::key) {
      const std::string key = parsed.get<std::string>();
      if (depth == 1) root_key = key;
      if (!open_objects.back().insert(key).second) {
        if (depth == 1 && key != "__metadata__") {
          if (repeated_tensor.empty()) repeated_tensor = key;
        } else {
          nested_duplicate = true;
        }
      }
    }
    const bool root_value_done =
        depth == 1 && (event == event_t::value || event == event_t::object_end || event == event_t::array_end);
    if (root_value_done &&
        !(root_key == "__metadata__" ? internal::valid_metadata(parsed) : internal::valid_entry(parsed)))
      invalid_entry = true;
    return true;
  };
  nlohmann::json root = nlohmann::json::parse(header, header + length, watch, false);
  if (root.is_discarded() || too_deep || nested_duplicate || invalid_entry || !root.is_object())
    return fail("InvalidHeaderDeserialization");

  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) return fail("InvalidHeaderDeserialization");
      std::map<std::string, std::string> metadata;
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) return fail("InvalidHeaderDeserialization");
        metadata[k] = v.get<std::string>();
      }
      result.metadata = std::move(metadata);
      continue;
    }
    if (!value.is_object()) return fail("InvalidHeaderDeserialization");
    tensor t;
    t.name = key;
    const auto dtype = value.find("dtype");
    const auto shape = value.find("shape");
    const auto offsets = value.find("data_offsets");
    if (dtype == value.end() || shape == value.end() || offsets == value.end())
      return fail("InvalidHeaderDeserialization");
    if (!dtype->is_string() || internal::dtype_bits(dtype->get<std::string>()) == 0)
      return fail("InvalidHeaderDeserialization");
    t.dtype = dtype->get<std::string>();
    std::vector<std::uint64_t> pair;
    if (!internal::unsigned_list(*shape, t.shape) || !internal::unsigned_list(*offsets, pair) || pair.size() != 2)
      return fail("InvalidHeaderDeserialization");
    t.begin = pair[0];
    t.end = pair[1];
    result.tensors.push_back(std::move(t));
  }

  std::sort(result.tensors.begin(), result.tensors.end(), [](const tensor& a, const tensor& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  std::uint64_t expected = 0;
  for (const tensor& t : result.tensors) {
    if (t.begin != expected || t.end < t.begin) return fail("InvalidOffset");
    expected = t.end;
    std::uint64_t elements = 1, bits = 0;
    for (std::uint64_t d : t.shape) {
      if (!internal::mul(elements, d, elements)) return fail("ValidationOverflow");
    }
    if (!internal::mul(elements, static_cast<std::uint64_t>(internal::dtype_bits(t.dtype)), bits))
      return fail("ValidationOverflow");
    if (bits % 8 != 0) return fail("MisalignedSlice");
    if (t.end - t.begin != bits / 8) return fail("TensorInvalidInfo");
  }
  const std::uint64_t data_size = size - 8 - length;
  if (expected != data_size && !(allow_trailing_bytes && expected < data_size)) return fail("MetadataIncompleteBuffer");
  if (!repeated_tensor.empty()) return fail("InvalidHeaderDeserialization");
  return result;
}

}  // namespace reference
