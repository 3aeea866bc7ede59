// SPDX-License-Identifier: Apache-2.0
// Hessian-aware scale search (SPEC §7): the scale of a discrete set that
// minimises r^T H_j r for a block in column block j, exactly.
//
// API
//   class block_hessians                       // one H_j per column block of a weight W [rows, K]
//     static block_hessians from_activations(span<const float> x, size_t columns, size_t block);
//         x: calibration activations [T, K] row-major (K = columns);
//         H_j = Σ_t X[t, jB:(j+1)B]^T X[t, jB:(j+1)B], accumulated in double.
//     static block_hessians from_matrices(span<const double> h, size_t columns, size_t block);
//     static block_hessians from_matrices(span<const float> h, size_t columns, size_t block);
//         h: K/B matrices of B x B, row-major, one after the other (symmetrised).
//     static block_hessians from_diagonal(span<const float> importance, size_t block);
//         one non-negative weight per column (llama.cpp's imatrix convention);
//         the objective is Σ w_k r_k² (the weighted SSE kernel).
//     size_t columns(), block(), num_blocks(); bool is_diagonal();
//     hessian_block operator[](size_t j);    // a view of H_j and its λ bound
//     double lambda_min(size_t j);           // the computed smallest eigenvalue
//   discrete_result discrete_hessian<Element>(Arch, span<const float> x, span<const float> set,
//                                             size_t start, tie_mode ties, const hessian_block& h,
//                                             span<float> scratch);
//     As discrete_mse (search/discrete.hpp) with the objective r^T H r;
//     scratch: at least x.size() floats (hessian_scratch_floats(n)). A
//     candidate whose λ_min |r|² already reaches the best error skips the
//     quadratic form.
//   size_t discrete_hessian_index<Element>(Arch, x, set, start, ties, h, scratch);
//     discrete_hessian(...).index, with candidates screened by a float quadratic form
//     (kernels::quad_form_estimate on the packed float copy of H_j, a certified error
//     bound) and exact sums only for near-ties (detail::ue8m0_hessian_window for MXFP4,
//     detail::screened_search otherwise); the MX quantizers' path. An overload takes
//     the block's amax (kernels::block_amax) as a last argument when the caller has it.
//   The quantizers take a block_hessians in their quantize(w, hessians, ...)
//   overloads (mx.hpp, nvfp4.hpp); W is [rows, K] row-major with blocks along
//   K, and block b of W uses H_(b mod K/B).
//
// Bounds. λ_min(H_j) |r|² <= r^T H_j r, so the SSE bounds of SPEC §6 hold with
// the budget E_H(s0) / λ_min. λ_min comes from cyclic Jacobi rotations in
// double (accurate to a small multiple of eps ||H||); the bound used is
// λ_min - (32 B + 256) eps ||H||_F, which also covers the rounding of the
// quadratic-form kernel, clamped at 0. A bound of 0 (a singular or
// indefinite H, or too ill-conditioned to certify) makes the search
// evaluate every candidate, so the result is the exact optimum in every
// case. For a diagonal H the bound is min w (1 - (B + 8) 2^-50).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/arch/hessian_avx2.hpp"
#include "blockq/arch/hessian_scalar.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/formats/tie_mode.hpp"
#include "blockq/kernels.hpp"
#include "blockq/search/discrete.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace search {

// A view of one block Hessian: either an n x n row-major matrix or a
// diagonal, and the certified lower bound of its smallest eigenvalue.
struct hessian_block {
  const double* matrix = nullptr;  // n * n, or null
  const float* diagonal = nullptr;  // n, or null
  std::size_t n = 0;
  double lambda_bound = 0.0;
  // The matrix divided by scale (a power of two), packed in float (kernels::pack_quad_form;
  // null: none), and an
  // upper bound of the largest absolute row sum of the divided double matrix (the
  // screening of discrete_hessian_index, see below).
  const float* scaled = nullptr;
  double scale = 0.0;
  double scaled_row_sum = 0.0;
};

constexpr std::size_t hessian_scratch_floats(std::size_t n) noexcept { return n; }

