// Opens a model split into shards (a directory, its model.safetensors.index.json, or a single
// file), checks every shard against the index, and prints where each tensor lives.
// Usage: example_open_sharded MODEL_DIR_OR_INDEX

#include <safetensors/model.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR_OR_INDEX\n";
    return 1;
  }
  auto model = safetensors::try_open_model(argv[1]);
  if (!model) {
    std::cerr << model.error().to_string() << '\n';
    return 1;
  }
  // Shards open on first use; try_validate() opens them all and checks total_size.
  if (auto valid = model->try_validate(); !valid) {
    std::cerr << valid.error().to_string() << '\n';
    return 1;
  }
  for (const auto& [name, shard] : model->tensor_names()) {
    const safetensors::tensor_view view = model->view(name);
    std::cout << name << "  " << safetensors::dtype_name(view.dtype()) << "  " << view.bytes.size() << " bytes  in "
              << model->shard_paths()[shard] << '\n';
  }
  return 0;
}
