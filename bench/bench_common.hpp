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
#include <ctime>
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

// Seconds of CPU time of the calling thread: the clock of Google Benchmark's rates (items/s,
// bytes/s and the roofline counter divide by the thread's CPU time, not by wall time).
inline double thread_seconds() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
#else
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
#endif
}

// One N(0, 1) tensor of `bytes` bytes per size, filled (and its pages touched) before any timing.
inline const std::vector<float>& cached_input(std::size_t bytes) {
  static std::map<std::size_t, std::vector<float>> cache;
  auto it = cache.find(bytes);
  if (it == cache.end()) it = cache.emplace(bytes, normal_data(bytes / sizeof(float))).first;
  return it->second;
}

// Bytes per second of a plain read of `bytes` bytes, measured in this process (median of
// repeated passes, more passes for small buffers) and kept for 2 s: a row is compared with a
// read measured at most that long before its own report, not minutes earlier, since on a
// shared machine the memory bandwidth left to this core moves with the neighbours' work.
// Timed in thread CPU time like the rows it divides: with wall time, a shared machine
// (wall > CPU time whenever the thread waits for a core) lowered the baseline and not the
// rows, and MXFP4 quantize at 256 MiB read 1.46 of the "roofline" at load average 3.4.
inline double read_bandwidth(std::size_t bytes) {
  struct measured {
    double rate;
    std::chrono::steady_clock::time_point when;
  };
  static std::map<std::size_t, measured> cache;
  const auto now = std::chrono::steady_clock::now();
  if (auto it = cache.find(bytes); it != cache.end() && now - it->second.when < std::chrono::seconds(2))
    return it->second.rate;
  const std::size_t n = bytes / sizeof(float);
  const std::vector<float>& x = cached_input(bytes);  // the rows' own input: no second copy
  const int passes = static_cast<int>(std::clamp<std::size_t>((std::size_t{1} << 30) / bytes, 3, 2000));
  std::vector<double> rates;
  for (int rep = 0; rep < 5; ++rep) {
    const double t0 = thread_seconds();
    for (int p = 0; p < passes; ++p) benchmark::DoNotOptimize(read_all(x.data(), n));
    rates.push_back(static_cast<double>(bytes) * passes / (thread_seconds() - t0));
  }
  std::nth_element(rates.begin(), rates.begin() + 2, rates.end());
  cache[bytes] = {rates[2], std::chrono::steady_clock::now()};
  return rates[2];
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
    const std::vector<float>& x = cached_input(bytes);
    for (auto _ : state) benchmark::DoNotOptimize(read_all(x.data(), n));
    report(state, n, bytes, bytes);
  });
}


// The row of a quantizer that writes one code a byte and float32 scales (int4, fp4):
// q.quantize over the `bytes` bytes of x; reports the floats, codes and scales moved.
template <class Q>
void quantize_codes_scales(benchmark::State& state, const Q& q, const std::vector<float>& x, std::size_t bytes) {
  std::vector<std::uint8_t> codes(x.size());
  std::vector<float> scales(q.num_blocks(x.size()));
  for (auto _ : state) {
    q.quantize(x, codes, scales);
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  report(state, x.size(), bytes + codes.size() + scales.size() * sizeof(float), bytes);
}

// The int4 row of quantize_bench and ggml_bench (ggml_bench's yardstick for Q4_0 / Q4_1):
// uniform_quantizer<>, 4-bit symmetric, blocks of 32.
inline void int4_quantize(benchmark::State& state, const std::vector<float>& x, std::size_t bytes,
                          blockq::scale_rule rule) {
  quantize_codes_scales(state, blockq::uniform_quantizer<>({4, true, 32, rule}), x, bytes);
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
