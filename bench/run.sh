#!/usr/bin/env bash
# Builds bench/quantize_bench.cpp in Release with -march=native (its own build directory),
# runs it single-threaded with repetitions, and prints a markdown table of the medians
# (G items/s, GB/s, roofline = bytes moved per second over a plain read of the same size)
# followed by the issue's throughput targets, met or missed.
#   bash bench/run.sh              # all rows
#   BLOCKQ_BENCH_REPS=9 bash bench/run.sh
# Environment: BLOCKQ_BENCH_BUILD (build directory, default build-bench in the checkout),
# BLOCKQ_BENCH_REPS (repetitions of the 64 KiB and 8 MiB rows, default 5; the 256 MiB rows
# run 3 with a shorter minimum time), BLOCKQ_BENCH_FILTER (a --benchmark_filter regex).
# The JSON of both runs is left in the build directory (quantize_small.json, quantize_large.json).
# Needs cmake, ninja, g++, libbenchmark-dev (tools/deps.sh) and python3 for the table.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BLOCKQ_BENCH_BUILD:-$root/build-bench}
reps=${BLOCKQ_BENCH_REPS:-5}
filter=${BLOCKQ_BENCH_FILTER:-.}
command -v python3 >/dev/null || { echo "bench/run.sh: python3 is needed for the table" >&2; exit 1; }

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKQ_ARCH_FLAGS=-march=native \
  -DBLOCKQ_BUILD_BENCH=ON -DBLOCKQ_BUILD_TESTS=OFF -DBLOCKQ_BUILD_TOOLS=OFF -DBLOCKQ_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target quantize_bench >/dev/null
bin="$build/bench/quantize_bench"

# Rows in cache (64 KiB, 8 MiB), then the 256 MiB rows with fewer iterations (each
# iteration there streams the whole tensor from DRAM).
"$bin" --benchmark_filter="(${filter}).*/(65536|8388608)\$" --benchmark_repetitions="$reps" \
  --benchmark_report_aggregates_only=true --benchmark_format=json >"$build/quantize_small.json"
"$bin" --benchmark_filter="(${filter}).*/268435456\$" --benchmark_repetitions=3 --benchmark_min_time=0.1 \
  --benchmark_report_aggregates_only=true --benchmark_format=json >"$build/quantize_large.json"

python3 - "$build/quantize_small.json" "$build/quantize_large.json" <<'EOF'
import json, sys

rows, context = {}, {}
for path in sys.argv[1:]:
    with open(path) as f:
        data = json.load(f)
    context = data.get("context", context)
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        rows[b["run_name"]] = b

def size(name):
    b = int(name.rsplit("/", 1)[1])
    return f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB"

print(f"blockq {context.get('blockq_arch', '?')} kernels, {context.get('num_cpus', '?')} CPUs at "
      f"{context.get('mhz_per_cpu', '?')} MHz (nominal), load average {context.get('load_avg', '?')}; "
      "medians, single thread\n")
print("| benchmark | size | G items/s | GB/s | roofline |")
print("|---|---|---:|---:|---:|")
for name, b in rows.items():
    print(f"| `{name}` | {size(name)} | {b['items_per_second'] / 1e9:.3f} | {b['bytes_per_second'] / 1e9:.2f} "
          f"| {b.get('roofline', float('nan')):.2f} |")

targets = [  # (what, row, counter, minimum)
    ("MXFP4 ocp quantize + pack, 256 MiB", "quantize/mxfp4/ocp/268435456", "roofline", 0.8),
    ("MXFP4 ocp quantize + pack, 64 KiB", "quantize/mxfp4/ocp/65536", "items_per_second", 6e9),
    ("MXFP4 mse quantize, 64 KiB", "quantize/mxfp4/mse/65536", "items_per_second", 1.5e9),
    ("NVFP4 naive (absmax) quantize, 64 KiB", "quantize/nvfp4/absmax/65536", "items_per_second", 2e9),
    ("NVFP4 mse quantize, 64 KiB", "quantize/nvfp4/mse/65536", "items_per_second", 0.3e9),
    ("dequantize MXFP4 to float32, 256 MiB", "dequantize/mxfp4/268435456", "roofline", 0.8),
    ("int4 absmax quantize, 64 KiB", "quantize/int4/absmax/65536", "items_per_second", 6e9),
]
print("\n| target | measured | required | |")
print("|---|---:|---:|---|")
for what, row, counter, need in targets:
    if row not in rows:
        print(f"| {what} | not run | | |")
        continue
    got = rows[row][counter]
    fmt = (lambda v: f"{v:.2f}") if counter == "roofline" else (lambda v: f"{v / 1e9:.2f} G/s")
    label = "roofline " if counter == "roofline" else ""
    print(f"| {what} | {label}{fmt(got)} | >= {fmt(need)} | {'met' if got >= need else 'missed'} |")
EOF
