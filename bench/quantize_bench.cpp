// SPDX-License-Identifier: Apache-2.0
// Throughput of quantization and dequantization with the default kernels (default_arch),
// single thread, next to a plain read of the same bytes (bench_common.hpp):
//   quantize/<format>/<rule>/<bytes>    dequantize/<format>/<bytes>    baseline/read/<bytes>
// <bytes> is the size of the float32 tensor (input of quantize, output of dequantize):
// 64 KiB (in L1/L2), 8 MiB (L3) and 256 MiB (DRAM) of N(0, 1) floats.
// items/s counts elements; bytes/s and the `roofline` counter count the bytes moved: the
// floats read or written, the codes and the scales (bench_common.hpp, report()).
//   mxfp4   mx_quantizer<e2m1>, blocks of 32, UE8M0 scales, OCP nibbles (quantize_packed)
//   nvfp4   nvfp4_quantizer, blocks of 16, E4M3 scales, nibbles, the tensor scale computed
//           once outside the loop (the API takes it); the row absmax_with_tensor_scale adds
//           the tensor amax pass to every iteration, as nvfp4_quantizer::quantize(x) does
//   fp4     fp4_quantizer, blocks of 32, float32 scales, one code a byte
//   int4    uniform_quantizer, 4-bit symmetric, blocks of 32, float32 scales, one code a byte
// Ties to even everywhere. bench/run.sh runs this binary and prints the table.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "blockq/blockq.hpp"

