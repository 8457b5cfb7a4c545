/* Opens the file named on the command line through the C ABI and prints its tensor count: proves
 * the installed C library, its header and its pkg-config or CMake files work. */
#include <safetensors/safetensors.h>

#include <stdio.h>

int main(int argc, char **argv) {
  safetensors_model *model = NULL;
  if (argc != 2) return 2;
  if (safetensors_open(argv[1], &model) != SAFETENSORS_OK) {
    fprintf(stderr, "%s\n", safetensors_last_error());
    return 1;
  }
  printf("%zu tensors\n", safetensors_tensor_count(model));
  safetensors_close(model);
  return 0;
}
