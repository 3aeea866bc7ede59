// SPDX-License-Identifier: Apache-2.0
#include "report.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "blockq/gptq.hpp"
#include "blockq/metrics.hpp"
#include "blockq/version.hpp"
#include "codec.hpp"
#include "convert.hpp"
#include "pipeline.hpp"
#include "parallel.hpp"

namespace blockq_tool {
namespace {

struct named_tensor {
  std::string name, what;
  shape_t shape;
  std::vector<float> x;
};

// ------------------------------------------------------------ the built-in suite
// Uniform doubles in [0, 1) from the top 53 bits of mt19937_64 (whose output
// the standard fixes), and the distributions from them by formula, so that
// the suite is the same with every standard library.
class rng {
 public:
  explicit rng(std::uint64_t seed) : g_(seed) {}
  double uniform() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }
  double normal() {  // Box–Muller, one value per pair kept simple
    if (have_) {
      have_ = false;
      return spare_;
    }
    double u = 0.0;
    while (u == 0.0) u = uniform();
    const double v = uniform(), r = std::sqrt(-2.0 * std::log(u)), a = 6.283185307179586 * v;
    spare_ = r * std::sin(a);
    have_ = true;
    return r * std::cos(a);
  }
  double laplace() {  // scale 1/sqrt(2): unit variance
    const double u = uniform() - 0.5;
    const double m = -std::log(1.0 - 2.0 * std::fabs(u)) / std::sqrt(2.0);
    return u < 0 ? -m : m;
  }
  double student_t(int nu) {
    double chi2 = 0.0;
    for (int i = 0; i < nu; ++i) {
      const double z = normal();
      chi2 += z * z;
    }
    return normal() / std::sqrt(chi2 / nu);
  }

 private:
  std::mt19937_64 g_;
  double spare_ = 0.0;
  bool have_ = false;
};

constexpr std::uint64_t suite_rows = 128, suite_cols = 1024;

std::vector<named_tensor> builtin_suite() {
  std::vector<named_tensor> s;
  const std::size_t n = suite_rows * suite_cols;
  auto make = [&](std::string name, std::string what, std::uint64_t seed, auto&& draw) {
    named_tensor t{std::move(name), std::move(what), {suite_rows, suite_cols}, std::vector<float>(n)};
    rng r(seed);
    for (float& v : t.x) v = static_cast<float>(draw(r));
    s.push_back(std::move(t));
  };
  make("normal", "N(0, 1), seed 1", 1, [](rng& r) { return r.normal(); });
  make("laplace", "Laplace, unit variance, seed 2", 2, [](rng& r) { return r.laplace(); });
  make("student_t3", "Student-t, 3 d.o.f., seed 3", 3, [](rng& r) { return r.student_t(3); });
  // A linear layer's weight [out, in]: N(0, 0.02) rows with log-normal row
  // norms, and 8 of the 1024 input channels (columns) 25x larger.
  named_tensor w{"weights", "weight-like, 8 outlier channels, seed 4", {suite_rows, suite_cols}, std::vector<float>(n)};
  rng r(4);
  std::vector<bool> outlier(suite_cols, false);
  for (int i = 0; i < 8; ++i) outlier[static_cast<std::size_t>(r.uniform() * suite_cols)] = true;
  for (std::size_t i = 0; i < suite_rows; ++i) {
    const double row_scale = 0.02 * std::exp(0.3 * r.normal());
    for (std::size_t j = 0; j < suite_cols; ++j)
      w.x[i * suite_cols + j] = static_cast<float>(r.normal() * row_scale * (outlier[j] ? 25.0 : 1.0));
  }
  s.push_back(std::move(w));
  return s;
}

// ------------------------------------------------------------ measuring
struct measurement {
  double bits = 0.0;
  double se = 0.0, energy = 0.0, max_abs = 0.0;
  std::size_t count = 0;
  double seconds = 0.0;  // quantizing once, one thread
  std::size_t broken = 0;  // finite inputs that dequantize to NaN/Inf
  std::size_t tensors = 0;  // pooled
  bool flushed = false;     // a tensor with non-zero finite values came out all zero

