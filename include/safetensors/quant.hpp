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

namespace detail {

// The float32 values of a tensor's bytes (F4, F8_E4M3, F32; U8 as E8M0 exponents aside), in
// host order.
inline result<std::vector<float>> floats_of(const std::vector<std::byte>& bytes, dtype type, std::uint64_t count) {
  std::vector<float> values(static_cast<std::size_t>(count));
  auto converted =
      try_convert(bytes, type, {reinterpret_cast<std::byte*>(values.data()), values.size() * 4}, dtype::F32);
  if (!converted) return converted.error();
  to_host_order({reinterpret_cast<std::byte*>(values.data()), values.size() * 4}, dtype::F32);
  return values;
}

}  // namespace detail

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

/// Dequantizes `group` (from try_quant_groups on `source`) into `destination`, which holds
/// exactly its shape's elements of `target` (F32, BF16 or F16, in host byte order): each value
/// computed in float32 as quant_scheme says, in that order, then rounded once to `target`.
/// InvalidArgument for another target, InvalidTensorView for a destination of the wrong size.
template <class Source>
result<void> try_dequantize(const Source& source, const quant_group& group, dtype target, span<std::byte> destination) {
  if (target != dtype::F32 && target != dtype::BF16 && target != dtype::F16)
    return error(error_kind::invalid_argument, "dequantize " + detail::quote(group.weight) +
                                                   " to F32, BF16 or F16, not " + std::string(dtype_name(target)));
  std::uint64_t count = 1;
  for (std::uint64_t d : group.shape) count *= d;
  if (destination.size() != count * dtype_bits(target) / 8)
    return error(error_kind::invalid_tensor_view, "dequantized " + detail::quote(group.weight) + " has " +
                                                      std::to_string(count) + " " + std::string(dtype_name(target)) +
                                                      " elements; the destination holds " +
                                                      std::to_string(destination.size()) + " bytes");
  auto values_info = source.try_info(group.values);
  if (!values_info) return values_info.error();
  auto scales_info = source.try_info(group.scales);
  if (!scales_info) return scales_info.error();
  auto values_bytes = source.try_read(group.values);
  if (!values_bytes) return values_bytes.error();
  auto scales_bytes = source.try_read(group.scales);
  if (!scales_bytes) return scales_bytes.error();
  // The quantized values as float32: F4 nibbles (two a byte, low first) or F8_E4M3.
  const dtype value_type = group.scheme == quant_scheme::fp8_block ? dtype::F8_E4M3 : dtype::F4;
  auto values = detail::floats_of(*values_bytes, value_type, count);
  if (!values) return values.error();
  std::vector<float> result_values(static_cast<std::size_t>(count));
  const std::uint64_t columns = group.shape.back();
  if (group.scheme == quant_scheme::mxfp4) {
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto exponent = static_cast<unsigned>((*scales_bytes)[static_cast<std::size_t>(i / 32)]);
      result_values[static_cast<std::size_t>(i)] =
          exponent == 255 ? std::numeric_limits<float>::quiet_NaN()
                          : std::ldexp(values->at(static_cast<std::size_t>(i)), static_cast<int>(exponent) - 127);
    }
  } else {
    const dtype scale_type = group.scheme == quant_scheme::fp8_block ? dtype::F32 : dtype::F8_E4M3;
    auto scales = detail::floats_of(*scales_bytes, scale_type, (*scales_info)->element_count);
    if (!scales) return scales.error();
    float global = 1.0f;
    if (!group.global_scale.empty()) {
      auto global_bytes = source.try_read(group.global_scale);
      if (!global_bytes) return global_bytes.error();
      auto global_values = detail::floats_of(*global_bytes, dtype::F32, 1);
      if (!global_values) return global_values.error();
      global = (*global_values)[0];
    }
    const std::uint64_t scale_columns = (*scales_info)->shape.back();
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t row = i / columns, column = i % columns;
      const float scale =
          (*scales)[static_cast<std::size_t>(row / group.block[0] * scale_columns + column / group.block[1])];
      const float value = (*values)[static_cast<std::size_t>(i)];
      float factor = scale;
      if (group.scheme == quant_scheme::nvfp4_compressed_tensors) factor = scale / global;
      if (group.scheme == quant_scheme::nvfp4_modelopt) factor = scale * global;
      result_values[static_cast<std::size_t>(i)] = value * factor;
    }
  }
  // Little-endian float32 bytes, converted once to the target, then to host order.
  const span<std::byte> computed{reinterpret_cast<std::byte*>(result_values.data()), result_values.size() * 4};
  detail::to_host_order(computed, dtype::F32);
  if (auto converted = try_convert(computed, dtype::F32, destination, target); !converted)
    return error(converted.error().kind(),
                 "dequantize " + detail::quote(group.weight) + ": " + converted.error().message());
  detail::to_host_order(destination, target);
  return {};
}

}  // namespace safetensors

#endif  // SAFETENSORS_QUANT_HPP
