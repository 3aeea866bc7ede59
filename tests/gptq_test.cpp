// Error-feedback quantization (gptq.hpp) for every quantizer: equal, code for code and
// scale for scale, to a column-by-column reference written here (the OBQ form: the
// inverse of the damped H in long double, one column at a time, the inverse downdated
// after each; no Cholesky, no lazy batches), with act_order on and off, a dead column,
// lazy batches of one block and of many, and with rotation; H = I gives plain rounding;
// the proxy loss is tr(Δ (H + λI) Δ^T); failed factorisations retry with more damping;
// the output error on the correlated layer of search_hessian_test.cpp is far below rule
// hessian; bad input names the value.
#include "blockq/gptq.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "search_layer.hpp"
#include "test_util.hpp"

namespace {

using namespace blockq;

// What a run gives: codes, scales (mins appended after the scales) as doubles, the
// dequantized weight (in the basis quantized) and the result.
struct run_out {
  std::vector<std::uint8_t> codes;
  std::vector<double> scales;
  std::vector<float> deq;
  gptq_result result;
};

template <class T>
std::vector<double> as_doubles(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

run_out collect(const mx_tensor& t, std::vector<float> deq) { return {t.codes, as_doubles(t.scales), deq, {}}; }
run_out collect(const nvfp4_tensor& t, std::vector<float> deq) {
  auto s = as_doubles(t.scales);
  s.push_back(t.tensor_scale);
  return {t.codes, s, deq, {}};
}
run_out collect(const fp4_tensor& t, std::vector<float> deq) { return {t.codes, as_doubles(t.scales), deq, {}}; }
run_out collect(const uniform_tensor& t, std::vector<float> deq) {
  auto s = as_doubles(t.scales);
  s.insert(s.end(), t.mins.begin(), t.mins.end());
  return {t.codes, s, deq, {}};
}

// The diagonal B x B blocks of a K x K row-major H.
std::vector<double> diag_blocks(std::span<const double> h, std::size_t k, std::size_t b) {
  std::vector<double> out;
  for (std::size_t j = 0; j < k / b; ++j)
    for (std::size_t p = 0; p < b; ++p)
      for (std::size_t q = 0; q < b; ++q) out.push_back(h[(j * b + p) * k + j * b + q]);
  return out;
}

// A format: the library's GPTQ and plain rounding, and the reference's two pieces: the
// rule's scale parameters of one block (the quantizer's own public block rule) and the
// rounding of one element at fixed parameters (SPEC §3–§5, transcribed here).
struct format_case {
  std::string name;
  std::size_t block = 32;
  std::function<run_out(std::span<const float>, std::size_t, std::span<const double>, const gptq_options&,
                        std::span<const float>)> gptq;
  std::function<run_out(std::span<const float>, std::size_t, std::span<const double>)> rtn;
  std::function<void(std::span<const float>, std::size_t, std::span<const double>)> prepare;
  std::function<std::vector<double>(std::span<const float>, std::size_t)> choose;
  std::function<std::pair<std::uint8_t, float>(float, const std::vector<double>&)> round;
  std::size_t scale_params = 1;  // 2: scale and min
  bool tensor_scale = false;
};

// Element x at divisor d: code E::encode(x / d), value E::decode(code) * d; code 0 when the
// divisor is zero (an all-zero block).
template <class E>
std::pair<std::uint8_t, float> round_element(float x, float d) {
  const std::uint8_t c = d > 0.0f ? E::encode(x / d, tie_mode::even) : std::uint8_t{0};
  return {c, E::decode(c) * d};
}

template <class Q>
std::function<run_out(std::span<const float>, std::size_t, std::span<const double>, const gptq_options&,
                      std::span<const float>)>
library_gptq(std::shared_ptr<Q> q) {
  return [q](std::span<const float> w, std::size_t k, std::span<const double> h, const gptq_options& o,
             std::span<const float> x) {
    auto out = gptq_quantize(*q, w, k, h, o, x);
    run_out r = collect(out.tensor, q->dequantize(out.tensor));
    r.result = out.result;
    return r;
  };
}

template <class E>
format_case mx_case(const std::string& name, scale_rule rule, std::size_t block) {
  auto q = std::make_shared<mx_quantizer<E>>(mx_options{block, rule, tie_mode::even});
  auto bh = std::make_shared<std::optional<block_hessians>>();
  format_case c;
  c.name = name + "/" + std::string(to_string(rule));
  c.block = block;
  c.gptq = library_gptq(q);
  c.rtn = [q, rule, block](std::span<const float> w, std::size_t k, std::span<const double> h) {
    if (rule != scale_rule::hessian) {
      const auto t = q->quantize(w);
      return collect(t, q->dequantize(t));
    }
    const auto hb = block_hessians::from_matrices(std::span<const double>(diag_blocks(h, k, block)), k, block);
    const auto t = q->quantize(w, hb);
    return collect(t, q->dequantize(t));
  };
  c.prepare = [bh, rule, block](std::span<const float>, std::size_t k, std::span<const double> h) {
    if (rule == scale_rule::hessian)
      *bh = block_hessians::from_matrices(std::span<const double>(diag_blocks(h, k, block)), k, block);
  };
  c.choose = [q, bh](std::span<const float> blk, std::size_t b) {
    std::vector<float> scratch(blk.size());
    if (*bh) {
      const auto hb = (**bh)[b];
      return std::vector<double>{static_cast<double>(q->block_scale(blk, scratch, &hb))};
    }
    return std::vector<double>{static_cast<double>(q->block_scale(blk, scratch, nullptr))};
  };
  c.round = [](float x, const std::vector<double>& s) {
    return round_element<E>(x, std::ldexp(1.0f, static_cast<int>(s[0]) - 127));
  };
  return c;
}

format_case nvfp4_case(scale_rule rule) {
  auto q = std::make_shared<nvfp4_quantizer<>>(nvfp4_options{rule, tie_mode::even, true});
  struct state {
    std::optional<block_hessians> bh;
    float s_t = 1.0f;
    std::array<float, 126> set{};
  };
  auto st = std::make_shared<state>();
  format_case c;
  c.name = "nvfp4/" + std::string(to_string(rule));
  c.block = 16;
  c.tensor_scale = true;
  c.gptq = library_gptq(q);
  c.rtn = [q, rule](std::span<const float> w, std::size_t k, std::span<const double> h) {
    if (rule != scale_rule::hessian) {
      const auto t = q->quantize(w);
      return collect(t, q->dequantize(t));
    }
    const auto hb = block_hessians::from_matrices(std::span<const double>(diag_blocks(h, k, 16)), k, 16);
    const auto t = q->quantize(w, hb);
    return collect(t, q->dequantize(t));
  };
  c.prepare = [q, st, rule](std::span<const float> w, std::size_t k, std::span<const double> h) {
    st->s_t = q->tensor_scale(w);
    search::e4m3_scales(st->s_t, st->set);
    if (rule == scale_rule::hessian)
      st->bh = block_hessians::from_matrices(std::span<const double>(diag_blocks(h, k, 16)), k, 16);
  };
  c.choose = [q, st](std::span<const float> blk, std::size_t b) {
    std::vector<float> scratch(blk.size());
    std::uint8_t code;
    if (st->bh) {
      const auto hb = (*st->bh)[b];
      code = q->block_scale(blk, st->s_t, st->set, scratch, &hb);
    } else {
      code = q->block_scale(blk, st->s_t, st->set, scratch, nullptr);
    }
    return std::vector<double>{static_cast<double>(code)};
  };
  c.round = [st](float x, const std::vector<double>& s) {
    return round_element<e2m1>(x, e4m3::decode(static_cast<std::uint8_t>(s[0])) * st->s_t);
  };
  return c;
}

format_case fp4_case(scale_rule rule, std::size_t block) {
  auto q = std::make_shared<fp4_quantizer<>>(fp4_options{block, rule, tie_mode::even});
  format_case c;
  c.name = "fp4/" + std::string(to_string(rule));
  c.block = block;
  c.gptq = library_gptq(q);
  c.rtn = [q](std::span<const float> w, std::size_t, std::span<const double>) {
    const auto t = q->quantize(w);
    return collect(t, q->dequantize(t));
  };
  c.prepare = [](std::span<const float>, std::size_t, std::span<const double>) {};
  c.choose = [q](std::span<const float> blk, std::size_t) {
    return std::vector<double>{static_cast<double>(q->block_scale(blk))};
  };
  c.round = [](float x, const std::vector<double>& s) { return round_element<e2m1>(x, static_cast<float>(s[0])); };
  return c;
}

format_case uniform_case(int bits, bool symmetric, scale_rule rule, std::size_t block) {
  auto q = std::make_shared<uniform_quantizer<>>(uniform_options{bits, symmetric, block, rule});
  format_case c;
  c.name = "int" + std::to_string(bits) + (symmetric ? "/" : "-asym/") + std::string(to_string(rule));
  c.block = block;
  c.scale_params = symmetric ? 1 : 2;
  c.gptq = library_gptq(q);
  c.rtn = [q](std::span<const float> w, std::size_t, std::span<const double>) {
    const auto t = q->quantize(w);
    return collect(t, q->dequantize(t));
  };
  c.prepare = [](std::span<const float>, std::size_t, std::span<const double>) {};
  c.choose = [q, symmetric](std::span<const float> blk, std::size_t) {
    const uniform_params p = q->block_params(blk);
    return symmetric ? std::vector<double>{p.scale} : std::vector<double>{p.scale, p.min};
  };
  // q = clamp(round_half_even((x - min) / scale)), value q * scale + min; scale 0: q = 0 (qmin unsigned).
  c.round = [fmt = q->format(), symmetric](float x, const std::vector<double>& s) {
    const auto scale = static_cast<float>(s[0]);
    const float mn = symmetric ? 0.0f : static_cast<float>(s[1]);
    const std::uint8_t code = scale == 0.0f ? fmt.to_code(fmt.is_signed ? 0 : fmt.qmin()) : fmt.encode((x - mn) / scale);
    return std::pair<std::uint8_t, float>{code, static_cast<float>(fmt.to_int(code)) * scale + mn};
  };
  return c;
}

std::vector<format_case> all_cases() {
  std::vector<format_case> v;
  for (auto r : {scale_rule::ocp, scale_rule::mse, scale_rule::hessian}) v.push_back(mx_case<e2m1>("mxfp4", r, 32));
  v.push_back(mx_case<e2m1>("mxfp4-16", scale_rule::floor, 16));
  v.push_back(mx_case<e2m3>("mxfp6-e2m3", scale_rule::ocp, 32));
  v.push_back(mx_case<e3m2>("mxfp6-e3m2", scale_rule::mse, 32));
  v.push_back(mx_case<e4m3>("mxfp8-e4m3", scale_rule::ceil, 32));
  v.push_back(mx_case<e5m2>("mxfp8-e5m2", scale_rule::hessian, 32));
  v.push_back(mx_case<int8_mx>("mxint8", scale_rule::ocp, 32));
  for (auto r : {scale_rule::absmax, scale_rule::mse, scale_rule::hessian}) v.push_back(nvfp4_case(r));
  for (auto r : {scale_rule::absmax, scale_rule::lsq, scale_rule::mse}) v.push_back(fp4_case(r, 32));
  for (auto r : {scale_rule::absmax, scale_rule::signed_max, scale_rule::lsq, scale_rule::mse})
    v.push_back(uniform_case(4, true, r, 32));
  v.push_back(uniform_case(3, true, scale_rule::absmax, 16));
  for (auto r : {scale_rule::minmax, scale_rule::lsq, scale_rule::mse}) v.push_back(uniform_case(4, false, r, 32));
  return v;
}

// ------------------------------------------------------------------ the reference

struct ref_out {
  std::vector<std::uint8_t> codes;
  std::vector<double> scales;  // as run_out
  double loss = 0.0;
};

// Gauss–Jordan inverse with partial pivoting in long double.
std::vector<long double> inverse(std::vector<long double> a, std::size_t n) {
  std::vector<long double> inv(n * n, 0.0L);
  for (std::size_t i = 0; i < n; ++i) inv[i * n + i] = 1.0L;
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::fabs(a[r * n + c]) > std::fabs(a[p * n + c])) p = r;
    for (std::size_t j = 0; j < n; ++j) std::swap(a[c * n + j], a[p * n + j]), std::swap(inv[c * n + j], inv[p * n + j]);
    const long double d = a[c * n + c];
    for (std::size_t j = 0; j < n; ++j) a[c * n + j] /= d, inv[c * n + j] /= d;
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const long double f = a[r * n + c];
      for (std::size_t j = 0; j < n; ++j) a[r * n + j] -= f * a[c * n + j], inv[r * n + j] -= f * inv[c * n + j];
    }
  }
  return inv;
}

