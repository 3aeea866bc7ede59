// SPDX-License-Identifier: Apache-2.0
// The table of seed 000 / SPEC §9, for any of the tool's distributions:
//
//   struct grid_row {
//     std::string name;           // "uniform 4-bit", "uniform 3-level", "fp4 e2m1 (seed, ±0)", "lloyd-max 4-bit"
//     std::size_t levels;         // number of grid points (16 for the seed's FP4 grid, which holds ±0)
//     double scale;               // a*, the optimal scale of the unit grid (1 for Lloyd–Max rows)
//     double clip;                // a* · max|g|, the largest level, in units of X
//     double mse;                 // E[(X - nearest(X))^2] at a*
//     double sqnr_db;             // 10 log10(E[X^2] / mse)
//     std::uintmax_t iterations;  // optimal_scale's or lloyd_max's iterations
//   };
//   struct table_options { bool fp4 = true; bool three_levels = true; bool lloyd_max = true;
//                          std::uintmax_t max_evaluations = 2 * detail::default_max_evaluations; };
//
//   std::vector<grid_row> standard_table(const any_distribution& dist, int bits_lo = 1, int bits_hi = 8,
//                                        const table_options& options = {});
//     Rows, in order: uniform grids linspace(-1, 1, 2^b) for b = bits_lo..bits_hi; the seed's
//     16-point FP4 grid; the uniform 3-level grid; Lloyd–Max grids of 2^b levels for
//     b = bits_lo..bits_hi. Requires 1 <= bits_lo <= bits_hi <= 12; throws std::invalid_argument
//     otherwise, for a distribution without a finite variance, or when the rows together need
//     more than max_evaluations density evaluations (each row gets what the rows before it
//     left; the message names the row), so that the whole table has one effort limit.
//   std::string format_table(std::span<const grid_row> rows);
//     The rows as a Markdown table, one line per row.
//
// Usage (the command-line tool's `blockq grid DIST`):
//   const auto rows = blockq::standard_table(blockq::parse_distribution("student_t:3"));
//   std::fputs(blockq::format_table(rows).c_str(), stdout);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "blockq/config.hpp"
#include "blockq/grid/distribution.hpp"
#include "blockq/grid/grids.hpp"
#include "blockq/grid/lloyd_max.hpp"
#include "blockq/grid/optimal_scale.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct grid_row {
  std::string name;
  std::size_t levels = 0;
  double scale = 0.0;
  double clip = 0.0;
  double mse = 0.0;
  double sqnr_db = 0.0;
  std::uintmax_t iterations = 0;
};

struct table_options {
  bool fp4 = true;           // the seed's 16-point FP4 (E2M1) grid
  bool three_levels = true;  // the uniform 3-level grid {-1, 0, 1}
  bool lloyd_max = true;     // Lloyd–Max grids for bits_lo..bits_hi
  std::uintmax_t max_evaluations = 2 * detail::default_max_evaluations;  // for the whole table
};

inline std::vector<grid_row> standard_table(const any_distribution& dist, int bits_lo = 1, int bits_hi = 8,
                                            const table_options& options = {}) {
  detail::require(bits_lo >= 1 && bits_lo <= bits_hi && bits_hi <= 12,
                  "standard_table: need 1 <= bits_lo <= bits_hi <= 12, got bits_lo = " + std::to_string(bits_lo) +
                      ", bits_hi = " + std::to_string(bits_hi));
  const double power = dist.visit([](const auto& d) { return detail::second_moment(d); });
  detail::require(options.max_evaluations > 0, "standard_table: max_evaluations must be > 0");
  std::vector<grid_row> rows;
  std::uintmax_t left = options.max_evaluations;
  const auto spend = [&](std::uintmax_t used) { left = used < left ? left - used : 1; };
  const auto add_scaled = [&](std::string name, const std::vector<double>& grid) {
    optimal_scale_params params;
    params.max_evaluations = left;
    const optimal_scale_result r = optimal_scale(grid, dist, params);
    spend(r.evaluations);
    double gmax = 0.0;
    for (double g : grid) gmax = std::max(gmax, std::fabs(g));
    rows.push_back({std::move(name), grid.size(), r.scale, r.scale * gmax, r.mse,
                    10.0 * std::log10(power / r.mse), r.iterations});
  };
  for (int b = bits_lo; b <= bits_hi; ++b) add_scaled("uniform " + std::to_string(b) + "-bit", uniform_grid_bits(b));
  if (options.fp4) add_scaled("fp4 e2m1 (seed, ±0)", fp4_seed_grid());
  if (options.three_levels) add_scaled("uniform 3-level", uniform_grid(3));
  if (options.lloyd_max) {
    for (int b = bits_lo; b <= bits_hi; ++b) {
      lloyd_max_params params;
      params.max_evaluations = left;
      const lloyd_max_result r = lloyd_max(std::size_t{1} << b, dist, params);
      spend(r.evaluations);
      const double clip = std::max(std::fabs(r.grid.front()), std::fabs(r.grid.back()));
      rows.push_back({"lloyd-max " + std::to_string(b) + "-bit", r.grid.size(), 1.0, clip, r.mse,
                      10.0 * std::log10(power / r.mse), r.iterations});
    }
  }
  return rows;
}

inline std::string format_table(std::span<const grid_row> rows) {
  std::string out =
      "| grid | levels | scale a* | clip a*·max\\|g\\| | MSE | SQNR (dB) | iterations |\n"
      "|---|---:|---:|---:|---:|---:|---:|\n";
  char line[256];
  for (const grid_row& r : rows) {
    std::snprintf(line, sizeof line, "| %s | %zu | %.10f | %.6f | %.10g | %.4f | %ju |\n", r.name.c_str(), r.levels,
                  r.scale, r.clip, r.mse, r.sqnr_db, r.iterations);
    out += line;
  }
  return out;
}

BLOCKQ_END_NAMESPACE
