// SPDX-License-Identifier: Apache-2.0
// The float estimate of a quadratic form r^T H r that the Hessian search
// (search/hessian.hpp, discrete_hessian_index) screens its candidates with, before any
// exact (double, kernels::quad_form) sum.
//
//   void pack_quad_form(const T* h, size_t n, float* p);   // T: float or double
//     h: a symmetric n x n matrix, row-major; p: quad_packed_floats(n) floats, the upper
//     triangle by columns, U_kk = h_kk and U_ik = 2 h_ik (i < k), rounded to float:
//     column k at p + quad_packed_offset(k), rows 0..k, zero-padded to a multiple of 8
//     (so that r^T h r = Σ_i r_i Σ_(k >= i) U_ik r_k with about half the products).
//   quad_estimate quad_form_estimate(Arch, const float* r, const float* p, size_t n);
//     Returns q ~ Σ_(i <= k) U_ik r_i r_k and ssq ~ Σ r[i]^2, computed in float, in any order.
//
// Contract (every architecture): with A = Σ_(i <= k) |U_ik| |r_i| |r_k| and t = Σ r_i^2,
//   |q - Σ_(i <= k) U_ik r_i r_k| <= quad_estimate_relative(n) A + quad_estimate_absolute(n, t),
//   |ssq - t|                     <= 2n 2^-24 t + n 2^-149,
// where quad_estimate_relative(n) = (2n + 4) 2^-24 and quad_estimate_absolute(n, t) =
// n 2^-148 (sqrt(n t) + 1). Proof: y_i = Σ_(k >= i) U_ik r_k is a dot product of at most
// n terms and q = r^T y one more; a dot product of n terms summed in any order (with or
// without fused multiply-adds) is within γ_n Σ|terms| of its value, γ_n = n u / (1 - n u),
// u = 2^-24, plus at most 2^-150 per rounding below the normal range; so each y_i is off by
// γ_n Σ_k |U_ik| |r_k| + n 2^-150 and q by γ_n Σ |r_i| |y_i| + n 2^-150 more, in all
// (2 γ_n + γ_n^2) A + n 2^-149 (Σ |r_i| + 1), and Σ |r_i| <= sqrt(n t). Values must stay
// below 2^100 (no overflow: the search checks |x| <= 2^40 and |U| <= 2).
// Only bounds: the vector kernels need not return these bits, the search decides exactly
// where the bounds cannot (tests/arch_test.cpp checks the contract against long double).
#pragma once

#include <cmath>
#include <cstddef>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

struct quad_estimate {
  float q = 0.0f, ssq = 0.0f;
};

constexpr double quad_estimate_relative(std::size_t n) noexcept { return static_cast<double>(2 * n + 4) * 0x1p-24; }
inline double quad_estimate_absolute(std::size_t n, double t) noexcept {
  return static_cast<double>(n) * 0x1p-148 * (std::sqrt(static_cast<double>(n) * t) + 1.0);
}

// Column k = 8 g + j holds 8 (g + 1) floats.
constexpr std::size_t quad_packed_offset(std::size_t k) noexcept {
  const std::size_t g = k / 8, j = k % 8;
  return 32 * g * (g + 1) + 8 * j * (g + 1);
}
constexpr std::size_t quad_packed_floats(std::size_t n) noexcept { return quad_packed_offset(n); }

template <class T>
void pack_quad_form(const T* h, std::size_t n, float* p) noexcept {
  for (std::size_t k = 0; k < n; ++k) {
    float* col = p + quad_packed_offset(k);
    const std::size_t rows = 8 * (k / 8 + 1);
    for (std::size_t i = 0; i < rows; ++i)
      col[i] = i > k ? 0.0f : static_cast<float>(i == k ? h[k * n + k] : 2 * h[i * n + k]);
  }
}

inline quad_estimate quad_form_estimate(arch::scalar, const float* r, const float* p, std::size_t n) noexcept {
  quad_estimate e;
  for (std::size_t i = 0; i < n; ++i) {
    float y = 0.0f;
    for (std::size_t k = i; k < n; ++k) y += p[quad_packed_offset(k) + i] * r[k];
    e.q += r[i] * y;
    e.ssq += r[i] * r[i];
  }
  return e;
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
