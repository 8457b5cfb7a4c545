// safetensors-hpp: quantized checkpoints: the groups of tensors that form one quantized weight
// (NVFP4 as compressed-tensors and ModelOpt write it, MXFP4 as gpt-oss does, FP8 with block
// scales as DeepSeek-V3 does), recognised by names, dtypes and shapes, and dequantized exactly.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_QUANT_HPP
#define SAFETENSORS_QUANT_HPP

#include "tp_plan.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace safetensors {

/// How a quantized weight is stored.
enum class quant_scheme : std::uint8_t {
  /// compressed-tensors' NVFP4: X.weight_packed U8 [out, in/2] (E2M1, element 2i in the low
  /// nibble of byte i), X.weight_scale F8_E4M3 [out, in/16], X.weight_global_scale F32 [1];
  /// value = fp4 * (float(scale) / global_scale).
  nvfp4_compressed_tensors,
  /// ModelOpt's NVFP4: X.weight U8 packed the same way, X.weight_scale F8_E4M3 [out, in/16],
  /// X.weight_scale_2 F32 scalar; value = fp4 * (float(scale) * scale_2).
  nvfp4_modelopt,
  /// gpt-oss's MXFP4: X_blocks U8 [..., G, 16] (32 E2M1 a block, low nibble first), X_scales U8
  /// [..., G] (E8M0, bias 127); value = fp4 * 2^(scale - 127); X is [..., G*32].
  mxfp4,
  /// DeepSeek-V3's FP8: X.weight F8_E4M3 [out, in], X.weight_scale_inv F32 [ceil(out/b0),
  /// ceil(in/b1)]; value = fp8 * scale_inv[i / b0][j / b1].
  fp8_block,
};

/// The scheme's name: "nvfp4-compressed-tensors", "nvfp4-modelopt", "mxfp4" or "fp8-block".
constexpr std::string_view quant_scheme_name(quant_scheme scheme) noexcept {
  switch (scheme) {
    case quant_scheme::nvfp4_compressed_tensors: return "nvfp4-compressed-tensors";
    case quant_scheme::nvfp4_modelopt: return "nvfp4-modelopt";
    case quant_scheme::mxfp4: return "mxfp4";
    default: return "fp8-block";
  }
}

/// The tensors of one quantized weight, and what it dequantizes to.
struct quant_group {
  /// How it is stored.
  quant_scheme scheme = quant_scheme::fp8_block;
  /// The dequantized weight's name: X.weight, or X for MXFP4.
  std::string weight;
  /// The tensor of quantized values (X.weight_packed, X.weight or X_blocks).
  std::string values;
  /// The tensor of block scales (X.weight_scale, X_scales or X.weight_scale_inv).
  std::string scales;
  /// The per-tensor scale (X.weight_global_scale or X.weight_scale_2); empty for the others.
  std::string global_scale;
  /// The dequantized weight's shape.
  std::vector<std::uint64_t> shape;
  /// Elements of the weight per scale: rows and columns (MXFP4: 1 and 32; NVFP4: 1 and 16).
  std::array<std::uint64_t, 2> block{};
};