// Column by column: round column i, push (w_i - q_i) Hinv[i, j] / Hinv[i, i] onto every
// later column j, remove i from Hinv (Hinv -= Hinv[:, i] Hinv[i, :] / Hinv[i, i]).
ref_out reference(const format_case& f, std::span<const float> w, std::size_t k, std::span<const double> h,
                  double damp, bool act_order) {
  const std::size_t rows = w.size() / k, b = f.block, nb = k / b;
  f.prepare(w, k, h);
  std::vector<std::size_t> perm(k);
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](std::size_t x, std::size_t y) { return h[x * k + x] > h[y * k + y]; });
  std::vector<long double> a(k * k);
  std::vector<bool> dead(k);
  for (std::size_t p = 0; p < k; ++p)
    for (std::size_t q = 0; q < k; ++q) a[p * k + q] = h[perm[p] * k + perm[q]];
  long double mean = 0;
  for (std::size_t p = 0; p < k; ++p) {
    dead[p] = a[p * k + p] == 0;
    if (dead[p])
      for (std::size_t q = 0; q < k; ++q) a[p * k + q] = a[q * k + p] = q == p ? 1.0L : 0.0L;
    mean += a[p * k + p];
  }
  mean /= static_cast<long double>(k);
  for (std::size_t p = 0; p < k; ++p) a[p * k + p] += static_cast<long double>(damp) * mean;
  // The pivots and update rows of the sweep (the same for every row of W).
  std::vector<long double> hinv = inverse(a, k), piv(k), coef(k * k, 0.0L);
  for (std::size_t i = 0; i < k; ++i) {
    piv[i] = hinv[i * k + i];
    for (std::size_t j = i + 1; j < k; ++j) coef[i * k + j] = hinv[i * k + j] / piv[i];
    for (std::size_t j = i + 1; j < k; ++j)
      for (std::size_t l = i + 1; l < k; ++l) hinv[j * k + l] -= hinv[j * k + i] * hinv[i * k + l] / piv[i];
  }
  ref_out out;
  out.codes.assign(rows * k, 0);
  std::vector<std::vector<double>> params(rows * nb);
  if (act_order)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < nb; ++j) params[r * nb + j] = f.choose(w.subspan(r * k + j * b, b), j);
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<long double> x(k);
    for (std::size_t p = 0; p < k; ++p) x[p] = w[r * k + perm[p]];
    for (std::size_t i = 0; i < k; ++i) {
      if (!act_order && i % b == 0) {
        std::vector<float> blk(b);
        for (std::size_t p = 0; p < b; ++p) blk[p] = static_cast<float>(x[i + p]);
        params[r * nb + i / b] = f.choose(blk, i / b);
      }
      const auto [code, v] = f.round(static_cast<float>(x[i]), params[r * nb + perm[i] / b]);
      out.codes[r * k + perm[i]] = code;
      if (dead[i]) continue;
      const long double e = x[i] - v;
      out.loss += static_cast<double>(e * e / piv[i]);
      for (std::size_t j = i + 1; j < k; ++j) x[j] -= e * coef[i * k + j];
    }
  }
  for (std::size_t s = 0; s < f.scale_params; ++s)
    for (std::size_t i = 0; i < rows * nb; ++i) out.scales.push_back(params[i][s]);
  return out;
}

