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
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "blockq/arch.hpp"
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
    if (diagonal_)
      v.diagonal = d_.data() + j * block_;
    else
      v.matrix = h_.data() + j * block_ * block_;
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
    if (!diagonal) h_.assign(blocks_ * block * block, 0.0);
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
    }
  }

  std::size_t columns_ = 0, block_ = 0, blocks_ = 0;
  bool diagonal_ = false;
  std::vector<double> h_;
  std::vector<float> d_;
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

}  // namespace search

using search::block_hessians;

BLOCKQ_END_NAMESPACE
