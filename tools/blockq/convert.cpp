// SPDX-License-Identifier: Apache-2.0
#include "convert.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <cstdio>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "blockq/hadamard.hpp"
#include "blockq/version.hpp"
#include "codec.hpp"
#include "file.hpp"
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
  std::vector<std::size_t> nonfinite;  // per chunk
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

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

namespace {

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

}  // namespace

void run_quantize(const quantize_options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  quant_config cfg = make_config(opt.format, opt.rule, opt.block, opt.ties, opt.layout);
  const auto coder_check = make_codec(cfg);  // (the configuration is valid)
  const auto how = make_method(opt.method);
  const bool gptq = how->name() == "gptq";
  cfg.method = how->name();
  if (!gptq && (opt.act_order || opt.damp_given)) throw error("--act-order and --damp apply to --method gptq");
  if (!(opt.damp >= 0.0 && std::isfinite(opt.damp))) throw error("--damp must be finite and non-negative, got " + std::to_string(opt.damp));
  cfg.damp = opt.damp;
  cfg.act_order = opt.act_order;
  std::optional<blockq::block_rotation> rot;
  if (opt.rotate == "hadamard") {
    try {
      rot.emplace(cfg.block);
    } catch (const std::invalid_argument& e) {
      throw error("--rotate hadamard rotates blocks of the block size: " + library_message(e));
    }
    cfg.rotate = true;
  } else if (opt.rotate != "none") {
    throw error("unknown --rotate '" + opt.rotate + "' (none, hadamard)");
  }
  const auto coder = make_codec(cfg);
  check_safetensors_output(opt.output);
  if (!opt.hessian.empty() && cfg.rule != blockq::scale_rule::hessian && !gptq)
    throw error("--hessian is used by --rule hessian only (and --method gptq)");
  if (cfg.rule == blockq::scale_rule::hessian && opt.hessian.empty())
    throw error("--rule hessian needs calibration activations (--hessian ACTS)");
  if (gptq && opt.hessian.empty())
    throw error("--method gptq needs calibration activations or a Hessian (--hessian ACTS)");
  if (opt.hessian_kind != "activations" && opt.hessian_kind != "matrix")
    throw error("unknown --hessian-kind '" + opt.hessian_kind + "' (activations, matrix)");
  const bool matrix_kind = opt.hessian_kind == "matrix";
  if ((matrix_kind || !opt.hessian_map.empty()) && opt.hessian.empty())
    throw error("--hessian-kind and --hessian-map need --hessian");
  const auto act_names = read_hessian_map(opt.hessian_map);
  if (cfg.format->fam != family::mx && cfg.format->fam != family::nvfp4 && cfg.format->fam != family::fp4 &&
      opt.ties != "even")
    warn("--ties applies to the float formats; " + std::string(cfg.format->name) + " codes round half to even");
  selection sel;
  if (opt.tensors_given) sel.include.emplace(opt.tensors);

  const auto in = open_source(opt.input);
  if (in->meta(meta_tensors) || in->meta("blockq.format"))
    throw error(opt.input + " is already quantized by blockq; dequantize it first");
  std::unique_ptr<source> acts;
  if (!opt.hessian.empty()) acts = open_source(opt.hessian);
  const auto out = make_safetensors_sink(opt.output, *in);

  // What happens to each tensor.
  const std::vector<bool> selected = select_tensors(*in, *out, sel, cfg);
  std::vector<job> jobs(in->tensors().size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    job& j = jobs[i];
    const tensor_info& t = in->tensors()[i];
    j.p.in = &t;
    if (!selected[i]) {
      j.outs = out->outputs(t, nullptr);
      continue;
    }
    const std::uint64_t k = t.shape.back();
    j.transform = true;
    j.p.quantized_with = coder.get();
    j.k = static_cast<std::size_t>(k);
    j.rows = static_cast<std::size_t>(t.numel() / k);
    j.chunk_rows = chunk_rows_for(j.k);
    j.outs = out->outputs(t, coder.get());
    if (acts) {
      const auto mapped = act_names.find(t.name);
      const std::string& an = mapped == act_names.end() ? t.name : mapped->second;
      const std::string via = mapped == act_names.end() ? "" : " (mapped to " + in_quotes(an) + ")";
      const tensor_info* a = acts->find(an);
      if (!a) throw error(opt.hessian + " has no " + (matrix_kind ? "Hessian" : "activations") + " for tensor " + in_quotes(t.name) + via);
      if (matrix_kind) {
        if (!is_quantizable(a->type) || a->shape.size() != 2 || a->shape[0] != k || a->shape[1] != k)
          throw error("Hessian " + in_quotes(an) + " in " + opt.hessian + " has shape " + shape_string(a->shape) + " " +
                      std::string(to_string(a->type)) + "; expected floats of shape [" + std::to_string(k) + ", " +
                      std::to_string(k) + "] for the weight " + in_quotes(t.name) + " " + shape_string(t.shape));
      } else if (!is_quantizable(a->type) || a->shape.size() != 2 || a->shape[1] != k || a->shape[0] == 0) {
        throw error("activations " + in_quotes(an) + " in " + opt.hessian + " have shape " + shape_string(a->shape) + " " +
                    std::string(to_string(a->type)) + "; expected floats of shape [T, " + std::to_string(k) +
                    "] for the weight " + shape_string(t.shape) +
                    (mapped == act_names.end() ? "" : " (weight " + in_quotes(t.name) + ")"));
      }
      j.act = a;
    }
  }

  const unsigned threads = opt.threads ? opt.threads : default_threads();
  progress bar("quantizing", transformed_elements(jobs));
  float_pool pool;
  std::size_t quantized = 0;
  const std::uint64_t written = write_all(*in, *out, jobs, &cfg, [&](std::vector<job*>& batch) {
    std::vector<job*> work;
    for (job* j : batch)
      if (j->transform) work.push_back(j);
    if (work.empty()) return;
    pool.assign(work);
    for (job* j : work) {
      j->nonfinite.assign(num_chunks(*j), 0);
      j->parts.clear();
      for (const tensor_spec& s : coder->outputs(j->p.in->name, j->p.in->shape))
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
        in->read(t, first * size, {reinterpret_cast<std::uint8_t*>(dst), n * size});
        c.j->nonfinite[c.index] = to_float(t.type, reinterpret_cast<const std::uint8_t*>(dst), n, dst);
      } else {
        thread_local std::vector<std::uint8_t> buf;
        buf.resize(n * size);
        in->read(t, first * size, buf);
        c.j->nonfinite[c.index] = to_float(t.type, buf.data(), n, dst);
      }
      if (rot) rot->rotate(std::span<float>(dst, n));  // W R, rows whole
    });
    // 2. per-tensor values (NVFP4 tensor scale, Hessians)
    parallel_for(work.size(), threads, [&](std::size_t i) {
      job& j = *work[i];
      if (j.act) {
        const std::vector<std::uint8_t> raw = acts->read_all(*j.act);
        j.act_x.resize(static_cast<std::size_t>(j.act->numel()));
        if (const std::size_t bad = to_float(j.act->type, raw.data(), j.act_x.size(), j.act_x.data()))
          throw error((matrix_kind ? "Hessian " : "activations ") + in_quotes(j.act->name) + " in " + opt.hessian +
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
        j.st = how->prepare(*coder, j.x, j.k, j.act ? &j.h : nullptr);
      } catch (const std::invalid_argument& e) {
        throw error("tensor " + in_quotes(j.p.in->name) + ": " + library_message(e));
      }
      j.act_x = std::vector<float>();
      j.h_matrix = std::vector<double>();
      j.h = {};
    });
    for (job* j : work) {
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
          how->quantize_rows(*coder, c.j->x, c.j->k, c.r0, c.r1, c.j->st, parts);
          bar.add((c.r1 - c.r0) * c.j->k);
        },
        &bar);
    quantized += work.size();
  });
  bar.finish();
  std::fprintf(stderr, "blockq: %s: %zu tensor%s quantized to %s (rule %s, block %zu%s%s), %zu copied, %s in %.2f s\n",
               opt.output.c_str(), quantized, quantized == 1 ? "" : "s", std::string(cfg.format->name).c_str(),
               std::string(blockq::to_string(cfg.rule)).c_str(), cfg.block, gptq ? ", gptq" : "",
               rot ? ", hadamard rotation" : "", jobs.size() - quantized,
               human_bytes(static_cast<double>(written)).c_str(), seconds_since(t0));
}

void run_dequantize(const dequantize_options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  check_safetensors_output(opt.output);
  const auto in = open_source(opt.input);
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
    try {
      rot.emplace(cfg.block);
    } catch (const std::invalid_argument& e) {
      throw error(opt.input + ": blockq.rotation 'hadamard' with blockq.block " + block_s + ": " + library_message(e));
    }
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
