/* The C ABI: reading tensors (every storage), zero-copy pointers on mapped storage, metadata.
 * Usage: test_c_read FIXTURE_DIR */
#include "check.h"

static void check_reads(const char *path, int storage) {
  safetensors_open_options options;
  safetensors_model *model = NULL;
  unsigned char buffer[128];
  const void *data = NULL;
  uint64_t size = 0;
  size_t i;
  safetensors_open_options_init(&options);
  options.storage = storage;
  CHECK(safetensors_open_with(path, &options, &model) == SAFETENSORS_OK);
  for (i = 0; i < FIXTURE_TENSOR_COUNT; ++i) {
    const fixture_tensor *t = &fixture_tensors[i];
    memset(buffer, 0xEE, sizeof buffer);
    CHECK(safetensors_read(model, t->name, buffer, t->byte_size) == SAFETENSORS_OK);
    CHECK(fixture_bytes_are(i, 0, buffer, t->byte_size));
    if (storage == SAFETENSORS_STORAGE_MMAP) {
      CHECK(safetensors_tensor_data(model, t->name, &data, &size) == SAFETENSORS_OK);
      CHECK(size == t->byte_size);
      CHECK(size == 0 || fixture_bytes_are(i, 0, (const unsigned char *)data, size));
    } else {
      CHECK(safetensors_tensor_data(model, t->name, &data, &size) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
    }
  }
  /* The size must be the tensor's. */
  CHECK(safetensors_read(model, "layers.0.w", buffer, 95) == SAFETENSORS_ERROR_INVALID_TENSOR_VIEW);
  CHECK(strcmp(safetensors_last_error(), "tensor \"layers.0.w\" has 96 bytes; dst_size is 95") == 0);
  CHECK(safetensors_read(model, "missing", buffer, 1) == SAFETENSORS_ERROR_TENSOR_NOT_FOUND);
  CHECK(safetensors_read(model, "layers.0.w", NULL, 96) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  safetensors_close(model);
}

static void check_metadata(const char *directory) {
  safetensors_model *model = NULL;
  const char *key = NULL, *value = NULL;
  CHECK(safetensors_open(fixture_path(directory, "single.safetensors"), &model) == SAFETENSORS_OK);
  CHECK(safetensors_metadata_count(model) == 2);
  CHECK(safetensors_metadata_at(model, 0, &key, &value) == SAFETENSORS_OK);
  CHECK(strcmp(key, "format") == 0 && strcmp(value, "pt") == 0);
  CHECK(safetensors_metadata_at(model, 1, &key, &value) == SAFETENSORS_OK);
  CHECK(strcmp(key, "note") == 0 && strcmp(value, "written for the C ABI tests") == 0);
  CHECK(safetensors_metadata_at(model, 2, &key, &value) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(strcmp(safetensors_metadata_get(model, "format"), "pt") == 0);
  CHECK(safetensors_metadata_get(model, "absent") == NULL);
  CHECK(safetensors_metadata_get(NULL, "format") == NULL);
  CHECK(safetensors_metadata_count(NULL) == 0);
  safetensors_close(model);
}

int main(int argc, char **argv) {
  if (argc != 2) return 64;
  check_reads(fixture_path(argv[1], "single.safetensors"), SAFETENSORS_STORAGE_MMAP);
  check_reads(fixture_path(argv[1], "single.safetensors"), SAFETENSORS_STORAGE_PREAD);
  check_reads(fixture_path(argv[1], "model"), SAFETENSORS_STORAGE_MMAP);
  check_reads(fixture_path(argv[1], "model"), SAFETENSORS_STORAGE_PREAD);
  check_reads(fixture_path(argv[1], "model"), SAFETENSORS_STORAGE_DIRECT);
  check_metadata(argv[1]);
  return check_end("test_c_read");
}
