// SPDX-License-Identifier: Apache-2.0
// Error metrics between a reference and its reconstruction, accumulated in double.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

#include "blockq/config.hpp"
#include "blockq/detail/blocks.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct error_stats {
  double mse = 0.0;      // mean of (ref - test)^2
  double sqnr_db = 0.0;  // 10 log10(sum ref^2 / sum (ref - test)^2); +inf when exact
  double max_abs = 0.0;  // max |ref - test|
  std::size_t count = 0;
};

inline error_stats compare(std::span<const float> ref, std::span<const float> test) {
  detail::check_size(test.size(), ref.size(), "test", "the size of ref");
  double se = 0.0, energy = 0.0, mx = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double r = ref[i], d = r - static_cast<double>(test[i]);
    se += d * d;
    energy += r * r;
    const double a = std::fabs(d);
    if (a > mx || std::isnan(a)) mx = a;
  }
  error_stats s;
  s.count = ref.size();
  s.mse = ref.empty() ? 0.0 : se / static_cast<double>(ref.size());
  s.max_abs = mx;
  s.sqnr_db = se == 0.0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(energy / se);
  return s;
}

inline double mse(std::span<const float> ref, std::span<const float> test) { return compare(ref, test).mse; }
inline double sqnr_db(std::span<const float> ref, std::span<const float> test) {
  return compare(ref, test).sqnr_db;
}
inline double max_abs_error(std::span<const float> ref, std::span<const float> test) {
  return compare(ref, test).max_abs;
}

BLOCKQ_END_NAMESPACE
