// SPDX-License-Identifier: Apache-2.0
// Throughput of ggml's block types (include/blockq/ggml.hpp) with the default kernels,
// single thread, next to a plain read of the same bytes measured in the same run:
//   quantize/<type>/<rule>/<bytes>    dequantize/<type>/<bytes>    baseline/read/<bytes>
// <type>: q4_0, q4_1, q8_0, mxfp4_ggml; <rule>: default (ggml's bytes), or a search rule.
// For comparison, the uniform quantizer's 4-bit rows absmax and signed_max (its ggml-Q4_0-like
// rule) over the same data. <bytes> is the float32 tensor: 64 KiB (L1/L2) and 8 MiB (L3) of
// N(0, 1) floats. items/s counts elements; `roofline` is the bytes moved (floats plus blocks)
// per second over the plain read (bench_common.hpp).
//   ./build/bench/ggml_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "blockq/blockq.hpp"
#include "blockq/ggml.hpp"

namespace {

using blockq::ggml_type;
using blockq::scale_rule;

constexpr std::size_t kSizes[] = {std::size_t{64} << 10, std::size_t{8} << 20};

const std::vector<float>& input(std::size_t bytes) { return blockq_bench::cached_input(bytes); }

template <class F>
void add(const std::string& name, F fn) {
  for (std::size_t bytes : kSizes)
    benchmark::RegisterBenchmark((name + "/" + std::to_string(bytes)).c_str(), [bytes, fn](benchmark::State& state) {
      fn(state, input(bytes), bytes);
    })->Unit(benchmark::kMicrosecond);
}

std::string type_name(ggml_type t) { return t == ggml_type::mxfp4 ? "mxfp4_ggml" : std::string(to_string(t)); }

// The benchmark loop of one call op() that writes to out.
template <class Op>
void time_calls(benchmark::State& state, void* out, Op op) {
  for (auto _ : state) {
    op();
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
  }
}

void ggml_quantize(ggml_type t, const std::string& rule_name, blockq::ggml_options opt) {
  add("quantize/" + type_name(t) + "/" + rule_name, [t, opt](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    const blockq::ggml_quantizer<> q(t, opt);
    std::vector<std::uint8_t> out(q.row_bytes(x.size()));
    time_calls(state, out.data(), [&] { q.quantize(x, out); });
    blockq_bench::report(state, x.size(), bytes + out.size(), bytes);
  });
}

void ggml_dequantize(ggml_type t) {
  add("dequantize/" + type_name(t), [t](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    const blockq::ggml_quantizer<> q(t);
    const std::vector<std::uint8_t> in = q.quantize(x);
    std::vector<float> out(x.size());
    time_calls(state, out.data(), [&] { q.dequantize(in, out); });
    blockq_bench::report(state, x.size(), bytes + in.size(), bytes);
  });
}

void int4_quantize(scale_rule rule) {
  add("quantize/int4/" + std::string(to_string(rule)), [rule](benchmark::State& state, const std::vector<float>& x, std::size_t bytes) {
    blockq_bench::int4_quantize(state, x, bytes, rule);
  });
}

[[maybe_unused]] const int registered = [] {
  for (std::size_t bytes : kSizes) blockq_bench::register_read_baseline(bytes);
  for (ggml_type t : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0, ggml_type::mxfp4}) ggml_quantize(t, "default", {});
  for (ggml_type t : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0, ggml_type::mxfp4}) ggml_dequantize(t);
  for (ggml_type t : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0, ggml_type::mxfp4}) {
    ggml_quantize(t, "mse", {scale_rule::mse});
    if (t != ggml_type::mxfp4) ggml_quantize(t, "lsq", {scale_rule::lsq});
  }
  int4_quantize(scale_rule::absmax);
  int4_quantize(scale_rule::signed_max);
  return 0;
}();

}  // namespace

int main(int argc, char** argv) { return blockq_bench::run(argc, argv, blockq::default_arch::name); }
