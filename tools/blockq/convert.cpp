// SPDX-License-Identifier: Apache-2.0
#include "convert.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <map>
#include <limits>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "blockq/hadamard.hpp"
#include "blockq/version.hpp"
#include "blockq/nvfp4.hpp"
#include "codec.hpp"
#include "export.hpp"
#include "folder.hpp"
#include "file.hpp"
#include "gguf_pipeline.hpp"
#include "imatrix.hpp"
#include "parallel.hpp"
#include "pipeline.hpp"

namespace blockq_tool {
namespace {

using json = nlohmann::json;

// Tensors are converted and quantized in batches of about this many elements
// (their floats are held in memory), in chunks of about chunk_elements.
constexpr std::uint64_t batch_elements = std::uint64_t{32} << 20;
constexpr std::uint64_t chunk_elements = std::uint64_t{1} << 16;

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// One input tensor and what becomes of it.
struct job {
  planned_tensor p;               // p.in: the input tensor (dequantize: its first part)
  bool transform = false;         // quantized (or restored); else copied
  std::vector<tensor_spec> outs;  // what the sink writes for it, in order
  std::size_t k = 0, rows = 0;    // row length and count
  std::span<float> x;             // quantize: the input as floats; dequantize: the output (in a float_pool)
  std::vector<std::vector<std::uint8_t>> parts;  // quantize: the codec's parts; dequantize: the parts read
  std::vector<const tensor_info*> in_parts;       // dequantize: the parts to read
  std::vector<std::span<const std::uint8_t>> part_views;
  tensor_state st;
  const tensor_info* act = nullptr;  // calibration activations [T, K] (rule hessian)
  std::vector<float> act_x;
  std::vector<double> h_matrix;  // --hessian-kind matrix
  hessian_input h;
  std::vector<std::size_t> nonfinite;  // per chunk: NaN/Inf inputs
  std::vector<std::size_t> broken;     // per chunk: finite inputs whose blocks dequantize to NaN/Inf
  std::vector<std::uint8_t> extreme;   // per chunk: finite values outside [2^-100, 2^100] in magnitude
  bool verify = false;                 // whether its blocks are dequantized and checked
  std::size_t chunk_rows = 1;
};

std::size_t chunk_rows_for(std::size_t k) { return std::max<std::size_t>(1, chunk_elements / std::max<std::size_t>(1, k)); }
std::size_t num_chunks(const job& j) { return (j.rows + j.chunk_rows - 1) / j.chunk_rows; }

struct chunk_ref {
  job* j;
  std::size_t r0, r1, index;
};

std::vector<chunk_ref> chunks_of(const std::vector<job*>& batch) {
  std::vector<chunk_ref> c;
  for (job* j : batch)
    for (std::size_t i = 0, r = 0; r < j->rows; ++i, r += j->chunk_rows) c.push_back({j, r, std::min(j->rows, r + j->chunk_rows), i});
  return c;
}

// The floats of a batch's transformed tensors, reused from batch to batch
// (fresh pages for every batch cost more in page faults than the work).
class float_pool {
 public:
  // Points x of each job at its own part of the pool.
  void assign(const std::vector<job*>& work) {
    std::size_t total = 0;
    for (const job* j : work) total += j->rows * j->k;
    if (buf_.size() < total) buf_ = std::vector<float>(total);
    std::size_t at = 0;
    for (job* j : work) {
      j->x = std::span<float>(buf_.data() + at, j->rows * j->k);
      at += j->rows * j->k;
    }
  }

