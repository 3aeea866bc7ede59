// SPDX-License-Identifier: Apache-2.0
// Error-feedback quantization (GPTQ, Frantar et al. 2022) of a weight W [rows, K] (blocks
// along K) given H = X^T X [K, K], for every quantizer: MX (every element type), NVFP4,
// FP4 with float scales, uniform integers symmetric and asymmetric. The output is the
// quantizer's own tensor (codes, scales, mins, tensor scale), so packing, the ggml layout
// and dequantize work unchanged. Needs Eigen 3 (the CMake target blockq::gptq).
//
// API
//   gptq_output<T> gptq_quantize(const Quantizer& q, span<const float> w, size_t k,
//                                span<const double> h, const gptq_options& = {},
//                                span<const float> x = {});
//     w: [rows, K] row-major; h: H [K, K] row-major (symmetrised); x: the activations
//     [T, K] H came from, optional, for the output error. T: mx_tensor, nvfp4_tensor,
//     fp4_tensor or uniform_tensor, as q.quantize returns.
//   gptq_output<T> gptq_quantize_activations(q, w, k, x, options): H = X^T X from x.
//   std::vector<double> hessian_from_activations(span<const float> x, size_t k);  // X^T X
//
// The sweep. H is damped, H + λ I with λ = damp · mean(diag H); when its Cholesky
// factorisation fails (H indefinite, or singular beyond the damping) λ grows tenfold and
// the factorisation is retried (result.retries, result.damp). U, upper triangular with
// (H + λI)^-1 = U^T U, comes from the Cholesky factor of the reversed matrix: with J the
// reversal, J (H + λI) J = L L^T gives H + λI = M M^T for the upper M = J L J, and U = M^-1.
// Columns are visited in order (act_order: by decreasing diag H, ties in column order);
// column i is rounded with its block's scale, its error e = (w - q) / U_ii is pushed onto
// the columns not yet rounded, W[:, j] -= e U_ij, within a batch of columns at once and
// then onto the rest of W by one matrix product (lazy batches). W and U are kept in double.
//
// Scales. Without act_order a block's scales (one per row) are chosen by the quantizer's
// rule when the sweep reaches the block's first column, from the weights as updated so
// far; with act_order they are all chosen before the sweep from the original weights
// ("static groups"). Rule hessian searches with the block's own B x B sub-matrix of the
// undamped H (search/hessian.hpp). Every rule is the quantizer's own, exactly.
//
// Dead columns (diag H = 0) are decoupled (their row and column of H set to the unit
// vector, as GPTQ does): nothing flows into or out of them, so they get the plain rounding
// of their original weight at their block's scale.
//
// Result. proxy_loss = Σ over live columns of e² = tr(Δ (H + λI) Δ^T) restricted to the
// live columns (Δ = W - Ŵ in the basis quantized; exact up to rounding); output_error =
// ||X (W - Ŵ)^T||_F when x is given.
//
// Rotation. With options.rotation = &r (hadamard.hpp) the quantizer sees W R and the
// sweep R^T H R; the tensor holds W R quantized (dequantize it with rotated_dequantize
// to get W's basis back). The output error is the same in both bases (R is orthogonal).
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/fp4.hpp"
#include "blockq/hadamard.hpp"
#include "blockq/kernels.hpp"
#include "blockq/mx.hpp"
#include "blockq/nvfp4.hpp"
#include "blockq/search/hessian.hpp"
#include "blockq/uniform.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct gptq_options {
  double damp = 0.01;        // λ = damp · mean(diag H)
  bool act_order = false;    // columns by decreasing diag H, scales fixed before the sweep
  std::size_t batch = 128;   // columns of a lazy batch (rounded up to a multiple of the block)
  int max_retries = 8;       // failed factorisations retried with ten times the damping
  const block_rotation* rotation = nullptr;  // quantize W R with R^T H R
  std::function<void(std::size_t done, std::size_t total)> progress;  // columns swept, K
};

