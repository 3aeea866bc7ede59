// SPDX-License-Identifier: Apache-2.0
// Block Hadamard rotation: an orthonormal R, block-diagonal along K with one n x n block
// R_n = D H_n / sqrt(n) repeated (H_n the Sylvester Hadamard matrix, n a power of two,
// D = diag(signs), signs +-1 from a seed or all +1), applied in place by the fast
// Walsh–Hadamard transform (arch/hadamard_*.hpp, SIMD on the arch tags).
//
// Quantizing W [rows, K] with rotation means quantizing W R (rotate() on every row); a
// runtime multiplies its activations by R (X W^T = (X R)(W R)^T) or folds R into the
// previous layer, and unrotate() (x R^T) takes a dequantized W R back to W's basis. With
// error feedback (gptq.hpp) the Hessian turns into R^T H R (rotate_hessian).
//
// API
//   block_rotation r(n);           // R_n = H_n / sqrt(n)
//   block_rotation r(n, seed);     // R_n = diag(rademacher_signs(n, seed)) H_n / sqrt(n)
//                                  // (seed: a uint64_t, or an optional one: none is r(n))
//   r.rotate(x) / r.unrotate(x)    // x (float or double, a multiple of n elements) <- x R / x R^T,
//                                  // every block of n consecutive elements on its own
//   r.rotate_hessian(h, k)         // R^T H R for a K x K row-major H
//   r.check_columns(k)             // throws unless n divides K
//   rademacher_signs(n, seed)      // signs[i] = +1, or -1 when bit 63 of splitmix64 output i is set
//   rotated_quantize(q, w, r) / rotated_dequantize(q, t, r[, rotated_basis])
//
// Signs: splitmix64 (Steele, Lea, Flood 2014) started at `seed`: for i = 0..n-1,
// s += 0x9E3779B97F4A7C15; z = s; z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9;
// z = (z ^ z >> 27) * 0x94D049BB133111EB; z ^= z >> 31; sign i is -1 when z >> 63 is 1.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/arch/hadamard_avx2.hpp"
#include "blockq/arch/hadamard_neon.hpp"
#include "blockq/arch/hadamard_scalar.hpp"
#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE

inline std::vector<float> rademacher_signs(std::size_t n, std::uint64_t seed) {
  std::vector<float> s(n);
  std::uint64_t state = seed;
  for (std::size_t i = 0; i < n; ++i) {
    state += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    s[i] = (z >> 63) ? -1.0f : 1.0f;
  }
  return s;
}

class block_rotation {
 public:
  explicit block_rotation(std::size_t n) : n_(n) { check(); }
  block_rotation(std::size_t n, std::uint64_t seed) : n_(n), seed_(seed) {
    check();
    signs_ = rademacher_signs(n, seed);
    signs_d_.assign(signs_.begin(), signs_.end());
  }
  block_rotation(std::size_t n, std::optional<std::uint64_t> seed)
      : block_rotation(seed ? block_rotation(n, *seed) : block_rotation(n)) {}

  std::size_t size() const noexcept { return n_; }
  std::optional<std::uint64_t> seed() const noexcept { return seed_; }
  std::span<const float> signs() const noexcept { return signs_; }  // empty: all +1

  void check_columns(std::size_t k) const {
    detail::require(k > 0 && k % n_ == 0, "rotation size " + std::to_string(n_) + " does not divide K = " +
                                              std::to_string(k));
  }

  // x <- x R (every block of n on its own).
  template <class Arch = default_arch>
  void rotate(std::span<float> x) const { apply<Arch>(x, false); }
  template <class Arch = default_arch>
  void rotate(std::span<double> x) const { apply<Arch>(x, false); }
  // x <- x R^T, the inverse.
  template <class Arch = default_arch>
  void unrotate(std::span<float> x) const { apply<Arch>(x, true); }
  template <class Arch = default_arch>
  void unrotate(std::span<double> x) const { apply<Arch>(x, true); }

  // R^T H R of a symmetric K x K row-major H: the rows rotated (H R), transposed
  // (R^T H, by symmetry of H), and the rows rotated again.
  std::vector<double> rotate_hessian(std::span<const double> h, std::size_t k) const {
    check_columns(k);
    detail::require(h.size() == k * k, "the Hessian has " + std::to_string(h.size()) + " elements, expected K * K = " +
                                           std::to_string(k * k));
    std::vector<double> a(h.begin(), h.end()), t(k * k);
    rotate(std::span<double>(a));
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) t[j * k + i] = a[i * k + j];
    rotate(std::span<double>(t));
    return t;
  }

 private:
  void check() const {
    detail::require(n_ >= 2 && (n_ & (n_ - 1)) == 0,
                    "rotation size must be a power of two of at least 2, got " + std::to_string(n_));
  }

  template <class Arch, class T>
  void apply(std::span<T> x, bool inverse) const {
    detail::require(x.size() % n_ == 0, "rotation of " + std::to_string(x.size()) +
                                            " elements, not a multiple of the rotation size " + std::to_string(n_));
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(n_)));
    const T* s = nullptr;
    if constexpr (sizeof(T) == sizeof(float)) s = signs_.empty() ? nullptr : signs_.data();
    else s = signs_d_.empty() ? nullptr : signs_d_.data();
    kernels::hadamard_blocks(Arch{}, x.data(), x.size(), n_, s, scale, inverse);
  }

  std::size_t n_ = 0;
  std::optional<std::uint64_t> seed_;
  std::vector<float> signs_;
  std::vector<double> signs_d_;
};

// q.quantize(W R) for a weight W (rows of K, r.size() dividing K).
template <class Quantizer>
auto rotated_quantize(const Quantizer& q, std::span<const float> w, const block_rotation& r) {
  std::vector<float> wr(w.begin(), w.end());
  r.rotate<typename Quantizer::arch_type>(std::span<float>(wr));
  return q.quantize(std::span<const float>(wr));
}

// The dequantized weight in W's basis (Q R^T), or in the rotated basis (Q) when asked.
template <class Quantizer, class Tensor>
std::vector<float> rotated_dequantize(const Quantizer& q, const Tensor& t, const block_rotation& r,
                                      bool rotated_basis = false) {
  std::vector<float> out = q.dequantize(t);
  if (!rotated_basis) r.unrotate<typename Quantizer::arch_type>(std::span<float>(out));
  return out;
}

BLOCKQ_END_NAMESPACE