namespace {

using blockq::scale_rule;
using blockq::tie_mode;

constexpr std::size_t kSizes[] = {std::size_t{64} << 10, std::size_t{8} << 20, std::size_t{256} << 20};

const std::vector<float>& input(std::size_t bytes) { return blockq_bench::cached_input(bytes); }

std::string name(const std::string& op, const std::string& format, const std::string& rule, std::size_t bytes) {
  return op + "/" + format + "/" + (rule.empty() ? "" : rule + "/") + std::to_string(bytes);
}

// Registers fn(state, x, bytes) for every size. (Per-row options such as MinTime would add
// suffixes to the names; bench/run.sh gives the 256 MiB rows a shorter --benchmark_min_time.)
template <class F>
void add(const std::string& op, const std::string& format, const std::string& rule, F fn) {
  for (std::size_t bytes : kSizes)
    benchmark::RegisterBenchmark(name(op, format, rule, bytes).c_str(), [bytes, fn](benchmark::State& state) {
      fn(state, input(bytes), bytes);
    })->Unit(benchmark::kMicrosecond);
}

void report(benchmark::State& state, std::size_t n, std::size_t code_bytes, std::size_t scale_bytes, std::size_t bytes) {
  blockq_bench::report(state, n, n * sizeof(float) + code_bytes + scale_bytes, bytes);
}

// ------------------------------------------------------------------------ MXFP4

void mxfp4_quantize(scale_rule rule) {
  add("quantize", "mxfp4", std::string(to_string(rule)), [rule](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    const blockq::mx_quantizer<blockq::e2m1> q({32, rule, tie_mode::even});
    std::vector<std::uint8_t> packed((x.size() + 1) / 2), scales(q.num_blocks(x.size()));
    for (auto _ : state) {
      q.quantize_packed(x, packed, scales);
      benchmark::DoNotOptimize(packed.data());
      benchmark::ClobberMemory();
    }
    report(state, x.size(), packed.size(), scales.size(), bytes);
  });
}

void mxfp4_dequantize() {
  add("dequantize", "mxfp4", "", [](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    const blockq::mx_quantizer<blockq::e2m1> q;
    std::vector<std::uint8_t> packed((x.size() + 1) / 2), scales(q.num_blocks(x.size()));
    q.quantize_packed(x, packed, scales);
    std::vector<float> out(x.size());
    for (auto _ : state) {
      q.dequantize_packed(packed, scales, out);
      benchmark::DoNotOptimize(out.data());
      benchmark::ClobberMemory();
    }
    report(state, x.size(), packed.size(), scales.size(), bytes);
  });
}

// ------------------------------------------------------------------------ NVFP4

void nvfp4_quantize(scale_rule rule, bool with_tensor_scale) {
  const std::string row = std::string(to_string(rule)) + (with_tensor_scale ? "_with_tensor_scale" : "");
  add("quantize", "nvfp4", row, [rule, with_tensor_scale](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    const blockq::nvfp4_quantizer<> q({rule, tie_mode::even, true});
    std::vector<std::uint8_t> packed((x.size() + 1) / 2), scales(q.num_blocks(x.size()));
    float s_t = q.tensor_scale(x);
    for (auto _ : state) {
      if (with_tensor_scale) s_t = q.tensor_scale(x);
      q.quantize_packed(x, s_t, packed, scales);
      benchmark::DoNotOptimize(packed.data());
      benchmark::ClobberMemory();
    }
    // The tensor amax pass reads the input once more.
    report(state, x.size(), packed.size() + (with_tensor_scale ? x.size() * sizeof(float) : 0), scales.size(), bytes);
  });
}

void nvfp4_dequantize() {
  add("dequantize", "nvfp4", "", [](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    const blockq::nvfp4_quantizer<> q;
    std::vector<std::uint8_t> packed((x.size() + 1) / 2), scales(q.num_blocks(x.size()));
    const float s_t = q.tensor_scale(x);
    q.quantize_packed(x, s_t, packed, scales);
    std::vector<float> out(x.size());
    for (auto _ : state) {
      q.dequantize_packed(packed, scales, s_t, out);
      benchmark::DoNotOptimize(out.data());
      benchmark::ClobberMemory();
    }
    report(state, x.size(), packed.size(), scales.size(), bytes);
  });
}

// -------------------------------------------------------------------------- FP4

void fp4_quantize(scale_rule rule) {
  add("quantize", "fp4", std::string(to_string(rule)), [rule](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    blockq_bench::quantize_codes_scales(state, blockq::fp4_quantizer<>({32, rule, tie_mode::even}), x, bytes);
  });
}

void fp4_dequantize() {
  add("dequantize", "fp4", "", [](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    const blockq::fp4_quantizer<> q;
    std::vector<std::uint8_t> codes(x.size());
    std::vector<float> scales(q.num_blocks(x.size())), out(x.size());
    q.quantize(x, codes, scales);
    for (auto _ : state) {
      q.dequantize(codes, scales, out);
      benchmark::DoNotOptimize(out.data());
      benchmark::ClobberMemory();
    }
    report(state, x.size(), codes.size(), scales.size() * sizeof(float), bytes);
  });
}

// ------------------------------------------------------------------------- int4

void int4_quantize(scale_rule rule) {
  add("quantize", "int4", std::string(to_string(rule)), [rule](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    blockq_bench::int4_quantize(state, x, bytes, rule);
  });
}

void int4_dequantize() {
  add("dequantize", "int4", "", [](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    const blockq::uniform_quantizer<> q({4, true, 32, scale_rule::absmax});
    std::vector<std::uint8_t> codes(x.size());
    std::vector<float> scales(q.num_blocks(x.size())), out(x.size());
    q.quantize(x, codes, scales);
    for (auto _ : state) {
      q.dequantize(codes, scales, {}, out);
      benchmark::DoNotOptimize(out.data());
      benchmark::ClobberMemory();
    }
    report(state, x.size(), codes.size(), scales.size() * sizeof(float), bytes);
  });
}

[[maybe_unused]] const int registered = [] {
  for (std::size_t bytes : kSizes) blockq_bench::register_read_baseline(bytes);
  mxfp4_quantize(scale_rule::ocp);
  mxfp4_quantize(scale_rule::ceil);
  mxfp4_quantize(scale_rule::mse);
  nvfp4_quantize(scale_rule::absmax, false);
  nvfp4_quantize(scale_rule::absmax, true);
  nvfp4_quantize(scale_rule::mse, false);
  int4_quantize(scale_rule::absmax);
  int4_quantize(scale_rule::lsq);
  fp4_quantize(scale_rule::mse);
  mxfp4_dequantize();
  nvfp4_dequantize();
  fp4_dequantize();
  int4_dequantize();
  return 0;
}();

}  // namespace

int main(int argc, char** argv) { return blockq_bench::run(argc, argv, blockq::default_arch::name); }