// The smallest eigenvalue of a symmetric n x n matrix (row-major, overwritten)
// by cyclic Jacobi rotations (Rutishauser's formulation), in double.
inline double jacobi_lambda_min(double* a, std::size_t n) noexcept {
  if (n == 0) return 0.0;
  auto at = [&](std::size_t i, std::size_t j) -> double& { return a[i * n + j]; };
  for (int sweep = 0; sweep < 64; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      diag += at(i, i) * at(i, i);
      for (std::size_t j = i + 1; j < n; ++j) off += at(i, j) * at(i, j);
    }
    // Converged when the off-diagonal part is below eps/2 of the matrix (Frobenius):
    // the diagonal then holds the eigenvalues to within eps ||H|| (Weyl).
    if (off <= 0x1p-108 * (diag + 2.0 * off)) break;
    for (std::size_t p = 0; p + 1 < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        const double apq = at(p, q);
        if (apq == 0.0) continue;
        const double theta = (at(q, q) - at(p, p)) / (2.0 * apq);
        const double t = std::fabs(theta) > 1e150
                             ? 0.5 / theta
                             : (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c, tau = s / (1.0 + c);
        at(p, p) -= t * apq;
        at(q, q) += t * apq;
        at(p, q) = at(q, p) = 0.0;
        for (std::size_t r = 0; r < n; ++r) {
          if (r == p || r == q) continue;
          const double arp = at(r, p), arq = at(r, q);
          at(r, p) = at(p, r) = arp - s * (arq + tau * arp);
          at(r, q) = at(q, r) = arq + s * (arp - tau * arq);
        }
      }
  }
  double m = at(0, 0);
  for (std::size_t i = 1; i < n; ++i) m = std::min(m, at(i, i));
  return m;
}

