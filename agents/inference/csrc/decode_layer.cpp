// One decoder layer of a decode step (one new token per row, a few rows) in
// one call: RMSNorm, the q/k/v projection, rotary positions, the keys and
// values written into the slot cache, attention over each row's own
// positions, the output projection and the residual, RMSNorm, the SwiGLU MLP
// and the residual. The projections read the weights' q4 block forms
// (block_kernels.h) and attention is the decode_attention kernel
// (attention_kernel.h). It computes what agents/inference/llama.py computes
// with torch ops for such a step, in the same order, where those take ~25
// small ops a layer (each a dispatch and an allocation): on the 2-core AVX2
// EPYC the one-row step's ops other than the projections took about as long
// as the projections themselves. See agents/inference/llama.py (decode_layers).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "attention_kernel.h"
#include "block_kernels.h"

namespace {

struct Q4 {
  const uint8_t* qw;
  const float* scale;
  const float* minv;
  int64_t N;
};

// (qw [N, K/2] uint8, scale [N, K/32], minv [N, K/32]) as the q4 ops take them.
Q4 q4_of(at::TensorList w, int64_t K, const char* what) {
  TORCH_CHECK(w.size() == 3, "decode_layer: ", what, " must be (qw, scale, minv)");
  const at::Tensor &qw = w[0], &scale = w[1], &minv = w[2];
  TORCH_CHECK(qw.dim() == 2 && qw.scalar_type() == at::kByte && qw.is_contiguous() && qw.size(1) * 2 == K,
              "decode_layer: ", what, " weights must be contiguous uint8 [N, K/2]");
  const int64_t N = qw.size(0);
  for (const at::Tensor* t : {&scale, &minv}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_contiguous() && t->dim() == 2 && t->size(0) == N &&
                    t->size(1) == K / hamlet::kBlock,
                "decode_layer: ", what, " scales must be contiguous float32 [N, K/32]");
  }
  return {qw.data_ptr<uint8_t>(), scale.data_ptr<float>(), minv.data_ptr<float>(), N};
}

void project(const std::vector<float>& x, int64_t M, int64_t K, const Q4& w, std::vector<float>& y) {
  y.resize(M * w.N);
  hamlet::block_gemm<true>(x.data(), M, K, w.qw, w.scale, w.minv, y.data(), w.N);
}

// y = w * (x * rsqrt(mean(x^2) + eps)), row by row: x [M, E] -> y [M, E]
void rms_norm(const float* x, const float* w, int64_t M, int64_t E, float eps, std::vector<float>& y) {
  y.resize(M * E);
  for (int64_t i = 0; i < M; ++i) {
    const float* xi = x + i * E;
    float ss = 0.f;
    for (int64_t e = 0; e < E; ++e) ss += xi[e] * xi[e];
    const float r = 1.f / std::sqrt(ss / static_cast<float>(E) + eps);
    for (int64_t e = 0; e < E; ++e) y[i * E + e] = w[e] * (xi[e] * r);
  }
}

