// Grouped-query attention for one new token per row, read straight from the
// engine's slot cache: one pass over each row's keys and one over its values,
// only up to that row's own length (no mask, no padding to the buffer's
// length, no score tensors between ops). Float32 on the CPU; see
// agents/inference/fused.py for what it replaces and the measurements.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "attention_kernel.h"

#include <cmath>
#include <limits>
#include <vector>

namespace {

// q: [n, H, D] (H = Hk * G query heads); k, v: one layer of the cache,
// [S, Hk, T, D]; rows first..first+n-1 attend to positions 0..lengths[i]-1.
// -> [n, H, D]
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            int64_t first, const at::Tensor& lengths, double scale) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 4 && v.dim() == 4, "decode_attention: bad ranks");
  TORCH_CHECK(q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat && v.scalar_type() == at::kFloat,
              "decode_attention: float32 only");
  TORCH_CHECK(q.is_contiguous() && k.is_contiguous() && v.is_contiguous(), "decode_attention: contiguous only");
  TORCH_CHECK(lengths.scalar_type() == at::kLong && lengths.is_contiguous() && lengths.device().is_cpu(),
              "decode_attention: lengths must be contiguous int64 on the CPU");
  const int64_t n = q.size(0), H = q.size(1), D = q.size(2);
  const int64_t S = k.size(0), Hk = k.size(1), T = k.size(2);
  TORCH_CHECK(k.size(3) == D && v.sizes() == k.sizes() && H % Hk == 0, "decode_attention: shapes differ");
  TORCH_CHECK(lengths.numel() == n && first >= 0 && first + n <= S, "decode_attention: rows out of range");
  const int64_t* len = lengths.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) TORCH_CHECK(len[i] >= 1 && len[i] <= T, "decode_attention: length out of range");
  at::Tensor out = at::empty({n, H, D}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float sc = static_cast<float>(scale);
  hamlet::attend_rows(qp, H * D, kp, vp, op, first, len, n, H, Hk, T, D, sc);
  return out;
}

}  // namespace

TORCH_LIBRARY(hamlet, m) {
  m.def("decode_attention(Tensor q, Tensor k, Tensor v, int first, Tensor lengths, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(hamlet, CPU, m) {
  m.impl("decode_attention", &decode_attention);
}