// A small correlated problem: W [rows, K] and H = X^T X from X [T, K] = Z L (as the layer
// of search_layer.hpp), channel `dead_col` of X all zero (a dead column).
struct problem {
  std::size_t rows, k;
  std::vector<float> w, x;
  std::vector<double> h;
  problem(std::size_t rows_, std::size_t k_, std::size_t t, std::uint64_t seed, std::size_t dead_col)
      : rows(rows_), k(k_) {
    std::mt19937_64 g(seed);
    std::normal_distribution<float> nd;
    x = search_test::correlated_activations(t, k, g, nd);
    for (std::size_t r = 0; r < t; ++r) x[r * k + dead_col] = 0.0f;
    w.resize(rows * k);
    for (auto& v : w) v = nd(g);
    h = hessian_from_activations(x, k);
  }
};

void expect_equal(const run_out& got, const ref_out& want, const std::string& what) {
  ASSERT_EQ(got.codes.size(), want.codes.size()) << what;
  for (std::size_t i = 0; i < want.codes.size(); ++i)
    ASSERT_EQ(got.codes[i], want.codes[i]) << what << ": code " << i;
  for (std::size_t i = 0; i < want.scales.size(); ++i) ASSERT_EQ(got.scales[i], want.scales[i]) << what << ": scale " << i;
  EXPECT_NEAR(got.result.proxy_loss, want.loss, 1e-9 * want.loss + 1e-300) << what;
}

