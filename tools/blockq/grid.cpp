// SPDX-License-Identifier: Apache-2.0
// `blockq grid`: the grid optimizer's table (blockq/grid.hpp, Boost.Math).
#include "report.hpp"
#include "tensor.hpp"

namespace blockq_tool {

void run_grid(const grid_options&) {
  throw error("blockq grid is not available: the grid optimizer (blockq/grid.hpp) is not in this build");
}

}  // namespace blockq_tool
