// SPDX-License-Identifier: Apache-2.0
// Quantization grids, sorted ascending, as std::vector<double>:
//
//   std::vector<double> uniform_grid(std::size_t levels);  // linspace(-1, 1, levels), levels >= 2
//   std::vector<double> uniform_grid_bits(int bits);        // uniform_grid(2^bits), 1 <= bits <= 16
//   std::vector<double> int_grid(int bits);                 // -2^(b-1) .. 2^(b-1) - 1, 1 <= bits <= 16
//   std::vector<double> symmetric_int_grid(int bits);       // -(2^(b-1) - 1) .. 2^(b-1) - 1, 2 <= bits <= 16
//   template <class Format>
//   std::vector<double> minifloat_grid(signed_zero zeros = signed_zero::merge);
//   std::vector<double> fp4_grid();       // E2M1, 15 values: 0, ±0.5, ±1, ±1.5, ±2, ±3, ±4, ±6
//   std::vector<double> fp4_seed_grid();  // E2M1 as seed 000 builds it: 16 points, -0 and +0 both
//   std::vector<double> e2m3_grid(), e3m2_grid();  // FP6, 63 finite values each
//   std::vector<double> e4m3_grid(), e5m2_grid();  // FP8 finite values (253 and 247)
//   std::vector<double> nf4_grid();       // QLoRA NormalFloat4, 16 values in [-1, 1]
//
// The floating-point grids decode every code of the blockq element format
// (blockq/formats/minifloat.hpp) and drop NaN and Inf. Lloyd–Max grids are in
// blockq/grid/lloyd_max.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "blockq/config.hpp"
#include "blockq/formats/minifloat.hpp"

BLOCKQ_BEGIN_NAMESPACE

// Whether a minifloat grid keeps -0 as a point of its own beside +0. The two
// are equal, so the grid's error is the same either way; `keep` reproduces
// seed 000's 16-point FP4 grid.
enum class signed_zero { merge, keep };

namespace detail {

inline void check_bits(int bits, int lo, int hi, const char* what) {
  require(bits >= lo && bits <= hi, std::string(what) + ": bits must be in " + std::to_string(lo) + ".." +
                                        std::to_string(hi) + ", got " + std::to_string(bits));
}

// Ascending, -0 before +0.
inline void sort_grid(std::vector<double>& g) {
  std::sort(g.begin(), g.end(), [](double x, double y) {
    return x < y || (x == y && std::signbit(x) && !std::signbit(y));
  });
}

}  // namespace detail

// linspace(-1, 1, levels): the points (2i - (levels - 1)) / (levels - 1),
// exactly symmetric about 0.
inline std::vector<double> uniform_grid(std::size_t levels) {
  detail::require(levels >= 2, "uniform_grid: levels must be >= 2, got " + std::to_string(levels));
  std::vector<double> g(levels);
  const double den = static_cast<double>(levels - 1);
  for (std::size_t i = 0; i < levels; ++i)
    g[i] = (2.0 * static_cast<double>(i) - den) / den;
  return g;
}

inline std::vector<double> uniform_grid_bits(int bits) {
  detail::check_bits(bits, 1, 16, "uniform_grid_bits");
  return uniform_grid(std::size_t{1} << bits);
}

// Two's-complement integers: -2^(b-1) .. 2^(b-1) - 1 (2^b points, zero included).
inline std::vector<double> int_grid(int bits) {
  detail::check_bits(bits, 1, 16, "int_grid");
  const long lo = -(1L << (bits - 1)), hi = (1L << (bits - 1)) - 1;
  std::vector<double> g;
  g.reserve(static_cast<std::size_t>(hi - lo + 1));
  for (long k = lo; k <= hi; ++k) g.push_back(static_cast<double>(k));
  return g;
}

// Symmetric integers ±(2^(b-1) - 1) (2^b - 1 points, zero included).
inline std::vector<double> symmetric_int_grid(int bits) {
  detail::check_bits(bits, 2, 16, "symmetric_int_grid");
  const long m = (1L << (bits - 1)) - 1;
  std::vector<double> g;
  g.reserve(static_cast<std::size_t>(2 * m + 1));
  for (long k = -m; k <= m; ++k) g.push_back(static_cast<double>(k));
  return g;
}

// Every finite value of a blockq element format (e2m1, e2m3, e3m2, e4m3,
// e5m2), from decoding each of its 2^bits codes.
template <class Format>
std::vector<double> minifloat_grid(signed_zero zeros = signed_zero::merge) {
  std::vector<double> g;
  for (unsigned code = 0; code < (1u << Format::bits); ++code) {
    const double v = Format::decode(static_cast<std::uint8_t>(code));
    if (!std::isfinite(v)) continue;
    if (v == 0.0 && std::signbit(v) && zeros == signed_zero::merge) continue;
    g.push_back(v);
  }
  detail::sort_grid(g);
  return g;
}

inline std::vector<double> fp4_grid() { return minifloat_grid<e2m1>(); }
inline std::vector<double> fp4_seed_grid() { return minifloat_grid<e2m1>(signed_zero::keep); }
inline std::vector<double> e2m3_grid() { return minifloat_grid<e2m3>(); }
inline std::vector<double> e3m2_grid() { return minifloat_grid<e3m2>(); }
inline std::vector<double> e4m3_grid() { return minifloat_grid<e4m3>(); }
inline std::vector<double> e5m2_grid() { return minifloat_grid<e5m2>(); }

// NormalFloat4 (QLoRA, Dettmers et al. 2023) exactly as the bitsandbytes
// lookup table stores it: 16 float32 values. The definition behind them:
// with delta = 0.9677083 (the mean of 1 - 1/32 and 1 - 1/30), the 8 positive
// values are Φ^-1 of 8 equally spaced probabilities from delta down to 0.5
// (linspace(delta, 0.5, 9) without its last point), the 7 negative ones
// -Φ^-1 of linspace(delta, 0.5, 8) without its last point, plus 0, all
// divided by the largest (Φ^-1(delta) ≈ 1.848), so the grid runs from -1 to
// 1 with one more positive point than negative. bitsandbytes forms the
// probabilities and the quotient in float32; a float64 evaluation of the
// same definition differs from these values by less than 1e-6.
inline std::vector<double> nf4_grid() {
  static constexpr float table[16] = {
      -1.0f,
      -0.6961928009986877f,
      -0.5250730514526367f,
      -0.39491748809814453f,
      -0.28444138169288635f,
      -0.18477343022823334f,
      -0.09105003625154495f,
      0.0f,
      0.07958029955625534f,
      0.16093020141124725f,
      0.24611230194568634f,
      0.33791524171829224f,
      0.44070982933044434f,
      0.5626170039176941f,
      0.7229568362236023f,
      1.0f,
  };
  return std::vector<double>(std::begin(table), std::end(table));
}

BLOCKQ_END_NAMESPACE