/// The quantized groups of `source` (a reader or a model: a model's shards are opened), by the
/// names, dtypes and shapes of quant_scheme's layouts; `fp8_block` is FP8's block size in rows
/// and columns (config.json's quantization_config.weight_block_size; DeepSeek-V3's 128x128 by
/// default). A name that looks like a group's but whose dtypes or shapes do not fit the layout is
/// InvalidArgument naming the tensor and what was expected: a checkpoint is never half
/// recognised. Groups come in the order of their value tensors.
template <class Source>
result<std::vector<quant_group>> try_quant_groups(const Source& source,
                                                  std::array<std::uint64_t, 2> fp8_block = {128, 128}) {
  auto listed = detail::list_tensors(source);
  if (!listed) return listed.error();
  std::map<std::string_view, const tensor_info*> by_name;
  for (const tensor_info* info : listed->infos) by_name[info->name] = info;
  auto find = [&](const std::string& name) -> const tensor_info* {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  };
  auto refuse = [](const tensor_info& info, const std::string& what) {
    return error(error_kind::invalid_argument, "tensor " + detail::quote(info.name) + ": " + what);
  };
  auto shape_text = [](span<const std::uint64_t> shape) {
    std::string text = "[";
    for (std::size_t d = 0; d < shape.size(); ++d) text += (d > 0 ? ", " : "") + std::to_string(shape[d]);
    return text + "]";
  };
  std::vector<quant_group> groups;
  for (const tensor_info* info : listed->infos) {
    const std::string name(info->name);
    // NVFP4: a packed weight with an F8_E4M3 block scale beside it.
    const bool compressed = detail::ends_with(name, ".weight_packed");
    if (compressed || detail::ends_with(name, ".weight")) {
      const std::string stem = name.substr(0, name.rfind('.'));
      const tensor_info* scale = find(stem + ".weight_scale");
      const tensor_info* scale_inv = find(stem + ".weight_scale_inv");
      const std::string global_name = stem + (compressed ? ".weight_global_scale" : ".weight_scale_2");
      const tensor_info* global = find(global_name);
      if (!compressed && info->dtype == dtype::F8_E4M3 && scale_inv != nullptr) {
        // FP8 with block scales.
        if (info->shape.size() != 2 || scale_inv->dtype != dtype::F32 || scale_inv->shape.size() != 2 ||
            scale_inv->shape[0] != (info->shape[0] + fp8_block[0] - 1) / fp8_block[0] ||
            scale_inv->shape[1] != (info->shape[1] + fp8_block[1] - 1) / fp8_block[1])
          return refuse(*scale_inv, "an FP8 weight's scale_inv must be F32 [ceil(rows/" + std::to_string(fp8_block[0]) +
                                        "), ceil(columns/" + std::to_string(fp8_block[1]) + ")] for the weight " +
                                        shape_text(info->shape) + ", not " + std::string(dtype_name(scale_inv->dtype)) +
                                        " " + shape_text(scale_inv->shape));
        groups.push_back({quant_scheme::fp8_block,
                          name,
                          name,
                          std::string(scale_inv->name),
                          {},
                          {info->shape[0], info->shape[1]},
                          fp8_block});
        continue;
      }
      // An ordinary weight: not U8 with both scales beside it.
      if (!compressed && (info->dtype != dtype::U8 || scale == nullptr || global == nullptr)) continue;
      if (info->dtype != dtype::U8 || scale == nullptr)
        return refuse(*info,
                      "a weight_packed needs U8 values and " + detail::quote(stem + ".weight_scale") + " beside it");
      if (global == nullptr) return refuse(*info, "a weight_packed needs " + detail::quote(global_name) + " beside it");
      if (info->shape.size() != 2 || scale->dtype != dtype::F8_E4M3 || scale->shape.size() != 2 ||
          scale->shape[0] != info->shape[0] || scale->shape[1] * 8 != info->shape[1])
        return refuse(*scale, "an NVFP4 weight_scale must be F8_E4M3 [rows, columns/16] for the packed weight " +
                                  shape_text(info->shape) + " (two F4 a byte), not " +
                                  std::string(dtype_name(scale->dtype)) + " " + shape_text(scale->shape));
      if (global->dtype != dtype::F32 || global->element_count != 1)
        return refuse(*global, "a per-tensor scale must be one F32, not " + std::string(dtype_name(global->dtype)) +
                                   " " + shape_text(global->shape));
      groups.push_back({compressed ? quant_scheme::nvfp4_compressed_tensors : quant_scheme::nvfp4_modelopt,
                        stem + ".weight",
                        name,
                        std::string(scale->name),
                        global_name,
                        {info->shape[0], info->shape[1] * 2},
                        {1, 16}});
      continue;
    }
    if (detail::ends_with(name, "_blocks")) {
      const std::string stem = name.substr(0, name.size() - 7);
      const tensor_info* scales = find(stem + "_scales");
      if (scales == nullptr) continue;
      const std::size_t rank = info->shape.size();
      bool fits = info->dtype == dtype::U8 && scales->dtype == dtype::U8 && rank >= 2 && info->shape[rank - 1] == 16 &&
                  scales->shape.size() == rank - 1;
      for (std::size_t d = 0; fits && d + 1 < rank; ++d) fits = scales->shape[d] == info->shape[d];
      if (!fits)
        return refuse(*scales, "MXFP4 needs U8 blocks [..., G, 16] and U8 scales [..., G]; the blocks are " +
                                   std::string(dtype_name(info->dtype)) + " " + shape_text(info->shape) +
                                   ", the scales " + std::string(dtype_name(scales->dtype)) + " " +
                                   shape_text(scales->shape));
      std::vector<std::uint64_t> shape(info->shape.begin(), info->shape.end() - 1);
      shape.back() *= 32;
      groups.push_back({quant_scheme::mxfp4, stem, name, std::string(scales->name), {}, shape, {1, 32}});
    }
  }
  return groups;
}

/// What a model's config.json says of its quantization: its `quantization_config`, as
/// transformers writes it. try_quant_groups takes fp8_block from it.
struct quant_config {
  /// `quant_method` ("fp8", "compressed-tensors", "modelopt", "mxfp4", ...); empty when the
  /// config has no quantization_config.
  std::string method;
  /// `weight_block_size`: FP8's block in rows and columns (DeepSeek-V3's 128x128 when absent).
  std::array<std::uint64_t, 2> fp8_block{128, 128};

  /// Reads config.json's text. InvalidArgument names what is malformed: not JSON, a
  /// quantization_config that is not an object, a quant_method that is not a string, a
  /// weight_block_size that is not two integers of at least 1.
  static result<quant_config> try_parse(std::string_view json);
  /// As try_parse; throws safetensors::exception (aborts without exceptions) on failure.
  static quant_config parse(std::string_view json) { return try_parse(json).value(); }
};

namespace detail {
/// Reads config.json for quant_config: the top-level object, quantization_config's members.
class quant_config_scanner : private json_scanner {
 public:
  explicit quant_config_scanner(std::string_view text) noexcept
      : json_scanner(text.data(), text.size(), "config.json") {}

