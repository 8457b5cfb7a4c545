/* The C ABI: opening files, indexes, directories; listing in inspect's order; errors, versions
 * and NULL arguments. Usage: test_c_open FIXTURE_DIR */
#include "check.h"

static void check_listing(const char *directory) {
  safetensors_model *file = NULL, *model = NULL, *folder = NULL;
  safetensors_tensor_info info;
  size_t i;
  CHECK(safetensors_open(fixture_path(directory, "single.safetensors"), &file) == SAFETENSORS_OK);
  CHECK(strcmp(safetensors_last_error(), "") == 0);
  CHECK(safetensors_tensor_count(file) == FIXTURE_TENSOR_COUNT);
  CHECK(safetensors_shard_count(file) == 1);
  /* A file lists in data order, as safetensors-cli inspect does: the writer laid the tensors
   * out as the official one does, by alignment (the dtype's size), largest first, then by name. */
  for (i = 0; i < FIXTURE_TENSOR_COUNT; ++i) {
    const char *in_data_order[] = {"scale", "layers.0.b", "layers.0.w", "empty", "layers.1.w", "embed"};
    const fixture_tensor *t = &fixture_tensors[fixture_find(in_data_order[i])];
    size_t d;
    CHECK(safetensors_tensor_at(file, i, &info) == SAFETENSORS_OK);
    CHECK(strcmp(info.name, t->name) == 0);
    CHECK(strcmp(info.dtype, t->dtype) == 0);
    CHECK(info.rank == t->rank);
    for (d = 0; d < t->rank && d < info.rank; ++d) CHECK(info.shape[d] == t->shape[d]);
    CHECK(info.byte_size == t->byte_size);
  }
  CHECK(safetensors_tensor_at(file, FIXTURE_TENSOR_COUNT, &info) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(safetensors_last_error(), "there are 6 tensors") != NULL);

  /* A model, by its index or its directory, lists by name. */
  CHECK(safetensors_open(fixture_path(directory, "model/model.safetensors.index.json"), &model) == SAFETENSORS_OK);
  CHECK(safetensors_open(fixture_path(directory, "model"), &folder) == SAFETENSORS_OK);
  CHECK(safetensors_shard_count(model) > 2);
  CHECK(safetensors_validate(model) == SAFETENSORS_OK);
  {
    const char *by_name[] = {"embed", "empty", "layers.0.b", "layers.0.w", "layers.1.w", "scale"};
    for (i = 0; i < 6; ++i) {
      CHECK(safetensors_tensor_at(model, i, &info) == SAFETENSORS_OK && strcmp(info.name, by_name[i]) == 0);
      CHECK(safetensors_tensor_at(folder, i, &info) == SAFETENSORS_OK && strcmp(info.name, by_name[i]) == 0);
    }
  }
  CHECK(safetensors_tensor_find(model, "layers.1.w", &info) == SAFETENSORS_OK);
  CHECK(strcmp(info.dtype, "BF16") == 0 && info.rank == 2 && info.shape[0] == 6 && info.shape[1] == 4);
  CHECK(safetensors_tensor_find(model, "missing", &info) == SAFETENSORS_ERROR_TENSOR_NOT_FOUND);
  CHECK(strstr(safetensors_last_error(), "no tensor named \"missing\"") != NULL);
  safetensors_close(file);
  safetensors_close(model);
  safetensors_close(folder);
}

static void check_failures_and_arguments(const char *directory) {
  safetensors_model *model = (safetensors_model *)&model; /* not NULL: a failure sets it to NULL */
  safetensors_open_options options;
  safetensors_tensor_info info;
  CHECK(safetensors_open(fixture_path(directory, "no-such-file.safetensors"), &model) == SAFETENSORS_ERROR_IO);
  CHECK(model == NULL);
  CHECK(strstr(safetensors_last_error(), "no-such-file.safetensors") != NULL);
  CHECK(strcmp(safetensors_error_name(SAFETENSORS_ERROR_IO), "IoError") == 0);
  CHECK(strcmp(safetensors_error_name(SAFETENSORS_ERROR_HEADER_TOO_LARGE), "HeaderTooLarge") == 0);
  CHECK(strcmp(safetensors_error_name(SAFETENSORS_OK), "Ok") == 0);
  CHECK(strcmp(safetensors_error_name(SAFETENSORS_ERROR_CONSUMER), "Consumer") == 0);
  CHECK(strcmp(safetensors_error_name(12345), "Unknown") == 0);
  /* A header past max_header_size. */
  safetensors_open_options_init(&options);
  options.max_header_size = 16;
  CHECK(safetensors_open_with(fixture_path(directory, "single.safetensors"), &options, &model) ==
        SAFETENSORS_ERROR_HEADER_TOO_LARGE);
  options.max_header_size = 0;
  options.storage = 7;
  CHECK(safetensors_open_with(fixture_path(directory, "single.safetensors"), &options, &model) ==
        SAFETENSORS_ERROR_INVALID_ARGUMENT);
  options.struct_size = 4;
  options.storage = SAFETENSORS_STORAGE_MMAP;
  CHECK(safetensors_open_with(fixture_path(directory, "single.safetensors"), &options, &model) ==
        SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(safetensors_last_error(), "safetensors_open_options_init") != NULL);
  /* NULL where a value is required: an error, never a crash. */
  CHECK(safetensors_open(NULL, &model) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(strcmp(safetensors_last_error(), "path_or_url is NULL") == 0);
  CHECK(safetensors_open(fixture_path(directory, "single.safetensors"), NULL) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(safetensors_tensor_count(NULL) == 0);
  CHECK(safetensors_tensor_at(NULL, 0, &info) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(safetensors_read(NULL, "x", NULL, 0) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  safetensors_close(NULL);
}

int main(int argc, char **argv) {
  char expected[64];
  if (argc != 2) return 64;
  snprintf(expected, sizeof expected, "%d.%d.%d", SAFETENSORS_VERSION_MAJOR, SAFETENSORS_VERSION_MINOR,
           SAFETENSORS_VERSION_PATCH);
  CHECK(strcmp(safetensors_version(), expected) == 0);
  check_listing(argv[1]);
  check_failures_and_arguments(argv[1]);
  return check_end("test_c_open");
}
