// Opens the file named on the command line and prints its tensor count: proves the package works.
#include <safetensors/safetensors.hpp>

#include <cstdio>

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
  std::printf("%zu tensors\n", reader->size());
  return 0;
}
