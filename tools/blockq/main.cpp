// SPDX-License-Identifier: Apache-2.0
// blockq: quantize safetensors / npy tensors to MXFP4, NVFP4, FP4 and integer
// formats, restore them, and report the error of every format.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include <CLI/CLI.hpp>

#include "blockq/version.hpp"
#include "codec.hpp"
#include "convert.hpp"
#include "export.hpp"
#include "report.hpp"
#include "tensor.hpp"

namespace {

// One line: control characters (from a file's bytes) become '?'.
void print_error(const std::string& what) {
  std::string line;
  for (char c : what) line += (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? '?' : c;
  if (line.size() > 400) line = line.substr(0, 397) + "...";
  std::fprintf(stderr, "blockq: error: %s\n", line.c_str());
}

// An integer option in [lo, hi], checked on its text (before CLI11 converts
// it), so that any input gets one short message naming the option and the
// range: 0, -1, 1e9, a 30-digit number, letters.
CLI::Validator integer_in(std::uint64_t lo, std::uint64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        std::uint64_t v = 0;
        bool ok = !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string::npos;
        if (ok) v = std::stoull(s);
        if (ok && v >= lo && v <= hi) return "";
        const std::string shown = s.size() > 24 ? s.substr(0, 21) + "..." : s;
        return "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got '" + shown + "'";
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace blockq_tool;
  constexpr std::uint64_t max_block = std::uint64_t{1} << 24, max_threads = 4096;
  CLI::App app{"blockq " BLOCKQ_VERSION_STRING
               ": block quantization of tensors (MXFP4, NVFP4, FP4, integers) in .safetensors and .npy files"};
  app.name("blockq");
  app.set_version_flag("--version", BLOCKQ_VERSION_STRING);
  app.require_subcommand(1);

  quantize_options q;
  auto* qc = app.add_subcommand("quantize", "quantize the floating tensors of INPUT into OUTPUT (.safetensors, .gguf, or a model folder)");
  qc->add_option("INPUT", q.input,
                 ".safetensors (F32, F16, BF16), .npy (float32, float16) or .gguf file, or a Hugging Face model folder")
      ->required();
  qc->add_option("-o,--output", q.output, "output .safetensors file, .gguf (from a .gguf input), or folder (model folder input)")->required();
  qc->add_option("--format", q.format, "format: " + format_list() + "; for a .gguf output: mxfp4, q4_0, q4_1, q8_0")->required();
  qc->add_option("--rule", q.rule,
                 "scale rule: ocp, ceil, floor (MX); absmax, signed_max, minmax (integers); mse, lsq, hessian "
                 "[default: mxfp4 ocp, nvfp4/fp4/intN absmax, uintN minmax]");
  qc->add_option("--block", q.block, "elements per block [default: 32; nvfp4 16]")->check(integer_in(1, max_block));
  auto* ties_opt = qc->add_option("--ties", q.ties, "rounding of ties: even, toward_zero, away (a .gguf output: ggml's own unless given)")
      ->check(CLI::IsMember({"even", "toward_zero", "away"}))
      ->capture_default_str();
  qc->add_option("--layout", q.layout, "mxfp4 byte layout: ocp (HF/gpt-oss _blocks/_scales) or ggml (block_mxfp4)")
      ->check(CLI::IsMember({"ocp", "ggml"}))
      ->capture_default_str();
  qc->add_option("--imatrix", q.imatrix,
                 "llama.cpp importance matrix (imatrix .gguf or legacy .dat): column weights for --rule hessian "
                 "(and mse, lsq for .gguf outputs)");
  qc->add_flag("--quantize-output", q.quantize_output,
               ".gguf: also quantize the output tensor (output.weight, or a tied token_embd.weight), which is kept "
               "as it is by default");
  qc->add_option("--hessian", q.hessian,
                 "calibration activations (.safetensors, NAME: [T, K]) for --rule hessian and --method gptq");
  qc->add_option("--hessian-kind", q.hessian_kind, "what --hessian holds: activations [T, K] or matrix (H = X^T X, [K, K])")
      ->check(CLI::IsMember({"activations", "matrix"}))
      ->capture_default_str();
  qc->add_option("--hessian-map", q.hessian_map,
                 "JSON file mapping weight names to the names in --hessian (q, k, v share one input)");
  qc->add_option("--method", q.method, "rtn (round to nearest) or gptq (error feedback with --hessian)")
      ->check(CLI::IsMember({"rtn", "gptq"}))
      ->capture_default_str();
  auto* damp_opt = qc->add_option("--damp", q.damp, "gptq damping, relative to the mean of diag(H)")->capture_default_str();
  qc->add_flag("--act-order", q.act_order, "gptq: columns by decreasing diag(H), block scales fixed first");
  qc->add_option("--rotate", q.rotate, "none, or hadamard: quantize W R (block Hadamard of the block size)")
      ->check(CLI::IsMember({"none", "hadamard"}))
      ->capture_default_str();
  qc->add_option("--rotate-seed", q.rotate_seed,
                 "--rotate hadamard with random signs: R = diag(signs) H / sqrt(n), signs from splitmix64 at this seed "
                 "(0 to 2^64 - 1; recorded as blockq.rotation_seed)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {  // CLI11 would wrap -1 and saturate 2^64 into a uint64
            return parse_u64(v) ? std::string() : "'" + v + "' is not " + std::string(u64_range);
          },
          "UINT64"));
  auto* tensors_opt = qc->add_option("--tensors", q.tensors,
                                     "regular expression (RE2 syntax, searched in names) selecting the tensors to quantize [default: floating "
                                     "tensors of rank >= 2 whose last dimension is a multiple of the block]");
  qc->add_option("--exclude", q.exclude, "regular expression (RE2 syntax, searched in names) of tensors never quantized");
  qc->add_option("--export", q.export_name,
                 "output convention: blockq (one file) or, for a model folder, compressed-tensors (int4, int8, uint4, "
                 "uint8, nvfp4, mxfp4) or modelopt (nvfp4) [default: blockq; model folder: compressed-tensors]")
      ->check(CLI::IsMember({"blockq", "compressed-tensors", "modelopt"}));
  qc->add_option("--shards", q.shards,
                 "model folder: quantize only these shards (names, 1-based numbers, ranges A-B) into OUT_DIR; "
                 "then blockq finalize OUT_DIR");
  qc->add_option("--act-amax", q.act_amax, "--export modelopt: JSON {\"module\": activation amax} for input_scale");
  qc->add_flag("--no-fuse", q.no_fuse, "NVFP4 exports: no shared tensor scale for q/k/v and gate/up");
  qc->add_option("--threads", q.threads, "worker threads [default: all cores]")->check(integer_in(1, max_threads));

