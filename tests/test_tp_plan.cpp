// Tensor-parallel plans: patterns and styles, JSON, the llama preset, each rank's cut of every
// tensor of a module (weights, biases, block scales, scalar scales), the refusals, and loads of a
// rank's share from a file and a sharded model, byte for byte against slices cut by hand.
#include "test_support.hpp"

#include <safetensors/model.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

struct declared {
  std::string name;
  st::dtype type;
  std::vector<std::uint64_t> shape;
};

// A file of `tensors`, tensor i's byte k test::fill_byte(i, k).
std::vector<std::byte> file_of(const std::vector<declared>& tensors) {
  std::vector<std::vector<std::byte>> bytes;
  std::vector<st::tensor_source> sources;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    std::uint64_t elements = 1;
    for (std::uint64_t d : tensors[i].shape) elements *= d;
    bytes.emplace_back(static_cast<std::size_t>(elements * st::dtype_bits(tensors[i].type) / 8));
    for (std::size_t k = 0; k < bytes[i].size(); ++k) bytes[i][k] = test::fill_byte(i, k);
  }
  for (std::size_t i = 0; i < tensors.size(); ++i)
    sources.emplace_back(st::tensor_declaration{tensors[i].name, tensors[i].type, tensors[i].shape}, bytes[i]);
  return st::serialize(sources);
}

// A Llama-like layer: q, k, v, o, gate, up, down, two norms, embeddings and the head.
const std::vector<declared> llama_layer = {
    {"model.embed_tokens.weight", st::dtype::F32, {16, 8}},
    {"model.layers.0.self_attn.q_proj.weight", st::dtype::F32, {8, 8}},
    {"model.layers.0.self_attn.k_proj.weight", st::dtype::F32, {4, 8}},
    {"model.layers.0.self_attn.v_proj.weight", st::dtype::F32, {4, 8}},
    {"model.layers.0.self_attn.q_proj.bias", st::dtype::F32, {8}},
    {"model.layers.0.self_attn.o_proj.weight", st::dtype::F32, {8, 8}},
    {"model.layers.0.mlp.gate_proj.weight", st::dtype::BF16, {12, 8}},
    {"model.layers.0.mlp.up_proj.weight", st::dtype::BF16, {12, 8}},
    {"model.layers.0.mlp.down_proj.weight", st::dtype::BF16, {8, 12}},
    {"model.layers.0.input_layernorm.weight", st::dtype::F32, {8}},
    {"model.norm.weight", st::dtype::F32, {8}},
    {"lm_head.weight", st::dtype::F32, {16, 8}},
};

// Each tensor's slice for rank `rank` of `size`, printed as "name: [a:b] | [:, a:b] | whole".
std::map<std::string, std::string> cuts(const st::tp_plan& plan, const st::buffer_reader& reader, std::uint64_t size,
                                        std::uint64_t rank) {
  std::vector<const st::tensor_info*> infos;
  for (const st::tensor_info& info : reader.tensors()) infos.push_back(&info);
  auto slices = st::try_tp_slices(plan, infos, size, rank);
  REQUIRE(slices);
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < infos.size(); ++i) {
    std::string text = (*slices)[i].empty() ? "whole" : "[";
    for (std::size_t d = 0; d < (*slices)[i].size(); ++d) {
      const st::slice_dim& dim = (*slices)[i][d];
      text += (d > 0 ? ", " : "") + (dim.start == 0 && dim.stop == st::to_end
                                         ? std::string(":")
                                         : std::to_string(dim.start) + ":" + std::to_string(dim.stop));
    }
    out[std::string(infos[i]->name)] = (*slices)[i].empty() ? text : text + "]";
  }
  return out;
}

std::string refusal(const st::tp_plan& plan, const std::vector<declared>& tensors, std::uint64_t size) {
  const std::vector<std::byte> bytes = file_of(tensors);
  const st::buffer_reader reader = st::open_buffer(bytes);
  auto requests = st::try_tp_requests(reader, plan, size, 0);
  return requests ? "accepted" : test::outcome(requests) + ": " + requests.error().message();
}

}  // namespace

