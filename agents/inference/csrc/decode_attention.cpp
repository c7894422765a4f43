// Grouped-query attention for one new token per row, read straight from the
// engine's slot cache: one pass over each row's keys and one over its values,
// only up to that row's own length (no mask, no padding to the buffer's
// length, no score tensors between ops). Float32 on the CPU; see
// agents/inference/fused.py for what it replaces and the measurements.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

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
  const int64_t G = H / Hk;
  const int64_t* len = lengths.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) TORCH_CHECK(len[i] >= 1 && len[i] <= T, "decode_attention: length out of range");
  at::Tensor out = at::empty({n, H, D}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float sc = static_cast<float>(scale);
  // One work item: a row and one of its kv heads (all G query heads of the group).
  at::parallel_for(0, n * Hk, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t i = item / Hk, h = item % Hk, L = len[i];
      const float* keys = kp + ((first + i) * Hk + h) * T * D;     // [T, D]
      const float* vals = vp + ((first + i) * Hk + h) * T * D;     // [T, D]
      const float* qg = qp + (i * H + h * G) * D;                  // [G, D]
      float* og = op + (i * H + h * G) * D;                        // [G, D]
      scores.resize(G * L);
      for (int64_t t = 0; t < L; ++t) {
        const float* kt = keys + t * D;
        for (int64_t g = 0; g < G; ++g) {
          const float* qq = qg + g * D;
          float acc = 0.f;
#pragma omp simd reduction(+ : acc)
          for (int64_t d = 0; d < D; ++d) acc += qq[d] * kt[d];
          scores[g * L + t] = acc * sc;
        }
      }
      for (int64_t g = 0; g < G; ++g) {
        float* s = scores.data() + g * L;
        float m = s[0];
#pragma omp simd reduction(max : m)
        for (int64_t t = 0; t < L; ++t) m = s[t] > m ? s[t] : m;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t t = 0; t < L; ++t) { s[t] = std::exp(s[t] - m); sum += s[t]; }
        const float inv = 1.f / sum;
#pragma omp simd
        for (int64_t t = 0; t < L; ++t) s[t] *= inv;
        float* o = og + g * D;
        for (int64_t d = 0; d < D; ++d) o[d] = 0.f;
      }
      for (int64_t t = 0; t < L; ++t) {
        const float* vt = vals + t * D;
        for (int64_t g = 0; g < G; ++g) {
          const float p = scores[g * L + t];
          float* o = og + g * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) o[d] += p * vt[d];
        }
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(hamlet, m) {
  m.def("decode_attention(Tensor q, Tensor k, Tensor v, int first, Tensor lengths, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(hamlet, CPU, m) {
  m.impl("decode_attention", &decode_attention);
}