TEST(Gptq, EqualsTheColumnByColumnReferenceForEveryFormat) {
  const problem pb(6, 64, 160, 7, 5);
  for (const auto& f : all_cases())
    for (bool act_order : {false, true}) {
      const ref_out want = reference(f, pb.w, pb.k, pb.h, 0.01, act_order);
      for (std::size_t batch : {f.block, std::size_t{128}}) {
        gptq_options o;
        o.act_order = act_order;
        o.batch = batch;
        const run_out got = f.gptq(pb.w, pb.k, pb.h, o, {});
        EXPECT_EQ(got.result.dead_columns, 1u);
        EXPECT_EQ(got.result.retries, 0);
        expect_equal(got, want, f.name + (act_order ? " act_order" : "") + " batch " + std::to_string(batch));
      }
    }
}

TEST(Gptq, WithRotationEqualsTheReferenceOnWRAndRtHR) {
  const problem pb(5, 64, 160, 8, 40);
  const block_rotation rot(32, 99);
  std::vector<float> wr = pb.w;
  rot.rotate(std::span<float>(wr));
  const auto hr = rot.rotate_hessian(pb.h, pb.k);
  for (const auto& f : all_cases()) {
    if (f.block > 32) continue;
    for (bool act_order : {false, true}) {
      gptq_options o;
      o.act_order = act_order;
      o.rotation = &rot;
      const run_out got = f.gptq(pb.w, pb.k, pb.h, o, {});
      // The rotated dead column is no longer dead: R mixes it into its block.
      EXPECT_EQ(got.result.dead_columns, 0u);
      expect_equal(got, reference(f, wr, pb.k, hr, 0.01, act_order), f.name + " rotated" + (act_order ? " act_order" : ""));
    }
  }
}

