// Least-squares refit and the `lsq` rule (SPEC §5): seed 001's worked
// example, the normal equations, and "never worse than the start" as a
// property over many random blocks, weighted and unweighted, where lsq also
// equals its descents run in full (without the table of codes met), for
// integer codes and FP4, on the scalar and the compiled-in tier.
#include "blockq/search/refit.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "blockq/fp4.hpp"
#include "blockq/metrics.hpp"
#include "blockq/uniform.hpp"
#include "search_oracle.hpp"

#include "test_util.hpp"

namespace {

using blockq::int_format;
using blockq::scale_rule;
using blockq::tie_mode;
namespace search = blockq::search;
namespace kernels = blockq::kernels;
using scalar = blockq::arch::scalar;

float f32(double v) { return static_cast<float>(v); }

// Seed 001 (n_bits 4, use_min): the refit of scale and min for the codes of
// the min-max start. The seed computes in float64 from x = 10 * randn(8) and
// prints x to 8 decimals; refitting from the printed x in double gives
// scale1 and min1 within 4e-12 and 3e-11 of the printed values (the x
// rounding, not the sums, limits the agreement; float32 sums would be ~1e-7
// away). The seed's mse1 is the mean of (x - dq)^2 with x float64 and dq a
// float32 array (numpy 1.x: q.astype(float32) * scale rounds scale and the
// product to float32, as does + min), so dq is modelled as
// fl32(fl32(q * fl32(scale1)) + fl32(min1)); in exact double it would be 3e-8
// away.
TEST(SearchRefit, Seed001AsymmetricExample) {
  const std::vector<double> x = {5.63109251, -0.66333746, -3.7742885, -5.53918171,
                                 -8.02601077, 3.97313181, 0.47977315, 3.40512398};
  const std::vector<int> q = {15, 8, 5, 3, 0, 13, 9, 13};
  const auto r = search::refit_asymmetric<double>(x, q);
  ASSERT_TRUE(r.ok);
  EXPECT_NEAR(r.scale, 0.9171847297558767, 0.9171847297558767 * 1e-11);
  EXPECT_NEAR(r.min, -8.130986144472903, 8.130986144472903 * 5e-11);
  double se = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float dq = f32(static_cast<double>(f32(q[i] * f32(r.scale))) + f32(r.min));
    se += (x[i] - dq) * (x[i] - dq);
  }
  EXPECT_NEAR(se / 8, 0.05193813484932613, 1e-9);
  // The start (scale0, min0) of the same example and its mse0.
  double se0 = 0.0;
  const double scale0 = (x[0] - x[4]) / 15, min0 = x[4];
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float dq = f32(static_cast<double>(f32(q[i] * f32(scale0))) + f32(min0));
    se0 += (x[i] - dq) * (x[i] - dq);
  }
  EXPECT_NEAR(se0 / 8, 0.05551108470975463, 1e-9);
}

TEST(SearchRefit, Seed001WithTheQuantizer) {
  const std::vector<float> x = {5.63109251f, -0.66333746f, -3.7742885f, -5.53918171f,
                                -8.02601077f, 3.97313181f, 0.47977315f, 3.40512398f};
  // lsq over the whole vector: at most the refit's mse1 (it contains that refit).
  const blockq::uniform_quantizer<> lsq({4, false, 0, scale_rule::lsq});
  const double m = blockq::mse(x, lsq.dequantize(lsq.quantize(x)));
  std::printf("seed 001 block: minmax 0.0555111, refit 0.0519381, lsq %.7f\n", m);
  EXPECT_LE(m, 0.0519381349);
  const blockq::uniform_quantizer<> mse({4, false, 0, scale_rule::mse});
  EXPECT_LE(blockq::mse(x, mse.dequantize(mse.quantize(x))), m);
}

