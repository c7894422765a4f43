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

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <tuple>

#include "block_kernels.h"

namespace {

using hamlet::kBlock;

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
  hamlet::block_gemm<Q4>(xp, M, K, qp, sp, mp, yp, N);
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