// x: [n, E] float32, the residual stream of n rows (one token each) -> the
// layer's output [n, E]. cos, sin: [n, D], each row's rotary table at its
// position; k, v: this layer of the slot cache [S, Hk, T, D]; row i is cache
// row first + i and writes its key and value at position pos[i], then attends
// to positions 0..pos[i].
at::Tensor decode_layer(const at::Tensor& x, const at::Tensor& ln1, at::TensorList wqkv, at::TensorList wo,
                        const at::Tensor& ln2, at::TensorList wgu, at::TensorList wd, const at::Tensor& cos,
                        const at::Tensor& sin, const at::Tensor& k, const at::Tensor& v, int64_t first,
                        const at::Tensor& pos, int64_t heads, int64_t kv_heads, double eps, double scale) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "decode_layer: x must be contiguous float32 [n, E]");
  const int64_t n = x.size(0), E = x.size(1), H = heads, Hk = kv_heads;
  TORCH_CHECK(H > 0 && Hk > 0 && H % Hk == 0 && E % H == 0, "decode_layer: bad head counts");
  const int64_t D = E / H;
  TORCH_CHECK(k.dim() == 4 && k.scalar_type() == at::kFloat && k.is_contiguous() && v.sizes() == k.sizes() &&
                  v.scalar_type() == at::kFloat && v.is_contiguous() && k.size(1) == Hk && k.size(3) == D,
              "decode_layer: k, v must be contiguous float32 [S, Hk, T, D]");
  const int64_t S = k.size(0), T = k.size(2);
  TORCH_CHECK(first >= 0 && first + n <= S, "decode_layer: rows out of range");
  TORCH_CHECK(pos.scalar_type() == at::kLong && pos.is_contiguous() && pos.numel() == n,
              "decode_layer: pos must be contiguous int64 [n]");
  for (const at::Tensor* t : {&cos, &sin}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_contiguous() && t->dim() == 2 && t->size(0) == n &&
                    t->size(1) == D,
                "decode_layer: cos, sin must be contiguous float32 [n, D]");
  }
  for (const at::Tensor* t : {&ln1, &ln2}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_contiguous() && t->numel() == E,
                "decode_layer: norm weights must be float32 [E]");
  }
  const Q4 qkv_w = q4_of(wqkv, E, "wqkv"), o_w = q4_of(wo, H * D, "wo"), gu_w = q4_of(wgu, E, "wgu");
  TORCH_CHECK(qkv_w.N == (H + 2 * Hk) * D && o_w.N == E && gu_w.N % 2 == 0, "decode_layer: projection shapes");
  const int64_t I = gu_w.N / 2;
  const Q4 d_w = q4_of(wd, I, "wd");
  TORCH_CHECK(d_w.N == E, "decode_layer: down projection shape");
  const int64_t* p = pos.data_ptr<int64_t>();
  std::vector<int64_t> len(n);
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(p[i] >= 0 && p[i] < T, "decode_layer: position out of range");
    len[i] = p[i] + 1;
  }

  at::Tensor out = x.clone();                                 // the residual stream, [n, E]
  float* xs = out.data_ptr<float>();
  const float fe = static_cast<float>(eps);
  std::vector<float> h, qkv, att(n * H * D), y, gu, act(n * I);

  // attention block
  rms_norm(xs, ln1.data_ptr<float>(), n, E, fe, h);
  project(h, n, E, qkv_w, qkv);                               // [n, (H + 2Hk) * D]
  const int64_t row = (H + 2 * Hk) * D, half = D / 2;
  const float *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  float *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const float *c = cp + i * D, *s = sp + i * D;
    for (int64_t hd = 0; hd < H + Hk; ++hd) {                 // rotary positions on q and k heads
      float* t = qkv.data() + i * row + hd * D;
      for (int64_t d = 0; d < half; ++d) {
        const float a = t[d], b = t[d + half];
        t[d] = a * c[d] + (-b) * s[d];
        t[d + half] = b * c[d + half] + a * s[d + half];
      }
    }
    for (int64_t hk = 0; hk < Hk; ++hk) {                     // the new key and value into the cache
      const float* kn = qkv.data() + i * row + (H + hk) * D;
      const float* vn = qkv.data() + i * row + (H + Hk + hk) * D;
      const int64_t at_ = (((first + i) * Hk + hk) * T + p[i]) * D;
      std::copy(kn, kn + D, kp + at_);
      std::copy(vn, vn + D, vp + at_);
    }
  }
  hamlet::attend_rows(qkv.data(), row, kp, vp, att.data(), first, len.data(), n, H, Hk, T, D,
                      static_cast<float>(scale));
  project(att, n, H * D, o_w, y);                             // [n, E]
  for (int64_t j = 0; j < n * E; ++j) xs[j] += y[j];

  // MLP block
  rms_norm(xs, ln2.data_ptr<float>(), n, E, fe, h);
  project(h, n, E, gu_w, gu);                                 // [n, 2I]: gate, then up
  for (int64_t i = 0; i < n; ++i) {
    const float *g = gu.data() + i * 2 * I, *u = g + I;
    for (int64_t j = 0; j < I; ++j) act[i * I + j] = g[j] / (1.f + std::exp(-g[j])) * u[j];
  }
  project(act, n, I, d_w, y);                                 // [n, E]
  for (int64_t j = 0; j < n * E; ++j) xs[j] += y[j];
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(hamlet, m) {
  m.def("decode_layer(Tensor x, Tensor ln1, Tensor[] wqkv, Tensor[] wo, Tensor ln2, Tensor[] wgu, Tensor[] wd, "
        "Tensor cos, Tensor sin, Tensor(a!) k, Tensor(b!) v, int first, Tensor pos, int heads, int kv_heads, "
        "float eps, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(hamlet, CPU, m) {
  m.impl("decode_layer", &decode_layer);
}
