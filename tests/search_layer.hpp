// SPDX-License-Identifier: Apache-2.0
// The layer the output-error tests share (search_hessian_test.cpp, gptq_test.cpp): a
// weight and correlated calibration activations from fixed seeds.
#pragma once

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

namespace search_test {

// The output error ||X (W - Ŵ)^T||_F of a weight W [256, 512] (standard
// normal) with correlated activations X = Z L [1024, 512]: Z standard normal,
// L = (I + G / sqrt(512)) diag(c) with G standard normal (a random mixing of
// all channels) and c = exp(0.75 N(0, 1)) (channels of unequal scale, as in
// LLM activations). Fixed seeds; X accumulated in float in a fixed order.
// X = Z L [t, k] as above (with sqrt(k) for sqrt(512)), drawing Z, c and G from g through nd
// in that order.
inline std::vector<float> correlated_activations(std::size_t t, std::size_t k, std::mt19937_64& g,
                                                 std::normal_distribution<float>& nd) {
  std::vector<float> z(t * k), l(k * k), c(k);
  for (auto& v : z) v = nd(g);
  for (auto& v : c) v = std::exp(0.75f * nd(g));
  for (std::size_t p = 0; p < k; ++p)
    for (std::size_t q = 0; q < k; ++q)
      l[p * k + q] = (static_cast<float>(p == q) + nd(g) / std::sqrt(static_cast<float>(k))) * c[q];
  std::vector<float> x(t * k, 0.0f);
  for (std::size_t r = 0; r < t; ++r)
    for (std::size_t p = 0; p < k; ++p) {
      const float zp = z[r * k + p];
      for (std::size_t q = 0; q < k; ++q) x[r * k + q] += zp * l[p * k + q];
    }
  return x;
}

struct layer {
  static constexpr std::size_t m = 256, k = 512, t = 1024;
  std::vector<float> w, x;
  layer() {
    std::mt19937_64 g(2025);
    std::normal_distribution<float> nd;
    x = correlated_activations(t, k, g, nd);
    w.resize(m * k);
    for (auto& v : w) v = nd(g);
  }
  double output_error(const std::vector<float>& wq) const {
    std::vector<double> d(m * k);
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = static_cast<double>(w[i]) - wq[i];
    double s = 0;
    for (std::size_t r = 0; r < t; ++r)
      for (std::size_t i = 0; i < m; ++i) {
        double o = 0;
        for (std::size_t c = 0; c < k; ++c) o += x[r * k + c] * d[i * k + c];
        s += o * o;
      }
    return std::sqrt(s);
  }
};

inline const layer& the_layer() {
  static const layer l;
  return l;
}

}  // namespace search_test