class block_hessians {
 public:
  static block_hessians from_activations(std::span<const float> x, std::size_t columns, std::size_t block) {
    block_hessians h(columns, block, false);
    blockq::detail::require(x.size() % columns == 0,
                            "activations have " + std::to_string(x.size()) + " elements, not a multiple of K = " +
                                std::to_string(columns));
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!blockq::detail::is_finite(x[i]))  // (the message is built only on failure)
        blockq::detail::require(false, "activation " + std::to_string(i) + " is not finite: " + std::to_string(x[i]));
    // One block at a time (H_j stays in cache), tokens in order, the upper
    // triangle accumulated in double from a double copy of the token's slice.
    const std::size_t t_count = x.size() / columns, b = block, bb = b * b;
    std::vector<double> xd(b);
    for (std::size_t j = 0; j < h.blocks_; ++j) {
      double* hj = h.h_.data() + j * bb;
      for (std::size_t t = 0; t < t_count; ++t) {
        const float* xj = x.data() + t * columns + j * b;
        for (std::size_t p = 0; p < b; ++p) xd[p] = xj[p];
        for (std::size_t p = 0; p < b; ++p) {
          const double xp = xd[p];
          double* row = hj + p * b;
          for (std::size_t q = p; q < b; ++q) row[q] += xp * xd[q];
        }
      }
    }
    for (std::size_t j = 0; j < h.blocks_; ++j) {
      double* hj = h.h_.data() + j * bb;
      for (std::size_t p = 0; p < b; ++p)
        for (std::size_t q = 0; q < p; ++q) hj[p * b + q] = hj[q * b + p];
    }
    h.finish();
    return h;
  }

  template <class T>
  static block_hessians from_matrices(std::span<const T> m, std::size_t columns, std::size_t block) {
    block_hessians h(columns, block, false);
    blockq::detail::check_size(m.size(), h.blocks_ * block * block, "Hessian matrices",
                               "K / block = " + std::to_string(h.blocks_) + " matrices of " + std::to_string(block) +
                                   " x " + std::to_string(block));
    const std::size_t b = block, bb = b * b;
    for (std::size_t i = 0; i < m.size(); ++i)
      if (!std::isfinite(static_cast<double>(m[i])))
        blockq::detail::require(false, "Hessian entry " + std::to_string(i) + " is not finite: " +
                                           std::to_string(static_cast<double>(m[i])));
    for (std::size_t j = 0; j < h.blocks_; ++j)
      for (std::size_t p = 0; p < b; ++p)
        for (std::size_t q = 0; q < b; ++q)
          h.h_[j * bb + p * b + q] =
              (static_cast<double>(m[j * bb + p * b + q]) + static_cast<double>(m[j * bb + q * b + p])) / 2;
    h.finish();
    return h;
  }
  static block_hessians from_matrices(std::span<const double> m, std::size_t columns, std::size_t block) {
    return from_matrices<double>(m, columns, block);
  }
  static block_hessians from_matrices(std::span<const float> m, std::size_t columns, std::size_t block) {
    return from_matrices<float>(m, columns, block);
  }

  static block_hessians from_diagonal(std::span<const float> importance, std::size_t block) {
    block_hessians h(importance.size(), block, true);
    for (std::size_t i = 0; i < importance.size(); ++i)
      if (!(blockq::detail::is_finite(importance[i]) && importance[i] >= 0.0f))
        blockq::detail::require(false, "importance " + std::to_string(i) + " must be finite and non-negative, got " +
                                           std::to_string(importance[i]));
    h.d_.assign(importance.begin(), importance.end());
    for (std::size_t j = 0; j < h.blocks_; ++j) {
      float m = std::numeric_limits<float>::infinity();
      for (std::size_t p = 0; p < block; ++p) m = std::min(m, h.d_[j * block + p]);
      h.lambda_[j] = m;
      h.bound_[j] = static_cast<double>(m) * (1.0 - sum_margin(block));
    }
    return h;
  }

  std::size_t columns() const noexcept { return columns_; }
  std::size_t block() const noexcept { return block_; }
  std::size_t num_blocks() const noexcept { return blocks_; }
  bool is_diagonal() const noexcept { return diagonal_; }
  double lambda_min(std::size_t j) const noexcept { return lambda_[j]; }

  hessian_block operator[](std::size_t j) const noexcept {
    hessian_block v;
    v.n = block_;
    v.lambda_bound = bound_[j];
    if (diagonal_) {
      v.diagonal = d_.data() + j * block_;
    } else {
      v.matrix = h_.data() + j * block_ * block_;
      if (row_sum_[j] > 0.0) {
        v.scaled = hf_.data() + j * kernels::quad_packed_floats(block_);
        v.scale = std::ldexp(1.0, exp_[j]);
        v.scaled_row_sum = row_sum_[j];
      }
    }
    return v;
  }

 private:
  block_hessians(std::size_t columns, std::size_t block, bool diagonal)
      : columns_(columns), block_(block), diagonal_(diagonal) {
    blockq::detail::require(block > 0, "Hessian block size must be positive, got " + std::to_string(block));
    blockq::detail::require(columns > 0 && columns % block == 0,
                            "K = " + std::to_string(columns) + " must be a positive multiple of the block size " +
                                std::to_string(block));
    blocks_ = columns / block;
    if (!diagonal) {
      h_.assign(blocks_ * block * block, 0.0);
      hf_.assign(blocks_ * kernels::quad_packed_floats(block), 0.0f);
      exp_.assign(blocks_, 0);
      row_sum_.assign(blocks_, 0.0);
    }
    lambda_.assign(blocks_, 0.0);
    bound_.assign(blocks_, 0.0);
  }

  // λ_min and its certified lower bound for every matrix.
  void finish() {
    const std::size_t b = block_, bb = b * b;
    std::vector<double> work(bb);
    for (std::size_t j = 0; j < blocks_; ++j) {
      const double* hj = h_.data() + j * bb;
      std::copy(hj, hj + bb, work.begin());
      double fro = 0.0;
      for (std::size_t i = 0; i < bb; ++i) fro += hj[i] * hj[i];
      fro = std::sqrt(fro);
      lambda_[j] = jacobi_lambda_min(work.data(), b);
      const double bound = lambda_[j] - static_cast<double>(32 * b + 256) * 0x1p-52 * fro;
      bound_[j] = bound > 0.0 ? bound : 0.0;
      scale_to_float(j);
    }
  }

  // H_j 2^-e packed in float (kernels::pack_quad_form) with e such that max |H_j| 2^-e
  // lies in [1/2, 1) (the screening kernel's values then stay far from float overflow),
  // and the largest absolute row sum of H_j 2^-e, rounded up by 2^-40. Left at row sum 0 (no screening) for a zero matrix or
  // one whose scale is beyond 2^+-900 (the bounds then keep clear of double underflow).
  void scale_to_float(std::size_t j) {
    const std::size_t b = block_, bb = b * b;
    const double* hj = h_.data() + j * bb;
    double m = 0.0;
    for (std::size_t i = 0; i < bb; ++i) m = std::max(m, std::fabs(hj[i]));
    if (!(m > 0.0)) return;
    const int e = std::ilogb(m) + 1;
    if (e < -900 || e > 900) return;
    double rs = 0.0;
    std::vector<double> scaled(bb);
    for (std::size_t p = 0; p < b; ++p) {
      double sum = 0.0;
      for (std::size_t q = 0; q < b; ++q) {
        const double v = std::ldexp(hj[p * b + q], -e);  // (exact but below 2^-1022: within 2^-1075)
        scaled[p * b + q] = v;
        sum += std::fabs(v);
      }
      rs = std::max(rs, sum);
    }
    kernels::pack_quad_form(scaled.data(), b, hf_.data() + j * kernels::quad_packed_floats(b));
    exp_[j] = e;
    row_sum_[j] = rs * (1.0 + 0x1p-40);
  }

  std::size_t columns_ = 0, block_ = 0, blocks_ = 0;
  bool diagonal_ = false;
  std::vector<double> h_;
  std::vector<float> d_;
  std::vector<float> hf_;      // the scaled, packed float copies (scale_to_float)
  std::vector<int> exp_;       // their exponents
  std::vector<double> row_sum_;  // their row-sum bounds (0: no copy)
  std::vector<double> lambda_, bound_;
};