struct gptq_result {
  double proxy_loss = 0.0;  // tr(Δ (H + λI) Δ^T) over the live columns
  double output_error = std::numeric_limits<double>::quiet_NaN();  // ||X (W - Ŵ)^T||_F, x given
  double damp = 0.0;        // the relative damping used (options.damp · 10^retries)
  int retries = 0;          // factorisations that failed before the one used
  std::size_t dead_columns = 0;
};

template <class Tensor>
struct gptq_output {
  Tensor tensor;
  gptq_result result;
};

namespace detail {

using gptq_matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;  // column-major
using gptq_row_major = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline void check_finite_span(std::span<const float> v, const char* what) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!is_finite(v[i])) require(false, std::string(what) + " " + std::to_string(i) + " is not finite: " +
                                             std::to_string(v[i]));
}

inline void check_activations(std::span<const float> x, std::size_t k) {
  require(k > 0, "K must be positive, got 0");
  require(x.size() % k == 0, "activations have " + std::to_string(x.size()) + " elements, not a multiple of K = " +
                                 std::to_string(k));
  require(!x.empty(), "activations have no rows (T = 0)");
  check_finite_span(x, "activation");
}

// The diagonal B x B blocks of H (row-major K x K), one after the other.
inline std::vector<double> diagonal_blocks(std::span<const double> h, std::size_t k, std::size_t b) {
  std::vector<double> out(k * b);
  for (std::size_t j = 0; j < k / b; ++j)
    for (std::size_t p = 0; p < b; ++p)
      for (std::size_t q = 0; q < b; ++q) out[j * b * b + p * b + q] = h[(j * b + p) * k + j * b + q];
  return out;
}

// The block Hessians of rule hessian (the diagonal blocks of H), else none.
inline std::optional<block_hessians> rule_hessians(scale_rule r, std::span<const double> h, std::size_t k,
                                                   std::size_t b) {
  if (r != scale_rule::hessian) return std::nullopt;
  return block_hessians::from_matrices(std::span<const double>(diagonal_blocks(h, k, b)), k, b);
}

// One quantizer seen by the sweep: its block, the rule's scale of one block of one row
// (b: the column block, for rule hessian), and the code and value of one element at a scale.
template <class Element, class Arch>
struct element_rounding {
  tie_mode ties;
  std::pair<std::uint8_t, float> round(float x, float d) const noexcept {
    std::uint8_t c = 0;
    if (d > 0.0f && is_finite(d)) kernels::encode<Element>(Arch{}, &x, 1, d, ties, &c);
    float v = 0.0f;
    kernels::decode<Element>(Arch{}, &c, 1, d, &v);
    return {c, v};
  }
};

template <class Q>
struct gptq_codec;

template <class Element, class Arch>
struct gptq_codec<mx_quantizer<Element, Arch>> {
  using quantizer = mx_quantizer<Element, Arch>;
  explicit gptq_codec(const quantizer& q_) : q(q_) {}
  using tensor = mx_tensor;
  using scale_type = std::uint8_t;
  const quantizer& q;
  std::vector<float> scratch;
  std::optional<block_hessians> bh;

  std::size_t block() const { return q.block(); }
  void prepare(std::span<const float>, std::span<const double> h, std::size_t k, std::size_t rows, tensor& t) {
    bh = rule_hessians(q.options().rule, h, k, block());
    scratch.resize(search::hessian_scratch_floats(block()));
    t.codes.assign(rows * k, 0);
    t.scales.assign(rows * (k / block()), 0);
  }
  scale_type scale(std::span<const float> blk, std::size_t b) {
    if (bh) {
      const search::hessian_block hb = (*bh)[b];
      return q.block_scale(blk, scratch, &hb);
    }
    return q.block_scale(blk, scratch, nullptr);
  }
  std::pair<std::uint8_t, float> round(float x, scale_type s) const noexcept {
    return element_rounding<Element, Arch>{q.options().ties}.round(x, ue8m0::decode(s));
  }
  static void store(tensor& t, std::size_t i, scale_type s) { t.scales[i] = s; }
};

