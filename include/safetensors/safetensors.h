/* safetensors-hpp: the C ABI. Every engine and language loads through the library with these
 * functions: files, sharded models (an index or a model directory), local or remote (http, https,
 * s3 where the library was built with libcurl), tensors read whole or sliced, load plans run on
 * the library's threads, and files written whole or streamed. docs/C_API.md documents each
 * function with an example.
 *
 * Rules of the boundary:
 * - Every function that can fail returns an int: SAFETENSORS_OK (0) or a SAFETENSORS_ERROR_*
 *   code; safetensors_last_error() then gives this thread's message, which names the file, the
 *   tensor and the rule broken. No C++ exception crosses the boundary.
 * - Every pointer argument is checked: a NULL where a value is required is
 *   SAFETENSORS_ERROR_INVALID_ARGUMENT, never a crash.
 * - Every handle is freed by exactly one function: safetensors_close for a model,
 *   safetensors_writer_close for a writer. Both accept NULL.
 * - A model may be used from many threads at once (every function taking a const model is
 *   thread-safe); a writer from one thread at a time.
 * - Strings are UTF-8 and NUL-terminated. A tensor name holding a NUL byte (the format allows
 *   it) is seen up to that byte.
 *
 * SPDX-License-Identifier: MIT
 * Copyright (c) 2026 the safetensors-hpp authors
 */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define SAFETENSORS_VERSION_MAJOR 0
#define SAFETENSORS_VERSION_MINOR 2
#define SAFETENSORS_VERSION_PATCH 0

#if defined(_WIN32) && !defined(SAFETENSORS_C_STATIC)
#if defined(SAFETENSORS_C_BUILDING)
#define SAFETENSORS_C_API __declspec(dllexport)
#else
#define SAFETENSORS_C_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define SAFETENSORS_C_API __attribute__((visibility("default")))
#else
#define SAFETENSORS_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions and errors ------------------------------------------------------------------ */

/* The library's version, "MAJOR.MINOR.PATCH": the one built, which may differ from the macros
 * a program was compiled with. Thread-safe. */
SAFETENSORS_C_API const char *safetensors_version(void);

/* What a function returns: SAFETENSORS_OK, or the error's kind. Codes 1 to 16 are the C++
 * library's error kinds, in its order (error_kind), with the official reader's names
 * (safetensors_error_name). */
enum {
  SAFETENSORS_OK = 0,
  SAFETENSORS_ERROR_HEADER_TOO_SMALL = 1,
  SAFETENSORS_ERROR_HEADER_TOO_LARGE = 2,
  SAFETENSORS_ERROR_INVALID_HEADER_LENGTH = 3,
  SAFETENSORS_ERROR_INVALID_HEADER = 4,
  SAFETENSORS_ERROR_INVALID_HEADER_DESERIALIZATION = 5,
  SAFETENSORS_ERROR_INVALID_OFFSET = 6,
  SAFETENSORS_ERROR_VALIDATION_OVERFLOW = 7,
  SAFETENSORS_ERROR_MISALIGNED_SLICE = 8,
  SAFETENSORS_ERROR_TENSOR_INVALID_INFO = 9,
  SAFETENSORS_ERROR_METADATA_INCOMPLETE_BUFFER = 10,
  SAFETENSORS_ERROR_TENSOR_NOT_FOUND = 11,
  SAFETENSORS_ERROR_INVALID_TENSOR_VIEW = 12,
  SAFETENSORS_ERROR_INVALID_CONVERSION = 13,
  SAFETENSORS_ERROR_INVALID_ARGUMENT = 14,
  SAFETENSORS_ERROR_INVALID_INDEX = 15,
  SAFETENSORS_ERROR_IO = 16,
  /* Memory could not be allocated. */
  SAFETENSORS_ERROR_OUT_OF_MEMORY = 17,
  /* A load's consumer returned non-zero: the load stopped. */
  SAFETENSORS_ERROR_CONSUMER = 18,
  /* A failure the library did not foresee (a bug: please report it with the message). */
  SAFETENSORS_ERROR_INTERNAL = 19
};

/* The name of `code`: "Ok", the official reader's variant names ("HeaderTooLarge", ...),
 * "OutOfMemory", "Consumer", "Internal"; "Unknown" for any other value. Thread-safe. */
SAFETENSORS_C_API const char *safetensors_error_name(int code);

