// y = x @ W^T for a few rows of x, reading W in blocks of 32 weights per
// output row, kept as small integers and one or two float32 numbers a block:
//   q4: w = d * q + m, q in 0..15 (two weights a byte), d and m per block;
//   q8: w = d * q,     q in -127..127 (one weight a byte), d per block.
// Weights of that form (the embedded model's, as its GGUF file stores them)
// are rebuilt here exactly in float32 (d * q is exact, one rounding for + m:
// an FMA), so the result differs from a float32 GEMM only by the order of
// the sums. The point is bytes: a one-row decode step reads each weight once,
// and 0.75 (q4) or 1.125 (q8) bytes a weight instead of 4 make it ~3x faster
// on a CPU whose step is bound by memory. See agents/inference/blockweights.py.
//
// q4 layout, per block of 32 weights e[0..31] (16 bytes): byte i (0..7) holds
// e[i] (low nibble) and e[i+8] (high); byte 8+i holds e[16+i] and e[24+i].
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <c10/util/Half.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <tuple>

namespace {

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

template <bool Q4>
at::Tensor block_linear(const at::Tensor& x, const at::Tensor& qw, const at::Tensor& scale,
                        const at::Tensor* minv) {
  const char* name = Q4 ? "q4_linear" : "q8_linear";
  TORCH_CHECK(x.dim() == 2 && qw.dim() == 2 && scale.dim() == 2, name, ": x, weights and scales must be 2-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat && scale.scalar_type() == at::kFloat, name, ": float32 x and scales");
  TORCH_CHECK(qw.scalar_type() == (Q4 ? at::kByte : at::kChar), name, Q4 ? ": uint8 weights" : ": int8 weights");
  TORCH_CHECK(x.is_contiguous() && qw.is_contiguous() && scale.is_contiguous(), name, ": contiguous only");
  const int64_t M = x.size(0), K = x.size(1), N = qw.size(0);
  TORCH_CHECK(K % kBlock == 0 && qw.size(1) == (Q4 ? K / 2 : K), name, ": x and weights disagree on K");
  TORCH_CHECK(scale.size(0) == N && scale.size(1) == K / kBlock, name, ": scales must be [N, K/32]");
  if (Q4) {
    TORCH_CHECK(minv->scalar_type() == at::kFloat && minv->is_contiguous() && minv->sizes() == scale.sizes(),
                name, ": minimums must be float32 [N, K/32]");
  }
  at::Tensor y = at::empty({M, N}, x.options());
  const float* xp = x.data_ptr<float>();
  const uint8_t* qp = static_cast<const uint8_t*>(qw.data_ptr());
  const float* sp = scale.data_ptr<float>();
  const float* mp = Q4 ? minv->data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t row_bytes = Q4 ? K / 2 : K, blocks = K / kBlock;
  // Threads split the output rows; each reads its rows' weights once per group of x rows.
  at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t r = 0; r < M; r += kMaxRows) {
        rows_of<Q4>(std::min(kMaxRows, M - r), xp + r * K, K, qp + j * row_bytes, sp + j * blocks,
                    Q4 ? mp + j * blocks : nullptr, yp + r * N + j, N);
      }
    }
  });
  return y;
}

at::Tensor q4_linear(const at::Tensor& x, const at::Tensor& qw, const at::Tensor& scale, const at::Tensor& minv) {
  return block_linear<true>(x, qw, scale, &minv);
}

at::Tensor q8_linear(const at::Tensor& x, const at::Tensor& qw, const at::Tensor& scale) {
  return block_linear<false>(x, qw, scale, nullptr);
}