template <class Arch>
struct gptq_codec<nvfp4_quantizer<Arch>> {
  using quantizer = nvfp4_quantizer<Arch>;
  explicit gptq_codec(const quantizer& q_) : q(q_) {}
  using tensor = nvfp4_tensor;
  using scale_type = std::uint8_t;
  const quantizer& q;
  std::vector<float> scratch;
  std::optional<block_hessians> bh;
  std::array<float, 126> set{};
  float s_t = 1.0f;

  std::size_t block() const { return quantizer::block; }
  void prepare(std::span<const float> w, std::span<const double> h, std::size_t k, std::size_t rows, tensor& t) {
    bh = rule_hessians(q.options().rule, h, k, block());
    scratch.resize(search::hessian_scratch_floats(block()));
    s_t = q.tensor_scale(w);
    search::e4m3_scales(s_t, set);
    t.codes.assign(rows * k, 0);
    t.scales.assign(rows * (k / block()), 0);
    t.tensor_scale = s_t;
  }
  scale_type scale(std::span<const float> blk, std::size_t b) {
    if (bh) {
      const search::hessian_block hb = (*bh)[b];
      return q.block_scale(blk, s_t, set, scratch, &hb);
    }
    return q.block_scale(blk, s_t, set, scratch, nullptr);
  }
  std::pair<std::uint8_t, float> round(float x, scale_type s) const noexcept {
    return element_rounding<e2m1, Arch>{q.options().ties}.round(x, quantizer::effective_scale(s, s_t));
  }
  static void store(tensor& t, std::size_t i, scale_type s) { t.scales[i] = s; }
};

template <class Arch>
struct gptq_codec<fp4_quantizer<Arch>> {
  using quantizer = fp4_quantizer<Arch>;
  explicit gptq_codec(const quantizer& q_) : q(q_) {}
  using tensor = fp4_tensor;
  using scale_type = float;
  const quantizer& q;

  std::size_t block() const { return q.options().block; }
  void prepare(std::span<const float>, std::span<const double>, std::size_t k, std::size_t rows, tensor& t) {
    t.codes.assign(rows * k, 0);
    t.scales.assign(rows * (k / block()), 0.0f);
  }
  scale_type scale(std::span<const float> blk, std::size_t) const { return q.block_scale(blk); }
  std::pair<std::uint8_t, float> round(float x, scale_type s) const noexcept {
    return element_rounding<e2m1, Arch>{q.options().ties}.round(x, s);
  }
  static void store(tensor& t, std::size_t i, scale_type s) { t.scales[i] = s; }
};

template <class Arch>
struct gptq_codec<uniform_quantizer<Arch>> {
  using quantizer = uniform_quantizer<Arch>;
  explicit gptq_codec(const quantizer& q_) : q(q_) {}
  using tensor = uniform_tensor;
  using scale_type = uniform_params;
  const quantizer& q;

  std::size_t block() const {
    require(q.options().block > 0, "GPTQ needs blocks along K; uniform block 0 (one scale for the tensor) is not supported");
    return q.options().block;
  }
  void prepare(std::span<const float>, std::span<const double>, std::size_t k, std::size_t rows, tensor& t) {
    const std::size_t nb = rows * (k / block());
    t.codes.assign(rows * k, 0);
    t.scales.assign(nb, 0.0f);
    t.mins.assign(q.options().symmetric ? 0 : nb, 0.0f);
  }
  scale_type scale(std::span<const float> blk, std::size_t) const { return q.block_params(blk); }
  std::pair<std::uint8_t, float> round(float x, scale_type p) const noexcept {
    std::uint8_t c = 0;
    q.encode_block(std::span<const float>(&x, 1), p, &c);
    float v = 0.0f;
    kernels::decode_int(Arch{}, &c, 1, p.scale, q.options().symmetric ? 0.0f : p.min, q.format(), &v);
    return {c, v};
  }
  static void store(tensor& t, std::size_t i, scale_type p) {
    t.scales[i] = p.scale;
    if (!t.mins.empty()) t.mins[i] = p.min;
  }
};

