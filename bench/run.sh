#!/usr/bin/env bash
# Builds bench/quantize_bench.cpp and bench/search_bench.cpp in Release with -march=native
# (one build directory per kernel tier), runs them single-threaded with repetitions, and
# prints a markdown table of the medians (G items/s, GB/s, roofline = bytes moved per second
# over a plain read of the same size), one column group per tier, followed by the issue's
# throughput targets, met or missed, for each tier. The table is headed by the CPU
# (/proc/cpuinfo model name, family/model/stepping, the AVX2/AVX-512 flags the tiers use),
# the transparent-huge-page mode (it moves the 256 MiB read baseline by half: README,
# Benchmarks) and the kernel tier that ran.
#   bash bench/run.sh                              # the tier -march=native selects (avx512 on AVX-512 CPUs)
#   BLOCKQ_BENCH_TIERS="avx2 avx512" bash bench/run.sh   # AVX2 and AVX-512 columns
#   BLOCKQ_BENCH_REPS=9 bash bench/run.sh
# Environment: BLOCKQ_BENCH_BUILD (build directory prefix, default build-bench in the
# checkout; a tier's directory gets -<tier> appended), BLOCKQ_BENCH_TIERS (kernel tags
# forced with BLOCKQ_FORCE_ARCH; empty: the flags' own tier), BLOCKQ_BENCH_REPS
# (repetitions of the 64 KiB and 8 MiB rows, default 5; the 256 MiB rows run 3 with a
# shorter minimum time), BLOCKQ_BENCH_FILTER (a --benchmark_filter regex, both binaries),
# BLOCKQ_BENCH_SEARCH (0: skip the search rows). The spread (min..max of the repetitions)
# follows each median. The JSON of every run is left in the build directories.
# Needs cmake, ninja, g++, libbenchmark-dev (tools/deps.sh) and python3 for the table.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${BLOCKQ_BENCH_BUILD:-$root/build-bench}
reps=${BLOCKQ_BENCH_REPS:-5}
filter=${BLOCKQ_BENCH_FILTER:-.}
tiers=${BLOCKQ_BENCH_TIERS:-}
search=${BLOCKQ_BENCH_SEARCH:-1}
command -v python3 >/dev/null || { echo "bench/run.sh: python3 is needed for the table" >&2; exit 1; }

jsons=()
for tier in ${tiers:-native}; do
  build=$prefix
  force=""
  if [ "$tier" != native ]; then build=$prefix-$tier; force=$tier; fi
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKQ_ARCH_FLAGS=-march=native \
    -DBLOCKQ_FORCE_ARCH="$force" -DBLOCKQ_BUILD_BENCH=ON -DBLOCKQ_BUILD_TESTS=OFF -DBLOCKQ_BUILD_TOOLS=OFF \
    -DBLOCKQ_BUILD_EXAMPLES=OFF >/dev/null
  targets=(quantize_bench)
  [ "$search" = 0 ] || targets+=(search_bench)
  cmake --build "$build" --target "${targets[@]}" >/dev/null
  # Rows in cache (64 KiB, 8 MiB), then the 256 MiB rows with fewer iterations (each
  # iteration there streams the whole tensor from DRAM).
  "$build/bench/quantize_bench" --benchmark_filter="(${filter}).*/(65536|8388608)\$" --benchmark_repetitions="$reps" \
    --benchmark_format=json >"$build/quantize_small.json"
  "$build/bench/quantize_bench" --benchmark_filter="(${filter}).*/268435456\$" --benchmark_repetitions=3 \
    --benchmark_min_time=0.1 --benchmark_format=json >"$build/quantize_large.json"
  jsons+=("$build/quantize_small.json" "$build/quantize_large.json")
  if [ "$search" != 0 ]; then
    "$build/bench/search_bench" --benchmark_filter="(${filter})" --benchmark_repetitions="$reps" \
      --benchmark_min_time=0.1 --benchmark_format=json >"$build/search.json"
    jsons+=("$build/search.json")
  fi
done

python3 - "${jsons[@]}" <<'PYEOF'
import json, sys

rows, tiers, context = {}, [], {}  # rows[name][tier] = (median benchmark, [items/s of each repetition])
for path in sys.argv[1:]:
    with open(path) as f:
        data = json.load(f)
    context = data.get("context", {})
    tier = context.get("blockq_arch", "?")
    if tier not in tiers:
        tiers.append(tier)
    for b in data["benchmarks"]:
        name = b["run_name"]
        cell = rows.setdefault(name, {}).setdefault(tier, [None, []])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                cell[0] = b
        else:
            cell[1].append(b["items_per_second"])
            if cell[0] is None:
                cell[0] = b