TEST(Gptq, IdentityHessianGivesPlainRounding) {
  const std::size_t rows = 7, k = 96;
  const auto w = blockq_test::normal_floats(rows * k, 31);
  std::vector<double> eye(k * k, 0.0);
  for (std::size_t i = 0; i < k; ++i) eye[i * k + i] = 1.0;
  for (const auto& f : all_cases()) {
    const run_out got = f.gptq(w, k, eye, gptq_options{}, {});
    const run_out want = f.rtn(w, k, eye);
    EXPECT_EQ(got.codes, want.codes) << f.name;
    EXPECT_EQ(got.scales, want.scales) << f.name;
    EXPECT_EQ(got.deq, want.deq) << f.name;
  }
}

// proxy_loss = tr(Δ (H + λI) Δ^T) over the live columns; output_error = ||X Δ^T||_F.
TEST(Gptq, ProxyLossAndOutputErrorAreWhatTheySay) {
  const problem pb(8, 64, 200, 9, 3);
  const format_case f = mx_case<e2m1>("mxfp4", scale_rule::ocp, 32);
  for (bool act_order : {false, true}) {
    gptq_options o;
    o.act_order = act_order;
    o.damp = 0.05;
    std::size_t calls = 0, last = 0;
    o.progress = [&](std::size_t done, std::size_t total) {
      ++calls;
      EXPECT_EQ(total, pb.k);
      EXPECT_GT(done, last);
      last = done;
    };
    o.batch = 32;
    const run_out got = f.gptq(pb.w, pb.k, pb.h, o, pb.x);
    EXPECT_EQ(calls, 2u);
    EXPECT_EQ(last, pb.k);
    EXPECT_EQ(got.result.damp, 0.05);
    double mean = 0;
    for (std::size_t i = 0; i < pb.k; ++i) mean += pb.h[i * pb.k + i] == 0 ? 1.0 : pb.h[i * pb.k + i];
    mean /= static_cast<double>(pb.k);
    long double tr = 0, out = 0;
    for (std::size_t r = 0; r < pb.rows; ++r) {
      std::vector<long double> d(pb.k);
      for (std::size_t c = 0; c < pb.k; ++c)
        d[c] = pb.h[c * pb.k + c] == 0 ? 0.0L : static_cast<long double>(pb.w[r * pb.k + c]) - got.deq[r * pb.k + c];
      for (std::size_t p = 0; p < pb.k; ++p)
        for (std::size_t q = 0; q < pb.k; ++q)
          tr += d[p] * (pb.h[p * pb.k + q] + (p == q ? 0.05 * mean : 0.0)) * d[q];
      for (std::size_t t = 0; t < pb.x.size() / pb.k; ++t) {
        long double s = 0;
        for (std::size_t c = 0; c < pb.k; ++c)
          s += static_cast<long double>(pb.x[t * pb.k + c]) * (pb.w[r * pb.k + c] - static_cast<long double>(got.deq[r * pb.k + c]));
        out += s * s;
      }
    }
    EXPECT_NEAR(got.result.proxy_loss, static_cast<double>(tr), 1e-9 * static_cast<double>(tr));
    EXPECT_NEAR(got.result.output_error, std::sqrt(static_cast<double>(out)), 1e-9 * std::sqrt(static_cast<double>(out)));
  }
}