  // Errors that can be ranked: NaN/Inf ones (from NaN/Inf inputs, or a
  // format that overflows) sort last, whatever their value.
  bool finite() const { return std::isfinite(se) && std::isfinite(max_abs); }

  double mse() const { return count ? se / static_cast<double>(count) : 0.0; }
  double sqnr() const {
    return se == 0.0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(energy / se);
  }
  double rate() const { return seconds > 0.0 ? static_cast<double>(count) / seconds : 0.0; }
  void merge(const measurement& m) {
    const double total_bits = bits * static_cast<double>(count) + m.bits * static_cast<double>(m.count);
    se += m.se;
    energy += m.energy;
    max_abs = std::isnan(m.max_abs) ? m.max_abs : std::max(max_abs, m.max_abs);
    count += m.count;
    broken += m.broken;
    tensors += m.tensors;
    flushed = flushed || m.flushed;
    seconds += m.seconds;
    bits = count ? total_bits / static_cast<double>(count) : 0.0;
  }
};

measurement measure(const codec& c, const named_tensor& t) {
  const std::size_t k = static_cast<std::size_t>(t.shape.back()), rows = t.x.size() / k;
  const auto specs = c.outputs(t.name, t.shape);
  std::vector<std::vector<std::uint8_t>> bufs;
  for (const auto& s : specs) bufs.emplace_back(static_cast<std::size_t>(s.bytes()));
  std::vector<std::span<std::uint8_t>> parts(bufs.begin(), bufs.end());
  // Best of a few runs, within about 50 ms.
  double best = std::numeric_limits<double>::infinity(), spent = 0.0;
  for (int rep = 0; rep < 10 && (rep == 0 || spent < 0.05); ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const tensor_state st = c.prepare(t.x, k, nullptr);
    c.quantize_rows(t.x, k, 0, rows, st, parts);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
    spent += s;
  }
  std::vector<std::span<const std::uint8_t>> cparts(bufs.begin(), bufs.end());
  std::vector<float> y(t.x.size());
  c.dequantize_rows(cparts, k, 0, rows, y);
  const blockq::error_stats e = blockq::compare(t.x, y);
  measurement m;
  m.bits = c.bits_per_element(t.x.size());
  m.count = t.x.size();
  m.se = e.mse * static_cast<double>(m.count);
  for (float v : t.x) m.energy += static_cast<double>(v) * v;
  m.max_abs = e.max_abs;
  m.seconds = best;
  m.tensors = 1;
  // Finite inputs that come out NaN/Inf, outside blocks holding a NaN/Inf
  // input (which are NaN by SPEC §3).
  const std::size_t block = c.config().block;
  std::vector<bool> finite_block(y.size() / block, true);
  for (std::size_t i = 0; i < y.size(); ++i)
    if (!std::isfinite(t.x[i])) finite_block[i / block] = false;
  bool any_nonzero = false, all_zero = true;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (!finite_block[i / block]) continue;
    if (!std::isfinite(y[i])) ++m.broken;
    any_nonzero = any_nonzero || t.x[i] != 0.0f;
    all_zero = all_zero && y[i] == 0.0f;
  }
  m.flushed = any_nonzero && all_zero;
  return m;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

struct combo {
  quant_config cfg;
  std::unique_ptr<codec> c;
  std::string label_format, label_rule;
};

std::vector<combo> combos(const report_options& opt, std::vector<std::string>& notes, bool with_hessian) {
  const std::vector<std::string> formats =
      split(opt.formats.empty() && !opt.formats_given ? std::string("mxfp4,nvfp4,fp4,int4,uint4,int8") : opt.formats);
  if (formats.empty()) throw error("--formats '" + opt.formats + "' names no format (formats: " + format_list() + ")");
  std::vector<std::string> rules = split(opt.rules);
  if (opt.rules_given && rules.empty())
    throw error("--rules '" + opt.rules + "' names no rule (rules: default, ocp, ceil, floor, absmax, signed_max, minmax, mse, lsq)");
  const bool default_rules = rules.empty();
  if (default_rules) {
    rules = {"default", "mse"};  // mse only for formats of at most 6 bits (below)
    if (with_hessian) rules.push_back("hessian");
  }
  for (const auto& r : rules)
    if (r != "default" && !blockq::parse_scale_rule(r))
      throw error("unknown rule '" + r + "' (rules: default, ocp, ceil, floor, absmax, signed_max, minmax, mse, lsq, hessian)");
  std::vector<combo> out;
  for (const auto& f : formats) {
    const format_info* info = find_format(f);
    if (!info) throw error("unknown format '" + f + "' (formats: " + format_list() + ")");
    for (const auto& r : rules) {
      const std::string rule = r == "default" ? std::string(blockq::to_string(info->default_rule)) : r;
      if (default_rules && r == "mse" && info->bits > 6) continue;  // slow, and within 1 dB of the default at 8 bits
      if (rule == "hessian" && !with_hessian) {
        notes.push_back("rule hessian needs calibration activations (--hessian ACTS)");
        continue;
      }
      if (std::any_of(out.begin(), out.end(), [&](const combo& c) { return c.label_format == f && c.label_rule == rule; }))
        continue;
      try {
        combo c;
        c.cfg = make_config(f, rule, 0, "even", "ocp");
        c.c = make_codec(c.cfg);
        c.label_format = f;
        c.label_rule = rule;
        out.push_back(std::move(c));
      } catch (const error& e) {
        if (!default_rules) notes.push_back(f + " " + rule + " skipped: " + e.what());
      }
    }
  }
  if (out.empty()) throw error("no format accepts the rules given (" + opt.rules + ")");
  return out;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string shape_text(const shape_t& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

// ------------------------------------------------------------ the output-error view
// ||X (W - Q)^T||^2 = tr(D H D^T) with D = W - Q and H = X^T X (and ||X W^T||^2 =
// tr(W H W^T)), per tensor with activations and pooled, for rtn and gptq.
struct output_error {
  double num[2] = {0.0, 0.0};  // rtn, gptq
  double den = 0.0;
  bool done = false;
};
struct output_error_rows {
  std::string hessian;
  std::vector<std::string> names, shapes;
  std::vector<std::vector<output_error>> e;  // [tensor][combo]
};
output_error_rows& oe_state() {
  static output_error_rows s;
  return s;
}

double quadratic(const std::vector<double>& h, std::size_t k, std::span<const float> a, std::span<const float> b) {
  using mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto rows = static_cast<Eigen::Index>(a.size() / k), kk = static_cast<Eigen::Index>(k);
  mat d = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(a.data(), rows, kk).cast<double>();
  if (!b.empty())
    d -= Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(b.data(), rows, kk).cast<double>();
  const Eigen::Map<const mat> hm(h.data(), kk, kk);
  return (d * hm).cwiseProduct(d).sum();
}

void output_error_view(const report_options& opt, const std::vector<named_tensor>& tensors, const std::vector<combo>& cs,
                       std::vector<std::string>& notes) {
  auto& st = oe_state();
  st.hessian = opt.hessian;
  const std::unordered_map<std::string, std::string> names = read_hessian_map(opt.hessian_map);
  const auto acts = open_source(opt.hessian);
  std::vector<std::size_t> with;  // tensors with activations
  std::vector<std::vector<float>> xs;
  for (std::size_t ti = 0; ti < tensors.size(); ++ti) {
    const auto& t = tensors[ti];
    const auto m = names.find(t.name);
    const tensor_info* a = acts->find(m == names.end() ? t.name : m->second);
    const std::uint64_t k = t.shape.back();
    if (!a) continue;
    if (!is_quantizable(a->type) || a->shape.size() != 2 || a->shape[1] != k || a->shape[0] == 0)
      throw error("activations '" + a->name + "' in " + opt.hessian + " have shape " + shape_string(a->shape) +
                  "; expected floats of shape [T, " + std::to_string(k) + "] for the weight '" + t.name + "'");
    std::vector<float> x(static_cast<std::size_t>(a->numel()));
    const std::vector<std::uint8_t> raw = acts->read_all(*a);
    if (const std::size_t bad = to_float(a->type, raw.data(), x.size(), x.data()))
      throw error("activations '" + a->name + "' in " + opt.hessian + " have " + std::to_string(bad) + " NaN/Inf values");
    with.push_back(ti);
    xs.push_back(std::move(x));
  }
  if (with.empty()) throw error(opt.hessian + " has activations for none of the tensors reported on");
  st.e.assign(with.size(), std::vector<output_error>(cs.size()));
  for (std::size_t w = 0; w < with.size(); ++w) {
    st.names.push_back(tensors[with[w]].name);
    st.shapes.push_back(shape_text(tensors[with[w]].shape));
  }
  std::vector<std::vector<double>> hs(with.size());
  parallel_for(with.size(), default_threads(), [&](std::size_t w) {
    hs[w] = blockq::hessian_from_activations(xs[w], static_cast<std::size_t>(tensors[with[w]].shape.back()));
  });
  std::vector<std::pair<std::size_t, std::size_t>> tasks;
  std::uint64_t work = 0;
  for (std::size_t w = 0; w < with.size(); ++w)
    for (std::size_t ci = 0; ci < cs.size(); ++ci)
      if (tensors[with[w]].shape.back() % cs[ci].cfg.block == 0) {
        tasks.emplace_back(w, ci);
        work += tensors[with[w]].x.size();
      }
  progress bar("output error (rtn and gptq)", work);
  parallel_for(
      tasks.size(), default_threads(),
      [&](std::size_t i) {
        const auto [w, ci] = tasks[i];
        const named_tensor& t = tensors[with[w]];
        const std::size_t k = static_cast<std::size_t>(t.shape.back()), rows = t.x.size() / k;
        const codec& c = *cs[ci].c;
        std::vector<std::vector<std::uint8_t>> bufs;
        for (const auto& s : c.outputs(t.name, t.shape)) bufs.emplace_back(static_cast<std::size_t>(s.bytes()));
        std::vector<std::span<std::uint8_t>> parts(bufs.begin(), bufs.end());
        std::vector<std::span<const std::uint8_t>> cparts(bufs.begin(), bufs.end());
        std::vector<float> y(t.x.size());
        output_error& e = st.e[w][ci];
        hessian_input h;
        h.activations = xs[w];
        for (int m = 0; m < 2; ++m) {
          tensor_state s;
          try {
            s = m == 0 ? c.prepare(t.x, k, &h) : c.prepare_gptq(t.x, k, hs[w]);
          } catch (const std::invalid_argument& ex) {
            throw error("tensor '" + t.name + "': " + library_message(ex));
          }
          c.quantize_rows(t.x, k, 0, rows, s, parts);
          c.dequantize_rows(cparts, k, 0, rows, y);
          e.num[m] = quadratic(hs[w], k, t.x, y);
        }
        e.den = quadratic(hs[w], k, t.x, {});
        e.done = true;
        bar.add(t.x.size());
      },
      &bar);
  bar.finish();
  (void)notes;
}

void print_output_error(const report_options& opt, const std::vector<combo>& cs) {
  if (opt.hessian.empty()) return;
  const auto& st = oe_state();
  std::vector<output_error> total(cs.size());
  for (const auto& row : st.e)
    for (std::size_t ci = 0; ci < cs.size(); ++ci)
      if (row[ci].done) {
        total[ci].num[0] += row[ci].num[0];
        total[ci].num[1] += row[ci].num[1];
        total[ci].den += row[ci].den;
        total[ci].done = true;
      }
  auto rel = [](const output_error& e, int m) { return e.den > 0.0 ? e.num[m] / e.den : 0.0; };
  if (opt.csv) {
    std::printf("\ntensor,shape,format,rule,relative_output_error_rtn,relative_output_error_gptq\n");
    auto row = [&](const std::string& name, const std::string& shape, std::size_t ci, const output_error& e) {
      if (!e.done) return;
      std::printf("%s,%s,%s,%s,%.6e,%.6e\n", csv_field(name).c_str(), shape.c_str(), cs[ci].label_format.c_str(),
                  cs[ci].label_rule.c_str(), rel(e, 0), rel(e, 1));
    };
    for (std::size_t w = 0; w < st.e.size(); ++w)
      for (std::size_t ci = 0; ci < cs.size(); ++ci) row(st.names[w], st.shapes[w], ci, st.e[w][ci]);
    for (std::size_t ci = 0; ci < cs.size(); ++ci) row("(all)", "", ci, total[ci]);
    return;
  }
  std::printf("\noutput error ||X (W - Q)^T||^2 / ||X W^T||^2 with the activations of %s (lower is better):\n",
              st.hessian.c_str());
  auto table = [&](const std::vector<output_error>& es) {
    std::printf("  %-10s  %-10s  %11s  %11s  %8s\n", "format", "rule", "rtn", "gptq", "gptq/rtn");
    for (std::size_t ci = 0; ci < cs.size(); ++ci)
      if (es[ci].done)
        std::printf("  %-10s  %-10s  %11.4e  %11.4e  %8.3f\n", cs[ci].label_format.c_str(), cs[ci].label_rule.c_str(),
                    rel(es[ci], 0), rel(es[ci], 1), rel(es[ci], 0) > 0 ? rel(es[ci], 1) / rel(es[ci], 0) : 0.0);
  };
  for (std::size_t w = 0; w < st.e.size(); ++w) {
    std::printf("\n%s  [%s]\n", st.names[w].c_str(), st.shapes[w].c_str());
    table(st.e[w]);
  }
  if (st.e.size() > 1) {
    std::printf("\nall %zu tensors with activations, pooled\n", st.e.size());
    table(total);
  }
}

}  // namespace

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void run_report(const report_options& opt) {
  std::vector<std::string> notes;
  const auto cs = combos(opt, notes, !opt.hessian.empty());

  std::vector<named_tensor> tensors;
  std::string source_name;
  if (opt.input.empty()) {
    tensors = builtin_suite();
    source_name = "built-in suite";
  } else {
    const auto in = open_source(opt.input);
    source_name = opt.input;
    for (const tensor_info& t : in->tensors()) {
      if (!is_quantizable(t.type) || t.shape.size() < 2 || t.numel() == 0) continue;
      named_tensor nt{t.name, std::string(to_string(t.type)), t.shape, std::vector<float>(static_cast<std::size_t>(t.numel()))};
      const std::vector<std::uint8_t> raw = in->read_all(t);
      if (const std::size_t bad = to_float(t.type, raw.data(), nt.x.size(), nt.x.data()))
        notes.push_back(t.name + " has " + std::to_string(bad) + " NaN/Inf values (its errors are NaN)");
      tensors.push_back(std::move(nt));
    }
    if (tensors.empty()) throw error(opt.input + " has no F32, F16 or BF16 tensor of rank >= 2 to report on");
  }

  // results[t][c]; count 0 when the tensor's last dimension does not fit the block.
  std::vector<std::vector<measurement>> results(tensors.size(), std::vector<measurement>(cs.size()));
  std::vector<measurement> total(cs.size());
  std::vector<std::pair<std::size_t, std::size_t>> tasks;
  std::uint64_t work = 0;
  for (std::size_t ti = 0; ti < tensors.size(); ++ti)
    for (std::size_t ci = 0; ci < cs.size(); ++ci) {
      if (cs[ci].cfg.rule == blockq::scale_rule::hessian) continue;  // (the output-error view only)
      if (tensors[ti].shape.back() % cs[ci].cfg.block != 0) {
        std::string note = tensors[ti].name + " " + shape_string(tensors[ti].shape) + ": not measured with " +
                           cs[ci].label_format + " (last dimension not a multiple of " + std::to_string(cs[ci].cfg.block) + ")";
        if (notes.empty() || notes.back() != note) notes.push_back(std::move(note));
        continue;
      }
      tasks.emplace_back(ti, ci);
      work += tensors[ti].x.size();
    }
  // Each measurement runs on one thread; several run at once, one a core.
  progress bar("measuring", work);
  parallel_for(
      tasks.size(), default_threads(),
      [&](std::size_t i) {
        const auto [ti, ci] = tasks[i];
        results[ti][ci] = measure(*cs[ci].c, tensors[ti]);
        bar.add(tensors[ti].x.size());
      },
      &bar);
  bar.finish();
  for (const auto& [ti, ci] : tasks) {
    total[ci].merge(results[ti][ci]);
    const measurement& m = results[ti][ci];
    const std::string who = "tensor '" + tensors[ti].name + "' with " + cs[ci].label_format + " " + cs[ci].label_rule;
    if (m.broken)
      warn(who + ": " + std::to_string(m.broken) + " finite values dequantize to NaN/Inf (the format cannot represent "
           "this tensor's range); ranked last");
    if (m.flushed)
      warn(who + ": every value dequantizes to zero (the tensor's values are below the format's range)");
  }

  if (!opt.hessian.empty()) output_error_view(opt, tensors, cs, notes);  // prints after the table below
  if (opt.csv) {
    std::printf("tensor,shape,format,rule,block,bits_per_element,mse,sqnr_db,max_abs_error,elements_per_second\n");
    auto row = [&](const std::string& name, const std::string& shape, std::size_t ci, const measurement& m) {
      if (!m.count) return;
      std::printf("%s,%s,%s,%s,%zu,%.6g,%.6e,%.4f,%.6e,%.4e\n", csv_field(name).c_str(), shape.c_str(),
                  cs[ci].label_format.c_str(), cs[ci].label_rule.c_str(), cs[ci].cfg.block, m.bits, m.mse(), m.sqnr(),
                  m.max_abs, m.rate());
    };
    for (std::size_t ti = 0; ti < tensors.size(); ++ti)
      for (std::size_t ci = 0; ci < cs.size(); ++ci) row(tensors[ti].name, shape_text(tensors[ti].shape), ci, results[ti][ci]);
    for (std::size_t ci = 0; ci < cs.size(); ++ci) row("(all)", "", ci, total[ci]);
    print_output_error(opt, cs);
    return;
  }

  std::size_t elements = 0;
  for (const auto& t : tensors) elements += t.x.size();
  std::printf("blockq %s report: %s, %zu tensor%s, %zu elements\n", BLOCKQ_VERSION_STRING, source_name.c_str(),
              tensors.size(), tensors.size() == 1 ? "" : "s", elements);
  std::size_t fw = 6, rw = 4;
  for (const auto& c : cs) {
    fw = std::max(fw, c.label_format.size());
    rw = std::max(rw, c.label_rule.size());
  }
  auto header = [&] {
    std::printf("  %-*s  %-*s  %9s  %11s  %8s  %10s  %9s\n", static_cast<int>(fw), "format", static_cast<int>(rw), "rule",
                "bits/elem", "MSE", "SQNR dB", "max |err|", "Melem/s");
  };
  auto line = [&](std::size_t ci, const measurement& m) {
    if (!m.count) return;
    std::printf("  %-*s  %-*s  %9s  %11s  %8s  %10s  %9s\n", static_cast<int>(fw), cs[ci].label_format.c_str(),
                static_cast<int>(rw), cs[ci].label_rule.c_str(), fmt("%.3f", m.bits).c_str(), fmt("%.4e", m.mse()).c_str(),
                fmt("%.2f", m.sqnr()).c_str(), fmt("%.4g", m.max_abs).c_str(), fmt("%.1f", m.rate() / 1e6).c_str());
  };
  for (std::size_t ti = 0; ti < tensors.size(); ++ti) {
    const auto& t = tensors[ti];
    std::printf("\n%s  [%s]  %s\n", t.name.c_str(), shape_text(t.shape).c_str(), t.what.c_str());
    header();
    for (std::size_t ci = 0; ci < cs.size(); ++ci) line(ci, results[ti][ci]);
  }
  if (tensors.size() > 1) {
    // The number of tensors each line pools (those whose last dimension fits its block).
    bool same = true;
    for (std::size_t ci = 0; ci < cs.size(); ++ci) same = same && total[ci].tensors == total[0].tensors;
    if (same) {
      std::printf("\nall %zu tensors together\n", total[0].tensors);
    } else {
      std::string counts;
      for (std::size_t ci = 0; ci < cs.size(); ++ci)
        counts += (ci ? ", " : "") + cs[ci].label_format + " " + cs[ci].label_rule + " " + std::to_string(total[ci].tensors);
      std::printf("\nall tensors together (tensors pooled: %s)\n", counts.c_str());
    }
    header();
    for (std::size_t ci = 0; ci < cs.size(); ++ci) line(ci, total[ci]);
  }
  // The best SQNR (over all tensors) within each budget of bits per element;
  // a line with a NaN/Inf error is never the best.
  std::vector<std::size_t> order;
  for (std::size_t ci = 0; ci < cs.size(); ++ci)
    if (total[ci].count && total[ci].finite()) order.push_back(ci);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return total[a].bits < total[b].bits; });
  if (order.size() > 1) {
    std::printf("\nbest SQNR within a budget of bits/elem%s:\n", tensors.size() > 1 ? " (all tensors)" : "");
    std::size_t best = order.front();
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::size_t ci = order[i];
      if (total[ci].sqnr() > total[best].sqnr()) best = ci;
      const bool last_of_budget = i + 1 == order.size() || total[order[i + 1]].bits > total[ci].bits + 1e-9;
      if (last_of_budget)
        std::printf("  <= %5.2f: %-*s %-*s %6.2f dB\n", total[ci].bits, static_cast<int>(fw), cs[best].label_format.c_str(),
                    static_cast<int>(rw), cs[best].label_rule.c_str(), total[best].sqnr());
    }
  }
  std::size_t unranked = 0;
  for (std::size_t ci = 0; ci < cs.size(); ++ci) unranked += total[ci].count && !total[ci].finite();
  if (unranked)
    notes.push_back(std::to_string(unranked) + " format/rule line" + (unranked == 1 ? " has" : "s have") +
                    " NaN/Inf errors (NaN/Inf inputs, or values the format cannot represent) and " +
                    (unranked == 1 ? "is" : "are") + " not ranked");
  std::printf(
      "\nbits/elem: element bits plus scale (and min) bits per element. SQNR = 10 log10(sum x^2 / sum (x - q(x))^2),\n"
      "higher is better (pooled over all elements for several tensors); MSE and max |err| in the tensor's units.\n"
      "Melem/s: quantization speed on one thread, best of up to 10 runs within 50 ms.\n");
  print_output_error(opt, cs);
  for (const auto& n : notes) std::printf("note: %s\n", n.c_str());
}

}  // namespace blockq_tool