// U (upper, (H + λI)^-1 = U^T U) of a symmetric positive definite A = H + λI, through the
// Cholesky factor of the reversed matrix (see the header); false when A is not positive
// definite in floating point. The inverse of L is solved a panel of columns at a time on
// the trailing triangle only (the identity's zeros above the panel stay zero).
inline bool gptq_inverse_factor(const gptq_matrix& a, gptq_matrix& u) {
  const auto k = a.rows();
  Eigen::LLT<gptq_matrix> llt(a.reverse());
  if (llt.info() != Eigen::Success) return false;
  const gptq_matrix l = llt.matrixL();
  // A pivot at rounding level (L_ii^2 <= 16 K eps max A_ii) is a numerically singular A,
  // whatever its sign came out as: fail, so that the caller damps more.
  if (!(l.diagonal().array().square().minCoeff() > 16.0 * static_cast<double>(k) * 0x1p-52 * a.diagonal().maxCoeff()))
    return false;
  gptq_matrix linv = gptq_matrix::Zero(k, k);
  constexpr Eigen::Index panel = 256;
  for (Eigen::Index j = 0; j < k; j += panel) {
    const Eigen::Index w = std::min(panel, k - j), rest = k - j;
    auto x = linv.block(j, j, rest, w);
    x.setZero();
    x.topRows(w).setIdentity();
    l.block(j, j, rest, rest).triangularView<Eigen::Lower>().solveInPlace(x);
  }
  u = linv.reverse();
  for (Eigen::Index i = 0; i < k; ++i)
    if (!(u(i, i) > 0.0) || !std::isfinite(u(i, i))) return false;
  return u.allFinite();
}