// w [N, K] float32 -> q4 form (qw [N, K/2] uint8, scale, minv [N, K/32]) and the
// number of blocks whose weights the form does not give back exactly (the
// caller keeps the float32 weights unless that is 0). A block's minimum is
// its m; d is (max - m) / 15 rounded to a float16, as GGUF's Q4_1 stores it.
std::tuple<at::Tensor, at::Tensor, at::Tensor, int64_t> q4_pack(const at::Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == at::kFloat && w.is_contiguous(), "q4_pack: contiguous float32 [N, K]");
  const int64_t N = w.size(0), K = w.size(1), blocks = K / kBlock;
  TORCH_CHECK(K % kBlock == 0, "q4_pack: K must be a multiple of 32");
  at::Tensor qw = at::empty({N, K / 2}, w.options().dtype(at::kByte));
  at::Tensor scale = at::empty({N, blocks}, w.options()), minv = at::empty({N, blocks}, w.options());
  const float* wp = w.data_ptr<float>();
  uint8_t* qp = qw.data_ptr<uint8_t>();
  float *sp = scale.data_ptr<float>(), *mp = minv.data_ptr<float>();
  std::atomic<int64_t> inexact{0};
  at::parallel_for(0, N * blocks, 256, [&](int64_t begin, int64_t end) {
    int64_t bad = 0;
    for (int64_t blk = begin; blk < end; ++blk) {
      const float* e = wp + blk * kBlock;
      const float lo = *std::min_element(e, e + kBlock), hi = *std::max_element(e, e + kBlock);
      const float d = static_cast<float>(c10::Half((hi - lo) / 15.f));
      uint8_t q[kBlock];
      bool exact = true;
      for (int64_t i = 0; i < kBlock; ++i) {
        const float v = d > 0.f ? std::nearbyint((e[i] - lo) / d) : 0.f;
        q[i] = static_cast<uint8_t>(std::clamp(v, 0.f, 15.f));
        exact = exact && std::fma(static_cast<float>(q[i]), d, lo) == e[i];
      }
      bad += !exact;
      uint8_t* out = qp + blk * 16;
      for (int64_t i = 0; i < 8; ++i) {
        out[i] = q[i] | (q[i + 8] << 4);
        out[8 + i] = q[16 + i] | (q[24 + i] << 4);
      }
      sp[blk] = d;
      mp[blk] = lo;
    }
    inexact += bad;
  });
  return {qw, scale, minv, inexact.load()};
}

// w [N, K] float32 -> q8 form (qw [N, K] int8, scale [N, K/32]) and the number of
// inexact blocks; d is the block's largest magnitude / 127, as GGUF's Q8_0.
std::tuple<at::Tensor, at::Tensor, int64_t> q8_pack(const at::Tensor& w) {
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == at::kFloat && w.is_contiguous(), "q8_pack: contiguous float32 [N, K]");
  const int64_t N = w.size(0), K = w.size(1), blocks = K / kBlock;
  TORCH_CHECK(K % kBlock == 0, "q8_pack: K must be a multiple of 32");
  at::Tensor qw = at::empty({N, K}, w.options().dtype(at::kChar));
  at::Tensor scale = at::empty({N, blocks}, w.options());
  const float* wp = w.data_ptr<float>();
  int8_t* qp = qw.data_ptr<int8_t>();
  float* sp = scale.data_ptr<float>();
  std::atomic<int64_t> inexact{0};
  at::parallel_for(0, N * blocks, 256, [&](int64_t begin, int64_t end) {
    int64_t bad = 0;
    for (int64_t blk = begin; blk < end; ++blk) {
      const float* e = wp + blk * kBlock;
      float amax = 0.f;
      for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(e[i]));
      const float d = amax / 127.f;
      bool exact = true;
      for (int64_t i = 0; i < kBlock; ++i) {
        const float v = d > 0.f ? std::clamp(std::nearbyint(e[i] / d), -127.f, 127.f) : 0.f;
        qp[blk * kBlock + i] = static_cast<int8_t>(v);
        exact = exact && v * d == e[i];
      }
      bad += !exact;
      sp[blk] = d;
    }
    inexact += bad;
  });
  return {qw, scale, inexact.load()};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(hamlet, m) {
  m.def("q4_linear(Tensor x, Tensor qw, Tensor scale, Tensor minv) -> Tensor");
  m.def("q8_linear(Tensor x, Tensor qw, Tensor scale) -> Tensor");
  m.def("q4_pack(Tensor w) -> (Tensor, Tensor, Tensor, int)");
  m.def("q8_pack(Tensor w) -> (Tensor, Tensor, int)");
}

TORCH_LIBRARY_IMPL(hamlet, CPU, m) {
  m.impl("q4_linear", &q4_linear);
  m.impl("q8_linear", &q8_linear);
  m.impl("q4_pack", &q4_pack);
  m.impl("q8_pack", &q8_pack);
}