// The scale of `set` with the least r^T H r (see the header and discrete_mse).
template <class Element, class Arch>
discrete_result discrete_hessian(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                                 tie_mode ties, const hessian_block& h, std::span<float> scratch) noexcept {
  const std::size_t n = x.size();
  float* r = scratch.data();
  const double lambda = h.lambda_bound, keep = 1.0 - sum_margin(n);
  auto objective = [&](float s, double best) {
    if (h.diagonal) return kernels::block_wsse<Element>(Arch{}, x.data(), h.diagonal, n, s, ties);
    kernels::block_residual<Element>(Arch{}, x.data(), n, s, ties, r);
    if (lambda > 0.0) {
      // r^T H r >= λ |r|²: skip the quadratic form when that already reaches best. (|r|² in
      // the eight lanes of block_energy rather than one serial chain; keep covers any order.)
      const double ssq = kernels::block_energy(Arch{}, r, nullptr, n);
      if (lambda * ssq * keep >= best) return std::numeric_limits<double>::infinity();
    }
    return kernels::quad_form(Arch{}, r, h.matrix, n);
  };
  double e0 = 0.0;
  if (start != zero_start)
    e0 = objective(set[start], std::numeric_limits<double>::infinity());
  else if (h.diagonal)
    e0 = kernels::block_energy(Arch{}, x.data(), h.diagonal, n);
  else
    e0 = kernels::quad_form(Arch{}, x.data(), h.matrix, n);
  return detail::bounded_search<Element, Arch>(x, set, start, e0, lambda, objective);
}