TEST(Gptq, DeadColumnGetsThePlainRoundingOfItsOriginalWeight) {
  const problem pb(6, 64, 160, 10, 0);  // column 0: the first of its block, so its scale is from W as given
  const mxfp4_quantizer q;
  const auto out = gptq_quantize(q, pb.w, pb.k, pb.h);
  const auto plain = q.quantize(std::span<const float>(pb.w));
  for (std::size_t r = 0; r < pb.rows; ++r) {
    EXPECT_EQ(out.tensor.scales[r * 2], plain.scales[r * 2]) << r;
    EXPECT_EQ(out.tensor.codes[r * pb.k], plain.codes[r * pb.k]) << r;
  }
  EXPECT_EQ(out.result.dead_columns, 1u);
}

// H with eigenvalues 3 and -1 (blocks [[1, 2], [2, 1]]): not positive definite until the
// damping (relative to mean diag = 1) passes 1; each failure multiplies it by ten.
TEST(Gptq, IndefiniteHessianRetriesWithMoreDamping) {
  const std::size_t k = 32, rows = 3;
  std::vector<double> h(k * k, 0.0);
  for (std::size_t i = 0; i < k; i += 2) {
    h[i * k + i] = h[(i + 1) * k + i + 1] = 1.0;
    h[i * k + i + 1] = h[(i + 1) * k + i] = 2.0;
  }
  const auto w = blockq_test::normal_floats(rows * k, 4);
  const auto out = gptq_quantize(mxfp4_quantizer{}, w, k, h);
  EXPECT_EQ(out.result.retries, 3);  // 0.01, 0.1 and 1 fail (1 leaves a zero eigenvalue); 10 works
  EXPECT_DOUBLE_EQ(out.result.damp, 10.0);
  gptq_options o;
  o.max_retries = 2;
  EXPECT_NE(blockq_test::invalid_argument_message([&] { gptq_quantize(mxfp4_quantizer{}, w, k, h, o); })
                .find("not positive definite"),
            std::string::npos);
}

