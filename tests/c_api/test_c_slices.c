/* The C ABI: slices, sized and read, against the elements gathered by hand. Usage:
 * test_c_slices FIXTURE_DIR */
#include "check.h"

int main(int argc, char **argv) {
  safetensors_model *model = NULL;
  unsigned char buffer[96];
  uint64_t size = 0;
  size_t row, column, at = 0;
  /* layers.0.w is F32 [4, 6]: rows 1 to 3 (stop -1), every second column from 1. */
  safetensors_slice_dim dims[2] = {{1, -1, 1, 0}, {1, SAFETENSORS_TO_END, 2, 0}};
  safetensors_slice_dim single_row[1] = {{-1, SAFETENSORS_TO_END, 1, 1}};
  safetensors_slice_dim past[1] = {{0, 9, 1, 0}};
  safetensors_slice_dim huge_step[2] = {{0, SAFETENSORS_TO_END, UINT64_MAX, 0}, {0, SAFETENSORS_TO_END, 1, 0}};
  if (argc != 2) return 64;
  CHECK(safetensors_open(fixture_path(argv[1], "model"), &model) == SAFETENSORS_OK);
  CHECK(safetensors_slice_size(model, "layers.0.w", dims, 2, &size) == SAFETENSORS_OK);
  CHECK(size == 2 * 3 * 4);
  CHECK(safetensors_read_slice(model, "layers.0.w", dims, 2, buffer, size) == SAFETENSORS_OK);
  for (row = 1; row < 3; ++row)
    for (column = 1; column < 6; column += 2, at += 4)
      CHECK(fixture_bytes_are(fixture_find("layers.0.w"), (row * 6 + column) * 4, buffer + at, 4));
  /* The last row, its dimension dropped. */
  CHECK(safetensors_slice_size(model, "layers.0.w", single_row, 1, &size) == SAFETENSORS_OK && size == 24);
  CHECK(safetensors_read_slice(model, "layers.0.w", single_row, 1, buffer, 24) == SAFETENSORS_OK);
  CHECK(fixture_bytes_are(fixture_find("layers.0.w"), 3 * 24, buffer, 24));
  /* A step of 2^64 - 1 takes the first row only. */
  CHECK(safetensors_slice_size(model, "embed", huge_step, 2, &size) == SAFETENSORS_OK && size == 3);
  CHECK(safetensors_read_slice(model, "embed", huge_step, 2, buffer, 3) == SAFETENSORS_OK);
  CHECK(fixture_bytes_are(fixture_find("embed"), 0, buffer, 3));
  /* Refused: a stop past the end, a wrong size, too many dimensions, NULL dims. */
  CHECK(safetensors_slice_size(model, "layers.0.b", past, 1, &size) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(safetensors_last_error(), "stop 9 is past the end") != NULL);
  CHECK(safetensors_read_slice(model, "layers.0.w", dims, 2, buffer, 23) == SAFETENSORS_ERROR_INVALID_TENSOR_VIEW);
  CHECK(safetensors_slice_size(model, "layers.0.b", dims, 2, &size) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(safetensors_slice_size(model, "layers.0.b", NULL, 1, &size) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  safetensors_close(model);
  return check_end("test_c_slices");
}
