// A typical user's translation unit, for bench/compile_time.sh: open a sharded model, read every
// tensor as float, and load them all into one buffer through a plan. It uses only what every
// version of the library since 0.1 has, so that an older checkout can be timed beside this one.
#include <safetensors/model.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 64;
  auto model = safetensors::try_open_model(argv[1]);
  if (!model) {
    std::fprintf(stderr, "%s\n", model.error().to_string().c_str());
    return 1;
  }
  double sum = 0;
  std::vector<safetensors::load_request> requests;
  std::vector<std::vector<std::byte>> buffers;
  for (const safetensors::model_entry& entry : model->tensor_names()) {
    auto values = model->try_read_as<float>(entry.name);
    if (!values) return 1;
    for (float value : *values) sum += value;
    buffers.emplace_back(static_cast<std::size_t>(model->info(entry.name).byte_size()));
  }
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    auto request = model->try_request(model->tensor_names()[i].name, buffers[i]);
    if (!request) return 1;
    requests.push_back(*request);
  }
  if (!model->try_load_into(requests)) return 2;
  std::printf("%zu tensors, sum %g\n", model->size(), sum);
  return 0;
}
