/* The C ABI: files written whole (safetensors_save) and streamed (a writer), read back; a writer
 * closed unfinished leaves nothing; refusals. Usage: test_c_write FIXTURE_DIR (files are written
 * into FIXTURE_DIR/written/, which must exist). */
#include "check.h"

/* Whether a file is at `path`. */
static int exists(const char *path) {
  FILE *file = fopen(path, "rb");
  if (file == NULL) return 0;
  fclose(file);
  return 1;
}

static void check_same_as_fixture(const char *path) {
  safetensors_model *model = NULL;
  unsigned char buffer[128];
  size_t i;
  CHECK(safetensors_open(path, &model) == SAFETENSORS_OK);
  CHECK(safetensors_tensor_count(model) == FIXTURE_TENSOR_COUNT);
  for (i = 0; i < FIXTURE_TENSOR_COUNT; ++i) {
    CHECK(safetensors_read(model, fixture_tensors[i].name, buffer, fixture_tensors[i].byte_size) == SAFETENSORS_OK);
    CHECK(fixture_bytes_are(i, 0, buffer, fixture_tensors[i].byte_size));
  }
  CHECK(safetensors_metadata_get(model, "writer") != NULL && strcmp(safetensors_metadata_get(model, "writer"), "c") == 0);
  safetensors_close(model);
}

int main(int argc, char **argv) {
  safetensors_tensor tensors[FIXTURE_TENSOR_COUNT];
  safetensors_tensor_declaration declarations[FIXTURE_TENSOR_COUNT];
  unsigned char bytes[FIXTURE_TENSOR_COUNT][128];
  safetensors_metadata_entry metadata[1] = {{"writer", "c"}};
  safetensors_writer *writer = NULL;
  char whole[4096], streamed[4096], abandoned[4096];
  size_t i;
  uint64_t k;
  if (argc != 2) return 64;
  snprintf(whole, sizeof whole, "%s/written/whole.safetensors", argv[1]);
  snprintf(streamed, sizeof streamed, "%s/written/streamed.safetensors", argv[1]);
  snprintf(abandoned, sizeof abandoned, "%s/written/abandoned.safetensors", argv[1]);
  for (i = 0; i < FIXTURE_TENSOR_COUNT; ++i) {
    const fixture_tensor *t = &fixture_tensors[i];
    for (k = 0; k < t->byte_size; ++k) bytes[i][k] = fixture_byte(i, k);
    tensors[i].name = declarations[i].name = t->name;
    tensors[i].dtype = declarations[i].dtype = t->dtype;
    tensors[i].rank = declarations[i].rank = t->rank;
    tensors[i].shape = declarations[i].shape = t->shape;
    tensors[i].data = bytes[i];
    tensors[i].size = t->byte_size;
  }
  CHECK(safetensors_save(whole, tensors, FIXTURE_TENSOR_COUNT, metadata, 1) == SAFETENSORS_OK);
  check_same_as_fixture(whole);

  /* Streamed: tensors in reverse order, each in chunks of 5 bytes. */
  CHECK(safetensors_writer_open(streamed, declarations, FIXTURE_TENSOR_COUNT, metadata, 1, &writer) == SAFETENSORS_OK);
  CHECK(!exists(streamed));
  for (i = FIXTURE_TENSOR_COUNT; i-- > 0;)
    for (k = 0; k < fixture_tensors[i].byte_size; k += 5) {
      uint64_t chunk = fixture_tensors[i].byte_size - k < 5 ? fixture_tensors[i].byte_size - k : 5;
      CHECK(safetensors_writer_write(writer, fixture_tensors[i].name, bytes[i] + k, chunk) == SAFETENSORS_OK);
    }
  CHECK(safetensors_writer_write(writer, "embed", bytes[0], 1) != SAFETENSORS_OK);
  CHECK(strstr(safetensors_last_error(), "embed") != NULL);
  CHECK(safetensors_writer_finish(writer) == SAFETENSORS_OK);
  safetensors_writer_close(writer);
  check_same_as_fixture(streamed);

  /* A writer closed before finishing leaves nothing under the name; finishing early fails. */
  CHECK(safetensors_writer_open(abandoned, declarations, FIXTURE_TENSOR_COUNT, NULL, 0, &writer) == SAFETENSORS_OK);
  CHECK(safetensors_writer_write(writer, "layers.0.w", bytes[0], 10) == SAFETENSORS_OK);
  CHECK(safetensors_writer_finish(writer) != SAFETENSORS_OK);
  safetensors_writer_close(writer);
  CHECK(!exists(abandoned));

  /* Refusals. */
  tensors[0].dtype = "F33";
  CHECK(safetensors_save(whole, tensors, 1, NULL, 0) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(strcmp(safetensors_last_error(), "tensor \"layers.0.w\": unknown dtype \"F33\"") == 0);
  tensors[0].dtype = "F32";
  tensors[0].size = 95;
  CHECK(safetensors_save(whole, tensors, 1, NULL, 0) != SAFETENSORS_OK);
  CHECK(safetensors_save(NULL, tensors, 1, NULL, 0) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(safetensors_writer_open(streamed, declarations, 1, NULL, 0, NULL) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(safetensors_writer_write(NULL, "x", bytes[0], 1) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  safetensors_writer_close(NULL);
  check_same_as_fixture(whole);
  return check_end("test_c_write");
}