TEST_CASE("tp_plan: patterns match a module or a dotted suffix of it, * any one part, the first rule wins", "[tp]") {
  const st::tp_plan llama = st::tp_plan::preset("llama");
  CHECK(llama.style_of("model.layers.0.self_attn.q_proj.weight") == st::tp_style::colwise);
  CHECK(llama.style_of("model.layers.31.mlp.down_proj.weight") == st::tp_style::rowwise);
  CHECK(llama.style_of("model.layers.0.self_attn.o_proj.bias") == st::tp_style::rowwise);
  CHECK(llama.style_of("lm_head.weight") == st::tp_style::colwise);
  CHECK(llama.style_of("model.embed_tokens.weight") == st::tp_style::replicate);
  CHECK(llama.style_of("model.layers.0.post_attention_layernorm.weight") == st::tp_style::replicate);
  CHECK(llama.style_of("q_proj") == st::tp_style::replicate);  // no module: replicated
  // A part matches a whole part only: "proj" is not a suffix of the module q_proj.
  st::tp_plan plan;
  plan.add("proj", st::tp_style::colwise).add("layers.*.mlp.up_proj", st::tp_style::rowwise);
  CHECK(plan.style_of("model.layers.0.mlp.q_proj.weight") == st::tp_style::replicate);
  CHECK(plan.style_of("model.layers.7.mlp.up_proj.weight") == st::tp_style::rowwise);
  CHECK(plan.style_of("layers.7.mlp.up_proj.weight") == st::tp_style::rowwise);
  CHECK(plan.style_of("model.layers.mlp.up_proj.weight") == st::tp_style::replicate);
  CHECK(plan.style_of("mlp.up_proj.weight") == st::tp_style::replicate);  // the pattern has more parts
  st::tp_plan first_wins;
  first_wins.add("q_proj", st::tp_style::rowwise).add("self_attn.q_proj", st::tp_style::colwise);
  CHECK(first_wins.style_of("model.layers.0.self_attn.q_proj.weight") == st::tp_style::rowwise);
  CHECK(st::tp_style_name(st::tp_style::colwise) == "colwise");
  CHECK(test::outcome(st::tp_plan::try_preset("gpt2")) == "InvalidArgument");
}

TEST_CASE("tp_plan: read from JSON in order, with clear refusals", "[tp]") {
  auto plan = st::tp_plan::try_parse(R"({"layers.*.self_attn.q_proj": "colwise", "o_proj": "rowwise",
    "lm_head": "replicate"})");
  REQUIRE(plan);
  REQUIRE(plan->rules().size() == 3);
  CHECK(plan->rules()[0].pattern == "layers.*.self_attn.q_proj");
  CHECK(plan->rules()[1].style == st::tp_style::rowwise);
  CHECK(plan->rules()[2].style == st::tp_style::replicate);
  CHECK(st::tp_plan::try_parse("{}")->rules().empty());
  auto refused = [](std::string_view json) {
    auto parsed = st::tp_plan::try_parse(json);
    return parsed ? std::string("accepted") : test::outcome(parsed) + ": " + parsed.error().message();
  };
  CHECK(refused(R"(["q_proj"])") ==
        "InvalidArgument: tp_plan: a tp_plan must be a JSON object of module pattern to style (at tp_plan byte 0)");
  CHECK(refused(R"({"q_proj": "columnwise"})") ==
        "InvalidArgument: tp_plan: the style of \"q_proj\" is \"columnwise\", not \"colwise\", \"rowwise\" or "
        "\"replicate\" (at tp_plan byte 23)");
  CHECK(refused(R"({"q_proj": 1})") ==
        "InvalidArgument: tp_plan: the style of \"q_proj\" must be a string (at tp_plan byte 11)");
  CHECK(refused(R"({"a": "colwise", "a": "rowwise"})") == "InvalidArgument: tp_plan: the pattern \"a\" appears twice");
  CHECK(refused(R"({"": "colwise"})") == "InvalidArgument: tp_plan: an empty module pattern (at tp_plan byte 14)");
  CHECK(refused(R"({"a": "colwise"} x)") ==
        "InvalidArgument: tp_plan: unexpected bytes after the tp_plan's closing '}' (at tp_plan byte 17)");
  CHECK(refused("{\"\xff\": \"colwise\"}") == "InvalidArgument: tp_plan: not valid UTF-8");
}

