// SPDX-License-Identifier: Apache-2.0
// Prints seed 000's table (SPEC §9) with the true optima: the MSE-optimal
// scale and error of the uniform 1..8-bit grids, the seed's FP4 grid and the
// uniform 3-level grid, plus the Lloyd–Max grids, for X ~ DIST.
//
//   example_grid_table [normal | laplace | student_t:NU | logistic] [BITS_LO BITS_HI]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "blockq/grid.hpp"

int main(int argc, char** argv) {
  try {
    const blockq::any_distribution dist = blockq::parse_distribution(argc > 1 ? argv[1] : "normal");
    const int lo = argc > 3 ? std::atoi(argv[2]) : 1;
    const int hi = argc > 3 ? std::atoi(argv[3]) : 8;
    const auto start = std::chrono::steady_clock::now();
    const std::vector<blockq::grid_row> rows = blockq::standard_table(dist, lo, hi);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("X ~ %s\n\n%s\n(%.1f ms)\n", dist.name().c_str(), blockq::format_table(rows).c_str(), ms);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\nusage: %s [normal | laplace | student_t:NU | logistic] [BITS_LO BITS_HI]\n", e.what(),
                 argv[0]);
    return 2;
  }
}
