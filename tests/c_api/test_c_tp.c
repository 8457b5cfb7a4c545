/* The C ABI: tensor-parallel plans, a rank's shares of a sharded model, read through slices.
 * Usage: test_c_tp FIXTURE_DIR */
#include "check.h"

int main(int argc, char **argv) {
  safetensors_model *model = NULL;
  safetensors_tp_plan *plan = NULL, *llama = NULL;
  safetensors_tp_share shares[FIXTURE_TENSOR_COUNT];
  safetensors_slice_dim dims[2] = {{0, SAFETENSORS_TO_END, 1, 0}, {0, SAFETENSORS_TO_END, 1, 0}};
  unsigned char buffer[64];
  size_t row, at = 0;
  if (argc != 2) return 64;
  CHECK(safetensors_open(fixture_path(argv[1], "model"), &model) == SAFETENSORS_OK);
  CHECK(safetensors_tp_plan_parse("{\"layers.0\": \"colwise\", \"layers.1\": \"rowwise\"}", &plan) == SAFETENSORS_OK);
  CHECK(safetensors_tp_plan_parse("llama", &llama) == SAFETENSORS_OK);
  /* By name: embed, empty, layers.0.b, layers.0.w, layers.1.w, scale. Rank 1 of 2. */
  CHECK(safetensors_tp_shares(model, plan, 2, 1, shares, FIXTURE_TENSOR_COUNT) == SAFETENSORS_OK);
  CHECK(shares[0].dim == -1 && shares[1].dim == -1 && shares[5].dim == -1);
  CHECK(shares[2].dim == 0 && shares[2].start == 3 && shares[2].stop == 6);
  CHECK(shares[3].dim == 0 && shares[3].start == 2 && shares[3].stop == 4);
  CHECK(shares[4].dim == 1 && shares[4].start == 2 && shares[4].stop == 4);
  /* Rank 1's part of layers.1.w (BF16 [6, 4]): columns 2 and 3 of every row. */
  dims[1].start = (int64_t)shares[4].start;
  dims[1].stop = (int64_t)shares[4].stop;
  CHECK(safetensors_read_slice(model, "layers.1.w", dims, 2, buffer, 6 * 2 * 2) == SAFETENSORS_OK);
  for (row = 0; row < 6; ++row, at += 4)
    CHECK(fixture_bytes_are(fixture_find("layers.1.w"), (row * 4 + 2) * 2, buffer + at, 4));
  /* llama's patterns match none of these modules: everything whole. */
  CHECK(safetensors_tp_shares(model, llama, 4, 3, shares, FIXTURE_TENSOR_COUNT) == SAFETENSORS_OK);
  CHECK(shares[3].dim == -1);
  /* Refusals: a dimension that does not divide, a wrong count, a bad plan. */
  CHECK(safetensors_tp_shares(model, plan, 4, 0, shares, FIXTURE_TENSOR_COUNT) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(safetensors_last_error(), "tensor \"layers.0.b\" (colwise by the pattern \"layers.0\"): dimension 0 of "
                                         "size 6 does not divide into 4 ranks") != NULL);
  CHECK(safetensors_tp_shares(model, plan, 2, 2, shares, FIXTURE_TENSOR_COUNT) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(safetensors_tp_shares(model, plan, 2, 0, shares, 3) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  safetensors_tp_plan_close(plan);
  plan = (safetensors_tp_plan *)&plan;
  CHECK(safetensors_tp_plan_parse("{\"q_proj\": \"diagonal\"}", &plan) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  CHECK(plan == NULL);
  CHECK(strstr(safetensors_last_error(), "\"diagonal\"") != NULL);
  CHECK(safetensors_tp_plan_parse(NULL, &plan) == SAFETENSORS_ERROR_INVALID_ARGUMENT);
  safetensors_tp_plan_close(llama);
  safetensors_tp_plan_close(NULL);
  safetensors_close(model);
  return check_end("test_c_tp");
}