template <class Codec>
gptq_result gptq_sweep(Codec& c, std::span<const float> w, std::size_t k, std::span<const double> h,
                       const gptq_options& opt, typename Codec::tensor& t, gptq_matrix* w_hat) {
  const std::size_t rows = w.size() / k, bsz = c.block(), nb = k / bsz;
  using scale_type = typename Codec::scale_type;
  gptq_result res;
  c.prepare(w, h, k, rows, t);

  // The visiting order and the dead columns.
  std::vector<std::size_t> perm(k);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (opt.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) { return h[a * k + a] > h[b * k + b]; });
  std::vector<char> dead(k, 0);
  gptq_matrix hp(k, k);
  for (std::size_t p = 0; p < k; ++p)
    for (std::size_t q = 0; q < k; ++q) hp(p, q) = h[perm[p] * k + perm[q]];
  for (std::size_t p = 0; p < k; ++p)
    if (hp(p, p) == 0.0) {
      dead[p] = 1;
      ++res.dead_columns;
      hp.row(p).setZero();
      hp.col(p).setZero();
      hp(p, p) = 1.0;
    }
  const double mean_diag = hp.diagonal().mean();

  // The factor U, with more damping while the factorisation fails.
  gptq_matrix u;
  double damp = opt.damp;
  for (;; damp *= 10.0, ++res.retries) {
    require(res.retries <= opt.max_retries,
            "the Hessian is not positive definite even with damping " + std::to_string(damp / 10.0) + " after " +
                std::to_string(opt.max_retries) + " retries");
    gptq_matrix a = hp;
    a.diagonal().array() += damp * mean_diag;
    if (gptq_inverse_factor(a, u)) break;
  }
  res.damp = damp;
  hp.resize(0, 0);
  for (std::size_t p = 0; p < k; ++p)
    if (dead[p]) {  // nothing flows into or out of a dead column, whatever the rounding of U
      const double d = u(static_cast<Eigen::Index>(p), static_cast<Eigen::Index>(p));
      u.row(static_cast<Eigen::Index>(p)).setZero();
      u.col(static_cast<Eigen::Index>(p)).setZero();
      u(static_cast<Eigen::Index>(p), static_cast<Eigen::Index>(p)) = d;
    }

  // W in double, columns in visiting order.
  gptq_matrix wd(rows, k);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t p = 0; p < k; ++p) wd(r, p) = w[r * k + perm[p]];

  std::vector<scale_type> sc(rows * nb);
  std::vector<float> blk(bsz);
  auto choose = [&](std::size_t r, std::size_t b) {
    const scale_type s = c.scale(std::span<const float>(blk), b);
    sc[r * nb + b] = s;
    Codec::store(t, r * nb + b, s);
  };
  if (opt.act_order) {  // static groups: every scale from the original weights
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t b = 0; b < nb; ++b) {
        std::copy(w.begin() + r * k + b * bsz, w.begin() + r * k + (b + 1) * bsz, blk.begin());
        choose(r, b);
      }
  }

  const std::size_t batch = std::max<std::size_t>(1, (std::max(opt.batch, bsz) + bsz - 1) / bsz) * bsz;
  gptq_matrix err(rows, static_cast<Eigen::Index>(batch));
  std::vector<float> cur(rows * bsz);
  double loss = 0.0;
  const auto R = static_cast<Eigen::Index>(rows);
  for (std::size_t b0 = 0; b0 < k; b0 += batch) {
    const std::size_t b1 = std::min(k, b0 + batch);
    for (std::size_t i = b0; i < b1; ++i) {
      const auto ii = static_cast<Eigen::Index>(i);
      if (!opt.act_order && i % bsz == 0) {
        // The block's weights as updated so far (columns i .. i + B - 1 are in this batch).
        for (std::size_t p = 0; p < bsz; ++p)
          for (std::size_t r = 0; r < rows; ++r) cur[r * bsz + p] = static_cast<float>(wd(static_cast<Eigen::Index>(r), ii + static_cast<Eigen::Index>(p)));
        for (std::size_t r = 0; r < rows; ++r) {
          std::copy(cur.begin() + r * bsz, cur.begin() + (r + 1) * bsz, blk.begin());
          choose(r, i / bsz);
        }
      }
      const std::size_t col = perm[i], b = col / bsz;
      const double d = u(ii, ii);
      auto e = err.col(static_cast<Eigen::Index>(i - b0));
      for (std::size_t r = 0; r < rows; ++r) {
        const auto ri = static_cast<Eigen::Index>(r);
        const double wv = wd(ri, ii);
        const auto [code, v] = c.round(static_cast<float>(wv), sc[r * nb + b]);
        t.codes[r * k + col] = code;
        const double ev = dead[i] ? 0.0 : (wv - v) / d;
        e(ri) = ev;
        loss += ev * ev;
        wd(ri, ii) = v;  // column i is final: keep Ŵ there
      }
      const auto rest = static_cast<Eigen::Index>(b1 - i - 1);
      if (rest > 0 && !dead[i])
        wd.middleCols(ii + 1, rest).noalias() -= e * u.row(ii).segment(ii + 1, rest);
    }
    const auto done = static_cast<Eigen::Index>(b1), left = static_cast<Eigen::Index>(k - b1);
    if (left > 0)
      wd.rightCols(left).noalias() -=
          err.leftCols(static_cast<Eigen::Index>(b1 - b0)) *
          u.block(static_cast<Eigen::Index>(b0), done, static_cast<Eigen::Index>(b1 - b0), left);
    if (opt.progress) opt.progress(b1, k);
  }
  res.proxy_loss = loss;
  if (w_hat) {  // wd holds Ŵ, columns in visiting order
    w_hat->resize(R, static_cast<Eigen::Index>(k));
    for (std::size_t p = 0; p < k; ++p)
      w_hat->col(static_cast<Eigen::Index>(perm[p])) = wd.col(static_cast<Eigen::Index>(p));
  }
  return res;
}

}  // namespace detail

// H = X^T X [K, K] row-major, in double, for activations x [T, K] row-major.
inline std::vector<double> hessian_from_activations(std::span<const float> x, std::size_t k) {
  detail::check_activations(x, k);
  const auto t = static_cast<Eigen::Index>(x.size() / k), kk = static_cast<Eigen::Index>(k);
  const detail::gptq_matrix xd =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(x.data(), t, kk)
          .cast<double>();
  detail::gptq_matrix h = detail::gptq_matrix::Zero(kk, kk);
  h.selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
  std::vector<double> out(k * k);
  for (Eigen::Index i = 0; i < kk; ++i)
    for (Eigen::Index j = 0; j <= i; ++j)
      out[static_cast<std::size_t>(i * kk + j)] = out[static_cast<std::size_t>(j * kk + i)] = h(i, j);
  return out;
}