namespace detail {

// The float screen of discrete_hessian_index for one candidate: its residual r (into
// scratch) and bounds lo <= E <= hi of the exact objective E = kernels::quad_form(r, H)
// (the double kernel, whose own rounding, 2n 2^-53 A, is inside the margin). With H' the
// scaled matrix (H 2^-e), H_f its packed float copy (U_ik = fl(2 H'_ik) above the
// diagonal: |U - 2 H'| <= 2^-23 |H'| + 2^-150, the diagonal likewise) and t
// the block's Σ r^2, the float estimate q (kernels::quad_form_estimate) is within
//   (2n + 8) 2^-24 ρ t + n 2^-147 (t + sqrt(n t) + 1)
// of r^T H' r (used with sqrt(n t) <= (n t + 1) / 2), ρ the row-sum bound of H' (|r|^T |H'| |r| <= ρ t: |H'| is symmetric, its
// 2-norm at most its largest row sum): the kernel's contract (arch/hessian_scalar.hpp)
// for H_f, plus u ρ t + 2^-150 n t for H_f - H', the double kernel's error and a relative
// 2^-45 |q| for the double arithmetic below; t is bounded above from the kernel's float
// sum. Scaling back by 2^e is exact (|e| <= 900), but for the 2^-1060 added where a bound
// is subnormal.
struct screened {
  double lo, hi;
  bool above = false;  // not screened: λ |r|² alone exceeds the caller's `above`
};

// With `above` finite, a candidate whose λ |r|² (|r|² by kernels::block_energy, less
// sum_margin, as discrete_hessian's own test) already exceeds it is not screened: r^T H r
// >= λ |r|² > above, so it is strictly worse than a candidate whose upper bound is above
// (screened_search: 3/4 of NVFP4's screens on the benchmark, +8 %).
// (flatten: the residual and the estimate kernels inlined, ~6% of the MXFP4 search.
// screen_candidate_n: the same arithmetic with n a constant (32: MX blocks, 16: NVFP4's), so
// that the margin's factors fold at compile time, to the same doubles, and the kernels' loops
// unroll: NVFP4 `hessian` +9 %)
template <class Element, class Arch, class N>
#if defined(__GNUC__) || defined(__clang__)
__attribute__((flatten))
#endif
screened screen_candidate_n(const float* x, N n, float s, tie_mode ties, const hessian_block& h, float* r,
                            double above) noexcept {
  kernels::block_residual<Element>(Arch{}, x, n, s, ties, r);
  if (above < std::numeric_limits<double>::infinity() &&
      h.lambda_bound * kernels::block_energy(Arch{}, r, nullptr, n) * (1.0 - sum_margin(n)) > above)
    return {0.0, 0.0, true};
  const kernels::quad_estimate e = kernels::quad_form_estimate(Arch{}, r, h.scaled, n);
  const double nd = static_cast<double>(n);
  const double t = (static_cast<double>(e.ssq) + nd * 0x1p-149) * (1.0 + 4.0 * nd * 0x1p-24);
  const double q = e.q;
  // (sqrt(n t) <= (n t + 1) / 2: no square root on the way to the decision)
  const double margin = (static_cast<double>(2 * n + 8) * 0x1p-24 * h.scaled_row_sum + nd * (nd + 2.0) * 0x1p-147) * t +
                        nd * 0x1p-146 + std::fabs(q) * 0x1p-45;
  return {(q - margin) * h.scale - 0x1p-1060, (q + margin) * h.scale + 0x1p-1060};
}

template <class Element, class Arch>
screened screen_candidate(const float* x, std::size_t n, float s, tie_mode ties, const hessian_block& h, float* r,
                          double above = std::numeric_limits<double>::infinity()) noexcept {
  if (n == 32)
    return screen_candidate_n<Element, Arch>(x, std::integral_constant<std::size_t, 32>{}, s, ties, h, r, above);
  if (n == 16)
    return screen_candidate_n<Element, Arch>(x, std::integral_constant<std::size_t, 16>{}, s, ties, h, r, above);
  return screen_candidate_n<Element, Arch>(x, n, s, ties, h, r, above);
}

// The search of bounded_search (search/discrete.hpp) with every candidate screened in
// float rather than evaluated: U is the least upper bound of the candidates screened so
// far (each is at least the exact objective of some candidate), and a candidate is
// skipped, or the search stopped, only when λ times its SSE bound (the start's budget,
// the zero and clipping parts of kernels::block_bound_energies: the walk of
// for_each_bounded_candidate), or λ times its own |r|² (screen_candidate's `above`),
// exceeds U: it is then strictly worse than that candidate.
// The candidates whose lower bound is at most U at the end are the only ones that can be
// optimal; one alone is the result, several are evaluated exactly (kernels::quad_form) in
// the exhaustive order (start first, then increasing, strict improvement). amax is the
// block's (kernels::block_amax). Needs λ > 0, a start in the set and at most
// max_screened scales (else false, nothing decided).
inline constexpr std::size_t max_screened = 256;

template <class Element, class Arch>
bool screened_search(std::span<const float> x, std::span<const float> set, std::size_t start, tie_mode ties,
                     const hessian_block& h, float* r, double amax, std::size_t& index) noexcept {
  if (start >= set.size() || set.size() > max_screened) return false;
  const std::size_t n = x.size();
  std::array<std::size_t, max_screened> idx;
  std::array<double, max_screened> lower;
  std::size_t m = 0;
  const screened b0 = screen_candidate<Element, Arch>(x.data(), n, set[start], ties, h, r);
  double upper = b0.hi;
  if (!(upper < std::numeric_limits<double>::infinity())) return false;
  idx[m] = start;
  lower[m++] = b0.lo;
  bool unbounded = false;  // a screen without a finite upper bound: nothing decided
  for_each_bounded_candidate<Element, Arch, prune::above_bar>(
      x, set, start, amax, h.lambda_bound, upper, [&](std::size_t i) {
        const screened b = screen_candidate<Element, Arch>(x.data(), n, set[i], ties, h, r, upper);
        if (b.above) return upper;  // strictly worse than a candidate screened before
        if (!(b.hi < std::numeric_limits<double>::infinity())) {
          unbounded = true;
          return -std::numeric_limits<double>::infinity();
        }
        upper = std::min(upper, b.hi);
        idx[m] = i;
        lower[m++] = b.lo;
        return upper;
      });
  if (unbounded) return false;
  std::size_t close = 0;
  for (std::size_t j = 0; j < m; ++j)
    if (lower[j] <= upper) {
      ++close;
      index = idx[j];
    }
  if (close == 1) return true;
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < m; ++j) {  // (idx: the start first, then increasing)
    if (!(lower[j] <= upper)) continue;
    kernels::block_residual<Element>(Arch{}, x.data(), n, set[idx[j]], ties, r);
    const double e = kernels::quad_form(Arch{}, r, h.matrix, n);
    if (e < best) {
      best = e;
      index = idx[j];
    }
  }
  return true;
}