 private:
  std::vector<float> buf_;
};

// Groups consecutive jobs so that the transformed ones in a group hold about
// batch_elements elements, and calls f(group) for each, in order.
template <class F>
void for_each_batch(std::vector<job>& jobs, F&& f) {
  std::vector<job*> batch;
  std::uint64_t held = 0;
  for (job& j : jobs) {
    const std::uint64_t n = j.transform ? std::uint64_t{j.rows} * j.k : 0;
    if (!batch.empty() && held + n > batch_elements) {
      f(batch);
      batch.clear();
      held = 0;
    }
    batch.push_back(&j);
    held += n;
  }
  if (!batch.empty()) f(batch);
}

std::uint64_t transformed_elements(const std::vector<job>& jobs) {
  std::uint64_t n = 0;
  for (const job& j : jobs)
    if (j.transform) n += std::uint64_t{j.rows} * j.k;
  return n;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000.0 && u < 4) b /= 1000.0, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

// Copies a tensor from the source to the sink through a bounded buffer.
void copy_tensor(const source& src, const tensor_info& t, sink& dst, std::size_t index, std::vector<std::uint8_t>& buf) {
  constexpr std::uint64_t step = std::uint64_t{16} << 20;
  for (std::uint64_t at = 0; at < t.size; at += step) {
    const std::size_t n = static_cast<std::size_t>(std::min(step, t.size - at));
    buf.resize(n);
    src.read(t, at, buf);
    dst.write(index, buf);
  }
}

// Plans every job's outputs with the sink, then writes them in order;
// `process` fills a batch's transformed jobs first.
template <class Process>
std::uint64_t write_all(const source& src, sink& dst, std::vector<job>& jobs, const quant_config* cfg, Process&& process) {
  std::vector<planned_output> plan;
  std::vector<planned_tensor> tensors;
  tensors.reserve(jobs.size());
  for (job& j : jobs) {
    j.p.first = plan.size();
    j.p.count = j.outs.size();
    for (tensor_spec& s : j.outs) plan.push_back({std::move(s), j.p.in});
    j.outs.clear();
    tensors.push_back(j.p);
  }
  dst.begin(plan, tensors, src.metadata(), cfg);
  std::vector<std::uint8_t> buf;
  for_each_batch(jobs, [&](std::vector<job*>& batch) {
    process(batch);
    for (job* j : batch) {
      if (!j->transform) {
        copy_tensor(src, *j->p.in, dst, j->p.first, buf);
      } else if (j->p.quantized_with) {
        dst.write_quantized(j->p, j->parts);
      } else {
        dst.write(j->p.first, {reinterpret_cast<const std::uint8_t*>(j->x.data()), j->x.size() * sizeof(float)});
      }
      j->x = {};
      j->parts = std::vector<std::vector<std::uint8_t>>();
    }
  });
  return dst.commit();
}

// Whether x holds finite non-zero values of magnitude above 2^100 or below
// 2^-100. Within that range every format's scales and products stay far
// from float32's overflow and underflow; outside it, what a format does is
// checked (below) rather than assumed.
bool has_extreme_values(std::span<const float> x) {
  constexpr float hi = 0x1p100f, lo = 0x1p-100f;
  bool e = false;
  for (float v : x) {
    const float a = std::fabs(v);
    e |= (a > hi && a <= std::numeric_limits<float>::max()) || (a < lo && a > 0.0f);
  }
  return e;
}

// Checks what was just quantized: dequantizes rows [r0, r1) over the job's
// floats (no longer needed) and counts the NaN/Inf values in blocks whose
// inputs were all finite (a block with a NaN/Inf input is NaN by SPEC §3).
std::size_t dequantized_nonfinite(const codec& c, job& j, std::size_t r0, std::size_t r1,
                                  std::span<const std::span<std::uint8_t>> parts) {
  const std::size_t block = c.config().block, first = r0 * j.k, n = (r1 - r0) * j.k;
  thread_local std::vector<std::uint8_t> finite_block;
  finite_block.assign(n / block, 1);
  const float* x = j.x.data() + first;
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) finite_block[i / block] = 0;
  std::vector<std::span<const std::uint8_t>> in(parts.begin(), parts.end());
  c.dequantize_rows(in, j.k, r0, r1, j.x);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += finite_block[i / block] && !std::isfinite(x[i]);
  return bad;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

namespace {

// The largest finite |x| of a tensor, read in bounded pieces.
float tensor_amax(const source& src, const tensor_info& t) {
  constexpr std::uint64_t step = std::uint64_t{4} << 20;  // elements a piece
  const std::size_t size = dtype_size(t.type);
  std::vector<std::uint8_t> raw;
  std::vector<float> x;
  float amax = 0.0f;
  for (std::uint64_t at = 0, n = t.numel(); at < n; at += step) {
    const std::size_t m = static_cast<std::size_t>(std::min(step, n - at));
    raw.resize(m * size);
    x.resize(m);
    src.read(t, at * size, raw);
    to_float(t.type, raw.data(), m, x.data());
    for (float v : x)
      if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
  }
  return amax;
}

struct quantize_result {
  std::size_t quantized = 0;
  std::uint64_t written = 0;
};

// How --hessian is read (names through --hessian-map, activations or H itself) and the
// rotation of --rotate hadamard (W R, X R, R^T H R).
struct calibration {
  std::unordered_map<std::string, std::string> names;
  bool matrix = false;
  const blockq::block_rotation* rot = nullptr;
  const importance_matrix* im = nullptr;  // --imatrix: column weights
  bool experts = false;                   // a .gguf output: per-expert rows, missing entries warned
};


// The shared part of quantize: every tensor of `in` quantized (selected[i])
// or copied into `out`, in batches, on `threads` threads. `acts` holds the
// calibration activations of rule hessian.
quantize_result quantize_into(const source& in, sink& out, const codec& coder, const method& how, const source* acts,
                              const std::string& acts_path, const std::vector<bool>& selected, const quant_config& cfg,
                              unsigned threads, const calibration& cal = {}) {
  const bool matrix_kind = cal.matrix;
  const blockq::block_rotation* rot = cal.rot;
  const importance_matrix* im = cal.im;
  const bool experts = cal.experts;
  std::vector<job> jobs(in.tensors().size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    job& j = jobs[i];
    const tensor_info& t = in.tensors()[i];
    j.p.in = &t;
    if (!selected[i]) {
      j.outs = out.outputs(t, nullptr);
      continue;
    }
    j.outs = out.outputs(t, &coder);
    // What the tool writes, it must read back: no part above the readers' rank limit.
    std::size_t rank = 0;
    for (const tensor_spec& o : j.outs) rank = std::max(rank, o.shape.size());
    if (rank > max_rank) {
      warn("tensor " + in_quotes(t.name) + " of rank " + std::to_string(t.shape.size()) + " would be stored with rank " +
           std::to_string(rank) + " in " + std::string(cfg.format->name) + ", above the limit of " +
           std::to_string(max_rank) + "; copied unchanged");
      j.outs = out.outputs(t, nullptr);
      continue;
    }
    const std::uint64_t k = t.shape.back();
    j.transform = true;
    j.p.quantized_with = &coder;
    j.k = static_cast<std::size_t>(k);
    j.rows = static_cast<std::size_t>(t.numel() / k);
    j.chunk_rows = chunk_rows_for(j.k);
    if (acts) {
      const auto mapped = cal.names.find(t.name);
      const std::string& an = mapped == cal.names.end() ? t.name : mapped->second;
      const std::string via = mapped == cal.names.end() ? "" : " (mapped to " + in_quotes(an) + ")";
      const tensor_info* a = acts->find(an);
      if (!a) throw error(acts_path + " has no " + (matrix_kind ? "Hessian" : "activations") + " for tensor " + in_quotes(t.name) + via);
      if (matrix_kind) {
        if (!is_quantizable(a->type) || a->shape.size() != 2 || a->shape[0] != k || a->shape[1] != k)
          throw error("Hessian " + in_quotes(an) + " in " + acts_path + " has shape " + shape_string(a->shape) + " " +
                      std::string(to_string(a->type)) + "; expected floats of shape [" + std::to_string(k) + ", " +
                      std::to_string(k) + "] for the weight " + in_quotes(t.name) + " " + shape_string(t.shape));
      } else if (!is_quantizable(a->type) || a->shape.size() != 2 || a->shape[1] != k || a->shape[0] == 0) {
        throw error("activations " + in_quotes(an) + " in " + acts_path + " have shape " + shape_string(a->shape) + " " +
                    std::string(to_string(a->type)) + "; expected floats of shape [T, " + std::to_string(k) +
                    "] for the weight " + shape_string(t.shape) +
                    (mapped == cal.names.end() ? "" : " (weight " + in_quotes(t.name) + ")"));
      }
      j.act = a;
    }
    if (im) {  // llama.cpp's importance matrix: column weights (per expert of a 3-D tensor)
      const std::uint64_t n_mat = t.shape.size() >= 2 ? t.numel() / k / t.shape[t.shape.size() - 2] : 1;
      if (im->columns(t.name, k, 0, n_mat).empty()) {
        if (!experts)
          throw error("--imatrix has no entry for tensor " + in_quotes(t.name) + " (rule hessian needs one for every tensor it quantizes)");
        warn("--imatrix has no entry for tensor " + in_quotes(t.name) + "; it is quantized unweighted");
      } else {
        j.h.importance = im->weights.at(t.name);
        if (!experts && j.h.importance.size() != k)
          throw error("tensor " + in_quotes(t.name) + ": importance matrices of several experts are read for .gguf outputs only");
      }
    }
  }

  progress bar("quantizing", transformed_elements(jobs));
  float_pool pool;
  quantize_result res;
  const blockq::nvfp4_quantizer<> nvfp4;
  res.written = write_all(in, out, jobs, &cfg, [&](std::vector<job*>& batch) {
    std::vector<job*> work;
    for (job* j : batch)
      if (j->transform) work.push_back(j);
    if (work.empty()) return;
    pool.assign(work);
    for (job* j : work) {
      j->nonfinite.assign(num_chunks(*j), 0);
      j->broken.assign(num_chunks(*j), 0);
      j->extreme.assign(num_chunks(*j), 0);
      j->parts.clear();
      for (const tensor_spec& s : coder.outputs(j->p.in->name, j->p.in->shape))
        j->parts.emplace_back(static_cast<std::size_t>(s.bytes()));
    }
    const auto chunks = chunks_of(work);
    // 1. read and convert to float, chunk by chunk
    parallel_for(chunks.size(), threads, [&](std::size_t i) {
      const chunk_ref& c = chunks[i];
      const tensor_info& t = *c.j->p.in;
      const std::size_t size = dtype_size(t.type), first = c.r0 * c.j->k, n = (c.r1 - c.r0) * c.j->k;
      float* dst = c.j->x.data() + first;
      if (t.type == dtype::F32) {
        in.read(t, first * size, {reinterpret_cast<std::uint8_t*>(dst), n * size});
        c.j->nonfinite[c.index] = to_float(t.type, reinterpret_cast<const std::uint8_t*>(dst), n, dst);
      } else {
        thread_local std::vector<std::uint8_t> buf;
        buf.resize(n * size);
        in.read(t, first * size, buf);
        c.j->nonfinite[c.index] = to_float(t.type, buf.data(), n, dst);
      }
      c.j->extreme[c.index] = has_extreme_values({dst, n});
      if (rot) rot->rotate(std::span<float>(dst, n));  // W R, rows whole
    });
    // 2. per-tensor values (NVFP4 tensor scale, Hessians)
    parallel_for(work.size(), threads, [&](std::size_t i) {
      job& j = *work[i];
      if (j.act) {
        const std::vector<std::uint8_t> raw = acts->read_all(*j.act);
        j.act_x.resize(static_cast<std::size_t>(j.act->numel()));
        if (const std::size_t bad = to_float(j.act->type, raw.data(), j.act_x.size(), j.act_x.data()))
          throw error((matrix_kind ? "Hessian " : "activations ") + in_quotes(j.act->name) + " in " + acts_path +
                      (matrix_kind ? " has " : " have ") + std::to_string(bad) + " NaN/Inf values");
        if (matrix_kind) {
          j.h_matrix.assign(j.act_x.begin(), j.act_x.end());
          if (rot) j.h_matrix = rot->rotate_hessian(j.h_matrix, j.k);  // R^T H R
          j.h.matrix = j.h_matrix;
        } else {
          if (rot) rot->rotate(std::span<float>(j.act_x));  // X R
          j.h.activations = j.act_x;
        }
      }
      try {
        j.st = how.prepare(coder, j.x, j.k, j.act || !j.h.importance.empty() ? &j.h : nullptr);
      } catch (const std::invalid_argument& e) {
        throw error("tensor " + in_quotes(j.p.in->name) + ": " + library_message(e));
      }
      // Fused layers: one tensor scale from the group's largest amax.
      if (cfg.format->fam == family::nvfp4)
        if (const std::optional<float> a = out.shared_amax(*j.p.in)) j.st.tensor_scale = nvfp4.tensor_scale(std::span<const float>(&*a, 1));
      j.act_x = std::vector<float>();
      j.h_matrix = std::vector<double>();
      j.h = {};
    });
    for (job* j : work) {
      j->verify = std::find(j->extreme.begin(), j->extreme.end(), 1) != j->extreme.end();
      std::size_t bad = 0;
      for (std::size_t b : j->nonfinite) bad += b;
      if (bad)
        warn("tensor " + in_quotes(j->p.in->name) + " has " + std::to_string(bad) +
             " NaN/Inf values; their blocks get a NaN scale and zero codes (SPEC §3) and dequantize to NaN");
    }
    // 3. quantize
    parallel_for(
        chunks.size(), threads,
        [&](std::size_t i) {
          const chunk_ref& c = chunks[i];
          std::vector<std::span<std::uint8_t>> parts(c.j->parts.begin(), c.j->parts.end());
          how.quantize_rows(coder, c.j->x, c.j->k, c.r0, c.r1, c.j->st, parts);
          if (c.j->verify) c.j->broken[c.index] = dequantized_nonfinite(coder, *c.j, c.r0, c.r1, parts);
          bar.add((c.r1 - c.r0) * c.j->k);
        },
        &bar);
    for (job* j : work) {
      std::size_t broken = 0;
      for (std::size_t b : j->broken) broken += b;
      if (broken)
        warn("tensor " + in_quotes(j->p.in->name) + ": " + std::to_string(broken) + " finite values dequantize to NaN/Inf with " +
             std::string(cfg.format->name) + " (the format cannot represent this tensor's range)");
    }
    res.quantized += work.size();
  });
  bar.finish();
  return res;
}

void check_hessian_options(const quantize_options& opt, const quant_config& cfg, bool acts_for_scales) {
  if (!opt.hessian.empty() && cfg.rule != blockq::scale_rule::hessian && !acts_for_scales)
    throw error("--hessian is used by --rule hessian only (and --method gptq)");
  if (!opt.hessian.empty() && !opt.imatrix.empty()) throw error("give --hessian or --imatrix, not both");
  if (!opt.imatrix.empty() && cfg.rule != blockq::scale_rule::hessian)
    throw error("--imatrix is used by --rule hessian, not by rule " + std::string(blockq::to_string(cfg.rule)));
  if (cfg.rule == blockq::scale_rule::hessian && opt.hessian.empty() && opt.imatrix.empty())
    throw error("--rule hessian needs calibration activations (--hessian ACTS) or an importance matrix (--imatrix FILE)");
  if (cfg.format->fam != family::mx && cfg.format->fam != family::nvfp4 && cfg.format->fam != family::fp4 &&
      opt.ties != "even")
    warn("--ties applies to the float formats; " + std::string(cfg.format->name) + " codes round half to even");
}

void report_done(const quantize_options& opt, const quant_config& cfg, const quantize_result& r, std::size_t total,
                 std::chrono::steady_clock::time_point t0) {
  std::fprintf(stderr, "blockq: %s: %zu tensor%s quantized to %s (rule %s, block %zu%s%s), %zu copied, %s in %.2f s\n",
               opt.output.c_str(), r.quantized, r.quantized == 1 ? "" : "s", std::string(cfg.format->name).c_str(),
               std::string(blockq::to_string(cfg.rule)).c_str(), cfg.block, cfg.method == "gptq" ? ", gptq" : "",
               cfg.rotate ? ", hadamard rotation" : "", total - r.quantized,
               human_bytes(static_cast<double>(r.written)).c_str(), seconds_since(t0));
}

// --shards: comma-separated shard file names, 1-based numbers or ranges A-B.
std::vector<std::string> parse_shards(const std::string& list, const folder_source& src) {
  std::vector<std::string> out;
  const auto& all = src.shards();
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    at = comma + 1;
    if (item.empty()) continue;
    const std::size_t dash = item.find('-');
    auto number = [&](const std::string& s) -> std::size_t {
      if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return 0;
      return std::stoul(s);
    };
    const std::size_t a = number(dash == std::string::npos ? item : item.substr(0, dash));
    const std::size_t b = dash == std::string::npos ? a : number(item.substr(dash + 1));
    if (a && b) {
      if (a > b || b > all.size())
        throw error("--shards " + item + ": the model has shards 1 to " + std::to_string(all.size()));
      for (std::size_t i = a; i <= b; ++i) out.push_back(all[i - 1]);
    } else {
      out.push_back(item);  // a file name, checked by folder_source
    }
  }
  if (out.empty()) throw error("--shards '" + list + "' names no shard");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Activation amax per weight, for ModelOpt's input_scale: from --act-amax
// (JSON {"module or weight name": amax}) or from the activations of --hessian.
std::map<std::string, float> input_amax(const quantize_options& opt, const folder_source& src, const std::vector<bool>& sel,
                                        unsigned threads) {
  std::map<std::string, float> out;
  std::vector<const tensor_info*> want;
  for (std::size_t i = 0; i < sel.size(); ++i)
    if (sel[i]) want.push_back(&src.tensors()[i]);
  if (!opt.act_amax.empty()) {
    const input_file f(opt.act_amax);
    const auto b = f.read_all();
    json j;
    try {
      j = json::parse(b.begin(), b.end());
    } catch (const json::exception&) {
      throw error(opt.act_amax + " is not valid JSON");
    }
    if (!j.is_object()) throw error(opt.act_amax + " is not a JSON object of activation amax values");
    for (const tensor_info* t : want) {
      const std::string m = module_of(t->name);
      const json* v = j.contains(t->name) ? &j[t->name] : j.contains(m) ? &j[m] : nullptr;
      if (!v || !v->is_number() || !(v->get<double>() > 0.0) || !std::isfinite(v->get<double>()))
        throw error(opt.act_amax + " has no positive activation amax for " + in_quotes(m));
      out[t->name] = v->get<float>();
    }
    return out;
  }
  const auto acts = open_source(opt.hessian);
  std::vector<float> amax(want.size());
  parallel_for(want.size(), threads, [&](std::size_t i) {
    const tensor_info* a = acts->find(want[i]->name);
    if (!a || !is_quantizable(a->type)) throw error(opt.hessian + " has no activations for tensor " + in_quotes(want[i]->name));
    amax[i] = tensor_amax(*acts, *a);
    if (!(amax[i] > 0.0f)) throw error("the activations of " + in_quotes(want[i]->name) + " in " + opt.hessian + " are all zero");
  });
  for (std::size_t i = 0; i < want.size(); ++i) out[want[i]->name] = amax[i];
  return out;
}

void run_quantize_folder(const quantize_options& opt, std::chrono::steady_clock::time_point t0) {
  if (opt.method != "rtn" || opt.rotate != "none" || opt.rotate_seed || opt.act_order || opt.damp_given ||
      opt.hessian_kind != "activations" || !opt.hessian_map.empty())
    throw error("--method gptq, --rotate, --hessian-kind and --hessian-map apply to a .safetensors or .npy input, not yet "
                "to a model folder");
  const quant_config cfg = make_config(opt.format, opt.rule, opt.block, opt.ties, opt.layout);
  const std::optional<export_kind> kind = parse_export(opt.export_name.empty() ? "compressed-tensors" : opt.export_name);
  if (!kind) throw error("unknown --export '" + opt.export_name + "' (blockq, compressed-tensors, modelopt)");
  if (*kind == export_kind::blockq)
    throw error("--export blockq writes one .safetensors file; a model folder goes to --export compressed-tensors or modelopt");
  check_export_format(*kind, cfg);
  const bool modelopt = *kind == export_kind::modelopt;
  if (modelopt && opt.hessian.empty() && opt.act_amax.empty())
    throw error("--export modelopt needs activation statistics for input_scale (--hessian ACTS or --act-amax FILE): "
                "engines load its checkpoints as W4A4 and read input_scale; without calibration data use the "
                "weight-only --export compressed-tensors --format nvfp4");
  if (!opt.act_amax.empty() && !modelopt) throw error("--act-amax is used by --export modelopt only");
  check_hessian_options(opt, cfg, modelopt);
  const unsigned threads = opt.threads ? opt.threads : default_threads();

  {
    // An output inside the model folder would be listed, and copied, as one of its files.
    namespace fs = std::filesystem;
    const std::string in_dir = fs::weakly_canonical(opt.input).string() + "/",
                      out_dir = fs::weakly_canonical(opt.output).string() + "/";
    if (out_dir.compare(0, in_dir.size(), in_dir) == 0 || in_dir.compare(0, out_dir.size(), out_dir) == 0)
      throw error("the output folder '" + opt.output + "' and the model folder '" + opt.input + "' overlap; write elsewhere");
  }
  const folder_source full(opt.input);
  std::unique_ptr<folder_source> part;
  if (!opt.shards.empty()) part = std::make_unique<folder_source>(opt.input, parse_shards(opt.shards, full));
  const folder_source& work = part ? *part : full;

  // Selection over the whole model (the ignore list and the fused groups
  // need every shard), then the exports' own limits.
  export_settings s;
  s.kind = *kind;
  s.cfg = cfg;
  selection sel;
  if (opt.tensors_given) sel.include.emplace(opt.tensors);
  std::optional<name_filter> exclude;
  if (!opt.exclude.empty()) exclude.emplace(opt.exclude);
  const auto probe = make_folder_sink(opt.output, full, s, true);
  std::vector<bool> chosen = select_tensors(full, *probe, sel, cfg);
  std::map<std::string, bool> chosen_by_name;
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    const tensor_info& t = full.tensors()[i];
    if (chosen[i] && exclude && exclude->matches(t.name)) chosen[i] = false;
    if (chosen[i] && (t.shape.size() != 2 || module_of(t.name) == t.name)) {
      warn("tensor " + in_quotes(t.name) + " " + shape_string(t.shape) + " is not the 2-D weight of a linear layer; copied unchanged");
      chosen[i] = false;
    }
    if (chosen[i] && (cfg.format->fam == family::nvfp4 || cfg.format->fam == family::mx) && t.shape[1] % 2 != 0) chosen[i] = false;
    chosen_by_name[t.name] = chosen[i];
  }
  s.scale_type = dtype::BF16;
  for (std::size_t i = 0; i < chosen.size(); ++i)
    if (chosen[i]) {
      s.scale_type = full.tensors()[i].type;
      break;
    }
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    const tensor_info& t = full.tensors()[i];
    if (!chosen[i] && is_ignored_linear(t.name, t.shape)) s.ignore.push_back(module_of(t.name));
  }
  std::sort(s.ignore.begin(), s.ignore.end());