template <class Quantizer>
using gptq_tensor_t = typename detail::gptq_codec<Quantizer>::tensor;

// GPTQ of w [rows, K] row-major with H [K, K] (see the header); x, when given, the
// activations [T, K] for result.output_error.
template <class Quantizer>
gptq_output<gptq_tensor_t<Quantizer>> gptq_quantize(const Quantizer& q, std::span<const float> w, std::size_t k,
                                                   std::span<const double> h, const gptq_options& opt = {},
                                                   std::span<const float> x = {}) {
  detail::gptq_codec<Quantizer> c{q};
  const std::size_t bsz = c.block();
  detail::require(k > 0, "K must be positive, got 0");
  detail::require(k % bsz == 0, "K = " + std::to_string(k) + " is not a multiple of the block size " +
                                    std::to_string(bsz));
  detail::require(w.size() % k == 0 && !w.empty(), "the weight has " + std::to_string(w.size()) +
                                                     " elements, not a positive multiple of K = " + std::to_string(k));
  detail::require(h.size() == k * k, "the Hessian has " + std::to_string(h.size()) + " elements, expected K * K = " +
                                         std::to_string(k * k));
  detail::require(opt.damp >= 0.0 && std::isfinite(opt.damp), "damp must be finite and non-negative, got " +
                                                                   std::to_string(opt.damp));
  for (std::size_t i = 0; i < h.size(); ++i)
    if (!std::isfinite(h[i]))
      detail::require(false, "Hessian entry " + std::to_string(i) + " (row " + std::to_string(i / k) + ", column " +
                                 std::to_string(i % k) + ") is not finite: " + std::to_string(h[i]));
  for (std::size_t i = 0; i < k; ++i)
    detail::require(h[i * k + i] >= 0.0, "Hessian diagonal entry " + std::to_string(i) + " is negative: " +
                                             std::to_string(h[i * k + i]));
  detail::check_finite_span(w, "weight");
  if (!x.empty()) detail::check_activations(x, k);
  if (opt.rotation) opt.rotation->check_columns(k);

  // The symmetrised H (and W, X) in the basis quantized.
  std::vector<double> hs(k * k);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) hs[i * k + j] = (h[i * k + j] + h[j * k + i]) / 2;
  std::vector<float> wr, xr;
  if (opt.rotation) {
    hs = opt.rotation->rotate_hessian(hs, k);
    wr.assign(w.begin(), w.end());
    opt.rotation->rotate<typename Quantizer::arch_type>(std::span<float>(wr));
    w = wr;
    if (!x.empty()) {
      xr.assign(x.begin(), x.end());
      opt.rotation->rotate<typename Quantizer::arch_type>(std::span<float>(xr));
      x = xr;
    }
  }

  gptq_output<gptq_tensor_t<Quantizer>> out;
  detail::gptq_matrix w_hat;
  out.result = detail::gptq_sweep(c, w, k, hs, opt, out.tensor, x.empty() ? nullptr : &w_hat);
  if (!x.empty()) {
    const auto rows = static_cast<Eigen::Index>(w.size() / k), kk = static_cast<Eigen::Index>(k);
    const auto t = static_cast<Eigen::Index>(x.size() / k);
    const detail::gptq_matrix delta =
        Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(w.data(), rows, kk)
            .cast<double>() - w_hat;
    const detail::gptq_matrix xd =
        Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(x.data(), t, kk)
            .cast<double>();
    out.result.output_error = std::sqrt((xd * delta.transpose()).squaredNorm());
  }
  return out;
}

// gptq_quantize with H = X^T X from the activations x [T, K] (and the output error from them).
template <class Quantizer>
gptq_output<gptq_tensor_t<Quantizer>> gptq_quantize_activations(const Quantizer& q, std::span<const float> w,
                                                               std::size_t k, std::span<const float> x,
                                                               const gptq_options& opt = {}) {
  const std::vector<double> h = hessian_from_activations(x, k);
  return gptq_quantize(q, w, k, std::span<const double>(h), opt, x);
}

BLOCKQ_END_NAMESPACE
