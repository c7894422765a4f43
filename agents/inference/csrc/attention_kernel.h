// Grouped-query attention for one new token per row over the slot cache, the
// kernel shared by the decode_attention op and the fused decode layer
// (decode_layer.cpp). See decode_attention.cpp for what it does and why.
#pragma once

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace hamlet {

// q: row i's H query heads at qp + i * q_stride ([H, D] each); kp, vp: one
// layer of the cache [S, Hk, T, D]; rows first..first+n-1 attend to positions
// 0..len[i]-1. -> op [n, H, D]
inline void attend_rows(const float* qp, int64_t q_stride, const float* kp, const float* vp, float* op,
                        int64_t first, const int64_t* len, int64_t n, int64_t H, int64_t Hk, int64_t T,
                        int64_t D, float sc) {
  const int64_t G = H / Hk;
  // One work item: a row and one of its kv heads (all G query heads of the group).
  at::parallel_for(0, n * Hk, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t i = item / Hk, h = item % Hk, L = len[i];
      const float* keys = kp + ((first + i) * Hk + h) * T * D;     // [T, D]
      const float* vals = vp + ((first + i) * Hk + h) * T * D;     // [T, D]
      const float* qg = qp + i * q_stride + h * G * D;             // [G, D]
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
}

}  // namespace hamlet