  result<quant_config> scan() {
    quant_config config;
    skip_whitespace();
    if (cur_ == end_ || *cur_ != '{') return fail("config.json must be a JSON object");
    ++cur_;
    const bool scanned = scan_object([] { return "in config.json"; },
                                     [&] {
      std::string key;
      if (!scan_string_into(key) || !expect_colon()) return false;
      if (key != "quantization_config") return skip_value(2);
      if (cur_ == end_ || *cur_ != '{') return set_error("quantization_config must be an object");
      ++cur_;
      return scan_object([] { return "in quantization_config"; },
                         [&] {
        std::string member;
        if (!scan_string_into(member) || !expect_colon()) return false;
        if (member == "quant_method") {
          if (cur_ == end_ || *cur_ != '"') return set_error("quantization_config.quant_method must be a string");
          return scan_string_into(config.method);
        }
        if (member != "weight_block_size") return skip_value(3);
        if (cur_ == end_ || *cur_ != '[') return set_error("weight_block_size must be an array of two integers");
        ++cur_;
        std::size_t count = 0;
        const bool listed = scan_array([] { return "in weight_block_size"; },
                                       [&] {
          std::uint64_t extent = 0;
          if (!scan_unsigned(extent, [] { return std::string("an entry of weight_block_size"); })) return false;
          if (extent == 0 || count >= 2) return set_error("weight_block_size must be two integers of at least 1");
          config.fp8_block[count++] = extent;
          return true;
        });
        return listed && (count == 2 || set_error("weight_block_size must be two integers of at least 1"));
      });
    });
    if (!scanned) return error(error_kind::invalid_argument, "config.json: " + error_);
    skip_whitespace();
    if (cur_ != end_) return fail("unexpected bytes after config.json's closing '}'");
    return config;
  }

 private:
  result<quant_config> fail(const std::string& what) {
    set_error(what);
    return error(error_kind::invalid_argument, "config.json: " + error_);
  }
};
}  // namespace detail

inline result<quant_config> quant_config::try_parse(std::string_view json) {
  if (detail::utf8_invalid_at(reinterpret_cast<const unsigned char*>(json.data()), json.size()) != json.size())
    return error(error_kind::invalid_argument, "config.json: not valid UTF-8");
  return detail::quant_config_scanner(json).scan();
}