// MXFP4 (E2M1 elements, UE8M0 scales) with a full H: the scales s (the start), 2s and 4s
// screened in float (screen_candidate), 2s and 4s only when λ times a lower bound of
// their SSE (kernels::block_window_estimates, one pass) is at most the least upper bound
// U of the candidates screened so far (a larger one is strictly worse than that
// candidate). Every scale <= s / 2 has an SSE of at least the clipping part at s / 2,
// every scale >= 8s at least the zero part at 8s (see ue8m0_window_search in
// search/discrete.hpp); λ times each must exceed U. Then the candidates whose lower bound
// is at most U are the only ones that can be optimal: one alone is the result; two or
// three (a near-tie) are evaluated exactly (kernels::quad_form) and compared in the
// exhaustive order (start first, then increasing, strict improvement). Returns false,
// deciding nothing, where the window does not close or the block is outside the
// estimates' range (|x| within [2^-40, 2^40]).
template <class Arch>
bool ue8m0_hessian_window(std::span<const float> x, std::size_t start, tie_mode ties, const hessian_block& h,
                          float* r, float amax_x, std::size_t& index) noexcept {
  const auto& set = ue8m0_scales();
  if (start == zero_start || start == 0 || start + 3 >= set.size()) return false;
  const std::size_t n = x.size();
  constexpr float zero_below = static_cast<float>(8.0 * zero_threshold<e2m1>() * (1.0 - 0x1p-20));
  constexpr float clip_above = static_cast<float>(e2m1::max_value) / 2.0f;
  const kernels::window_estimates w =
      kernels::block_window_estimates<e2m1>(Arch{}, x.data(), n, set[start], ties, zero_below, clip_above, amax_x);
  const double amax = w.amax;
  if (!(amax >= 0x1p-40 && amax <= 0x1p40)) return false;
  const double rel = kernels::estimate_relative_error(n), abs = kernels::estimate_absolute_error(n);
  const double s = set[start], u = s * s;  // (exact: s is a power of two within 2^+-41)
  // λ times a lower bound of the block's Σ r^2 from an estimate v in units of c u.
  const double lk = h.lambda_bound * (1.0 - sum_margin(n));
  auto floor_of = [&](float v, double c) { return v < 0.0f ? 0.0 : lk * std::max(0.0, v * (1.0 - rel) - abs) * c * u; };
  screened b[3];
  bool screened_j[3] = {true, false, false};
  b[0] = screen_candidate<e2m1, Arch>(x.data(), n, set[start], ties, h, r);
  double upper = b[0].hi;
  for (std::size_t j = 1; j < 3; ++j) {
    if (floor_of(w.est[j], static_cast<double>(1u << (2 * j))) > upper) continue;
    b[j] = screen_candidate<e2m1, Arch>(x.data(), n, set[start + j], ties, h, r);
    screened_j[j] = true;
    upper = std::min(upper, b[j].hi);
  }
  if (!(upper < std::numeric_limits<double>::infinity())) return false;
  const bool below = floor_of(w.clip, 1.0) > upper ||
                     set[start - 1] < lowest_useful_scale<e2m1>(amax, upper / h.lambda_bound, n);
  if (!(below && floor_of(w.zero, 1.0) > upper)) return false;
  std::size_t close = 0, last = 0;
  for (std::size_t j = 0; j < 3; ++j)
    if (screened_j[j] && b[j].lo <= upper) {
      ++close;
      last = j;
    }
  if (close == 1) {
    index = start + last;
    return true;
  }
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < 3; ++j) {
    if (!(screened_j[j] && b[j].lo <= upper)) continue;
    kernels::block_residual<e2m1>(Arch{}, x.data(), n, set[start + j], ties, r);
    const double e = kernels::quad_form(Arch{}, r, h.matrix, n);
    if (e < best) {
      best = e;
      index = start + j;
    }
  }
  return true;
}

}  // namespace detail

