// Opens the file named on the command line and prints its tensor count: proves the package works.
#include <safetensors/safetensors.hpp>

#include <cstdio>
#include <vector>

#ifdef CONSUMER_USES_LIBCURL
// Linked with safetensors::remote, whose libcurl must come with it (until the remote-checkpoint
// header exists, a call into libcurl stands for its users).
#include <curl/curl.h>
#endif

int main(int argc, char** argv) {
  if (argc != 2) return 2;
#ifdef CONSUMER_USES_LIBCURL
  if (curl_version_info(CURLVERSION_NOW) == nullptr) return 3;
#endif
  auto reader = safetensors::try_open(argv[1]);
  if (!reader) {
    std::fprintf(stderr, "%s\n", reader.error().to_string().c_str());
    return 1;
  }
#if SAFETENSORS_IO_URING
  // Linked with safetensors::io_uring: a load through io_uring, when the kernel allows one.
  if (safetensors::io_uring_available()) {
    auto file = safetensors::try_open_pread(argv[1]);
    if (!file) return 4;
    std::vector<safetensors::load_request> requests;
    for (const safetensors::tensor_info& info : file->tensors()) requests.emplace_back(&info);
    safetensors::load_options options;
    options.engine = safetensors::io_engine::io_uring;
    if (!file->try_load(
            requests, [](const safetensors::load_piece&) {}, options))
      return 4;
  }
#endif
  std::printf("%zu tensors\n", reader->size());
  return 0;
}