  std::string finalize_dir;
  auto* fc = app.add_subcommand("finalize", "write the index, configs and copied files of a folder quantized with --shards");
  fc->add_option("OUT_DIR", finalize_dir, "the output folder of blockq quantize --shards")->required();

  dequantize_options d;
  auto* dc = app.add_subcommand("dequantize", "restore a quantized file's tensors as F32 under their names and shapes");
  dc->add_option("INPUT", d.input, "a .safetensors file written by blockq quantize, or a .gguf file")->required();
  dc->add_option("-o,--output", d.output, "output .safetensors file (.gguf for a .gguf input: F32 tensors)")->required();
  dc->add_option("--threads", d.threads, "worker threads [default: all cores]")->check(integer_in(1, max_threads));

  report_options r;
  auto* rc = app.add_subcommand("report", "bits, MSE, SQNR, max error and speed of formats x rules, per tensor and overall");
  rc->add_option("INPUT", r.input, ".safetensors, .npy or .gguf file [default: the built-in suite]");
  auto* formats_opt = rc->add_option("--formats", r.formats, "comma-separated formats [default: mxfp4,nvfp4,fp4,int4,uint4,int8]");
  auto* rules_opt = rc->add_option("--rules", r.rules, "comma-separated rules; those that do not apply to a format are skipped "
                                     "[default: each format's default rule, plus mse for formats of at most 6 bits]");
  rc->add_flag("--csv", r.csv, "comma-separated values for machines");
  rc->add_option("--hessian", r.hessian,
                 "calibration activations (.safetensors, NAME: [T, K]): adds the output error ||X (W - Q)^T||^2 / "
                 "||X W^T||^2 of rtn and gptq, per tensor and pooled (and rule hessian)");
  rc->add_option("--hessian-map", r.hessian_map, "JSON file mapping weight names to the names in --hessian");

  grid_options g;
  auto* gc = app.add_subcommand("grid", "MSE-optimal scales of uniform and FP grids for a distribution (SPEC §9)");
  gc->add_option("--dist", g.dist, "normal, laplace, student_t:NU or logistic")->capture_default_str();
  gc->add_option("--bits", g.bits, "range of bit widths A-B")->capture_default_str();
  gc->add_flag("--csv", g.csv, "comma-separated values for machines");

  if (argc > 1 && argv[1][0] != '-') {
    const std::string cmd = argv[1];
    if (cmd != "quantize" && cmd != "dequantize" && cmd != "report" && cmd != "grid" && cmd != "finalize") {
      print_error("unknown command '" + cmd + "' (quantize, finalize, dequantize, report, grid; see blockq --help)");
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::string where = "blockq";
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    print_error(std::string(e.what()) + " (see " + where + " --help)");
    return 2;
  }

  try {
    if (qc->parsed()) {
      q.tensors_given = tensors_opt->count() > 0;
      q.ties_given = ties_opt->count() > 0;
      q.damp_given = damp_opt->count() > 0;
      run_quantize(q);
    } else if (fc->parsed()) {
      run_finalize(finalize_dir);
    } else if (dc->parsed()) {
      run_dequantize(d);
    } else if (rc->parsed()) {
      r.formats_given = formats_opt->count() > 0;
      r.rules_given = rules_opt->count() > 0;
      run_report(r);
    } else if (gc->parsed()) {
      run_grid(g);
    }
  } catch (const blockq_tool::error& e) {
    print_error(e.what());
    return 1;
  } catch (const std::invalid_argument& e) {
    print_error(library_message(e));
    return 1;
  } catch (const std::bad_alloc&) {
    print_error("out of memory");
    return 1;
  } catch (const std::exception& e) {
    print_error(e.what());
    return 1;
  }
  return 0;
}