/* The message of this thread's last failure, "" if none: valid until this thread's next call
 * into the library. Thread-safe (each thread has its own). */
SAFETENSORS_C_API const char *safetensors_last_error(void);

/* ---- Opening models ----------------------------------------------------------------------- */

/* A file or a sharded model, local or remote. */
typedef struct safetensors_model safetensors_model;

/* Where tensor bytes come from. */
enum {
  /* Mapped into memory: zero-copy pointers (safetensors_tensor_data), loads copy from the map. */
  SAFETENSORS_STORAGE_MMAP = 0,
  /* Positioned reads into the caller's memory: no mapping, nothing counted twice. */
  SAFETENSORS_STORAGE_PREAD = 1,
  /* As PREAD, loads past the page cache (O_DIRECT on Linux; buffered elsewhere). */
  SAFETENSORS_STORAGE_DIRECT = 2
};

/* How safetensors_open_with opens. Initialise with safetensors_open_options_init, then set
 * fields: struct_size lets later versions add fields without breaking older callers. */
typedef struct safetensors_open_options {
  size_t struct_size;              /* sizeof(safetensors_open_options), set by _init */
  int storage;                     /* SAFETENSORS_STORAGE_*, local files only; default MMAP */
  uint64_t max_header_size;        /* a header or an index past it is refused; 0: 100,000,000 */
  const char *bearer_token;        /* http(s): "Authorization: Bearer TOKEN" to the URL's host; NULL: none */
  unsigned connections;            /* remote: most connections at once; 0: 16 */
  unsigned timeout_seconds;        /* remote: the longest one read may take, retries included; 0: 300 */
} safetensors_open_options;

/* Sets `options` to the defaults. Thread-safe. */
SAFETENSORS_C_API void safetensors_open_options_init(safetensors_open_options *options);

/* Opens `path_or_url`: a .safetensors file, an index (.json), a directory holding a model, or an
 * http://, https:// or s3:// URL of a file or an index, with the default options. On success
 * *out is a model to close with safetensors_close; on failure *out is NULL. Thread-safe. */
SAFETENSORS_C_API int safetensors_open(const char *path_or_url, safetensors_model **out);

/* As safetensors_open, with `options` (NULL: the defaults). */
SAFETENSORS_C_API int safetensors_open_with(const char *path_or_url, const safetensors_open_options *options,
                                            safetensors_model **out);

/* Closes `model` (NULL: nothing). Pointers it handed out (names, shapes, data) are then invalid.
 * Not while another thread uses the model. */
SAFETENSORS_C_API void safetensors_close(safetensors_model *model);

/* Number of shards: 1 for a single file. Thread-safe. */
SAFETENSORS_C_API size_t safetensors_shard_count(const safetensors_model *model);

/* Opens every shard and checks it against the index (the tensors it lists, total_size).
 * Thread-safe. */
SAFETENSORS_C_API int safetensors_validate(const safetensors_model *model);

/* ---- Tensors ------------------------------------------------------------------------------ */

/* A tensor's description. The pointers stay valid while the model is open. */
typedef struct {
  const char *name;        /* valid while the model is open */
  const char *dtype;       /* "F32", "BF16", ... as in the file */
  size_t rank;
  const uint64_t *shape;   /* rank entries */
  uint64_t byte_size;
} safetensors_tensor_info;

/* Number of tensors (0 for NULL). Opens no shard. Thread-safe. */
SAFETENSORS_C_API size_t safetensors_tensor_count(const safetensors_model *model);

/* Tensor `i` in safetensors-cli inspect's order: a file's in data order, a model's (an index, a
 * directory) by name. Opens the shards on first use. Thread-safe. */
SAFETENSORS_C_API int safetensors_tensor_at(const safetensors_model *model, size_t i, safetensors_tensor_info *out);

/* The tensor named `name`, or SAFETENSORS_ERROR_TENSOR_NOT_FOUND. Thread-safe. */
SAFETENSORS_C_API int safetensors_tensor_find(const safetensors_model *model, const char *name,
                                              safetensors_tensor_info *out);

/* Copies the bytes of the tensor named `name` (little-endian, as in the file) into `dst`, whose
 * size `dst_size` must be the tensor's byte size. Thread-safe. */
SAFETENSORS_C_API int safetensors_read(const safetensors_model *model, const char *name, void *dst, uint64_t dst_size);