TEST(Gptq, BadInputNamesTheValue) {
  const auto message = [](auto&& f) { return blockq_test::invalid_argument_message(f); };
  const mxfp4_quantizer q;
  const std::size_t k = 64;
  const auto w = blockq_test::normal_floats(2 * k, 1);
  std::vector<double> h(k * k, 0.0);
  for (std::size_t i = 0; i < k; ++i) h[i * k + i] = 1.0;
  std::vector<double> small(10);
  EXPECT_NE(message([&] { gptq_quantize(q, w, k, small); }).find("10 elements, expected K * K = 4096"), std::string::npos);
  auto hn = h;
  hn[3 * k + 5] = std::nan("");
  EXPECT_NE(message([&] { gptq_quantize(q, w, k, hn); }).find("row 3, column 5"), std::string::npos);
  hn = h;
  hn[7 * k + 7] = INFINITY;
  EXPECT_NE(message([&] { gptq_quantize(q, w, k, hn); }).find("row 7, column 7"), std::string::npos);
  hn = h;
  hn[2 * k + 2] = -1.0;
  EXPECT_NE(message([&] { gptq_quantize(q, w, k, hn); }).find("diagonal entry 2 is negative"), std::string::npos);
  std::vector<float> x(3 * k, 1.0f);
  x[k + 4] = std::nanf("");
  EXPECT_NE(message([&] { hessian_from_activations(x, k); }).find("activation 68"), std::string::npos);
  EXPECT_NE(message([&] { gptq_quantize(q, w, k, h, {}, x); }).find("activation 68"), std::string::npos);
  EXPECT_NE(message([&] { hessian_from_activations(std::span<const float>(), k); }).find("T = 0"), std::string::npos);
  EXPECT_NE(message([&] { gptq_quantize_activations(q, w, k, std::span<const float>()); }).find("T = 0"),
            std::string::npos);
  // K not a multiple of the block.
  const auto w48 = blockq_test::normal_floats(2 * 48, 1);
  std::vector<double> h48(48 * 48, 0.0);
  EXPECT_NE(message([&] { gptq_quantize(q, w48, 48, h48); }).find("K = 48 is not a multiple of the block size 32"),
            std::string::npos);
  EXPECT_NE(message([&] { gptq_quantize(q, std::span<const float>(w.data(), 100), k, h); }).find("100"), std::string::npos);
  // Rotation sizes.
  const block_rotation r128(128);
  gptq_options o;
  o.rotation = &r128;
  EXPECT_NE(message([&] { gptq_quantize(q, w, k, h, o); }).find("rotation size 128 does not divide K = 64"),
            std::string::npos);
  EXPECT_NE(message([] { block_rotation r(48); }).find("got 48"), std::string::npos);
  o = {};
  o.damp = -1;
  EXPECT_NE(message([&] { gptq_quantize(q, w, k, h, o); }).find("damp"), std::string::npos);
  std::vector<float> wn = w;
  wn[9] = INFINITY;
  EXPECT_NE(message([&] { gptq_quantize(q, wn, k, h); }).find("weight 9"), std::string::npos);
  const uniform_quantizer<> whole({4, true, 0, {}});
  EXPECT_NE(message([&] { gptq_quantize(whole, w, k, h); }).find("block 0"), std::string::npos);
}

// ------------------------------------------------------------------ quality

// ||X (W - Ŵ)^T||_F by Eigen's product (the layer's own double loop is checked against it below).
double output_error(const search_test::layer& L, const std::vector<float>& wq) {
  using mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto m = static_cast<Eigen::Index>(search_test::layer::m), k = static_cast<Eigen::Index>(search_test::layer::k);
  const auto t = static_cast<Eigen::Index>(search_test::layer::t);
  const mat x = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(L.x.data(), t, k).cast<double>();
  const mat d = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(L.w.data(), m, k).cast<double>() -
                Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(wq.data(), m, k).cast<double>();
  return std::sqrt((x * d.transpose()).squaredNorm());
}

