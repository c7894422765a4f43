// The kernels of the block-form linear layers (see block_linear.cpp for the
// forms and why), shared by the q4/q8 ops and the fused decode layer.
#pragma once

#include <ATen/Parallel.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace hamlet {

constexpr int64_t kBlock = 32;
constexpr int64_t kMaxRows = 8;     // x rows sharing one unpacking of the weights (registers: <= 8 accumulators)

#if defined(__AVX2__) && defined(__FMA__)

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One output row j of R x rows: the block's four vectors of 8 weights go to
// C independent accumulators per x row (FMA latency needs several in flight).
template <int R, int C, bool Q4>
inline void block_row(const float* x, int64_t K, const uint8_t* qw, const float* scale, const float* minv,
                      float* y, int64_t ldy) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  const __m128i low = _mm_set1_epi8(0x0F);
  const int64_t blocks = K / kBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    const __m256 d = _mm256_set1_ps(scale[b]);
    __m256 w[4];
    if constexpr (Q4) {
      const __m256 m = _mm256_set1_ps(minv[b]);
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qw + b * 16));
      const __m128i lo = _mm_and_si128(v, low), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low);
      const __m128i part[4] = {lo, hi, _mm_unpackhi_epi64(lo, lo), _mm_unpackhi_epi64(hi, hi)};
      for (int p = 0; p < 4; ++p)
        w[p] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(part[p])), d, m);
    } else {
      const uint8_t* src = qw + b * kBlock;
      for (int p = 0; p < 4; ++p) {
        const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + p * 8));
        w[p] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d);
      }
    }
    const float* xb = x + b * kBlock;
    for (int r = 0; r < R; ++r)
      for (int p = 0; p < 4; ++p)
        acc[r][p % C] = _mm256_fmadd_ps(w[p], _mm256_loadu_ps(xb + r * K + p * 8), acc[r][p % C]);
  }
  for (int r = 0; r < R; ++r) {
    __m256 s = acc[r][0];
    for (int c = 1; c < C; ++c) s = _mm256_add_ps(s, acc[r][c]);
    y[r * ldy] = hsum(s);
  }
}

#else  // no AVX2: the same sums, plainly (correct, not fast; blockweights.py uses these ops only with AVX2)

template <int R, int C, bool Q4>
inline void block_row(const float* x, int64_t K, const uint8_t* qw, const float* scale, const float* minv,
                      float* y, int64_t ldy) {
  float acc[R] = {};
  for (int64_t b = 0; b < K / kBlock; ++b) {
    float w[kBlock];
    for (int64_t i = 0; i < kBlock; ++i) {
      if constexpr (Q4) {
        const uint8_t byte = qw[b * 16 + (i / 16) * 8 + i % 8];
        w[i] = std::fma(static_cast<float>((i / 8) % 2 ? byte >> 4 : byte & 0x0F), scale[b], minv[b]);
      } else {
        w[i] = static_cast<float>(reinterpret_cast<const int8_t*>(qw)[b * kBlock + i]) * scale[b];
      }
    }
    for (int r = 0; r < R; ++r)
      for (int64_t i = 0; i < kBlock; ++i) acc[r] += w[i] * x[r * K + b * kBlock + i];
  }
  for (int r = 0; r < R; ++r) y[r * ldy] = acc[r];
}

#endif

template <bool Q4>
void rows_of(int64_t rows, const float* x, int64_t K, const uint8_t* qw, const float* scale, const float* minv,
             float* y, int64_t ldy) {
  switch (rows) {
    case 1: block_row<1, 4, Q4>(x, K, qw, scale, minv, y, ldy); break;
    case 2: block_row<2, 4, Q4>(x, K, qw, scale, minv, y, ldy); break;
    case 3: block_row<3, 2, Q4>(x, K, qw, scale, minv, y, ldy); break;
    case 4: block_row<4, 2, Q4>(x, K, qw, scale, minv, y, ldy); break;
    case 5: block_row<5, 1, Q4>(x, K, qw, scale, minv, y, ldy); break;
    case 6: block_row<6, 1, Q4>(x, K, qw, scale, minv, y, ldy); break;
    case 7: block_row<7, 1, Q4>(x, K, qw, scale, minv, y, ldy); break;
    default: block_row<8, 1, Q4>(x, K, qw, scale, minv, y, ldy); break;
  }
}


// y [M, N] = x [M, K] @ W^T, W [N, K] in its block form (minv: q4 only).
// Threads split the output rows; each reads its rows' weights once per group of x rows.
template <bool Q4>
inline void block_gemm(const float* x, int64_t M, int64_t K, const uint8_t* qw, const float* scale,
                       const float* minv, float* y, int64_t N) {
  const int64_t row_bytes = Q4 ? K / 2 : K, blocks = K / kBlock;
  at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t r = 0; r < M; r += kMaxRows) {
        rows_of<Q4>(std::min(kMaxRows, M - r), x + r * K, K, qw + j * row_bytes, scale + j * blocks,
                    Q4 ? minv + j * blocks : nullptr, y + r * N + j, N);
      }
    }
  });
}

}  // namespace hamlet
