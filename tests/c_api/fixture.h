/* The tensors the C ABI tests read: written by fixture.cpp (with the C++ library) as a single
 * file and as a sharded model, and known to the C tests by this table. Tensor i's byte k is
 * fixture_byte(i, k). C99 and C++. */
#ifndef SAFETENSORS_TEST_FIXTURE_H
#define SAFETENSORS_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *dtype;
  size_t rank;
  uint64_t shape[3];
  uint64_t byte_size;
} fixture_tensor;

/* In declaration order, which is the single file's data order. */
static const fixture_tensor fixture_tensors[] = {
    {"layers.0.w", "F32", 2, {4, 6, 0}, 96},   {"layers.0.b", "F32", 1, {6, 0, 0}, 24},
    {"layers.1.w", "BF16", 2, {6, 4, 0}, 48},  {"embed", "U8", 2, {10, 3, 0}, 30},
    {"scale", "F64", 0, {0, 0, 0}, 8},         {"empty", "I32", 2, {0, 3, 0}, 0},
};
#define FIXTURE_TENSOR_COUNT (sizeof(fixture_tensors) / sizeof(fixture_tensors[0]))

static inline unsigned char fixture_byte(size_t tensor, uint64_t k) {
  return (unsigned char)((tensor * 31u + k * 7u + 3u) % 256u);
}

/* The position of the tensor named `name` in fixture_tensors, or FIXTURE_TENSOR_COUNT. */
static inline size_t fixture_find(const char *name) {
  size_t i;
  for (i = 0; i < FIXTURE_TENSOR_COUNT; ++i)
    if (strcmp(fixture_tensors[i].name, name) == 0) return i;
  return FIXTURE_TENSOR_COUNT;
}

#endif