// discrete_hessian(...).index (the quantizers' path: MX and NVFP4). Blocks with a full H whose λ bound
// is positive are decided by float screens with exact sums only for near-ties: MXFP4 by
// detail::ue8m0_hessian_window where its window closes, the others (and those) by
// detail::screened_search; the rest (a diagonal H, λ bound 0, the zero start) take
// discrete_hessian. scratch: hessian_scratch_floats(n) floats, as there.
template <class Element, class Arch>
std::size_t discrete_hessian_index(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                                   tie_mode ties, const hessian_block& h, std::span<float> scratch,
                                   float amax) noexcept {
  if (h.matrix && h.scaled && h.lambda_bound > 0.0) {
    std::size_t i = 0;
    if constexpr (std::is_same_v<Element, e2m1>) {
      if (set.data() == ue8m0_scales().data() && set.size() == ue8m0_scales().size() &&
          detail::ue8m0_hessian_window<Arch>(x, start, ties, h, scratch.data(), amax, i))
        return i;
    }
    if (detail::screened_search<Element, Arch>(x, set, start, ties, h, scratch.data(), amax, i)) return i;
  }
  return discrete_hessian<Element>(Arch{}, x, set, start, ties, h, scratch).index;
}

template <class Element, class Arch>
std::size_t discrete_hessian_index(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                                   tie_mode ties, const hessian_block& h, std::span<float> scratch) noexcept {
  return discrete_hessian_index<Element>(Arch{}, x, set, start, ties, h, scratch,
                                         kernels::block_amax(Arch{}, x.data(), x.size()));
}

}  // namespace search

using search::block_hessians;

BLOCKQ_END_NAMESPACE