namespace detail {

// The float32 value of every code of F4 (16 codes) or F8_E4M3 (256), decoded once by
// try_convert, so that dequantizing agrees with converting.
inline const std::array<float, 256>& decoded_codes(dtype type) {
  static const auto decode = [](dtype code_type) {
    std::array<float, 256> values{};
    std::array<std::byte, 256> codes{};
    const bool f4 = code_type == dtype::F4;
    for (unsigned c = 0; c < (f4 ? 16u : 256u); ++c)
      codes[f4 ? c / 2 : c] |= static_cast<std::byte>(f4 && c % 2 == 1 ? c << 4 : c);
    const span<std::byte> out{reinterpret_cast<std::byte*>(values.data()), (f4 ? 16u : 256u) * 4u};
    // Every code of these types converts to F32 (E4M3's NaN codes to NaN): nothing can fail.
    (void)try_convert(span<const std::byte>{codes.data(), f4 ? 8u : 256u}, code_type, out, dtype::F32);
    to_host_order(out, dtype::F32);
    return values;
  };
  static const std::array<float, 256> f4 = decode(dtype::F4), e4m3 = decode(dtype::F8_E4M3);
  return type == dtype::F4 ? f4 : e4m3;
}

// A little-endian float32.
inline float le_float(const std::byte* bytes) noexcept {
  std::uint32_t bits = 0;
  for (int b = 3; b >= 0; --b) bits = (bits << 8) | static_cast<std::uint32_t>(bytes[b]);
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

// What a part of a tensor takes of one dimension.
struct part_range {
  std::uint64_t start = 0;
  std::uint64_t count = 0;
  bool operator!=(const part_range& other) const noexcept { return start != other.start || count != other.count; }
};

// The range a slice takes of each dimension of `info` (everything for an empty slice). A part of
// a quantized tensor keeps every dimension and takes a contiguous range of each.
inline result<std::vector<part_range>> part_of(const tensor_info& info, span<const slice_dim> slice) {
  for (std::size_t d = 0; d < slice.size(); ++d)
    if (slice[d].single)
      return error(error_kind::invalid_argument,
                   "tensor " + quote(info.name) + ": a part of a quantized tensor keeps " +
                       "every dimension; dimension " + std::to_string(d) + " is a single index");
  auto checked = tensor_slice::try_make(info, std::vector<slice_dim>(slice.begin(), slice.end()));
  if (!checked) return checked.error();
  std::vector<part_range> part;
  for (std::size_t d = 0; d < info.shape.size(); ++d) {
    const std::uint64_t extent = info.shape[d], count = checked->shape()[d];
    if (d >= slice.size()) {
      part.push_back({0, extent});
      continue;
    }
    if (count > 1 && slice[d].step != 1)
      return error(error_kind::invalid_argument, "tensor " + quote(info.name) + ": a part of a quantized tensor " +
                                                     "takes every element of its range; dimension " +
                                                     std::to_string(d) + " has a step of " +
                                                     std::to_string(slice[d].step));
    const std::int64_t start = slice[d].start;
    part.push_back(
        {start < 0 ? extent - (0 - static_cast<std::uint64_t>(start)) : static_cast<std::uint64_t>(start), count});
  }
  return part;
}

inline std::string ranges_text(const std::vector<part_range>& part) {
  std::string text = "[";
  for (std::size_t d = 0; d < part.size(); ++d)
    text += (d > 0 ? ", " : "") + std::to_string(part[d].start) + ":" + std::to_string(part[d].start + part[d].count);
  return text + "]";
}

// The dequantized shape of a part of a group's values tensor.
inline std::vector<std::uint64_t> dequantized_shape(quant_scheme scheme, const std::vector<part_range>& values) {
  std::vector<std::uint64_t> shape;
  for (const part_range& range : values) shape.push_back(range.count);
  if (scheme == quant_scheme::mxfp4) {
    shape.pop_back();    // the 16 bytes of a block...
    shape.back() *= 32;  // ...hold 32 elements
  } else if (scheme != quant_scheme::fp8_block) {
    shape.back() *= 2;  // two F4 a byte
  }
  return shape;
}

template <class Source>
result<load_request> request_in(const Source& source, const std::string& name, span<std::byte> destination,
                                span<const slice_dim> slice) {
  std::vector<slice_dim> dims(slice.begin(), slice.end());
  if constexpr (lists_by_name<Source>::value) {
    return source.try_request(name, destination, std::move(dims));
  } else {
    auto info = source.try_info(name);
    if (!info) return info.error();
    return load_request(*info, destination, std::move(dims));
  }
}

// Calls a consumer that returns void or result<void>.
template <class Consumer>
result<void> consume(Consumer& consumer, const load_piece& piece) {
  if constexpr (std::is_void_v<decltype(consumer(piece))>) {
    consumer(piece);
    return {};
  } else {
    return consumer(piece);
  }
}

}  // namespace detail

/// The shape that `values_request`, a request for (a part of) `group`'s values tensor, delivers
/// once dequantized (try_load_dequantized): `group.shape` for the whole tensor. For NVFP4
/// `{range(0, 512)}` of `[2048, 1024]` packed bytes gives `{512, 2048}`.
inline result<std::vector<std::uint64_t>> try_dequantized_shape(const quant_group& group,
                                                                const load_request& values_request) {
  if (values_request.tensor == nullptr || values_request.tensor->name != group.values)
    return error(error_kind::invalid_argument, "a request for " + detail::quote(group.values) + " (the values of " +
                                                   detail::quote(group.weight) + ") has another tensor");
  auto part = detail::part_of(*values_request.tensor, values_request.slice);
  if (!part) return part.error();
  return detail::dequantized_shape(group.scheme, *part);
}

/// Dequantizes one quantized weight, or a part of one (a tensor-parallel rank's), piece by
/// piece: made once the part's scales are in memory, then given the part's value bytes in any
/// order and any cut, as a load plan delivers them. Each value is computed in float32 as
/// quant_scheme says, in that order, and rounded once to the target (F32, BF16 or F16).
/// Immutable once made: threads may dequantize pieces of one part at once.
///
/// ```cpp
/// auto part = safetensors::dequantizer::make(model, group, safetensors::dtype::BF16);
/// std::vector<std::byte> packed = model.read(group.values), weight(part.byte_size());
/// part.dequantize(0, packed, weight);  // little-endian BF16 of part.shape()
/// ```
class dequantizer {
 public:
  /// The part of `group` that `values_slice` selects of its values tensor and `scales_slice` of
  /// its scales (both empty: the whole weight), its scales read from `source` (a reader or a
  /// model). The slices keep every dimension and take contiguous ranges (range() or all()), as
  /// try_tp_slices makes them; a part must hold whole blocks, its scales exactly those blocks'
  /// (InvalidArgument naming the tensor and the ranges otherwise). InvalidArgument for a target
  /// other than F32, BF16 or F16.
  template <class Source>
  static result<dequantizer> try_make(const Source& source, const quant_group& group, dtype target,
                                      span<const slice_dim> values_slice = {},
                                      span<const slice_dim> scales_slice = {}) {
    auto values = source.try_info(group.values);
    if (!values) return values.error();
    auto scales = source.try_info(group.scales);
    if (!scales) return scales.error();
    auto scale_part =
        tensor_slice::try_make(**scales, std::vector<slice_dim>(scales_slice.begin(), scales_slice.end()));
    if (!scale_part) return scale_part.error();
    std::vector<std::byte> scale_bytes(static_cast<std::size_t>(scale_part->byte_size()));
    auto request = detail::request_in(source, group.scales, scale_bytes, scales_slice);
    if (!request) return request.error();
    if (auto loaded = source.try_load_into(span<const load_request>(&*request, 1)); !loaded) return loaded.error();
    std::vector<std::byte> global_bytes;
    if (!group.global_scale.empty()) {
      auto global = source.try_read(group.global_scale);
      if (!global) return global.error();
      global_bytes = std::move(*global);
    }
    return try_make(group, **values, values_slice, **scales, scales_slice, scale_bytes, global_bytes, target);
  }
  /// As the other try_make; throws safetensors::exception (aborts without exceptions) on failure.
  template <class Source>
  static dequantizer make(const Source& source, const quant_group& group, dtype target,
                          span<const slice_dim> values_slice = {}, span<const slice_dim> scales_slice = {}) {
    return try_make(source, group, target, values_slice, scales_slice).value();
  }

