// The JSON the reading commands print about files and models: one schema for both. A file is a
// file object; a model lists its shards as file objects, and its tensors as a file's with the
// shard each lives in.
#pragma once

#include "output.hpp"

#include <safetensors/model.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cli {

// {"name", "dtype", "shape", "data_offsets"}: data_offsets within the tensor's file.
json tensor_object(const safetensors::tensor_info& info);

json metadata_object(const safetensors::metadata_map& metadata);

// {"path", "header_length", "data_start", "metadata" (null when there is none), "tensors":
// [tensor objects, in data order]}.
template <class Reader>
json file_object(const std::string& path, const Reader& reader) {
  json file;
  file["path"] = shown_location(path);
  file["header_length"] = reader.header_length();
  file["data_start"] = reader.data_start();
  file["metadata"] = reader.has_metadata() ? metadata_object(reader.metadata()) : json(nullptr);
  file["tensors"] = json::array();
  for (const safetensors::tensor_info& info : reader.tensors()) file["tensors"].push_back(tensor_object(info));
  return file;
}

// One tensor of a model: its description, and the position of its shard in shard_paths().
struct model_tensor {
  const safetensors::tensor_info* info;
  std::size_t shard;
};

// Every tensor of a model, by name, each from its shard (opened and checked against the index).
template <class Model>
safetensors::result<std::vector<model_tensor>> model_tensors(const Model& model) {
  std::vector<model_tensor> tensors;
  tensors.reserve(model.size());
  for (const safetensors::model_entry& entry : model.tensor_names()) {
    auto info = model.try_info(entry.name);
    if (!info) return info.error();
    tensors.push_back({*info, entry.shard});
  }
  return tensors;
}

// {"path", "index" (null for a directory holding one file and no index), "total_size" (null when
// the index has none), "shards": [file objects, in path order], "tensors": [tensor objects and
// "shard" (the path of a shard in "shards"), by name]}. Every shard must be open (validated).
template <class Model>
json model_object(const std::string& path, const Model& model, const std::vector<model_tensor>& tensors) {
  json object;
  object["path"] = shown_location(path);
  object["index"] = model.index_path().empty() ? json(nullptr) : json(shown_location(model.index_path()));
  object["total_size"] = model.total_size() ? json(*model.total_size()) : json(nullptr);
  object["shards"] = json::array();
  for (std::size_t shard = 0; shard < model.shard_count(); ++shard)
    object["shards"].push_back(file_object(model.shard_paths()[shard], model.shard(shard)));
  object["tensors"] = json::array();
  for (const model_tensor& tensor : tensors) {
    json entry = tensor_object(*tensor.info);
    entry["shard"] = shown_location(model.shard_paths()[tensor.shard]);
    object["tensors"].push_back(std::move(entry));
  }
  return object;
}

// What validate says of a valid file or model: {"path", "file_count" (1 for a file, the number
// of shards for a model), "tensor_count"}.
json validation_object(const std::string& path, std::size_t file_count, std::size_t tensor_count);

// {"ok": true} followed by the members of `object`: what a command prints on success.
json ok_object(const json& object);

// {"weight", "scheme", "shape", "block", "values", "scales", "global_scale" (null for schemes
// without one)}: a quantized group as inspect lists it.
json quant_group_object(const safetensors::quant_group& group);

}  // namespace cli