TEST_CASE("tp_plan: each rank's cut of a Llama layer, and its load byte for byte", "[tp]") {
  const std::vector<std::byte> bytes = file_of(llama_layer);
  const st::buffer_reader reader = st::open_buffer(bytes);
  const st::tp_plan llama = st::tp_plan::preset("llama");
  const std::map<std::string, std::string> rank1 = cuts(llama, reader, 2, 1);
  CHECK(rank1 == std::map<std::string, std::string>{
                     {"model.embed_tokens.weight", "whole"},
                     {"model.layers.0.self_attn.q_proj.weight", "[4:8]"},
                     {"model.layers.0.self_attn.k_proj.weight", "[2:4]"},
                     {"model.layers.0.self_attn.v_proj.weight", "[2:4]"},
                     {"model.layers.0.self_attn.q_proj.bias", "[4:8]"},
                     {"model.layers.0.self_attn.o_proj.weight", "[:, 4:8]"},
                     {"model.layers.0.mlp.gate_proj.weight", "[6:12]"},
                     {"model.layers.0.mlp.up_proj.weight", "[6:12]"},
                     {"model.layers.0.mlp.down_proj.weight", "[:, 6:12]"},
                     {"model.layers.0.input_layernorm.weight", "whole"},
                     {"model.norm.weight", "whole"},
                     {"lm_head.weight", "[8:16]"},
                 });
  CHECK(cuts(llama, reader, 4, 3)["model.layers.0.mlp.down_proj.weight"] == "[:, 9:12]");
  CHECK(cuts(llama, reader, 1, 0)["lm_head.weight"] == "[0:16]");
  // Loaded: every request's bytes are its slice's, read from the whole tensor's view.
  for (std::uint64_t rank = 0; rank < 4; ++rank) {
    auto requests = st::try_tp_requests(reader, llama, 4, rank);
    REQUIRE(requests);
    std::vector<std::vector<std::byte>> got;
    for (const st::load_request& r : *requests) {
      auto slice = reader.try_slice(r.tensor->name, r.slice);
      REQUIRE(slice);
      got.emplace_back(static_cast<std::size_t>(slice->byte_size()));
    }
    for (std::size_t i = 0; i < requests->size(); ++i) (*requests)[i].destination = got[i];
    REQUIRE(reader.try_load_into(*requests));
    for (std::size_t i = 0; i < requests->size(); ++i) {
      const st::tensor_view view = reader.view((*requests)[i].tensor->name);
      std::vector<std::byte> expected(got[i].size());
      REQUIRE(st::tensor_slice::make(view, (*requests)[i].slice).try_copy_to(expected, view.dtype()));
      st::detail::to_host_order(expected, view.dtype());  // back to the file's little-endian order
      CHECK(got[i] == expected);
    }
  }
}

TEST_CASE("tp_plan: scales are cut with their weights, scalars replicated, blocks never split", "[tp]") {
  st::tp_plan plan;
  plan.add("up_proj", st::tp_style::colwise).add("down_proj", st::tp_style::rowwise);
  // NVFP4 as compressed-tensors writes it: packed weight [out, in/2] (two F4 a byte), block scales
  // [out, in/16], a global scale [1]. FP8 as DeepSeek-V3 writes it: weight [out, in], scale_inv
  // [out/128, in/128].
  const std::vector<declared> quantized = {
      {"mlp.up_proj.weight_packed", st::dtype::U8, {8, 32}},
      {"mlp.up_proj.weight_scale", st::dtype::F8_E4M3, {8, 4}},
      {"mlp.up_proj.weight_global_scale", st::dtype::F32, {1}},
      {"mlp.up_proj.input_scale", st::dtype::F32, {}},
      {"mlp.down_proj.weight_packed", st::dtype::U8, {8, 32}},
      {"mlp.down_proj.weight_scale", st::dtype::F8_E4M3, {8, 4}},
      {"mlp.down_proj.weight_global_scale", st::dtype::F32, {1}},
      {"mlp.down_proj.bias", st::dtype::F32, {8}},
  };
  const std::vector<std::byte> bytes = file_of(quantized);
  const st::buffer_reader reader = st::open_buffer(bytes);
  CHECK(cuts(plan, reader, 2, 1) == std::map<std::string, std::string>{
                                        {"mlp.up_proj.weight_packed", "[4:8]"},
                                        {"mlp.up_proj.weight_scale", "[4:8]"},
                                        {"mlp.up_proj.weight_global_scale", "whole"},
                                        {"mlp.up_proj.input_scale", "whole"},
                                        {"mlp.down_proj.weight_packed", "[:, 16:32]"},
                                        {"mlp.down_proj.weight_scale", "[:, 2:4]"},
                                        {"mlp.down_proj.weight_global_scale", "whole"},
                                        {"mlp.down_proj.bias", "whole"},
                                    });
  // Four ranks: each gets 8 bytes (16 F4) of a row and one scale of 16 F4: whole blocks.
  CHECK(cuts(plan, reader, 4, 3)["mlp.down_proj.weight_scale"] == "[:, 3:4]");
  // Eight: the scales no longer divide.
  CHECK(refusal(plan, quantized, 8) ==
        "InvalidArgument: tensor \"mlp.down_proj.weight_scale\" (rowwise by the pattern \"down_proj\"): dimension 1 "
        "of size 4 does not divide into 8 ranks");
  // FP8 with 128x128 blocks: two ranks cut whole blocks; four would split each in two.
  const std::vector<declared> fp8 = {{"mlp.up_proj.weight", st::dtype::F8_E4M3, {256, 256}},
                                     {"mlp.up_proj.weight_scale_inv", st::dtype::F32, {2, 2}}};
  CHECK(refusal(plan, fp8, 2) == "accepted");
  CHECK(refusal(plan, fp8, 4) ==
        "InvalidArgument: tensor \"mlp.up_proj.weight_scale_inv\" (colwise by the pattern \"up_proj\"): dimension 0 of "
        "size 2 does not divide into 4 ranks");
  const std::vector<declared> fp8_wide = {{"mlp.up_proj.weight", st::dtype::F8_E4M3, {512, 256}},
                                          {"mlp.up_proj.weight_scale_inv", st::dtype::F32, {4, 2}}};
  CHECK(refusal(plan, fp8_wide, 4) == "accepted");
  const std::vector<declared> fp8_odd = {{"mlp.up_proj.weight", st::dtype::F8_E4M3, {384, 256}},
                                         {"mlp.up_proj.weight_scale_inv", st::dtype::F32, {3, 2}}};
  CHECK(refusal(plan, fp8_odd, 3) == "accepted");
  // 320 rows in blocks of 128: three scale rows, the last block partial; any cut splits one.
  const std::vector<declared> ragged = {{"mlp.up_proj.weight", st::dtype::F8_E4M3, {320, 256}},
                                        {"mlp.up_proj.weight_scale_inv", st::dtype::F32, {3, 2}}};
  CHECK(refusal(plan, ragged, 1) == "accepted");
  CHECK(refusal(plan, ragged, 3) ==
        "InvalidArgument: tensor \"mlp.up_proj.weight_scale_inv\" (colwise by the pattern \"up_proj\"): its weight's "
        "dimension 0 of size 320 is not a whole number of its 3 blocks, so a cut into 3 ranks would split a block "
        "between ranks");
}

