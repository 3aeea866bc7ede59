// SPDX-License-Identifier: Apache-2.0
// `blockq grid`: the grid optimizer's table (blockq/grid.hpp, Boost.Math),
// built in when CMake finds Boost (BLOCKQ_TOOL_WITH_GRID).
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>

#include "report.hpp"
#include "tensor.hpp"

#if BLOCKQ_TOOL_WITH_GRID
#include "blockq/grid.hpp"
#include "blockq/version.hpp"
#endif

namespace blockq_tool {

#if BLOCKQ_TOOL_WITH_GRID
namespace {

int parse_bits(std::string_view s, const std::string& all) {
  int v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size())
    throw error("--bits must be A-B or A with 1 <= A <= B <= 12, got '" + all + "'");
  return v;
}

// Display width of UTF-8 text (one column a code point; names hold "±").
std::size_t columns(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string padded(const std::string& s, std::size_t width) {
  const std::size_t c = columns(s);
  return c >= width ? s : s + std::string(width - c, ' ');
}

}  // namespace

void run_grid(const grid_options& opt) {
  const std::string_view b = opt.bits;
  const auto dash = b.find('-');
  const int lo = parse_bits(b.substr(0, dash), opt.bits);
  const int hi = dash == std::string_view::npos ? lo : parse_bits(b.substr(dash + 1), opt.bits);
  if (lo < 1 || hi > 12 || lo > hi) throw error("--bits must be A-B or A with 1 <= A <= B <= 12, got '" + opt.bits + "'");
  const blockq::any_distribution dist = blockq::parse_distribution(opt.dist);  // throws std::invalid_argument
  const std::vector<blockq::grid_row> rows = blockq::standard_table(dist, lo, hi);

  if (opt.csv) {
    std::printf("grid,levels,scale,clip,mse,sqnr_db,iterations\n");
    for (const auto& r : rows)
      std::printf("%s,%zu,%.10f,%.10f,%.10e,%.6f,%ju\n", csv_field(r.name).c_str(), r.levels, r.scale, r.clip, r.mse, r.sqnr_db,
                  r.iterations);
    return;
  }
  std::size_t w = 4;
  for (const auto& r : rows) w = std::max(w, columns(r.name));
  std::printf("blockq %s grid: %s, bits %d-%d (SPEC §9: the scale a* minimising E[(X - a*g(X/a*))^2])\n\n",
              BLOCKQ_VERSION_STRING, dist.name().c_str(), lo, hi);
  std::printf("  %s  %6s  %13s  %11s  %14s  %8s  %10s\n", padded("grid", w).c_str(), "levels", "scale a*", "clip",
              "MSE", "SQNR dB", "iterations");
  for (const auto& r : rows)
    std::printf("  %s  %6zu  %13.10f  %11.6f  %14.10g  %8.4f  %10ju\n", padded(r.name, w).c_str(), r.levels, r.scale,
                r.clip, r.mse, r.sqnr_db, r.iterations);
  std::printf(
      "\nscale a*: of the unit grid (uniform: linspace(-1, 1, levels); fp4: the E2M1 values with +0 and -0);\n"
      "clip: a* times the largest |level|, in units of X. Lloyd-Max rows are optimal grids (scale 1).\n");
}

#else

void run_grid(const grid_options&) {
  throw error("blockq grid is not available: this blockq was built without Boost.Math (the grid optimizer)");
}

#endif

}  // namespace blockq_tool