// The refit satisfies the weighted normal equations.
TEST(SearchRefit, NormalEquationsWeighted) {
  std::mt19937_64 g(4);
  std::normal_distribution<double> nd;
  std::uniform_real_distribution<double> uw(0.0, 5.0);
  std::uniform_int_distribution<int> uq(-8, 7);
  for (int rep = 0; rep < 500; ++rep) {
    const std::size_t n = 2 + rep % 40;
    std::vector<double> x(n), w(n);
    std::vector<int> q(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = 3 * nd(g), w[i] = uw(g), q[i] = uq(g);
    q[0] = 1, q[1] = -2;  // at least two distinct codes
    const auto s = search::refit_symmetric<double>(x, q, w);
    const auto a = search::refit_asymmetric<double>(x, q, w);
    ASSERT_TRUE(s.ok && a.ok);
    double gs = 0, ga1 = 0, ga2 = 0, scale = 0;
    for (std::size_t i = 0; i < n; ++i) {
      gs += w[i] * (x[i] - s.scale * q[i]) * q[i];
      const double r = x[i] - (a.scale * q[i] + a.min);
      ga1 += w[i] * r * q[i];
      ga2 += w[i] * r;
      scale += w[i] * (std::fabs(x[i]) + 1) * (std::abs(q[i]) + 1);
    }
    EXPECT_NEAR(gs / scale, 0.0, 1e-13);
    EXPECT_NEAR(ga1 / scale, 0.0, 1e-12);
    EXPECT_NEAR(ga2 / scale, 0.0, 1e-12);
  }
}

TEST(SearchRefit, DegenerateCodesAreReported) {
  const std::vector<double> x = {1.0, 2.0, 3.0};
  EXPECT_FALSE(search::refit_symmetric<double>(x, std::vector<int>{0, 0, 0}).ok);
  EXPECT_FALSE(search::refit_asymmetric<double>(x, std::vector<int>{4, 4, 4}).ok);
  EXPECT_TRUE(search::refit_asymmetric<double>(x, std::vector<int>{4, 4, 5}).ok);
  try {
    search::refit_symmetric<double>(x, std::vector<int>{1, 2});
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("2"), std::string::npos) << e.what();
  }
}

// The kernel error of a block at (scale, min), as the quantizer produces it.
double int_error(std::span<const float> x, std::span<const float> w, int_format f, float s, float m) {
  return w.empty() ? kernels::block_sse_int(scalar{}, x.data(), x.size(), s, m, f)
                   : kernels::block_wsse_int(scalar{}, x.data(), w.data(), x.size(), s, m, f);
}

// Property: lsq never returns a (weighted) SSE above its start's, over many
// random blocks of every kind, sizes, bit widths, both code kinds, weights.
// The lsq rule with every descent run in full (no memory of codes met
// before), transcribed from refit.hpp's description: the memo must not
// change any result, only skip repeats.
search::scale_min_result lsq_in_full(std::span<const float> x, std::span<const float> w, int_format f, float s0,
                                     float m0) {
  const std::size_t n = x.size();
  const float* wp = w.empty() ? nullptr : w.data();
  if (f.is_signed) m0 = 0.0f;
  auto score = [&](float s, float m) {
    return wp ? kernels::block_wsse_int(scalar{}, x.data(), wp, n, s, m, f) : kernels::block_sse_int(scalar{}, x.data(), n, s, m, f);
  };
  search::scale_min_result best{s0, m0, score(s0, m0)};
  std::vector<std::uint8_t> cur(n), prev(n);
  auto descend = [&](float s, float m) {
    kernels::encode_int(scalar{}, x.data(), n, s, m, f, cur.data());
    for (int it = 0; it < search::max_lsq_iterations; ++it) {
      const auto sums = kernels::int_refit_sums(scalar{}, x.data(), wp, cur.data(), n, f);
      const auto r = f.is_signed ? search::solve_symmetric(sums) : search::solve_asymmetric(sums);
      if (!r.ok || !std::isfinite(static_cast<float>(r.scale)) || static_cast<float>(r.scale) == 0.0f ||
          !std::isfinite(static_cast<float>(r.min)))
        return;
      s = static_cast<float>(r.scale), m = static_cast<float>(r.min);
      const double e = score(s, m);
      if (e < best.error) best = {s, m, e};
      prev = cur;
      kernels::encode_int(scalar{}, x.data(), n, s, m, f, cur.data());
      if (cur == prev) return;
    }
  };
  float lo = x[0], hi = x[0], amax = 0.0f, mx = 0.0f;
  for (float v : x) {
    lo = std::min(lo, v), hi = std::max(hi, v);
    if (std::fabs(v) > amax) amax = std::fabs(v), mx = v;
  }
  if (!f.is_signed)
    for (int k = -search::lsq_steps; k <= search::lsq_steps; ++k) {
      const float t = static_cast<float>(f.qmax()) + 0.1f * static_cast<float>(k);
      if (t > 0.0f && hi > lo) descend((hi - lo) / t, lo);
    }
  if (f.is_signed)  // both orientations, each over k
    for (int o : {1, -1}) {
      const float level = static_cast<float>((mx > 0.0f) == (o > 0) ? f.qmax() : -f.qmin());
      for (int k = -search::lsq_steps; k <= search::lsq_steps; ++k) {
        const float t = level + 0.1f * static_cast<float>(k);
        if (t > 0.0f && amax > 0.0f) descend(static_cast<float>(o) * (amax / t), 0.0f);
      }
    }
  return best;
}

