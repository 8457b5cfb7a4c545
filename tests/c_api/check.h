/* What the C ABI tests share: CHECK, which reports and counts a failure and goes on, the
 * fixture's directory from argv, and the end of a test program. */
#ifndef SAFETENSORS_TEST_CHECK_H
#define SAFETENSORS_TEST_CHECK_H

#include <safetensors/safetensors.h>

#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(condition)                                                                            \
  do {                                                                                              \
    ++check_count;                                                                                  \
    if (!(condition)) {                                                                             \
      ++check_failures;                                                                             \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #condition, \
              safetensors_last_error());                                                            \
    }                                                                                               \
  } while (0)

/* DIRECTORY/NAME, in a static buffer. */
static inline const char *fixture_path(const char *directory, const char *name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", directory, name);
  return path;
}

/* Whether `bytes` are tensor `tensor`'s, from byte `first` on. */
static inline int fixture_bytes_are(size_t tensor, uint64_t first, const unsigned char *bytes, uint64_t size) {
  uint64_t k;
  for (k = 0; k < size; ++k)
    if (bytes[k] != fixture_byte(tensor, first + k)) return 0;
  return 1;
}

static inline int check_end(const char *program) {
  printf("%s: %d checks, %d failed\n", program, check_count, check_failures);
  return check_failures == 0 ? 0 : 1;
}

#endif