  std::vector<bool> selected(work.tensors().size());
  for (std::size_t i = 0; i < selected.size(); ++i) selected[i] = chosen_by_name.at(work.tensors()[i].name);

  // Fused layers (q/k/v, gate/up) share one NVFP4 tensor scale from their largest amax.
  if (cfg.format->fam == family::nvfp4 && !opt.no_fuse) {
    std::map<std::string, std::vector<const tensor_info*>> groups;
    for (std::size_t i = 0; i < chosen.size(); ++i)
      if (chosen[i])
        if (std::string g = fused_group(full.tensors()[i].name); !g.empty()) groups[g].push_back(&full.tensors()[i]);
    std::vector<const tensor_info*> members;
    for (auto& [g, m] : groups) {
      bool here = false;
      for (const tensor_info* t : m) here |= work.find(t->name) != nullptr;
      if (m.size() > 1 && here) members.insert(members.end(), m.begin(), m.end());
    }
    std::vector<float> amax(members.size());
    parallel_for(members.size(), threads, [&](std::size_t i) { amax[i] = tensor_amax(full, *members[i]); });
    std::map<std::string, float> group_max;
    for (std::size_t i = 0; i < members.size(); ++i) {
      float& gm = group_max[fused_group(members[i]->name)];
      gm = std::max(gm, amax[i]);
    }
    for (const tensor_info* t : members) s.shared_amax[t->name] = group_max[fused_group(t->name)];
  }
  if (modelopt) s.input_amax = input_amax(opt, work, selected, threads);

