/* The C ABI: load plans into destinations and through a consumer (on the library's threads and
 * on the caller's), across shards, and a consumer that stops the load. Usage: test_c_load
 * FIXTURE_DIR */
#include "check.h"

typedef struct {
  unsigned char bytes[FIXTURE_TENSOR_COUNT][128];
  uint64_t received[FIXTURE_TENSOR_COUNT];
  int stop_at_call; /* the call that returns non-zero; 0: none */
  int calls;
} collected;

/* Pieces of different requests, or of different places in one, never overlap: no lock needed
 * for the bytes. The counters are only read after the load, or with consumer_thread set. */
static int collect(void *user, size_t request, uint64_t offset, const void *bytes, uint64_t size) {
  collected *into = (collected *)user;
  memcpy(into->bytes[request] + offset, bytes, (size_t)size);
  __atomic_add_fetch(&into->received[request], size, __ATOMIC_RELAXED);
  if (__atomic_add_fetch(&into->calls, 1, __ATOMIC_RELAXED) == into->stop_at_call) return 42;
  return 0;
}

static void check_loads(const char *path, int storage) {
  safetensors_open_options open_options;
  safetensors_load_options options;
  safetensors_model *model = NULL;
  safetensors_load_request requests[FIXTURE_TENSOR_COUNT + 1];
  unsigned char destinations[FIXTURE_TENSOR_COUNT + 1][128];
  safetensors_slice_dim last_two_rows[1] = {{-2, SAFETENSORS_TO_END, 1, 0}};
  static collected got;
  size_t i;
  safetensors_open_options_init(&open_options);
  open_options.storage = storage;
  CHECK(safetensors_open_with(path, &open_options, &model) == SAFETENSORS_OK);
  memset(requests, 0, sizeof requests);
  for (i = 0; i < FIXTURE_TENSOR_COUNT; ++i) {
    requests[i].name = fixture_tensors[i].name;
    requests[i].dst = destinations[i];
    requests[i].dst_size = fixture_tensors[i].byte_size;
  }
  /* And a slice: the last two rows of embed (U8 [10, 3]). */
  requests[FIXTURE_TENSOR_COUNT].name = "embed";
  requests[FIXTURE_TENSOR_COUNT].dims = last_two_rows;
  requests[FIXTURE_TENSOR_COUNT].dim_count = 1;
  requests[FIXTURE_TENSOR_COUNT].dst = destinations[FIXTURE_TENSOR_COUNT];
  requests[FIXTURE_TENSOR_COUNT].dst_size = 6;
  safetensors_load_options_init(&options);
  options.threads = 2;
  options.block_size = 16;
  CHECK(safetensors_load_into(model, requests, FIXTURE_TENSOR_COUNT + 1, &options) == SAFETENSORS_OK);
  for (i = 0; i < FIXTURE_TENSOR_COUNT; ++i) CHECK(fixture_bytes_are(i, 0, destinations[i], fixture_tensors[i].byte_size));
  CHECK(fixture_bytes_are(fixture_find("embed"), 24, destinations[FIXTURE_TENSOR_COUNT], 6));
  CHECK(safetensors_load_into(model, requests, FIXTURE_TENSOR_COUNT + 1, NULL) == SAFETENSORS_OK);
  /* A destination of the wrong size. */
  requests[0].dst_size = 95;
  CHECK(safetensors_load_into(model, requests, 1, &options) == SAFETENSORS_ERROR_INVALID_TENSOR_VIEW);
  requests[0].dst_size = 96;

  /* Through a consumer, on the library's threads, then on the caller's. */
  memset(&got, 0, sizeof got);
  options.budget = 4096;
  CHECK(safetensors_load(model, requests, FIXTURE_TENSOR_COUNT, collect, &got, &options) == SAFETENSORS_OK);
  for (i = 0; i < FIXTURE_TENSOR_COUNT; ++i) {
    CHECK(got.received[i] == fixture_tensors[i].byte_size);
    CHECK(fixture_bytes_are(i, 0, got.bytes[i], fixture_tensors[i].byte_size));
  }
  memset(&got, 0, sizeof got);
  options.consumer_thread = 1;
  CHECK(safetensors_load(model, requests, FIXTURE_TENSOR_COUNT, collect, &got, &options) == SAFETENSORS_OK);
  CHECK(got.received[0] == 96);
  /* A consumer that returns non-zero stops the load. */
  memset(&got, 0, sizeof got);
  got.stop_at_call = 1;
  CHECK(safetensors_load(model, requests, FIXTURE_TENSOR_COUNT, collect, &got, &options) == SAFETENSORS_ERROR_CONSUMER);
  CHECK(strstr(safetensors_last_error(), "the consumer returned 42") != NULL);
  CHECK(safetensors_load(model, requests, FIXTURE_TENSOR_COUNT, NULL, &got, &options) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  /* A request for a tensor the model lacks. */
  requests[0].name = "missing";
  CHECK(safetensors_load_into(model, requests, 1, &options) == SAFETENSORS_ERROR_TENSOR_NOT_FOUND);
  safetensors_close(model);
}

int main(int argc, char **argv) {
  if (argc != 2) return 64;
  check_loads(fixture_path(argv[1], "model"), SAFETENSORS_STORAGE_MMAP);
  check_loads(fixture_path(argv[1], "model"), SAFETENSORS_STORAGE_PREAD);
  check_loads(fixture_path(argv[1], "model"), SAFETENSORS_STORAGE_DIRECT);
  check_loads(fixture_path(argv[1], "single.safetensors"), SAFETENSORS_STORAGE_PREAD);
  return check_end("test_c_load");
}