  /// For engines that load the scales themselves: the part of `group` that `values_slice`
  /// selects of `values` (its values tensor), with `scale_bytes` the bytes (as in the file) that
  /// `scales_slice` selects of `scales`, and `global_bytes` the per-tensor scale's 4 bytes (empty
  /// for schemes without one). InvalidTensorView when the bytes do not fit those tensors.
  static result<dequantizer> try_make(const quant_group& group, const tensor_info& values,
                                      span<const slice_dim> values_slice, const tensor_info& scales,
                                      span<const slice_dim> scales_slice, span<const std::byte> scale_bytes,
                                      span<const std::byte> global_bytes, dtype target) {
    const std::string subject = "dequantize " + detail::quote(group.weight);
    if (target != dtype::F32 && target != dtype::BF16 && target != dtype::F16)
      return error(error_kind::invalid_argument,
                   subject + " to F32, BF16 or F16, not " + std::string(dtype_name(target)));
    if (values.name != group.values || scales.name != group.scales)
      return error(error_kind::invalid_argument, subject + ": its values are " + detail::quote(group.values) +
                                                     " and its scales " + detail::quote(group.scales) + ", not " +
                                                     detail::quote(values.name) + " and " + detail::quote(scales.name));
    auto value_part = detail::part_of(values, values_slice);
    if (!value_part) return value_part.error();
    auto scale_part = detail::part_of(scales, scales_slice);
    if (!scale_part) return scale_part.error();
    auto refuse = [&](const std::string& what) { return error(error_kind::invalid_argument, subject + ": " + what); };
    const std::string scales_taken =
        "the part " + detail::ranges_text(*scale_part) + " of " + detail::quote(scales.name);

    dequantizer made;
    made.weight_ = group.weight;
    made.scheme_ = group.scheme;
    made.target_ = target;
    made.block_ = group.block;
    made.elements_per_byte_ = group.scheme == quant_scheme::fp8_block ? 1 : 2;
    made.shape_ = detail::dequantized_shape(group.scheme, *value_part);
    if (group.scheme == quant_scheme::mxfp4) {
      const std::size_t last = value_part->size() - 1;
      if ((*value_part)[last].start != 0 || (*value_part)[last].count != 16)
        return refuse("a part of " + detail::quote(values.name) + " must take whole blocks (all 16 bytes of its " +
                      "last dimension), not " + detail::ranges_text(*value_part));
      for (std::size_t d = 0; d < last; ++d)
        if ((*scale_part)[d] != (*value_part)[d])
          return refuse(scales_taken + " does not hold the scales of the part " + detail::ranges_text(*value_part) +
                        " of " + detail::quote(values.name));
    } else {
      for (std::size_t d = 0; d < 2; ++d) {
        const std::uint64_t per_byte = d == 1 ? made.elements_per_byte_ : 1;
        const std::uint64_t start = (*value_part)[d].start * per_byte, count = (*value_part)[d].count * per_byte;
        const std::uint64_t block = group.block[d];
        const std::string taken = std::string(d == 0 ? "rows " : "columns ") + std::to_string(start) + " to " +
                                  std::to_string(start + count) + " of the weight";
        if (start % block != 0 || (start + count != group.shape[d] && count % block != 0))
          return refuse(taken + " cut through its blocks of " + std::to_string(block) +
                        " (a part must hold whole blocks)");
        if ((*scale_part)[d].start != start / block || (*scale_part)[d].count != (count + block - 1) / block)
          return refuse(scales_taken + " does not hold the scales of " + taken);
      }
      made.columns_ = made.shape_[1];
      made.scale_columns_ = (*scale_part)[1].count;
    }
    made.count_ = 1;
    for (std::uint64_t extent : made.shape_) made.count_ *= extent;

    const std::size_t scale_size = group.scheme == quant_scheme::fp8_block ? 4 : 1;
    std::uint64_t scale_count = 1;
    for (const detail::part_range& range : *scale_part) scale_count *= range.count;
    if (scale_bytes.size() != scale_count * scale_size)
      return error(error_kind::invalid_tensor_view, subject + ": " + scales_taken + " has " +
                                                        std::to_string(scale_count * scale_size) + " bytes, not " +
                                                        std::to_string(scale_bytes.size()));
    float global = 1.0f;
    if (!group.global_scale.empty()) {
      if (global_bytes.size() != 4)
        return error(error_kind::invalid_tensor_view, subject + ": its per-tensor scale " +
                                                          detail::quote(group.global_scale) + " is 4 bytes, not " +
                                                          std::to_string(global_bytes.size()));
      global = detail::le_float(global_bytes.data());
    }
    const std::array<float, 256>& e4m3 = detail::decoded_codes(dtype::F8_E4M3);
    made.factors_.resize(static_cast<std::size_t>(scale_count));
    for (std::size_t i = 0; i < made.factors_.size(); ++i) {
      const auto code = static_cast<unsigned>(scale_bytes[i]);
      switch (group.scheme) {
        case quant_scheme::mxfp4:
          made.factors_[i] =
              code == 255 ? std::numeric_limits<float>::quiet_NaN() : std::ldexp(1.0f, static_cast<int>(code) - 127);
          break;
        case quant_scheme::fp8_block: made.factors_[i] = detail::le_float(scale_bytes.data() + i * 4); break;
        case quant_scheme::nvfp4_compressed_tensors: made.factors_[i] = e4m3[code] / global; break;
        default: made.factors_[i] = e4m3[code] * global; break;
      }
    }
    return made;
  }

