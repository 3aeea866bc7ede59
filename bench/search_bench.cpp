// SPDX-License-Identifier: Apache-2.0
// Throughput of the scale searches (include/blockq/search/) through the
// quantizers, next to their start rules and an exhaustive search:
//   search/<format>/<rule>/<elements>
// Each row quantizes `elements` N(0, 1) floats (blocks of 32, NVFP4 16);
// bytes moved = the floats read + one code byte each + the scales.
// The hessian rows quantize a weight [elements / 512, 512] with block
// Hessians from 1024 x 512 activations built once outside the timing loop;
// hessian_k4096 a weight [elements / 4096, 4096] (the K), Hessians
// from 1024 x 4096 activations. The kernel/ rows time the search kernels alone (below),
// kernel/int4_lsq_passes the kernel work of int4 `lsq` without its bookkeeping.
// The search/ rows take 8 different tensors of `elements` floats in turn (512 KiB in all):
// with one tensor quantized again and again, the branch predictor learns the searches'
// data-dependent branches block by block, and NVFP4 `mse` read 0.28-0.30 G/s on Zen 5
// against 0.18-0.19 on tensors it had not seen (0.17-0.18 at 8 MiB in quantize_bench).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "blockq/blockq.hpp"

namespace {

constexpr std::size_t n = 65536, k = 512, k_wide = 4096;
using blockq::scale_rule;
using blockq::tie_mode;

const std::vector<float>& data() {
  static const std::vector<float> x = blockq_bench::normal_data(n);
  return x;
}

// The search rows' inputs: data() and 7 more N(0, 1) tensors of n floats.
constexpr std::size_t tensors = 8;
const std::vector<float>& data(std::size_t i) {
  static const auto xs = [] {
    std::vector<std::vector<float>> v{data()};
    for (unsigned s = 1; s < tensors; ++s) v.push_back(blockq_bench::normal_data(n, 42 + 1000 * s));
    return v;
  }();
  return xs[i % tensors];
}

const blockq::block_hessians& hessians(std::size_t block) {
  static const std::vector<float> acts = blockq_bench::normal_data(1024 * k, 3);
  static const auto h32 = blockq::block_hessians::from_activations(acts, k, 32);
  static const auto h16 = blockq::block_hessians::from_activations(acts, k, 16);
  return block == 32 ? h32 : h16;
}

const blockq::block_hessians& hessians_wide() {
  static const auto h = blockq::block_hessians::from_activations(blockq_bench::normal_data(1024 * k_wide, 3), k_wide, 32);
  return h;
}

std::string row(const char* format, const char* rule) {
  return std::string("search/") + format + "/" + rule + "/" + std::to_string(n);
}

template <class Q>
void run_plain(benchmark::State& state, const Q& q, std::size_t scale_bytes) {
  std::size_t i = 0;
  for (auto _ : state) {
    auto t = q.quantize(data(i++));
    benchmark::DoNotOptimize(t.codes.data());
    benchmark::ClobberMemory();
  }
  blockq_bench::report(state, n, n * sizeof(float) + n + scale_bytes, n * sizeof(float));
}

template <class Q>
void run_hessian(benchmark::State& state, const Q& q, const blockq::block_hessians& h, std::size_t scale_bytes) {
  std::size_t i = 0;
  for (auto _ : state) {
    auto t = q.quantize(data(i++), h);
    benchmark::DoNotOptimize(t.codes.data());
    benchmark::ClobberMemory();
  }
  blockq_bench::report(state, n, n * sizeof(float) + n + scale_bytes, n * sizeof(float));
}

// The exhaustive MXFP4 oracle (every UE8M0 scale per block), for scale.
void mxfp4_exhaustive(benchmark::State& state) {
  const auto& x = data();
  std::vector<std::uint8_t> scales(n / 32);
  const auto& set = blockq::search::ue8m0_scales();
  for (auto _ : state) {
    for (std::size_t b = 0; b < n / 32; ++b) {
      double best = 1e300;
      for (std::size_t e = 0; e < set.size(); ++e) {
        const double err = blockq::kernels::block_sse<blockq::e2m1>(blockq::default_arch{}, x.data() + b * 32, 32,
                                                                     set[e], tie_mode::even);
        if (err < best) best = err, scales[b] = static_cast<std::uint8_t>(e);
      }
    }
    benchmark::DoNotOptimize(scales.data());
  }
  blockq_bench::report(state, n, n * sizeof(float) + n / 32, n * sizeof(float));
}

// The search kernels alone (kernel/<name>/<elements>), the same N(0, 1) data in blocks, each
// block at scales near its own absmax start (prepared outside the timing loop): the rows that
// compare a tier's kernel with the one below it where the searches' rows cannot tell (README,
// Benchmarks). nvfp4_window: window_sse_bounds over 16 E4M3 scales from 3 under the start,
// blocks of 16; block_sse_16 / _32: block_sse<e2m1> at the start scale; estimates4_32:
// block_sse_estimates<e2m1> at the start scale and the three above it.
template <class Kernel>
void kernel_row(benchmark::State& state, std::size_t block, Kernel&& kernel) {
  const auto& x = data();
  std::array<float, 126> set{};
  blockq::search::e4m3_scales(1.0f / 64.0f, set);  // covers amax / 6 of every N(0, 1) block
  std::vector<std::size_t> first(n / block);
  for (std::size_t b = 0; b < n / block; ++b) {
    const float start = blockq::kernels::block_amax(blockq::default_arch{}, x.data() + b * block, block) / 6.0f;
    std::size_t i = 0;
    while (i + 1 < set.size() && set[i] < start) ++i;
    first[b] = std::min(i > 3 ? i - 3 : 0, set.size() - 17);  // (the window reads one scale past its 16)
  }
  float sink = 0.0f;
  for (auto _ : state) {
    for (std::size_t b = 0; b < n / block; ++b) sink += kernel(x.data() + b * block, set.data() + first[b]);
    benchmark::DoNotOptimize(sink);
  }
  blockq_bench::report(state, n, n * sizeof(float), n * sizeof(float));
}

// kernel/int4_lsq_passes: the kernel work of int4 `lsq` alone, as the rule does it on
// average on this data (counted: 38 starts and 28.3 refit steps a block of 32), with
// none of the descents' bookkeeping: kernels::int_lsq_starts over the 19 start scales of
// each orientation (amax / (7 + k / 10) and -amax / (8 + k / 10), k = -9..9) and 28
// kernels::int_lsq_step calls at scales around the first. The ceiling of that rule with
// these kernels (README, Benchmarks).
void int4_lsq_passes(benchmark::State& state) {
  const auto& x = data();
  constexpr std::size_t block = 32, starts = 19, steps = 28;
  const blockq::int_format fmt{4, true};
  std::vector<float> scales(n / block * 2 * starts);
  for (std::size_t b = 0; b < n / block; ++b) {
    const float amax = blockq::kernels::block_amax(blockq::default_arch{}, x.data() + b * block, block);
    for (std::size_t j = 0; j < starts; ++j) {
      const float tenths = static_cast<float>(j) / 10.0f - 0.9f;
      scales[b * 2 * starts + j] = amax / (7.0f + tenths);
      scales[b * 2 * starts + starts + j] = -amax / (8.0f + tenths);
    }
  }
  std::array<std::uint8_t, block> codes{};
  std::array<blockq::kernels::refit_sums, 2 * starts> sums{};
  double sink = 0.0;
  for (auto _ : state) {
    for (std::size_t b = 0; b < n / block; ++b) {
      const float* xb = x.data() + b * block;
      const float* sb = scales.data() + b * 2 * starts;
      blockq::kernels::int_lsq_starts(blockq::default_arch{}, xb, nullptr, block, sb, starts, 0.0f, fmt, codes.data(),
                                      sums.data());
      blockq::kernels::int_lsq_starts(blockq::default_arch{}, xb, nullptr, block, sb + starts, starts, 0.0f, fmt,
                                      codes.data(), sums.data() + starts);
      for (std::size_t j = 0; j < steps; ++j)
        sink += blockq::kernels::int_lsq_step(blockq::default_arch{}, xb, nullptr, block, sb[j % starts] * 1.01f, 0.0f,
                                              fmt, codes.data(), sums[j % starts]);
    }
    benchmark::DoNotOptimize(sink);
  }
  blockq_bench::report(state, n, n * sizeof(float), n * sizeof(float));
}

void register_kernel_rows() {
  using blockq::default_arch;
  using blockq::e2m1;
  const std::string size = "/" + std::to_string(n);
  benchmark::RegisterBenchmark(("kernel/nvfp4_window" + size).c_str(), [](benchmark::State& s) {
    kernel_row(s, 16, [](const float* x, const float* scales) {
      float est[16], tail = 0.0f, least = 0.0f;
      blockq::kernels::window_sse_bounds(default_arch{}, x, 16, scales, 16, tie_mode::even, 0.5f * scales[16], est, tail,
                                         least);
      return least + tail;
    });
  });
  for (std::size_t block : {16, 32})
    benchmark::RegisterBenchmark(("kernel/block_sse_" + std::to_string(block) + size).c_str(), [block](benchmark::State& s) {
      kernel_row(s, block, [block](const float* x, const float* scales) {
        return static_cast<float>(blockq::kernels::block_sse<e2m1>(default_arch{}, x, block, scales[3], tie_mode::even));
      });
    });
  benchmark::RegisterBenchmark(("kernel/estimates4_32" + size).c_str(), [](benchmark::State& s) {
    kernel_row(s, 32, [](const float* x, const float* scales) {
      float est[4], zero = 0.0f;
      blockq::kernels::block_sse_estimates<e2m1>(default_arch{}, x, 32, scales + 3, 4, tie_mode::even, 0.0f, est, zero);
      return est[0] + est[3];
    });
  });
  benchmark::RegisterBenchmark(("kernel/int4_lsq_passes" + size).c_str(), int4_lsq_passes);
}

void hessian_build(benchmark::State& state) {
  const std::vector<float> acts = blockq_bench::normal_data(1024 * k, 3);
  for (auto _ : state) {
    auto h = blockq::block_hessians::from_activations(acts, k, 32);
    benchmark::DoNotOptimize(&h);
  }
  blockq_bench::report(state, acts.size(), acts.size() * sizeof(float), acts.size() * sizeof(float));
}

const int registered = [] {
  blockq_bench::register_read_baseline(n * sizeof(float));
  for (auto r : {scale_rule::ocp, scale_rule::mse}) {
    const blockq::mxfp4_quantizer q({32, r, tie_mode::even});
    benchmark::RegisterBenchmark(row("mxfp4", std::string(to_string(r)).c_str()).c_str(),
                                 [q](benchmark::State& s) { run_plain(s, q, n / 32); });
  }
  benchmark::RegisterBenchmark(row("mxfp4", "hessian").c_str(), [](benchmark::State& s) {
    run_hessian(s, blockq::mxfp4_quantizer({32, scale_rule::hessian, tie_mode::even}), hessians(32), n / 32);
  });
  benchmark::RegisterBenchmark(row("mxfp4", "hessian_k4096").c_str(), [](benchmark::State& s) {
    run_hessian(s, blockq::mxfp4_quantizer({32, scale_rule::hessian, tie_mode::even}), hessians_wide(), n / 32);
  });
  benchmark::RegisterBenchmark(row("mxfp4", "exhaustive").c_str(), mxfp4_exhaustive);
  benchmark::RegisterBenchmark(row("mxfp6_e2m3", "mse").c_str(), [](benchmark::State& s) {
    run_plain(s, blockq::mxfp6_e2m3_quantizer({32, scale_rule::mse, tie_mode::even}), n / 32);
  });
  benchmark::RegisterBenchmark(row("mxint8", "mse").c_str(), [](benchmark::State& s) {
    run_plain(s, blockq::mxint8_quantizer({32, scale_rule::mse, tie_mode::even}), n / 32);
  });
  for (auto r : {scale_rule::absmax, scale_rule::mse}) {
    const blockq::nvfp4_quantizer<> q({r, tie_mode::even, true});
    benchmark::RegisterBenchmark(row("nvfp4", std::string(to_string(r)).c_str()).c_str(),
                                 [q](benchmark::State& s) { run_plain(s, q, n / 16); });
  }
  benchmark::RegisterBenchmark(row("nvfp4", "hessian").c_str(), [](benchmark::State& s) {
    run_hessian(s, blockq::nvfp4_quantizer<>({scale_rule::hessian, tie_mode::even, true}), hessians(16), n / 16);
  });
  for (auto r : {scale_rule::absmax, scale_rule::lsq, scale_rule::mse}) {
    const blockq::fp4_quantizer<> q({32, r, tie_mode::even});
    benchmark::RegisterBenchmark(row("fp4", std::string(to_string(r)).c_str()).c_str(),
                                 [q](benchmark::State& s) { run_plain(s, q, n / 32 * 4); });
  }
  for (int bits : {4, 8}) {
    for (bool sym : {true, false}) {
      const std::string fmt = (sym ? "int" : "uint") + std::to_string(bits);
      for (auto r : {sym ? scale_rule::absmax : scale_rule::minmax, scale_rule::lsq, scale_rule::mse}) {
        const blockq::uniform_quantizer<> q({bits, sym, 32, r});
        benchmark::RegisterBenchmark(row(fmt.c_str(), std::string(to_string(r)).c_str()).c_str(),
                                     [q, sym](benchmark::State& s) { run_plain(s, q, n / 32 * (sym ? 4 : 8)); });
      }
    }
  }
  benchmark::RegisterBenchmark(("search/hessian_build/1024x512/" + std::to_string(1024 * k)).c_str(), hessian_build);
  register_kernel_rows();
  benchmark::AddCustomContext("blockq_arch", blockq::default_arch::name);
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