// ||X (W - Ŵ)^T||_F on the layer of search_hessian_test.cpp: plain rounding and GPTQ with
// the same rule, act_order off / on, without and with a Hadamard rotation of the block size.
TEST(GptqQuality, CorrelatedLayerFarBelowRuleHessian) {
  const auto& L = search_test::the_layer();
  const std::size_t k = search_test::layer::k;
  const auto h = hessian_from_activations(L.x, k);
  std::vector<format_case> cases;
  cases.push_back(mx_case<e2m1>("mxfp4", scale_rule::ocp, 32));
  cases.push_back(mx_case<e2m1>("mxfp4", scale_rule::hessian, 32));
  cases.push_back(nvfp4_case(scale_rule::absmax));
  cases.push_back(nvfp4_case(scale_rule::hessian));
  cases.push_back(mx_case<e2m3>("mxfp6-e2m3", scale_rule::ocp, 32));
  cases.push_back(mx_case<e4m3>("mxfp8-e4m3", scale_rule::ocp, 32));
  cases.push_back(mx_case<int8_mx>("mxint8", scale_rule::ocp, 32));
  cases.push_back(fp4_case(scale_rule::absmax, 32));
  cases.push_back(uniform_case(4, true, scale_rule::absmax, 32));
  cases.push_back(uniform_case(4, false, scale_rule::minmax, 32));
  std::printf("%-18s %10s %10s %10s %10s %10s %10s\n", "format/rule", "rtn", "gptq", "gptq+ao", "rot rtn", "rot gptq",
              "rot g+ao");
  for (const auto& f : cases) {
    double e[6];
    for (int rot = 0; rot < 2; ++rot) {
      const block_rotation r(f.block, 1);
      std::vector<float> w = L.w;
      std::vector<double> hb = h;
      if (rot) {
        r.rotate(std::span<float>(w));
        hb = r.rotate_hessian(h, k);
      }
      auto deq = f.rtn(w, k, hb).deq;
      if (rot) r.unrotate(std::span<float>(deq));
      e[rot * 3] = output_error(L, deq);
      for (int ao = 0; ao < 2; ++ao) {
        gptq_options o;
        o.act_order = ao;
        if (rot) o.rotation = &r;
        const run_out g = f.gptq(L.w, k, h, o, L.x);
        e[rot * 3 + 1 + ao] = g.result.output_error;
        EXPECT_LT(g.result.output_error, e[rot * 3]) << f.name << " rot " << rot << " act_order " << ao;
      }
    }
    std::printf("%-18s %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", f.name.c_str(), e[0], e[1], e[2], e[3], e[4], e[5]);
    if (f.name == "mxfp4/hessian") {
      EXPECT_NEAR(e[0], 2973.9830, 2973.9830 * 1e-5);  // rtn: search_hessian_test's figure
      for (int i : {1, 2, 4, 5}) EXPECT_LT(e[i], 0.85 * 2974.0) << i;
    }
    if (f.name == "nvfp4/hessian") {
      EXPECT_NEAR(e[0], 1784.6460, 1784.6460 * 1e-5);
      for (int i : {1, 2, 4, 5}) EXPECT_LT(e[i], 0.85 * 1784.6) << i;
    }
  }
  // The library's output error is the test's own ||X (W - Ŵ)^T||_F (rotation included).
  const block_rotation r(32, 1);
  const auto q = mxfp4_quantizer{};
  gptq_options o;
  o.rotation = &r;
  const auto g = gptq_quantize(q, L.w, k, h, o, L.x);
  const auto deq = rotated_dequantize(q, g.tensor, r);
  EXPECT_NEAR(g.result.output_error, L.output_error(deq), 1e-6 * g.result.output_error);
  EXPECT_NEAR(output_error(L, deq), L.output_error(deq), 1e-9 * g.result.output_error);
}

}  // namespace