  /// The dequantized weight's name (quant_group::weight).
  const std::string& weight() const noexcept { return weight_; }
  /// The dtype it dequantizes to.
  dtype target() const noexcept { return target_; }
  /// The part's shape, dequantized.
  const std::vector<std::uint64_t>& shape() const noexcept { return shape_; }
  /// The part's element count.
  std::uint64_t element_count() const noexcept { return count_; }
  /// The part's size dequantized, in bytes of the target.
  std::uint64_t byte_size() const noexcept { return count_ * dtype_bits(target_) / 8; }
  /// Bytes of the part's values tensor.
  std::uint64_t value_bytes() const noexcept { return count_ / elements_per_byte_; }
  /// Dequantized bytes per byte of values: elements per byte (2 for F4, 1 for F8) times the
  /// target's size.
  std::uint64_t bytes_per_value_byte() const noexcept { return elements_per_byte_ * dtype_bits(target_) / 8; }

  /// Dequantizes `values`, the part's value bytes from byte `offset` on (as a load_piece holds
  /// them), into `destination`: exactly values.size() * bytes_per_value_byte() bytes, written
  /// little-endian (as a file holds them; to_host_order() for arithmetic on big-endian hosts).
  /// InvalidTensorView when the bytes lie outside the part or the destination's size differs.
  result<void> try_dequantize(std::uint64_t offset, span<const std::byte> values, span<std::byte> destination) const {
    if (offset > value_bytes() || values.size() > value_bytes() - offset)
      return error(error_kind::invalid_tensor_view,
                   "dequantize " + detail::quote(weight_) + ": bytes " + std::to_string(offset) + " to " +
                       std::to_string(offset + values.size()) + " are past its part's " +
                       std::to_string(value_bytes()) + " bytes of values");
    if (destination.size() != values.size() * bytes_per_value_byte())
      return error(error_kind::invalid_tensor_view,
                   "dequantize " + detail::quote(weight_) + ": " + std::to_string(values.size()) + " bytes of values " +
                       "give " + std::to_string(values.size() * bytes_per_value_byte()) + " bytes of " +
                       std::string(dtype_name(target_)) + "; the destination holds " +
                       std::to_string(destination.size()));
    const std::array<float, 256>& codes = detail::decoded_codes(elements_per_byte_ == 2 ? dtype::F4 : dtype::F8_E4M3);
    const std::uint64_t first = offset * elements_per_byte_, total = values.size() * elements_per_byte_;
    const std::size_t target_size = dtype_bits(target_) / 8;
    constexpr std::size_t chunk = 1024;
    std::array<float, chunk> computed;
    for (std::uint64_t done = 0; done < total; done += chunk) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - done));
      // A run of elements that share a scale at a time: the block's rest, within the row.
      for (std::size_t j = 0; j < n;) {
        const auto [factor, shared] = factor_of(first + done + j);
        const std::size_t end = j + static_cast<std::size_t>(std::min<std::uint64_t>(shared, n - j));
        for (; j < end; ++j) {
          const std::uint64_t i = done + j;
          const auto byte = static_cast<unsigned>(values[static_cast<std::size_t>(i / elements_per_byte_)]);
          const unsigned code = elements_per_byte_ == 2 ? (byte >> (4 * (i % 2))) & 15u : byte;
          computed[j] = codes[code] * factor;
        }
      }
      const span<std::byte> as_f32{reinterpret_cast<std::byte*>(computed.data()), n * 4};
      detail::to_host_order(as_f32, dtype::F32);  // to little-endian: the swap is its own inverse
      const span<std::byte> out = destination.subspan(static_cast<std::size_t>(done) * target_size, n * target_size);
      if (target_ == dtype::F32) {
        std::memcpy(out.data(), as_f32.data(), as_f32.size());
      } else if (auto converted = try_convert(as_f32, dtype::F32, out, target_); !converted) {
        return error(converted.error().kind(),
                     "dequantize " + detail::quote(weight_) + ": " + converted.error().message());
      }
    }
    return {};
  }
  /// As try_dequantize; throws safetensors::exception (aborts without exceptions) on failure.
  void dequantize(std::uint64_t offset, span<const std::byte> values, span<std::byte> destination) const {
    try_dequantize(offset, values, destination).value();
  }

 private:
  dequantizer() = default;

  // The scale factor of element `element` of the part (row-major in its shape), and how many
  // elements from it on share that factor.
  std::pair<float, std::uint64_t> factor_of(std::uint64_t element) const noexcept {
    if (scheme_ == quant_scheme::mxfp4) return {factors_[static_cast<std::size_t>(element / 32)], 32 - element % 32};
    const std::uint64_t row = element / columns_, column = element % columns_;
    return {factors_[static_cast<std::size_t>(row / block_[0] * scale_columns_ + column / block_[1])],
            std::min(columns_ - column, block_[1] - column % block_[1])};
  }

  std::string weight_;
  quant_scheme scheme_ = quant_scheme::fp8_block;
  dtype target_ = dtype::F32;
  std::array<std::uint64_t, 2> block_{};
  std::uint64_t elements_per_byte_ = 1;
  std::vector<std::uint64_t> shape_;
  std::uint64_t count_ = 0;
  std::uint64_t columns_ = 0;
  std::uint64_t scale_columns_ = 0;
  // Per scale, what a value is multiplied by: the scale as the scheme computes it, once.
  std::vector<float> factors_;
};

