// safetensors-hpp: tensor-parallel plans: tp_style, tp_plan (module pattern to style, as
// transformers writes a tp_plan; the built-in "llama"), and a rank's share of every tensor as
// slices and load requests.
// Part of the core: docs/ARCHITECTURE.md says what each header owns and may include.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the safetensors-hpp authors

#ifndef SAFETENSORS_TP_PLAN_HPP
#define SAFETENSORS_TP_PLAN_HPP

#include "json_scanner.hpp"
#include "load_plan.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace safetensors {

/// How a tensor-parallel plan cuts the tensors of a module.
enum class tp_style : std::uint8_t {
  /// Column-parallel (q, k, v, gate, up; Megatron's ColumnParallelLinear): dimension 0 (the
  /// output features) of every tensor of the module is cut, weights, biases and their block
  /// scales alike; a per-tensor scalar scale is replicated.
  colwise,
  /// Row-parallel (o, down): dimension 1 (the input features) of every tensor of rank 2 or more
  /// is cut (weights and their block scales); biases and scalar scales are replicated.
  rowwise,
  /// Loaded whole by every rank.
  replicate,
};

/// The style's name as transformers writes it: "colwise", "rowwise" or "replicate".
constexpr std::string_view tp_style_name(tp_style style) noexcept {
  switch (style) {
    case tp_style::colwise: return "colwise";
    case tp_style::rowwise: return "rowwise";
    default: return "replicate";
  }
}

/// A tensor-parallel plan: module patterns, in order, each with a style, as transformers writes a
/// model's tp_plan. A tensor's module is its name less the last dotted part
/// (`model.layers.0.mlp.down_proj` for `model.layers.0.mlp.down_proj.weight`). A pattern matches
/// a module when it equals the whole module name or a dotted suffix of it; `*` stands for any one
/// dotted part (`layers.*.mlp.down_proj`). The first matching rule wins; a tensor no rule matches
/// is replicated.
///
/// ```cpp
/// safetensors::tp_plan plan = safetensors::tp_plan::preset("llama");
/// plan.add("experts.*.w1", safetensors::tp_style::colwise);
/// auto requests = safetensors::try_tp_requests(model, plan, 4, rank);
/// ```
class tp_plan {
 public:
  /// One pattern and its style.
  struct rule {
    /// Dotted parts, `*` for any one.
    std::string pattern;
    /// What is done to the tensors of the modules it matches.
    tp_style style = tp_style::replicate;
  };

  /// A plan of no rules: everything replicated.
  tp_plan() = default;

  /// Appends a rule (after every rule already there, so it wins only where they do not match).
  tp_plan& add(std::string pattern, tp_style style) {
    rules_.push_back({std::move(pattern), style});
    return *this;
  }

  /// A plan from JSON: an object of pattern to style ("colwise", "rowwise" or "replicate", as
  /// transformers writes them), in the object's order. InvalidArgument names what is wrong.
  static result<tp_plan> try_parse(std::string_view json);
  /// As try_parse; throws safetensors::exception (aborts without exceptions) on failure.
  static tp_plan parse(std::string_view json) { return try_parse(json).value(); }