def size(name):
    try:
        b = int(name.rsplit("/", 1)[1])
    except ValueError:
        return ""
    return f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB"

def cpu():
    # "model name" alone can be as vague as "AMD EPYC" in a VM: family/model/stepping and the
    # instruction-set flags the tiers need say which CPU it is.
    try:
        with open("/proc/cpuinfo") as f:
            info = dict(l.split(":", 1) for l in f.read().split("\n\n")[0].splitlines() if ":" in l)
    except OSError:
        return "CPU: /proc/cpuinfo not readable"
    info = {k.strip(): v.strip() for k, v in info.items()}
    fms = "/".join(f"{int(info[k])} ({int(info[k]):#x})" if info.get(k, "").isdigit() else "?"
                   for k in ("cpu family", "model", "stepping"))
    flags = set(info.get("flags", "").split())
    want = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vbmi"]
    have = " ".join(f if f in flags else f"-{f}" for f in want)
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        thp = "?"
    return (f"CPU: {info.get('model name', '?')}, family/model/stepping {fms}, flags {have} "
            f"(-: missing); transparent huge pages: {thp}")

print(cpu())
print(f"blockq kernels {', '.join(tiers)}; {context.get('num_cpus', '?')} CPUs at "
      f"{context.get('mhz_per_cpu', '?')} MHz (nominal), load average {context.get('load_avg', '?')}; "
      "medians (min..max of the repetitions), single thread\n")
head = "| benchmark | size |" + "".join(f" {t} G items/s | {t} roofline |" for t in tiers)
print(head)
print("|---|---|" + "---:|---:|" * len(tiers))
for name, cells in rows.items():
    line = f"| `{name}` | {size(name)} |"
    for t in tiers:
        if t not in cells or cells[t][0] is None:
            line += " | |"
            continue
        b, reps = cells[t]
        spread = f" ({min(reps) / 1e9:.3f}..{max(reps) / 1e9:.3f})" if len(reps) > 1 else ""
        line += f" {b['items_per_second'] / 1e9:.3f}{spread} | {b.get('roofline', float('nan')):.2f} |"
    print(line)

targets = [  # (what, row, counter, minimum)
    ("MXFP4 ocp quantize + pack, 256 MiB", "quantize/mxfp4/ocp/268435456", "roofline", 0.8),
    ("MXFP4 ocp quantize + pack, 64 KiB", "quantize/mxfp4/ocp/65536", "items_per_second", 6e9),
    ("MXFP4 mse quantize, 64 KiB", "search/mxfp4/mse/65536", "items_per_second", 1.5e9),
    ("MXFP4 hessian quantize (K = 4096), 64 KiB", "search/mxfp4/hessian_k4096/65536", "items_per_second", 0.2e9),
    ("NVFP4 naive (absmax) quantize, 64 KiB", "quantize/nvfp4/absmax/65536", "items_per_second", 2e9),
    ("NVFP4 mse quantize, 64 KiB", "search/nvfp4/mse/65536", "items_per_second", 0.3e9),
    ("FP4 float-scale mse quantize, 64 KiB", "search/fp4/mse/65536", "items_per_second", 0.05e9),
    ("int4 lsq quantize, 64 KiB", "search/int4/lsq/65536", "items_per_second", 0.1e9),
    ("int4 mse quantize, 64 KiB", "search/int4/mse/65536", "items_per_second", 0.05e9),
    ("uint4 mse quantize, 64 KiB", "search/uint4/mse/65536", "items_per_second", 0.05e9),
    ("dequantize MXFP4 to float32, 256 MiB", "dequantize/mxfp4/268435456", "roofline", 0.8),
    ("int4 absmax quantize, 64 KiB", "quantize/int4/absmax/65536", "items_per_second", 6e9),
]
print("\n| target | tier | measured | required | |")
print("|---|---|---:|---:|---|")
for what, row, counter, need in targets:
    fmt = (lambda v: f"{v:.2f}") if counter == "roofline" else (lambda v: f"{v / 1e9:.3f} G/s")
    label = "roofline " if counter == "roofline" else ""
    for t in tiers:
        cell = rows.get(row, {}).get(t)
        if not cell or cell[0] is None:
            print(f"| {what} | {t} | not run | | |")
            continue
        got = cell[0][counter]
        print(f"| {what} | {t} | {label}{fmt(got)} | >= {fmt(need)} | {'met' if got >= need else 'missed'} |")
PYEOF