namespace detail {
// Dequantizes the part of `group` the slices select into `destination` (host order).
template <class Source>
result<void> dequantize_into(const Source& source, const quant_group& group, dtype target, span<std::byte> destination,
                             span<const slice_dim> values_slice, span<const slice_dim> scales_slice) {
  auto part = dequantizer::try_make(source, group, target, values_slice, scales_slice);
  if (!part) return part.error();
  if (destination.size() != part->byte_size())
    return error(error_kind::invalid_tensor_view, "dequantized " + quote(group.weight) + " has " +
                                                      std::to_string(part->element_count()) + " " +
                                                      std::string(dtype_name(target)) + " elements; the destination " +
                                                      "holds " + std::to_string(destination.size()) + " bytes");
  auto request = request_in(source, group.values, {}, values_slice);
  if (!request) return request.error();
  const std::uint64_t scale = part->bytes_per_value_byte();
  auto loaded = source.try_load(span<const load_request>(&*request, 1), [&](const load_piece& piece) {
    return part->try_dequantize(piece.offset, piece.bytes,
                                destination.subspan(static_cast<std::size_t>(piece.offset * scale),
                                                    piece.bytes.size() * static_cast<std::size_t>(scale)));
  });
  if (!loaded) return loaded;
  to_host_order(destination, target);
  return {};
}
}  // namespace detail

/// Dequantizes `group` (from try_quant_groups on `source`) into `destination`, which holds
/// exactly its shape's elements of `target` (F32, BF16 or F16, in host byte order): each value
/// computed in float32 as quant_scheme says, in that order, then rounded once to `target`.
/// InvalidArgument for another target, InvalidTensorView for a destination of the wrong size.
template <class Source>
result<void> try_dequantize(const Source& source, const quant_group& group, dtype target, span<std::byte> destination) {
  return detail::dequantize_into(source, group, target, destination, {}, {});
}

/// Dequantizes the part of `group` that rank `rank` of `size` holds under `plan` (the cuts of
/// try_tp_slices, values and scales together) into `destination`, which holds exactly that
/// part's elements of `target` in host byte order (try_dequantized_shape, or
/// dequantizer::shape(), gives its shape). A part that would cut through scale blocks is
/// InvalidArgument naming the tensor.
///
/// ```cpp
/// auto plan = safetensors::tp_plan::preset("llama");
/// std::vector<std::uint16_t> part(group.shape[0] / 4 * group.shape[1]);  // colwise, rank 1 of 4
/// safetensors::try_dequantize(model, group, safetensors::dtype::BF16,
///                             {reinterpret_cast<std::byte*>(part.data()), part.size() * 2}, plan, 4, 1);
/// ```
template <class Source>
result<void> try_dequantize(const Source& source, const quant_group& group, dtype target, span<std::byte> destination,
                            const tp_plan& plan, std::uint64_t size, std::uint64_t rank) {
  std::vector<const tensor_info*> infos;
  for (const std::string& name : {group.values, group.scales}) {
    auto info = source.try_info(name);
    if (!info) return info.error();
    infos.push_back(*info);
  }
  auto slices = try_tp_slices(plan, infos, size, rank);
  if (!slices) return slices.error();
  return detail::dequantize_into(source, group, target, destination, (*slices)[0], (*slices)[1]);
}

