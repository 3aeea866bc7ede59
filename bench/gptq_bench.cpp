// SPDX-License-Identifier: Apache-2.0
// Throughput of error-feedback quantization (include/blockq/gptq.hpp), single thread:
//   gptq/<format>/<rows>x<K>       GPTQ of a weight [rows, K] with its Hessian given
//   eigen_gemm/<n>                 Eigen's own double GEMM, n x n x n, in the same run
// Counter gflops: 2 rows K^2 + K^3 / 3 flops per GPTQ (the nominal count of the issue;
// the sweep itself does about rows K^2 in its products, the factorisations about
// 2 K^3 / 3), 2 n^3 per GEMM. H = X^T X from 1024 x K activations, built outside the timing.
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "blockq/gptq.hpp"

namespace {

using blockq::scale_rule;
using blockq::tie_mode;

const std::vector<double>& hessian(std::size_t k) {
  static std::map<std::size_t, std::vector<double>> cache;
  auto it = cache.find(k);
  if (it == cache.end())
    it = cache.emplace(k, blockq::hessian_from_activations(blockq_bench::normal_data(1024 * k, 3), k)).first;
  return it->second;
}

template <class Q>
void run_gptq(benchmark::State& s, const Q& q, std::size_t rows, std::size_t k) {
  const std::vector<float> w = blockq_bench::normal_data(rows * k, 5);
  const std::vector<double>& h = hessian(k);
  for (auto _ : s) {
    auto out = blockq::gptq_quantize(q, w, k, h);
    benchmark::DoNotOptimize(out.tensor.codes.data());
  }
  const double r = static_cast<double>(rows), kk = static_cast<double>(k);
  s.counters["gflops"] = benchmark::Counter((2.0 * r * kk * kk + kk * kk * kk / 3.0) * 1e-9 *
                                                static_cast<double>(s.iterations()),
                                            benchmark::Counter::kIsRate);
  s.SetItemsProcessed(static_cast<std::int64_t>(s.iterations()) * static_cast<std::int64_t>(rows * k));
}

void eigen_gemm(benchmark::State& s) {
  const auto n = static_cast<Eigen::Index>(s.range(0));
  const Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, n), b = Eigen::MatrixXd::Random(n, n);
  Eigen::MatrixXd c(n, n);
  for (auto _ : s) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  const double nn = static_cast<double>(n);
  s.counters["gflops"] =
      benchmark::Counter(2.0 * nn * nn * nn * 1e-9 * static_cast<double>(s.iterations()), benchmark::Counter::kIsRate);
}

std::string row(const char* format, std::size_t rows, std::size_t k) {
  return std::string("gptq/") + format + "/" + std::to_string(rows) + "x" + std::to_string(k);
}

const int registered = [] {
  benchmark::RegisterBenchmark("eigen_gemm", eigen_gemm)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond);
  for (std::size_t n : {std::size_t{1024}, std::size_t{4096}}) {
    auto* b = benchmark::RegisterBenchmark(row("mxfp4", n, n).c_str(), [n](benchmark::State& s) {
      run_gptq(s, blockq::mxfp4_quantizer{}, n, n);
    });
    b->Unit(benchmark::kMillisecond);
    if (n > 1024) b->Iterations(1);
  }
  benchmark::RegisterBenchmark(row("nvfp4", 1024, 1024).c_str(), [](benchmark::State& s) {
    run_gptq(s, blockq::nvfp4_quantizer<>{}, 1024, 1024);
  })->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark(row("int4", 1024, 1024).c_str(), [](benchmark::State& s) {
    run_gptq(s, blockq::uniform_quantizer<>{}, 1024, 1024);
  })->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark(row("mxfp4-mse", 1024, 1024).c_str(), [](benchmark::State& s) {
    run_gptq(s, blockq::mxfp4_quantizer({32, scale_rule::mse, tie_mode::even}), 1024, 1024);
  })->Unit(benchmark::kMillisecond);
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