TEST_CASE("tp_plan: a dimension that does not divide is refused, never loaded whole", "[tp]") {
  const st::tp_plan llama = st::tp_plan::preset("llama");
  // The first tensor in data order that does not divide is named (F32 tensors, by name).
  CHECK(refusal(llama, llama_layer, 3) ==
        "InvalidArgument: tensor \"lm_head.weight\" (colwise by the pattern \"lm_head\"): dimension 0 of size 16 does "
        "not divide into 3 ranks");
  CHECK(refusal(llama, llama_layer, 0) == "InvalidArgument: tensor parallelism: rank 0 is not below size 0");
  const std::vector<std::byte> bytes = file_of(llama_layer);
  const st::buffer_reader reader = st::open_buffer(bytes);
  CHECK(test::outcome(st::try_tp_requests(reader, llama, 2, 2)) == "InvalidArgument");
}

TEST_CASE("tp_plan: a sharded model's rank loads its share from every shard", "[tp][sharded]") {
  test::temp_directory dir;
  std::vector<st::tensor_declaration> declarations;
  for (const declared& t : llama_layer) declarations.push_back({t.name, t.type, t.shape});
  st::shard_options options;
  options.max_shard_size = 512;
  auto writer = st::make_sharded_writer(dir.path, declarations, options);
  const std::vector<std::byte> bytes = file_of(llama_layer);
  const st::buffer_reader whole = st::open_buffer(bytes);
  for (const st::tensor_info& info : whole.tensors()) writer.write(info.name, whole.view(info).bytes);
  writer.finish();
  const st::pread_model_reader model = st::open_model_pread(dir.path);
  REQUIRE(model.shard_count() > 2);
  auto requests = st::try_tp_requests(model, st::tp_plan::preset("llama"), 2, 0);
  REQUIRE(requests);
  std::uint64_t delivered = 0;
  std::map<std::string, std::vector<std::byte>> got;
  auto loaded = model.try_load(
      *requests,
      [&](const st::load_piece& piece) {
    std::vector<std::byte>& into = got[std::string((*requests)[piece.request].tensor->name)];
    into.resize(std::max<std::size_t>(into.size(), static_cast<std::size_t>(piece.offset) + piece.bytes.size()));
    std::copy(piece.bytes.begin(), piece.bytes.end(), into.begin() + static_cast<std::ptrdiff_t>(piece.offset));
    delivered += piece.bytes.size();
      },
      [] {
    st::load_options one_thread;
    one_thread.threads = 1;
    return one_thread;
  }());
  REQUIRE(loaded);
  std::uint64_t expected_total = 0;
  for (const st::load_request& r : *requests) {
    const st::tensor_view view = whole.view(r.tensor->name);
    const st::tensor_slice slice = st::tensor_slice::make(view, r.slice);
    std::vector<std::byte> expected(static_cast<std::size_t>(slice.byte_size()));
    REQUIRE(slice.try_copy_to(expected, view.dtype()));
    st::detail::to_host_order(expected, view.dtype());  // back to the file's little-endian order
    CHECK(got[std::string(r.tensor->name)] == expected);
    expected_total += expected.size();
  }
  CHECK(delivered == expected_total);
}
