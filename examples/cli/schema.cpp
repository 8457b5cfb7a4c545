#include "schema.hpp"

namespace cli {

json tensor_object(const safetensors::tensor_info& info) {
  json tensor;
  tensor["name"] = info.name;
  tensor["dtype"] = safetensors::dtype_name(info.dtype);
  tensor["shape"] = std::vector<std::uint64_t>(info.shape.begin(), info.shape.end());
  tensor["data_offsets"] = info.data_offsets;
  return tensor;
}

json metadata_object(const safetensors::metadata_map& metadata) {
  json object = json::object();
  for (const auto& [key, value] : metadata) object[key] = value;
  return object;
}

json validation_object(const std::string& path, std::size_t file_count, std::size_t tensor_count) {
  json object;
  object["path"] = shown_location(path);
  object["file_count"] = file_count;
  object["tensor_count"] = tensor_count;
  return object;
}

json ok_object(const json& object) {
  json whole;
  whole["ok"] = true;
  for (const auto& [key, value] : object.items()) whole[key] = value;
  return whole;
}

json quant_group_object(const safetensors::quant_group& group) {
  json object;
  object["weight"] = group.weight;
  object["scheme"] = safetensors::quant_scheme_name(group.scheme);
  object["shape"] = group.shape;
  object["block"] = group.block;
  object["values"] = group.values;
  object["scales"] = group.scales;
  object["global_scale"] = group.global_scale.empty() ? json(nullptr) : json(group.global_scale);
  return object;
}

}  // namespace cli