TEST(SearchLsq, NeverWorseThanTheStartInteger) {
  std::mt19937_64 g(77);
  std::uniform_real_distribution<float> uw(0.0f, 4.0f);
  std::vector<std::uint8_t> scratch(search::lsq_scratch_bytes(64));
  std::size_t better = 0, total = 0;
  for (int bits : {1, 2, 3, 4, 5, 8}) {
    for (bool sym : {true, false}) {
      const int_format f{bits, sym};
      for (auto k : search_test::all_kinds) {
        for (int rep = 0; rep < 60; ++rep) {
          const std::size_t n = rep % 3 == 0 ? 64 : (rep % 3 == 1 ? 32 : 7);
          const auto x = search_test::make_block(k, n, g);
          std::vector<float> w;
          if (rep % 2) {
            w.resize(n);
            for (auto& v : w) v = uw(g);
          }
          float s0 = 0, m0 = 0;
          float lo = x[0], hi = x[0], amax = 0, mx = 0;
          for (float v : x) {
            lo = std::min(lo, v), hi = std::max(hi, v);
            if (std::fabs(v) > amax) amax = std::fabs(v), mx = v;
          }
          if (sym)
            s0 = bits >= 2 && rep % 4 < 2 ? amax / static_cast<float>(f.qmax()) : mx / static_cast<float>(f.qmin());
          else
            s0 = (hi - lo) / static_cast<float>(f.qmax()), m0 = lo;
          const auto r = search::lsq_int(scalar{}, x, w, f, s0, m0, scratch);
          const double e0 = int_error(x, w, f, s0, sym ? 0.0f : m0);
          ASSERT_LE(r.error, e0) << bits << sym << search_test::name(k) << rep;
          ASSERT_EQ(r.error, int_error(x, w, f, r.scale, r.min));
          // The descents' memory of codes changes nothing.
          const auto full = lsq_in_full(x, w, f, s0, m0);
          ASSERT_EQ(r.scale, full.scale) << bits << sym << search_test::name(k) << rep;
          ASSERT_EQ(r.min, full.min) << bits << sym << search_test::name(k) << rep;
          ASSERT_EQ(r.error, full.error) << bits << sym << search_test::name(k) << rep;
          // The compiled-in tier (fused lsq step kernel) gives the same bits.
          const auto v = search::lsq_int(blockq::default_arch{}, x, w, f, s0, m0, scratch);
          ASSERT_EQ(v.scale, full.scale) << bits << sym << search_test::name(k) << rep;
          ASSERT_EQ(v.min, full.min) << bits << sym << search_test::name(k) << rep;
          ASSERT_EQ(v.error, full.error) << bits << sym << search_test::name(k) << rep;
          better += r.error < e0;
          ++total;
        }
      }
    }
  }
  std::printf("lsq strictly better than the start on %zu of %zu blocks\n", better, total);
  EXPECT_GT(better, total / 2);
}

// The integer descents' node table (lsq_sum_nodes): sums equal in all three of sq, sqq, sxq
// (bit for bit; sw and sx are the block's and not compared) are one node; sums that differ
// in any one of them, if only in the sign of a zero, are not. Filled to lsq_memo_entries
// nodes, the table finds each and refuses (-1) thousands of sums that differ from a stored
// one in a single sum: a probe passes through a few stored nodes, so a table comparing only
// two of the sums answers some of these with that node (checked for sqq and sxq). Few
// blocks meet two code vectors agreeing in two sums: the lsq oracles above would miss it.
TEST(SearchLsq, SumNodesKeyOnAllThreeSums) {
  std::mt19937_64 g(5);
  std::uniform_int_distribution<int> qi(-6, 6);
  auto random_sums = [&] {
    kernels::refit_sums t{32.0, 0.0, 0.0, 1.5, 0.0};
    t.sq = qi(g), t.sqq = std::abs(qi(g)), t.sxq = 0.5 * qi(g);
    if (g() % 2) t.sq = -t.sq;  // -0.0 at times
    return t;
  };
  std::vector<kernels::refit_sums> sums;
  while (sums.size() < search::lsq_memo_entries) {
    const kernels::refit_sums t = random_sums();
    bool seen = false;
    for (const auto& u : sums) seen = seen || search::detail::lsq_sum_nodes::same(u, t);
    if (!seen) sums.push_back(t);
  }
  search::detail::lsq_sum_nodes nodes;
  for (std::size_t i = 0; i < sums.size(); ++i) ASSERT_EQ(nodes.find_or_add(sums[i]), static_cast<int>(i)) << i;
  for (std::size_t i = 0; i < sums.size(); ++i) {
    kernels::refit_sums again = sums[i];
    again.sw = 7.0, again.sx = -2.0;
    ASSERT_EQ(nodes.find_or_add(again), static_cast<int>(i)) << i;
  }
  int refused = 0;
  for (int rep = 0; rep < 20000; ++rep) {
    kernels::refit_sums t = sums[static_cast<std::size_t>(rep) % sums.size()];
    const kernels::refit_sums r = random_sums();
    double& v = rep % 3 == 0 ? t.sq : rep % 3 == 1 ? t.sqq : t.sxq;
    v = rep % 3 == 0 ? r.sq : rep % 3 == 1 ? r.sqq : r.sxq;
    if (v == 0.0 && rep % 2) v = -v;
    bool seen = false;
    for (const auto& u : sums) seen = seen || search::detail::lsq_sum_nodes::same(u, t);
    if (seen) continue;
    ASSERT_EQ(nodes.find_or_add(t), -1) << rep;
    ++refused;
  }
  EXPECT_GT(refused, 1000);
}