/* The tensor's bytes in place, without a copy: *data and *size, valid while the model is open.
 * Mapped storage only (SAFETENSORS_STORAGE_MMAP, local); elsewhere
 * SAFETENSORS_ERROR_INVALID_ARGUMENT. Thread-safe. */
SAFETENSORS_C_API int safetensors_tensor_data(const safetensors_model *model, const char *name, const void **data,
                                              uint64_t *size);

/* ---- Metadata ----------------------------------------------------------------------------- */

/* Number of __metadata__ entries (a model's first shard's). 0 when there are none or the shard
 * cannot be opened. Thread-safe. */
SAFETENSORS_C_API size_t safetensors_metadata_count(const safetensors_model *model);

/* Entry `i`, in key order: *key and *value, valid while the model is open. Thread-safe. */
SAFETENSORS_C_API int safetensors_metadata_at(const safetensors_model *model, size_t i, const char **key,
                                              const char **value);

/* The value of `key`, or NULL when there is none. Thread-safe. */
SAFETENSORS_C_API const char *safetensors_metadata_get(const safetensors_model *model, const char *key);

/* ---- Slices ------------------------------------------------------------------------------- */

/* "To the end of the dimension", as a stop. */
#define SAFETENSORS_TO_END INT64_MAX

/* What a slice takes of one dimension: the range [start, stop) every step-th element (step at
 * least 1), or, when `single` is non-zero, the one index `start` (the dimension is dropped).
 * Negative start and stop count from the end, as in Python. */
typedef struct {
  int64_t start;
  int64_t stop;
  uint64_t step;
  int single;
} safetensors_slice_dim;

/* The bytes a slice of `name` selects (dim_count dimensions, the rest whole) into *size.
 * Thread-safe. */
SAFETENSORS_C_API int safetensors_slice_size(const safetensors_model *model, const char *name,
                                             const safetensors_slice_dim *dims, size_t dim_count, uint64_t *size);

/* Copies the bytes a slice selects, in row-major order, into `dst` of exactly that many bytes.
 * Thread-safe. */
SAFETENSORS_C_API int safetensors_read_slice(const safetensors_model *model, const char *name,
                                             const safetensors_slice_dim *dims, size_t dim_count, void *dst,
                                             uint64_t dst_size);

/* ---- Load plans --------------------------------------------------------------------------- */

/* A tensor, or a slice of it (dim_count > 0), to load. */
typedef struct {
  const char *name;
  const safetensors_slice_dim *dims; /* dim_count entries; NULL with 0 for the whole tensor */
  size_t dim_count;
  void *dst;                         /* safetensors_load_into: exactly the request's bytes */
  uint64_t dst_size;
} safetensors_load_request;

/* How a load reads. Initialise with safetensors_load_options_init. */
typedef struct safetensors_load_options {
  size_t struct_size;   /* sizeof(safetensors_load_options), set by _init */
  unsigned threads;     /* reading threads, the caller's included; 0: the machine's cores */
  uint64_t block_size;  /* most bytes in one read; 0: 8 MiB */
  uint64_t budget;      /* safetensors_load: staging memory, in bytes; 0: 256 MiB */
  int consumer_thread;  /* safetensors_load: non-zero calls the consumer on the caller's thread only */
} safetensors_load_options;

/* Sets `options` to the defaults. Thread-safe. */
SAFETENSORS_C_API void safetensors_load_options_init(safetensors_load_options *options);

/* Loads `count` requests into their destinations with the library's threads, reads across
 * shards planned together (options NULL: the defaults). On failure the destinations hold a mix
 * of old and new bytes. Thread-safe. */
SAFETENSORS_C_API int safetensors_load_into(const safetensors_model *model, const safetensors_load_request *requests,
                                            size_t count, const safetensors_load_options *options);

/* Receives the bytes of request number `request` (its position in the list) from `offset` on.
 * `bytes` is valid until it returns. Return 0 to go on, anything else to stop the load. */
typedef int (*safetensors_consumer)(void *user, size_t request, uint64_t offset, const void *bytes, uint64_t size);

/* Loads `count` requests (dst ignored) and hands their bytes to `consumer` as they arrive, in no
 * set order, within options->budget bytes of staging memory. Unless options->consumer_thread is
 * set, the consumer runs on the library's threads, several at once. A consumer's non-zero return
 * stops the load: SAFETENSORS_ERROR_CONSUMER. Thread-safe. */