  /// A built-in plan by name. "llama" (Llama, Mistral, Qwen2 and Qwen3 naming): q_proj, k_proj,
  /// v_proj, gate_proj and up_proj colwise, o_proj and down_proj rowwise, lm_head colwise; the
  /// rest (embeddings, norms) replicated. InvalidArgument for another name.
  static result<tp_plan> try_preset(std::string_view name) {
    if (name != "llama")
      return error(error_kind::invalid_argument,
                   "no built-in tp_plan named " + detail::quote(name) + " (there is \"llama\")");
    tp_plan plan;
    for (const char* column : {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"})
      plan.add(column, tp_style::colwise);
    plan.add("o_proj", tp_style::rowwise).add("down_proj", tp_style::rowwise).add("lm_head", tp_style::colwise);
    return plan;
  }
  /// As try_preset; throws safetensors::exception (aborts without exceptions) on failure.
  static tp_plan preset(std::string_view name) { return try_preset(name).value(); }

  /// The rules, in order.
  const std::vector<rule>& rules() const noexcept { return rules_; }

  /// The rule that decides the tensor named `tensor_name`, or nullptr (it is replicated).
  const rule* rule_of(std::string_view tensor_name) const {
    const std::size_t last_dot = tensor_name.rfind('.');
    if (last_dot == std::string_view::npos) return nullptr;
    const std::string_view module = tensor_name.substr(0, last_dot);
    for (const rule& r : rules_)
      if (matches(r.pattern, module)) return &r;
    return nullptr;
  }
  /// The style of the tensor named `tensor_name` (replicate when no rule matches).
  tp_style style_of(std::string_view tensor_name) const {
    const rule* found = rule_of(tensor_name);
    return found == nullptr ? tp_style::replicate : found->style;
  }

 private:
  // The dotted parts of `name`.
  static std::vector<std::string_view> parts_of(std::string_view name) {
    std::vector<std::string_view> parts;
    for (std::size_t start = 0;;) {
      const std::size_t dot = name.find('.', start);
      parts.push_back(name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
      if (dot == std::string_view::npos) return parts;
      start = dot + 1;
    }
  }
  // Whether `pattern` equals `module` or a dotted suffix of it, `*` matching any one part.
  static bool matches(std::string_view pattern, std::string_view module) {
    const std::vector<std::string_view> wanted = parts_of(pattern), parts = parts_of(module);
    if (wanted.size() > parts.size()) return false;
    const std::size_t offset = parts.size() - wanted.size();
    for (std::size_t i = 0; i < wanted.size(); ++i)
      if (wanted[i] != "*" && wanted[i] != parts[offset + i]) return false;
    return true;
  }

  std::vector<rule> rules_;
};

namespace detail {
/// Reads a tp_plan's JSON: one object of string to string, in order.
class tp_plan_scanner : private json_scanner {
 public:
  explicit tp_plan_scanner(std::string_view text) noexcept : json_scanner(text.data(), text.size(), "tp_plan") {}

  result<tp_plan> scan() {
    tp_plan plan;
    std::vector<std::string> keys;
    std::string style;
    skip_whitespace();
    if (cur_ == end_ || *cur_ != '{') return fail("a tp_plan must be a JSON object of module pattern to style");
    ++cur_;
    const auto where = [] { return "in the tp_plan"; };
    const bool scanned = scan_object(where, [&] {
      std::string pattern;
      if (cur_ == end_ || *cur_ != '"') return set_error("expected a module pattern (a string)");
      if (!scan_string_into(pattern) || !expect_colon()) return false;
      if (cur_ == end_ || *cur_ != '"') return set_error("the style of " + quote(pattern) + " must be a string");
      style.clear();
      if (!scan_string_into(style)) return false;
      tp_style parsed;
      if (style == "colwise") {
        parsed = tp_style::colwise;
      } else if (style == "rowwise") {
        parsed = tp_style::rowwise;
      } else if (style == "replicate") {
        parsed = tp_style::replicate;
      } else {
        return set_error("the style of " + quote(pattern) + " is " + quote(style) +
                         ", not \"colwise\", \"rowwise\" or \"replicate\"");
      }
      if (pattern.empty()) return set_error("an empty module pattern");
      keys.push_back(pattern);
      plan.add(std::move(pattern), parsed);
      return true;
    });
    if (!scanned) return failure();
    skip_whitespace();
    if (cur_ != end_) return fail("unexpected bytes after the tp_plan's closing '}'");
    std::sort(keys.begin(), keys.end());
    auto repeated = std::adjacent_find(keys.begin(), keys.end());
    if (repeated != keys.end())
      return error(error_kind::invalid_argument, "tp_plan: the pattern " + quote(*repeated) + " appears twice");
    return plan;
  }

 private:
  result<tp_plan> failure() const { return error(error_kind::invalid_argument, "tp_plan: " + error_); }
  result<tp_plan> fail(const std::string& what) {
    set_error(what);
    return failure();
  }
};
}  // namespace detail

inline result<tp_plan> tp_plan::try_parse(std::string_view json) {
  if (detail::utf8_invalid_at(reinterpret_cast<const unsigned char*>(json.data()), json.size()) != json.size())
    return error(error_kind::invalid_argument, "tp_plan: not valid UTF-8");
  return detail::tp_plan_scanner(json).scan();
}

namespace detail {
// Whether `info` is a per-tensor scale: a single element (rank 0, or every dimension 1).
inline bool is_scalar(const tensor_info& info) noexcept {
  return std::all_of(info.shape.begin(), info.shape.end(), [](std::uint64_t d) { return d == 1; });
}
}  // namespace detail

/// What rank `rank` of `size` loads of each of `tensors` under `plan`: a slice per tensor, in the
/// same order (empty: the whole tensor). Tensors of one module are cut together: a colwise
/// module's along dimension 0 (its scalar scales whole), a rowwise module's tensors of rank 2 or
/// more along dimension 1. Rank R gets [R*s/N, (R+1)*s/N) of a cut dimension of size s.
/// InvalidArgument, naming the tensor, the rule and the sizes, when a cut dimension does not
/// divide by `size`, or when a rank's part of a weight would end inside a block of a scale
/// tensor cut with it (of a module's tensors of rank 2 or more, the largest along the dimension
/// is its weight; a smaller one there holds one value per block of it, and the blocks must be
/// whole): never a silent whole load. Packed sub-byte weights (U8 bytes holding two F4) are cut in bytes like any other.
inline result<std::vector<std::vector<slice_dim>>> try_tp_slices(const tp_plan& plan,
                                                                 span<const tensor_info* const> tensors,
                                                                 std::uint64_t size, std::uint64_t rank) {
  if (size == 0 || rank >= size)
    return error(error_kind::invalid_argument,
                 "tensor parallelism: rank " + std::to_string(rank) + " is not below size " + std::to_string(size));
  std::vector<std::vector<slice_dim>> slices(tensors.size());
  // The dimension each tensor is cut along (or none), and each module's largest extent there.
  constexpr std::size_t whole = static_cast<std::size_t>(-1);
  std::vector<std::size_t> cut(tensors.size(), whole);
  std::map<std::pair<std::string_view, std::size_t>, std::uint64_t> weight_extent;
  auto module_of = [](std::string_view name) { return name.substr(0, name.rfind('.')); };
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const tensor_info& info = *tensors[i];
    const tp_style style = plan.style_of(info.name);
    if (style == tp_style::colwise && !detail::is_scalar(info) && !info.shape.empty()) cut[i] = 0;
    if (style == tp_style::rowwise && info.shape.size() >= 2) cut[i] = 1;
    if (cut[i] == whole || info.shape.size() < 2) continue;
    std::uint64_t& largest = weight_extent[{module_of(info.name), cut[i]}];
    largest = std::max(largest, info.shape[cut[i]]);
  }
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (cut[i] == whole) continue;
    const tensor_info& info = *tensors[i];
    const std::size_t d = cut[i];
    const std::uint64_t extent = info.shape[d];
    const tp_plan::rule& decided = *plan.rule_of(info.name);
    const std::string subject = "tensor " + detail::quote(info.name) + " (" +
                                std::string(tp_style_name(decided.style)) + " by the pattern " +
                                detail::quote(decided.pattern) + ")";
    if (extent % size != 0)
      return error(error_kind::invalid_argument, subject + ": dimension " + std::to_string(d) + " of size " +
                                                     std::to_string(extent) + " does not divide into " +
                                                     std::to_string(size) + " ranks");
    // A scale of `extent` blocks cuts with its weight only when the blocks are whole: a ragged
    // last block makes every rank's part end inside one. Weights and block scales have two
    // dimensions or more; biases are cut as they are.
    const std::uint64_t weight = info.shape.size() < 2 ? 0 : weight_extent[{module_of(info.name), d}];
    if (extent < weight && size > 1 && weight % extent != 0)
      return error(error_kind::invalid_argument,
                   subject + ": its weight's dimension " + std::to_string(d) + " of size " + std::to_string(weight) +
                       " is not a whole number of its " + std::to_string(extent) + " blocks, so a cut into " +
                       std::to_string(size) + " ranks would split a block between ranks");
    const std::uint64_t part = extent / size;
    std::vector<slice_dim> dims(d, all());
    dims.push_back(range(static_cast<std::int64_t>(rank * part), static_cast<std::int64_t>((rank + 1) * part)));
    slices[i] = std::move(dims);
  }
  return slices;
}

namespace detail {
template <class Source, class = void>
struct lists_by_name : std::false_type {};
template <class Source>
struct lists_by_name<Source, std::void_t<decltype(std::declval<const Source&>().tensor_names())>> : std::true_type {};

/// Every tensor of `source` (a reader or a model of any storage) and the shard it is in: a
/// model's by name, its shards opened; a reader's in data order, all in shard 0.
struct listed_tensors {
  std::vector<const tensor_info*> infos;
  std::vector<std::size_t> shards;
};
template <class Source>
result<listed_tensors> list_tensors(const Source& source) {
  listed_tensors listed;
  if constexpr (lists_by_name<Source>::value) {
    for (const auto& entry : source.tensor_names()) {
      auto info = source.try_info(entry.name);
      if (!info) return info.error();
      listed.infos.push_back(*info);
      listed.shards.push_back(entry.shard);
    }
  } else {
    for (const tensor_info& info : source.tensors()) listed.infos.push_back(&info);
    listed.shards.assign(listed.infos.size(), 0);
  }
  return listed;
}
}  // namespace detail

/// The load requests of rank `rank` of `size` under `plan` for every tensor of `source` (a
/// reader or a model of any storage; a model's shards are opened), destinations left empty: for
/// try_load with a consumer, or to fill in before try_load_into. See try_tp_slices for the cuts
/// and the errors.
template <class Source>
result<std::vector<load_request>> try_tp_requests(const Source& source, const tp_plan& plan, std::uint64_t size,
                                                  std::uint64_t rank) {
  auto listed = detail::list_tensors(source);
  if (!listed) return listed.error();
  auto slices = try_tp_slices(plan, listed->infos, size, rank);
  if (!slices) return slices.error();
  std::vector<load_request> requests;
  for (std::size_t i = 0; i < listed->infos.size(); ++i)
    requests.emplace_back(listed->infos[i], span<std::byte>{}, std::move((*slices)[i]), listed->shards[i]);
  return requests;
}

}  // namespace safetensors

#endif  // SAFETENSORS_TP_PLAN_HPP
