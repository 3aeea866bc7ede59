// SPDX-License-Identifier: Apache-2.0
// The grid optimizer (SPEC §9, seed 000): expected squared error of rounding
// X ~ dist to a grid, the optimal scale of a grid, standard grids (uniform,
// integer, FP4/FP6/FP8, NF4, Lloyd–Max) and the standard table. This header
// family alone needs Boost.Math (CMake target blockq::grid).
//
//   double expected_mse(grid, dist, scale = 1);                    // blockq/grid/expected_mse.hpp
//   optimal_scale_result optimal_scale(grid, dist, params = {});   // blockq/grid/optimal_scale.hpp
//   std::vector<double> uniform_grid(levels), fp4_grid(), ...       // blockq/grid/grids.hpp
//   lloyd_max_result lloyd_max(levels, dist, params = {});         // blockq/grid/lloyd_max.hpp
//   any_distribution parse_distribution("student_t:3");            // blockq/grid/distribution.hpp
//   std::vector<grid_row> standard_table(dist, bits_lo, bits_hi);  // blockq/grid/table.hpp
#pragma once

#include "blockq/grid/distribution.hpp"
#include "blockq/grid/expected_mse.hpp"
#include "blockq/grid/grids.hpp"
#include "blockq/grid/lloyd_max.hpp"
#include "blockq/grid/optimal_scale.hpp"
#include "blockq/grid/table.hpp"
