// SPDX-License-Identifier: Apache-2.0
// The float estimate of a quadratic form r^T H r that the Hessian search
// (search/hessian.hpp, discrete_hessian_index) screens its candidates with, before any
// exact (double, kernels::quad_form) sum.
//
//   quad_estimate quad_form_estimate(Arch, const float* r, const float* h, size_t n);
//     r: n floats; h: an n x n symmetric float matrix, row-major.
//     Returns q ~ r^T h r and ssq ~ Σ r[i]^2, both computed in float, in any order.
//
// Contract (every architecture): with A = Σ_ik |r_i| |h_ik| |r_k| and t = Σ r_i^2,
//   |q - r^T h r| <= quad_estimate_relative(n) A + quad_estimate_absolute(n, t),
//   |ssq - t|     <= 2n 2^-24 t + n 2^-149,
// where quad_estimate_relative(n) = (2n + 4) 2^-24 and quad_estimate_absolute(n, t) =
// n 2^-148 (sqrt(n t) + 1). Proof: y = h r is n dot products of length n and q = r^T y
// one more; a dot product of n terms summed in any order (with or without fused
// multiply-adds) is within γ_n Σ|terms| of its value, γ_n = n u / (1 - n u), u = 2^-24,
// plus at most 2^-150 per rounding below the normal range; so each y_i is off by
// γ_n (|h| |r|)_i + n 2^-150 and q by γ_n Σ |r_i| |y_i| + n 2^-150 more, in all
// (2 γ_n + γ_n^2) A + n 2^-149 (Σ |r_i| + 1), and Σ |r_i| <= sqrt(n t). Values must stay
// below 2^100 (no overflow: the search checks |x| <= 2^40 and |h| <= 1).
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

inline quad_estimate quad_form_estimate(arch::scalar, const float* r, const float* h, std::size_t n) noexcept {
  quad_estimate e;
  for (std::size_t i = 0; i < n; ++i) {
    float y = 0.0f;
    for (std::size_t k = 0; k < n; ++k) y += h[i * n + k] * r[k];
    e.q += r[i] * y;
    e.ssq += r[i] * r[i];
  }
  return e;
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
