/* The C ABI over URLs: the remote tests' sharded model through nginx gives what the same model
 * gives from disk, tensor by tensor; a missing URL is an I/O error naming it. Run by
 * run_c_remote.sh inside tests/remote/with_servers.py, which sets SAFETENSORS_REMOTE_DATA_DIR and
 * SAFETENSORS_REMOTE_HTTP_URL. */
#include "check.h"

int main(void) {
  const char *data = getenv("SAFETENSORS_REMOTE_DATA_DIR"), *http = getenv("SAFETENSORS_REMOTE_HTTP_URL");
  char local_path[4096], url[4096];
  safetensors_model *local = NULL, *remote = NULL, *missing = NULL;
  safetensors_open_options options;
  size_t i;
  if (data == NULL || http == NULL) return 64;
  snprintf(local_path, sizeof local_path, "%s/model", data);
  snprintf(url, sizeof url, "%s/model/model.safetensors.index.json", http);
  safetensors_open_options_init(&options);
  options.connections = 2;
  options.timeout_seconds = 60;
  CHECK(safetensors_open(local_path, &local) == SAFETENSORS_OK);
  CHECK(safetensors_open_with(url, &options, &remote) == SAFETENSORS_OK);
  CHECK(safetensors_tensor_count(remote) == safetensors_tensor_count(local));
  CHECK(safetensors_shard_count(remote) == safetensors_shard_count(local));
  for (i = 0; i < safetensors_tensor_count(local); ++i) {
    safetensors_tensor_info a, b;
    unsigned char *x, *y;
    CHECK(safetensors_tensor_at(local, i, &a) == SAFETENSORS_OK);
    CHECK(safetensors_tensor_at(remote, i, &b) == SAFETENSORS_OK);
    CHECK(strcmp(a.name, b.name) == 0 && strcmp(a.dtype, b.dtype) == 0 && a.byte_size == b.byte_size);
    x = (unsigned char *)malloc((size_t)a.byte_size + 1);
    y = (unsigned char *)malloc((size_t)a.byte_size + 1);
    CHECK(x != NULL && y != NULL);
    if (x != NULL && y != NULL) {
      CHECK(safetensors_read(local, a.name, x, a.byte_size) == SAFETENSORS_OK);
      CHECK(safetensors_read(remote, a.name, y, a.byte_size) == SAFETENSORS_OK);
      CHECK(memcmp(x, y, (size_t)a.byte_size) == 0);
    }
    free(x);
    free(y);
  }
  snprintf(url, sizeof url, "%s/missing.safetensors", http);
  CHECK(safetensors_open_with(url, &options, &missing) == SAFETENSORS_ERROR_IO);
  CHECK(strstr(safetensors_last_error(), "missing.safetensors") != NULL);
  CHECK(strstr(safetensors_last_error(), "HTTP status 404") != NULL);
  safetensors_close(local);
  safetensors_close(remote);
  return check_end("test_c_remote");
}