/// Loads `requests` through one plan, as try_load does, with the values of every group of
/// `groups` dequantized on the way: `consumer(const load_piece&)` gets each piece of a group's
/// values request as the bytes of its dequantized part (little-endian `target`, row-major in
/// try_dequantized_shape(group, request); offsets in those bytes), and every other request's
/// pieces as they are. A group's scales (and per-tensor scale) are loaded first, into memory of
/// their own (a part's scales: an eighth of its values' bytes for NVFP4, far less for the
/// others), and are not delivered; each must be among the requests, cut as its values are (the
/// requests of try_tp_requests are), else InvalidArgument naming it. Pieces arrive in no set
/// order, from several threads unless options.consumer_thread.
///
/// ```cpp
/// auto groups = safetensors::try_quant_groups(model);
/// auto requests = safetensors::try_tp_requests(model, safetensors::tp_plan::preset("llama"), 4, rank);
/// safetensors::try_load_dequantized(model, *requests, *groups, safetensors::dtype::BF16,
///                                   [&](const safetensors::load_piece& piece) { upload(piece); });
/// ```
template <class Source, class Consumer>
result<void> try_load_dequantized(const Source& source, span<const load_request> requests,
                                  span<const quant_group> groups, dtype target, Consumer&& consumer,
                                  const load_options& options = {}) {
  std::map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].tensor == nullptr)
      return error(error_kind::invalid_argument, "load request " + std::to_string(i) + " names no tensor");
    by_name.emplace(requests[i].tensor->name, i);
  }
  // Which requests are a group's values (the group), and which its scales (loaded first).
  constexpr std::size_t none = static_cast<std::size_t>(-1);
  std::vector<const quant_group*> values_of(requests.size(), nullptr);
  std::vector<bool> consumed(requests.size(), false);
  std::vector<load_request> scale_requests;
  std::vector<std::vector<std::byte>> scale_memory;
  struct pending {
    std::size_t values, scales, global;
  };
  std::vector<pending> parts;
  for (const quant_group& group : groups) {
    const auto values = by_name.find(group.values);
    if (values == by_name.end()) continue;
    pending part{values->second, none, none};
    for (const std::string* name : {&group.scales, &group.global_scale}) {
      if (name->empty()) continue;
      const auto found = by_name.find(*name);
      if (found == by_name.end())
        return error(error_kind::invalid_argument, "tensor " + detail::quote(group.values) + ": its scale tensor " +
                                                       detail::quote(*name) + " is not among the requests");
      const load_request& request = requests[found->second];
      auto bytes = detail::delivered_bytes(request);
      if (!bytes) return bytes.error();
      (name == &group.scales ? part.scales : part.global) = scale_requests.size();
      scale_memory.emplace_back(static_cast<std::size_t>(*bytes));
      scale_requests.push_back(request);
      consumed[found->second] = true;
    }
    values_of[values->second] = &group;
    parts.push_back(part);
  }
  for (std::size_t k = 0; k < scale_requests.size(); ++k) scale_requests[k].destination = scale_memory[k];
  if (!scale_requests.empty())
    if (auto loaded = source.try_load_into(scale_requests, options); !loaded) return loaded;

  std::vector<std::optional<dequantizer>> dequantizers(requests.size());
  for (const pending& part : parts) {
    const quant_group& group = *values_of[part.values];
    const load_request& values = requests[part.values];
    const load_request& scales = scale_requests[part.scales];
    auto made = dequantizer::try_make(
        group, *values.tensor, values.slice, *scales.tensor, scales.slice, scale_memory[part.scales],
        part.global == none ? span<const std::byte>{} : span<const std::byte>(scale_memory[part.global]), target);
    if (!made) return made.error();
    dequantizers[part.values] = std::move(*made);
  }

  std::vector<load_request> rest;
  std::vector<std::size_t> original;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (consumed[i]) continue;
    rest.push_back(requests[i]);
    original.push_back(i);
  }
  auto deliver = [&](const load_piece& piece) -> result<void> {
    const std::size_t index = original[piece.request];
    if (!dequantizers[index]) return detail::consume(consumer, load_piece{index, piece.offset, piece.bytes});
    const dequantizer& part = *dequantizers[index];
    const auto scale = static_cast<std::size_t>(part.bytes_per_value_byte());
    constexpr std::size_t chunk = std::size_t{64} << 10;
    std::vector<std::byte> out;
    for (std::size_t done = 0; done < piece.bytes.size(); done += chunk) {
      const std::size_t n = std::min(chunk, piece.bytes.size() - done);
      out.resize(n * scale);
      if (auto made = part.try_dequantize(piece.offset + done, piece.bytes.subspan(done, n), out); !made) return made;
      if (auto taken = detail::consume(consumer, load_piece{index, (piece.offset + done) * scale, out}); !taken)
        return taken;
    }
    return {};
  };
  return source.try_load(rest, deliver, options);
}

/// As try_load_dequantized; throws safetensors::exception (aborts without exceptions) on failure.
template <class Source, class Consumer>
void load_dequantized(const Source& source, span<const load_request> requests, span<const quant_group> groups,
                      dtype target, Consumer&& consumer, const load_options& options = {}) {
  try_load_dequantized(source, requests, groups, target, std::forward<Consumer>(consumer), options).value();
}
}  // namespace safetensors

#endif  // SAFETENSORS_QUANT_HPP