// Long heavy-tailed blocks meet more code vectors than the table holds
// (lsq_memo_entries; most of these blocks do): the descents past it refit as
// they go and the result is still that of the full descents.
TEST(SearchLsq, MoreCodeVectorsThanTheTableHolds) {
  std::mt19937_64 g(79);
  std::student_t_distribution<float> td(2.0f);
  std::uniform_real_distribution<float> uw(0.0f, 4.0f);
  const std::size_t n = 256;
  std::vector<std::uint8_t> scratch(search::lsq_scratch_bytes(n));
  for (bool sym : {false, true}) {
    const int_format f{4, sym};
    for (int rep = 0; rep < 16; ++rep) {
      std::vector<float> x(n), w;
      for (auto& v : x) v = td(g);
      if (rep % 2) {
        w.resize(n);
        for (auto& v : w) v = uw(g);
      }
      float lo = x[0], hi = x[0], amax = 0;
      for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v), amax = std::max(amax, std::fabs(v));
      const float s0 = sym ? amax / 7.0f : (hi - lo) / 15.0f, m0 = sym ? 0.0f : lo;
      const auto full = lsq_in_full(x, w, f, s0, m0);
      for (const auto& r : {search::lsq_int(scalar{}, x, w, f, s0, m0, scratch),
                            search::lsq_int(blockq::default_arch{}, x, w, f, s0, m0, scratch)}) {
        ASSERT_EQ(r.scale, full.scale) << sym << rep;
        ASSERT_EQ(r.min, full.min) << sym << rep;
        ASSERT_EQ(r.error, full.error) << sym << rep;
      }
    }
  }
}

// The FP4 (E2M1, float scale) lsq with every descent run in full, transcribed
// from refit.hpp's description as lsq_in_full is.
search::scale_min_result lsq_e2m1_in_full(std::span<const float> x, std::span<const float> w, float s0,
                                          tie_mode ties) {
  using blockq::e2m1;
  const std::size_t n = x.size();
  auto score = [&](float s) {
    return w.empty() ? kernels::block_sse<e2m1>(scalar{}, x.data(), n, s, ties)
                     : kernels::block_wsse<e2m1>(scalar{}, x.data(), w.data(), n, s, ties);
  };
  search::scale_min_result best{s0, 0.0f, score(s0)};
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  if (!(amax > 0.0f)) return best;
  std::vector<std::uint8_t> cur(n), prev(n);
  for (int k = -search::lsq_steps; k <= search::lsq_steps; ++k) {
    float s = amax / (6.0f * (1.0f + static_cast<float>(k) / 60.0f));
    if (!std::isfinite(s) || !(s > 0.0f)) continue;
    kernels::encode<e2m1>(scalar{}, x.data(), n, s, ties, cur.data());
    for (int it = 0; it < search::max_lsq_iterations; ++it) {
      const auto sums = kernels::element_refit_sums<e2m1>(scalar{}, x.data(), w.empty() ? nullptr : w.data(), cur.data(), n);
      const auto r = search::solve_symmetric(sums);
      if (!r.ok || !(r.scale > 0.0) || !std::isfinite(static_cast<float>(r.scale)) || static_cast<float>(r.scale) == 0.0f)
        break;
      s = static_cast<float>(r.scale);
      const double e = score(s);
      if (e < best.error) best = {s, 0.0f, e};
      prev = cur;
      kernels::encode<e2m1>(scalar{}, x.data(), n, s, ties, cur.data());
      if (cur == prev) break;
    }
  }
  return best;
}