SAFETENSORS_C_API int safetensors_load(const safetensors_model *model, const safetensors_load_request *requests,
                                       size_t count, safetensors_consumer consumer, void *user,
                                       const safetensors_load_options *options);

/* ---- Tensor-parallel plans ---------------------------------------------------------------- */

/* A tensor-parallel plan: module patterns and their styles, as transformers writes a tp_plan. */
typedef struct safetensors_tp_plan safetensors_tp_plan;

/* A built-in plan by name ("llama": q/k/v/gate/up_proj and lm_head colwise, o/down_proj rowwise,
 * the rest replicated), or a plan from JSON text: an object of module pattern to "colwise",
 * "rowwise" or "replicate", in order. On success *out is a plan to close with
 * safetensors_tp_plan_close. Thread-safe. */
SAFETENSORS_C_API int safetensors_tp_plan_parse(const char *preset_or_json, safetensors_tp_plan **out);

/* Frees `plan` (NULL: nothing). */
SAFETENSORS_C_API void safetensors_tp_plan_close(safetensors_tp_plan *plan);

/* What a rank loads of one tensor: dimension `dim` cut to [start, stop) and the others whole, or
 * with dim -1 the whole tensor. */
typedef struct {
  int dim;
  uint64_t start;
  uint64_t stop;
} safetensors_tp_share;

/* Rank `rank` of `size`'s share of every tensor of `model` under `plan`, in safetensors_tensor_at's
 * order, into `shares` (`count` entries: safetensors_tensor_count). A module's tensors are cut
 * together (colwise: dimension 0, scalar scales whole; rowwise: dimension 1 of tensors of rank 2
 * or more), weights with their block scales. SAFETENSORS_ERROR_INVALID_ARGUMENT, naming the
 * tensor, when a cut dimension does not divide by `size` or a cut would split a scale block.
 * Opens every shard. Thread-safe. */
SAFETENSORS_C_API int safetensors_tp_shares(const safetensors_model *model, const safetensors_tp_plan *plan,
                                            uint64_t size, uint64_t rank, safetensors_tp_share *shares,
                                            size_t count);

/* ---- Writing ------------------------------------------------------------------------------ */

/* A __metadata__ entry. */
typedef struct {
  const char *key;
  const char *value;
} safetensors_metadata_entry;

/* A tensor to write: `data` holds its `size` bytes, little-endian (the shape's byte size). */
typedef struct {
  const char *name;
  const char *dtype;
  size_t rank;
  const uint64_t *shape;
  const void *data;
  uint64_t size;
} safetensors_tensor;

/* Writes a file of `count` tensors and `metadata_count` metadata entries at `path`, crash-safe:
 * through a temporary file renamed into place, so the file appears whole or not at all.
 * Thread-safe. */
SAFETENSORS_C_API int safetensors_save(const char *path, const safetensors_tensor *tensors, size_t count,
                                       const safetensors_metadata_entry *metadata, size_t metadata_count);

/* A file being written tensor by tensor, chunk by chunk. */
typedef struct safetensors_writer safetensors_writer;

/* A tensor to be written (its bytes come later). */
typedef struct {
  const char *name;
  const char *dtype;
  size_t rank;
  const uint64_t *shape;
} safetensors_tensor_declaration;

/* Starts writing `path`: the tensors are declared now, their bytes written later in any order
 * of tensors, each tensor's front to back. `path` is untouched until safetensors_writer_finish.
 * On success *out is a writer to close with safetensors_writer_close. Thread-safe. */
SAFETENSORS_C_API int safetensors_writer_open(const char *path, const safetensors_tensor_declaration *tensors,
                                              size_t count, const safetensors_metadata_entry *metadata,
                                              size_t metadata_count, safetensors_writer **out);

/* Appends `size` bytes to the tensor named `name`. */
SAFETENSORS_C_API int safetensors_writer_write(safetensors_writer *writer, const char *name, const void *bytes,
                                               uint64_t size);

/* Checks that every tensor is complete and renames the file into place. */
SAFETENSORS_C_API int safetensors_writer_finish(safetensors_writer *writer);

/* Frees `writer` (NULL: nothing). A writer not finished removes its temporary file: nothing is
 * left under the final name. */
SAFETENSORS_C_API void safetensors_writer_close(safetensors_writer *writer);

#ifdef __cplusplus
}
#endif

#endif /* SAFETENSORS_H */
