// SPDX-License-Identifier: Apache-2.0
// The grid optimizer (blockq/grid.hpp): the standard table of SPEC §9 (target:
// the 8 uniform rows + FP4 + 3 levels in under 50 ms on one core), and its
// building blocks. Items are table rows, grid evaluations or Lloyd–Max runs.
//   build-grid/bench/grid_bench --benchmark_filter=table
#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <vector>

#include "blockq/grid.hpp"

namespace {

// The table of seed 000 / SPEC §9: uniform 1..8 bits, the seed's FP4 grid, 3 levels.
void table_spec(benchmark::State& state) {
  const blockq::any_distribution dist = blockq::parse_distribution("normal");
  blockq::table_options opt;
  opt.lloyd_max = false;
  std::size_t rows = 0;
  for (auto _ : state) {
    const std::vector<blockq::grid_row> t = blockq::standard_table(dist, 1, 8, opt);
    benchmark::DoNotOptimize(t.data());
    rows += t.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rows));
}
BENCHMARK(table_spec)->Unit(benchmark::kMillisecond);

// The whole table (adds the Lloyd–Max rows) for each distribution of the tool.
void table_full(benchmark::State& state, const std::string& text) {
  const blockq::any_distribution dist = blockq::parse_distribution(text);
  std::size_t rows = 0;
  for (auto _ : state) {
    const std::vector<blockq::grid_row> t = blockq::standard_table(dist);
    benchmark::DoNotOptimize(t.data());
    rows += t.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(rows));
}
BENCHMARK_CAPTURE(table_full, normal, std::string("normal"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(table_full, laplace, std::string("laplace"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(table_full, logistic, std::string("logistic"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(table_full, student_t3, std::string("student_t:3"))->Unit(benchmark::kMillisecond)->Iterations(3);

// One expected_mse of the uniform 2^bits grid at a = 3: closed form vs quadrature.
void expected_mse_normal(benchmark::State& state, bool quadrature) {
  const std::vector<double> g = blockq::uniform_grid_bits(static_cast<int>(state.range(0)));
  const boost::math::normal d;
  for (auto _ : state)
    benchmark::DoNotOptimize(quadrature ? blockq::expected_mse_quadrature(g, d, 3.0) : blockq::expected_mse(g, d, 3.0));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["cells"] = static_cast<double>(g.size());
}
BENCHMARK_CAPTURE(expected_mse_normal, closed_form, false)->Arg(4)->Arg(8)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(expected_mse_normal, quadrature, true)->Arg(4)->Arg(8)->Unit(benchmark::kMicrosecond);

void optimal_scale_grid(benchmark::State& state, const std::vector<double>& g) {
  const boost::math::normal d;
  for (auto _ : state) benchmark::DoNotOptimize(blockq::optimal_scale(g, d));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(optimal_scale_grid, uniform8, blockq::uniform_grid_bits(8))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(optimal_scale_grid, fp4, blockq::fp4_seed_grid())->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(optimal_scale_grid, e4m3, blockq::e4m3_grid())->Unit(benchmark::kMillisecond);

void lloyd_max_normal(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  for (auto _ : state) benchmark::DoNotOptimize(blockq::lloyd_max(n, boost::math::normal()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(lloyd_max_normal)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