  std::unique_ptr<source> acts;
  if (cfg.rule == blockq::scale_rule::hessian) acts = open_source(opt.hessian);
  const auto coder = make_export_codec(*kind, cfg, s.scale_type);
  const auto how = make_method("rtn");
  const auto out = make_folder_sink(opt.output, work, s, part != nullptr);
  const quantize_result r = quantize_into(work, *out, *coder, *how, acts.get(), opt.hessian, selected, cfg, threads);
  report_done(opt, cfg, r, work.tensors().size(), t0);
  if (part) std::fprintf(stderr, "blockq: %s: run blockq finalize %s once every shard is done\n", opt.output.c_str(), opt.output.c_str());
}

// A .gguf input to a .gguf output: ggml block types (gguf_pipeline.hpp).
void run_quantize_gguf(const quantize_options& opt, std::chrono::steady_clock::time_point t0) {
  bool exact = false;
  quant_config cfg;
  std::tie(cfg, exact) = make_ggml_config(opt.format, opt.rule, opt.block, opt.ties, opt.ties_given);
  std::optional<importance_matrix> im;
  if (!opt.imatrix.empty()) im = read_imatrix(opt.imatrix);
  const bool weighted = cfg.rule == blockq::scale_rule::hessian || cfg.rule == blockq::scale_rule::mse ||
                        cfg.rule == blockq::scale_rule::lsq;
  if (im && !weighted)
    throw error("--imatrix is used by --rule hessian, mse and lsq, not by rule " + std::string(blockq::to_string(cfg.rule)));
  if (!opt.hessian.empty()) throw error("a .gguf output takes --imatrix (the Hessian's diagonal), not --hessian activations");
  if (cfg.rule == blockq::scale_rule::hessian && !im) throw error("--rule hessian needs an importance matrix (--imatrix FILE)");
  if (!opt.exclude.empty()) throw error("--exclude applies to .safetensors outputs; use --tensors");
  if (opt.method != "rtn" || opt.rotate != "none" || opt.rotate_seed || !opt.hessian_map.empty())
    throw error("a .gguf output is written with --method rtn, no --rotate and no --hessian-map");
  const auto coder = make_ggml_codec(cfg, {find_ggml_type(cfg), exact, im ? &*im : nullptr});
  const auto how = make_method("rtn");
  selection sel;
  if (opt.tensors_given) sel.include.emplace(opt.tensors);
  const auto in = open_source(opt.input);
  if (in->meta(meta_tensors) || in->meta("blockq.format"))
    throw error(opt.input + " is already quantized by blockq; dequantize it first");
  if (!gguf_header_of(*in)) throw error("a .gguf output needs a .gguf input (" + opt.input + " is not one); write .safetensors instead");
  const auto out = make_gguf_sink(opt.output, *in, {opt.quantize_output, opt.imatrix});
  const std::vector<bool> selected = select_tensors(*in, *out, sel, cfg);
  const unsigned threads = opt.threads ? opt.threads : default_threads();
  calibration cal;
  cal.im = im ? &*im : nullptr;
  cal.experts = true;
  const quantize_result r = quantize_into(*in, *out, *coder, *how, nullptr, "", selected, cfg, threads, cal);
  report_done(opt, cfg, r, in->tensors().size(), t0);
}

}  // namespace

