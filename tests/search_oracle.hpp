// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the search tests: block generators with fixed seeds and
// the exhaustive oracle with the searches' documented tie order.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace search_test {

// The kinds of blocks every search is checked on.
enum class kind { normal, student3, outlier, tiny, huge };

inline std::vector<float> make_block(kind k, std::size_t n, std::mt19937_64& g) {
  std::vector<float> x(n);
  std::normal_distribution<float> nd;
  std::student_t_distribution<float> td(3.0f);
  switch (k) {
    case kind::normal:
      for (auto& v : x) v = nd(g);
      break;
    case kind::student3:
      for (auto& v : x) v = td(g);
      break;
    case kind::outlier:
      for (auto& v : x) v = nd(g);
      x[g() % n] = (g() & 1 ? 1.0f : -1.0f) * std::uniform_real_distribution<float>(8.0f, 100.0f)(g);
      break;
    case kind::tiny:
      for (auto& v : x) v = nd(g) * 1e-30f;
      break;
    case kind::huge:
      for (auto& v : x) v = nd(g) * 1e30f;
      break;
  }
  return x;
}

inline const char* name(kind k) {
  switch (k) {
    case kind::normal: return "normal";
    case kind::student3: return "student-t(3)";
    case kind::outlier: return "outlier";
    case kind::tiny: return "tiny";
    case kind::huge: return "huge";
  }
  return "?";
}

inline constexpr kind all_kinds[] = {kind::normal, kind::student3, kind::outlier, kind::tiny, kind::huge};

// Exhaustive search in the searches' tie order: the start first, then every
// index in increasing order, replacing the best on strict improvement only.
// start == npos means the start is not in the set (its error is given).
template <class F>
std::size_t exhaustive(std::size_t set_size, std::size_t start, double start_error, F&& objective) {
  std::size_t best = start;
  double best_error = start_error;
  for (std::size_t i = 0; i < set_size; ++i) {
    if (i == start) continue;
    const double e = objective(i);
    if (e < best_error) {
      best = i;
      best_error = e;
    }
  }
  return best;
}

// A block at a rounding threshold of E2M1, for the window bounds
// (kernels::window_sse_bounds): `count` random scales written to sc (2^±3
// times 1..1.37), and n elements each `steps` (-3..3) floats away from
// threshold * sc[j], of random sign; every element's quotient then sits at
// or next to a decision point of the scale j (n <= 16).
struct threshold_block {
  std::size_t j;
  float threshold;
  int steps;
  std::size_t n;                 // at most 16
  std::array<float, 16> x = {};  // zeros past n
};

template <class Rng>
threshold_block block_at_threshold(Rng& g, float* sc, std::size_t count, std::size_t n) {
  constexpr float thresholds[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (std::size_t k = 0; k < count; ++k) sc[k] = std::pow(2.0f, 3.0f * u(g)) * (1.0f + 0.37f * std::fabs(u(g)));
  threshold_block b{g() % count, thresholds[g() % 7], static_cast<int>(g() % 7) - 3, n};
  for (std::size_t i = 0; i < n; ++i) {
    float& v = b.x[i];
    v = b.threshold * sc[b.j];
    for (int m = b.steps; m != 0; m += m > 0 ? -1 : 1) v = std::nextafter(v, m > 0 ? 1e30f : 0.0f);
    if ((g() & 1) != 0) v = -v;
  }
  return b;
}

}  // namespace search_test
