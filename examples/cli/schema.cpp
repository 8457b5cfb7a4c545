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

safetensors::result<std::vector<model_tensor>> model_tensors(const safetensors::model_reader& model) {
  std::vector<model_tensor> tensors;
  tensors.reserve(model.size());
  for (const safetensors::model_entry& entry : model.tensor_names()) {
    auto info = model.try_info(entry.name);
    if (!info) return info.error();
    tensors.push_back({*info, entry.shard});
  }
  return tensors;
}

json model_object(const std::string& path, const safetensors::model_reader& model,
                  const std::vector<model_tensor>& tensors) {
  json object;
  object["path"] = path;
  object["index"] = model.index_path().empty() ? json(nullptr) : json(model.index_path());
  object["total_size"] = model.total_size() ? json(*model.total_size()) : json(nullptr);
  object["shards"] = json::array();
  for (std::size_t shard = 0; shard < model.shard_count(); ++shard)
    object["shards"].push_back(file_object(model.shard_paths()[shard], **model.try_shard(shard)));
  object["tensors"] = json::array();
  for (const model_tensor& tensor : tensors) {
    json entry = tensor_object(*tensor.info);
    entry["shard"] = model.shard_paths()[tensor.shard];
    object["tensors"].push_back(std::move(entry));
  }
  return object;
}

json validation_object(const std::string& path, std::size_t file_count, std::size_t tensor_count) {
  json object;
  object["path"] = path;
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

}  // namespace cli