// --hessian-map FILE: a JSON object from weight names to activation names.
std::unordered_map<std::string, std::string> read_hessian_map(const std::string& path) {
  std::unordered_map<std::string, std::string> m;
  if (path.empty()) return m;
  const input_file f(path);
  const std::vector<std::uint8_t> bytes = f.read_all();
  json j;
  try {
    j = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception&) {
    throw error(path + ": not valid JSON (--hessian-map wants an object from weight names to activation names)");
  }
  if (!j.is_object()) throw error(path + ": not a JSON object (--hessian-map wants weight name -> activation name)");
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) throw error(path + ": the value of " + in_quotes(k) + " is not a string");
    m.emplace(k, v.get<std::string>());
  }
  return m;
}

void run_quantize(const quantize_options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  if (is_model_folder(opt.input)) {
    if (!opt.imatrix.empty()) throw error("--imatrix applies to .safetensors and .gguf inputs, not to model folders");
    run_quantize_folder(opt, t0);
    return;
  }
  if (!opt.export_name.empty() && opt.export_name != "blockq")
    throw error("--export " + opt.export_name + " writes a model folder: give a model folder (config.json and safetensors shards) as input");
  if (!opt.shards.empty()) throw error("--shards applies to a model folder input");
  if (!opt.act_amax.empty()) throw error("--act-amax is used by --export modelopt only");
  if (opt.output.size() > 5 && opt.output.ends_with(".gguf")) {
    run_quantize_gguf(opt, t0);
    return;
  }
  quant_config cfg = make_config(opt.format, opt.rule, opt.block, opt.ties, opt.layout);
  const auto how = make_method(opt.method);
  const bool gptq = how->name() == "gptq";
  cfg.method = how->name();
  if (!gptq && (opt.act_order || opt.damp_given)) throw error("--act-order and --damp apply to --method gptq");
  if (!(opt.damp >= 0.0 && std::isfinite(opt.damp)))
    throw error("--damp must be finite and non-negative, got " + std::to_string(opt.damp));
  cfg.damp = opt.damp;
  cfg.act_order = opt.act_order;
  std::optional<blockq::block_rotation> rot;
  if (opt.rotate_seed && opt.rotate != "hadamard") throw error("--rotate-seed applies to --rotate hadamard");
  if (opt.rotate == "hadamard") {
    try {
      rot.emplace(cfg.block, opt.rotate_seed);
    } catch (const std::invalid_argument& e) {
      throw error("--rotate hadamard rotates blocks of the block size: " + library_message(e));
    }
    cfg.rotate = true;
    cfg.rotate_seed = opt.rotate_seed;
  } else if (opt.rotate != "none") {
    throw error("unknown --rotate '" + opt.rotate + "' (none, hadamard)");
  }
  const auto coder = make_codec(cfg);
  check_safetensors_output(opt.output);
  check_hessian_options(opt, cfg, gptq);
  if (gptq && opt.hessian.empty())
    throw error("--method gptq needs calibration activations or a Hessian (--hessian ACTS)");
  if (opt.hessian_kind != "activations" && opt.hessian_kind != "matrix")
    throw error("unknown --hessian-kind '" + opt.hessian_kind + "' (activations, matrix)");
  calibration cal;
  cal.matrix = opt.hessian_kind == "matrix";
  cal.rot = rot ? &*rot : nullptr;
  if ((cal.matrix || !opt.hessian_map.empty()) && opt.hessian.empty())
    throw error("--hessian-kind and --hessian-map need --hessian");
  cal.names = read_hessian_map(opt.hessian_map);
  selection sel;
  if (opt.tensors_given) sel.include.emplace(opt.tensors);

  const auto in = open_source(opt.input);
  if (in->meta(meta_tensors) || in->meta("blockq.format"))
    throw error(opt.input + " is already quantized by blockq; dequantize it first");
  std::unique_ptr<source> acts;
  if (!opt.hessian.empty()) acts = open_source(opt.hessian);
  std::vector<file_id> inputs(in->files().begin(), in->files().end());
  if (acts) inputs.insert(inputs.end(), acts->files().begin(), acts->files().end());
  const auto out = make_safetensors_sink(opt.output, inputs);
  std::vector<bool> selected = select_tensors(*in, *out, sel, cfg);
  if (!opt.exclude.empty()) {
    const name_filter ex(opt.exclude);
    for (std::size_t i = 0; i < selected.size(); ++i)
      if (ex.matches(in->tensors()[i].name)) selected[i] = false;
  }
  std::optional<importance_matrix> im;
  if (!opt.imatrix.empty()) im = read_imatrix(opt.imatrix);
  const unsigned threads = opt.threads ? opt.threads : default_threads();
  cal.im = im ? &*im : nullptr;
  const quantize_result r = quantize_into(*in, *out, *coder, *how, acts.get(), opt.hessian, selected, cfg, threads, cal);
  report_done(opt, cfg, r, in->tensors().size(), t0);
}

