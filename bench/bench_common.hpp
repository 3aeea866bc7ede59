// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the blockq benchmarks: input data, the plain memory-read
// baseline, and the roofline counter every benchmark row reports.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "blockq/uniform.hpp"

namespace blockq_bench {

// n standard-normal floats from a fixed seed.
inline std::vector<float> normal_data(std::size_t n, unsigned seed = 42) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> x(n);
  for (auto& v : x) v = d(g);
  return x;
}

// Reads a buffer, ORing the bits of its floats into sixteen independent integer lanes: with
// no floating-point ordering to respect (float adds may not be reassociated without
// -ffast-math, and GCC 12 at -O3 -march=native turns an 8-accumulator float sum into scalar
// add chains that run at ~20 GB/s even in L1) the compiler vectorises it fully, so the
// loads, not the ALU, are the limit at every size.
inline float read_all(const float* x, std::size_t n) {
  std::uint32_t acc[16] = {};
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] |= std::bit_cast<std::uint32_t>(x[i + k]);
  for (; i < n; ++i) acc[0] |= std::bit_cast<std::uint32_t>(x[i]);
  std::uint32_t s = 0;
  for (std::uint32_t a : acc) s |= a;
  return std::bit_cast<float>(s);
}

// Bytes per second of a plain read of `bytes` bytes, measured in this process
// (median of repeated passes, more passes for small buffers) and cached per size.
inline double read_bandwidth(std::size_t bytes) {
  static std::map<std::size_t, double> cache;
  if (auto it = cache.find(bytes); it != cache.end()) return it->second;
  const std::size_t n = bytes / sizeof(float);
  std::vector<float> x = normal_data(n, 7);
  const int passes = static_cast<int>(std::clamp<std::size_t>((std::size_t{1} << 30) / bytes, 5, 2000));
  std::vector<double> rates;
  for (int rep = 0; rep < 9; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int p = 0; p < passes; ++p) benchmark::DoNotOptimize(read_all(x.data(), n));
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    rates.push_back(static_cast<double>(bytes) * passes / dt.count());
  }
  std::nth_element(rates.begin(), rates.begin() + 4, rates.end());
  return cache[bytes] = rates[4];
}

// Reports items/s and bytes/s for `items` elements and `bytes_moved` bytes
// (read + written) per iteration, and the counter `roofline`: those bytes per
// second over the plain-read bandwidth of a buffer of `input_bytes`.
inline void report(benchmark::State& state, std::size_t items, std::size_t bytes_moved,
                   std::size_t input_bytes) {
  const auto iters = static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(iters * static_cast<double>(items)));
  state.SetBytesProcessed(static_cast<int64_t>(iters * static_cast<double>(bytes_moved)));
  state.counters["roofline"] = benchmark::Counter(
      static_cast<double>(bytes_moved) / read_bandwidth(input_bytes), benchmark::Counter::kIsIterationInvariantRate);
}

// The baseline row itself: a plain read of `bytes` bytes, named baseline/read/<bytes>.
inline void register_read_baseline(std::size_t bytes) {
  benchmark::RegisterBenchmark(("baseline/read/" + std::to_string(bytes)).c_str(), [bytes](benchmark::State& state) {
    const std::size_t n = bytes / sizeof(float);
    std::vector<float> x = normal_data(n, 7);
    for (auto _ : state) benchmark::DoNotOptimize(read_all(x.data(), n));
    report(state, n, bytes, bytes);
  });
}

// One N(0, 1) tensor of `bytes` bytes per size, filled (and its pages touched) before any timing.
inline const std::vector<float>& cached_input(std::size_t bytes) {
  static std::map<std::size_t, std::vector<float>> cache;
  auto it = cache.find(bytes);
  if (it == cache.end()) it = cache.emplace(bytes, normal_data(bytes / sizeof(float))).first;
  return it->second;
}

// The int4 row of quantize_bench and ggml_bench (ggml_bench's yardstick for Q4_0 / Q4_1):
// uniform_quantizer<>, 4-bit symmetric, blocks of 32, one code a byte, float32 scales, over
// the `bytes` bytes of x; reports the floats, codes and scales moved.
inline void int4_quantize(benchmark::State& state, const std::vector<float>& x, std::size_t bytes, blockq::scale_rule rule) {
  const blockq::uniform_quantizer<> q({4, true, 32, rule});
  std::vector<std::uint8_t> codes(x.size());
  std::vector<float> scales(q.num_blocks(x.size()));
  for (auto _ : state) {
    q.quantize(x, codes, scales);
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  report(state, x.size(), bytes + codes.size() + scales.size() * sizeof(float), bytes);
}

// The main of every benchmark binary: Google Benchmark with the kernel architecture in the context.
inline int run(int argc, char** argv, const char* arch_name) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("blockq_arch", arch_name);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace blockq_bench