TEST(SearchLsq, NeverWorseThanTheStartFp4) {
  std::mt19937_64 g(78);
  std::uniform_real_distribution<float> uw(0.0f, 4.0f);
  std::vector<std::uint8_t> scratch(search::lsq_scratch_bytes(32));
  for (tie_mode ties : {tie_mode::even, tie_mode::toward_zero, tie_mode::away}) {
    for (auto k : search_test::all_kinds) {
      for (int rep = 0; rep < 100; ++rep) {
        const auto x = search_test::make_block(k, 32, g);
        std::vector<float> w;
        if (rep % 2) {
          w.resize(32);
          for (auto& v : w) v = uw(g);
        }
        const float s0 = kernels::block_amax(scalar{}, x.data(), 32) / 6.0f;
        const auto r = search::lsq_element<blockq::e2m1>(scalar{}, x, w, s0, ties, scratch);
        const double e0 = w.empty() ? kernels::block_sse<blockq::e2m1>(scalar{}, x.data(), 32, s0, ties)
                                    : kernels::block_wsse<blockq::e2m1>(scalar{}, x.data(), w.data(), 32, s0, ties);
        ASSERT_LE(r.error, e0);
        // The table of code vectors met changes nothing, on the compiled-in tier as well.
        const auto full = lsq_e2m1_in_full(x, w, s0, ties);
        for (const auto& v : {r, search::lsq_element<blockq::e2m1>(blockq::default_arch{}, x, w, s0, ties, scratch)}) {
          ASSERT_EQ(v.scale, full.scale) << search_test::name(k) << rep;
          ASSERT_EQ(v.error, full.error) << search_test::name(k) << rep;
        }
      }
    }
  }
}

// Through the quantizers: per block, lsq's weighted SSE <= the start rule's.
TEST(SearchLsq, QuantizersPerBlock) {
  std::mt19937_64 g(5);
  std::student_t_distribution<float> td(3.0f);
  std::uniform_real_distribution<float> uw(0.1f, 3.0f);
  std::vector<float> x(4096 + 17), w(x.size());
  for (auto& v : x) v = td(g);
  for (auto& v : w) v = uw(g);
  auto block_wsse = [&](std::span<const float> y, std::size_t b, std::size_t bs) {
    double s = 0;
    for (std::size_t i = b * bs; i < std::min(x.size(), (b + 1) * bs); ++i)
      s += static_cast<double>(w[i]) * (x[i] - y[i]) * (x[i] - y[i]);
    return s;
  };
  for (bool sym : {true, false}) {
    const blockq::uniform_quantizer<> lsq({4, sym, 32, scale_rule::lsq});
    const blockq::uniform_quantizer<> start({4, sym, 32, sym ? scale_rule::absmax : scale_rule::minmax});
    const auto yl = lsq.dequantize(lsq.quantize_weighted(x, w));
    const auto ys = start.dequantize(start.quantize(x));
    for (std::size_t b = 0; b < lsq.num_blocks(x.size()); ++b)
      EXPECT_LE(block_wsse(yl, b, 32), block_wsse(ys, b, 32) * (1 + 1e-12)) << b;
  }
  const blockq::fp4_quantizer<> fl({32, scale_rule::lsq}), fa({32, scale_rule::absmax});
  const auto yl = fl.dequantize(fl.quantize_weighted(x, w));
  const auto ya = fa.dequantize(fa.quantize(x));
  for (std::size_t b = 0; b < fl.num_blocks(x.size()); ++b)
    EXPECT_LE(block_wsse(yl, b, 32), block_wsse(ya, b, 32) * (1 + 1e-12)) << b;
}

TEST(SearchLsq, InvalidWeightsNameTheValue) {
  const blockq::uniform_quantizer<> q({4, true, 32, scale_rule::lsq});
  std::vector<float> x(64, 1.0f), w(63, 1.0f);
  const auto message = [](auto&& f) { return blockq_test::invalid_argument_message(f); };
  EXPECT_NE(message([&] { q.quantize_weighted(x, w); }).find("63"), std::string::npos);
  w.resize(64, 1.0f);
  w[5] = -2.0f;
  const std::string m = message([&] { q.quantize_weighted(x, w); });
  EXPECT_NE(m.find("weight 5"), std::string::npos) << m;
  EXPECT_NE(m.find("-2"), std::string::npos) << m;
}

}  // namespace