void run_dequantize(const dequantize_options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  if (opt.output.ends_with(".gguf")) {
    const auto src = open_source(opt.input);
    if (!gguf_header_of(*src)) throw error("a .gguf output needs a .gguf input (" + opt.input + " is not one)");
    dequantize_gguf(*src, opt.output, opt.threads ? opt.threads : default_threads());
    std::fprintf(stderr, "blockq: dequantized in %.2f s\n", seconds_since(t0));
    return;
  }
  check_safetensors_output(opt.output);
  const auto in = open_source(opt.input);
  if (gguf_header_of(*in)) throw error("a .gguf input is dequantized to a .gguf output (-o OUTPUT.gguf)");
  const std::string* rec = in->meta(meta_tensors);
  if (!rec) throw error(opt.input + " was not written by blockq quantize (no blockq.tensors metadata)");
  auto meta_or = [&](const char* key) -> std::string {
    const std::string* v = in->meta(key);
    if (!v) throw error(opt.input + ": metadata " + key + " is missing");
    return *v;
  };
  const std::string fmt = meta_or("blockq.format"), block_s = meta_or("blockq.block"),
                    ties = meta_or("blockq.ties"), lay = meta_or("blockq.layout");
  std::size_t block = 0;
  if (block_s.empty() || block_s.size() > 9 || block_s.find_first_not_of("0123456789") != std::string::npos ||
      (block = std::stoul(block_s)) == 0)
    throw error(opt.input + ": metadata blockq.block '" + block_s + "' is not a positive integer");
  // The rule does not change how codes decode; the format's default one is used.
  quant_config cfg;
  try {
    cfg = make_config(fmt, "", block, ties, lay);
  } catch (const error& e) {
    throw error(opt.input + ": " + e.what());
  }
  const auto coder = make_codec(cfg);
  // A Hadamard rotation of the block size (blockq.rotation): the weights come back in their own basis.
  std::optional<blockq::block_rotation> rot;
  if (const std::string* r = in->meta("blockq.rotation"); r && *r != "none") {
    if (*r != "hadamard") throw error(opt.input + ": unknown metadata blockq.rotation '" + *r + "' (none, hadamard)");
    std::optional<std::uint64_t> seed;
    if (const std::string* s = in->meta("blockq.rotation_seed")) {
      seed = parse_u64(*s);
      if (!seed) throw error(opt.input + ": metadata blockq.rotation_seed '" + *s + "' is not " + u64_range);
    }
    try {
      rot.emplace(cfg.block, seed);
    } catch (const std::invalid_argument& e) {
      throw error(opt.input + ": blockq.rotation 'hadamard' with blockq.block " + block_s + ": " + library_message(e));
    }
  } else if (in->meta("blockq.rotation_seed")) {
    throw error(opt.input + ": metadata blockq.rotation_seed without blockq.rotation 'hadamard'");
  }
  const auto out = make_safetensors_sink(opt.output, *in);

  json record;
  try {
    record = json::parse(*rec);
  } catch (const json::exception&) {
    throw error(opt.input + ": metadata blockq.tensors is not valid JSON");
  }
  if (!record.is_object()) throw error(opt.input + ": metadata blockq.tensors is not a JSON object");

  // Every quantized tensor, and by each part's name the tensor it belongs to.
  struct restored {
    std::string name;
    shape_t shape;
    std::vector<const tensor_info*> parts;
  };
  std::vector<restored> quantized;
  std::unordered_map<std::string_view, std::size_t> part_of;
  quantized.reserve(record.size());
  part_of.reserve(record.size() * 3);
  for (const auto& [name, info] : record.items()) {
    const std::string who = opt.input + ": quantized tensor " + in_quotes(name);
    shape_t shape;
    const auto sh = info.is_object() ? info.find("shape") : info.end();
    if (!info.is_object() || sh == info.end() || !sh->is_array() || sh->empty() || sh->size() > max_rank)
      throw error(who + " has no valid shape in blockq.tensors");
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) throw error(who + " has no valid shape in blockq.tensors");
      shape.push_back(d.get<std::uint64_t>());
    }
    const std::uint64_t n = checked_numel(shape);
    checked_mul(n, 4, who + " byte size");
    if (shape.back() == 0 || shape.back() % cfg.block != 0 || (cfg.lay == layout::ggml && shape.back() % 32 != 0))
      throw error(who + " has shape " + shape_string(shape) + " whose last dimension is not a multiple of the block");
    restored r{name, std::move(shape), {}};
    for (const tensor_spec& p : coder->outputs(name, r.shape)) {
      const tensor_info* t = in->find(p.name);
      if (!t) throw error(who + ": its part " + in_quotes(p.name) + " is missing");
      if (t->type != p.type || t->shape != p.shape)
        throw error(who + ": its part " + in_quotes(p.name) + " is " + std::string(to_string(t->type)) + " " +
                    shape_string(t->shape) + ", expected " + std::string(to_string(p.type)) + " " + shape_string(p.shape));
      if (!part_of.emplace(t->name, quantized.size()).second)
        throw error(who + ": tensor " + in_quotes(p.name) + " is claimed twice");
      r.parts.push_back(t);
    }
    quantized.push_back(std::move(r));
  }

  // Walk the input in order: a quantized tensor is restored where its first part was.
  std::vector<job> jobs;
  std::vector<bool> done(quantized.size(), false);
  for (const tensor_info& t : in->tensors()) {
    const auto it = part_of.find(t.name);
    if (it == part_of.end()) {
      job j;
      j.p.in = &t;
      j.outs = out->outputs(t, nullptr);
      jobs.push_back(std::move(j));
      continue;
    }
    if (done[it->second]) continue;
    done[it->second] = true;
    const restored& r = quantized[it->second];
    job j;
    j.p.in = &t;
    j.transform = true;
    j.outs = {{r.name, dtype::F32, r.shape}};
    j.k = static_cast<std::size_t>(r.shape.back());
    j.rows = static_cast<std::size_t>(checked_numel(r.shape) / j.k);
    j.chunk_rows = chunk_rows_for(j.k);
    j.in_parts = r.parts;
    jobs.push_back(std::move(j));
  }
  const unsigned threads = opt.threads ? opt.threads : default_threads();
  progress bar("dequantizing", transformed_elements(jobs));
  float_pool pool;
  std::size_t restored_count = 0;
  write_all(*in, *out, jobs, nullptr, [&](std::vector<job*>& batch) {
    std::vector<job*> work;
    for (job* j : batch)
      if (j->transform) work.push_back(j);
    pool.assign(work);
    parallel_for(work.size(), threads, [&](std::size_t i) {
      job& j = *work[i];
      j.parts.clear();
      j.part_views.clear();
      for (const tensor_info* p : j.in_parts) j.parts.push_back(in->read_all(*p));
      j.part_views.assign(j.parts.begin(), j.parts.end());
    });
    const auto chunks = chunks_of(work);
    parallel_for(
        chunks.size(), threads,
        [&](std::size_t i) {
          const chunk_ref& c = chunks[i];
          coder->dequantize_rows(c.j->part_views, c.j->k, c.r0, c.r1, c.j->x);
          if (rot) rot->unrotate(c.j->x.subspan(c.r0 * c.j->k, (c.r1 - c.r0) * c.j->k));  // Q R^T
          bar.add((c.r1 - c.r0) * c.j->k);
        },
        &bar);
    for (job* j : work) j->part_views.clear();
    restored_count += work.size();
  });
  bar.finish();
  std::fprintf(stderr, "blockq: %s: %zu tensor%s restored as F32, %zu copied, in %.2f s\n", opt.output.c_str(),
               restored_count, restored_count == 1 ? "" : "s", jobs.size() - restored_count, seconds_since(t0));
}

}  // namespace blockq_tool
