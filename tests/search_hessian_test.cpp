// Hessian-aware scale search (SPEC §7): the smallest eigenvalue and its
// certified bound, the search against exhaustive search over every scale
// for well- and ill-conditioned, singular and diagonal H, and the output
// error of a weight quantized with correlated calibration activations.
#include "blockq/search/hessian.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "blockq/metrics.hpp"
#include "blockq/mx.hpp"
#include "blockq/nvfp4.hpp"
#include "search_layer.hpp"
#include "search_oracle.hpp"

#include "test_util.hpp"

namespace {

using blockq::block_hessians;
using blockq::scale_rule;
using blockq::tie_mode;
using blockq::ue8m0;
namespace search = blockq::search;
namespace kernels = blockq::kernels;
using scalar = blockq::arch::scalar;

// A random orthogonal n x n matrix (modified Gram-Schmidt, twice).
std::vector<double> random_orthogonal(std::size_t n, std::mt19937_64& g) {
  std::normal_distribution<double> nd;
  std::vector<double> q(n * n);
  for (auto& v : q) v = nd(g);
  for (std::size_t i = 0; i < n; ++i)
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t j = 0; j < i; ++j) {
        double d = 0;
        for (std::size_t k = 0; k < n; ++k) d += q[i * n + k] * q[j * n + k];
        for (std::size_t k = 0; k < n; ++k) q[i * n + k] -= d * q[j * n + k];
      }
      double nr = 0;
      for (std::size_t k = 0; k < n; ++k) nr += q[i * n + k] * q[i * n + k];
      nr = std::sqrt(nr);
      for (std::size_t k = 0; k < n; ++k) q[i * n + k] /= nr;
    }
  return q;
}

// H = Q^T diag(lambda) Q.
std::vector<double> with_spectrum(const std::vector<double>& lambda, std::mt19937_64& g) {
  const std::size_t n = lambda.size();
  const auto q = random_orthogonal(n, g);
  std::vector<double> h(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < n; ++k) s += q[k * n + i] * lambda[k] * q[k * n + j];
      h[i * n + j] = s;
    }
  return h;
}

// Eigenvalues log-spaced from 1 down to 1 / cond (the last is the smallest).
std::vector<double> log_spectrum(std::size_t n, double cond) {
  std::vector<double> l(n);
  for (std::size_t k = 0; k < n; ++k) l[k] = std::pow(cond, -static_cast<double>(k) / static_cast<double>(n - 1));
  return l;
}

// Cholesky of H - shift I in long double: true when positive definite.
bool positive_definite(const double* h, std::size_t n, double shift) {
  std::vector<long double> a(n * n);
  for (std::size_t i = 0; i < n * n; ++i) a[i] = h[i];
  for (std::size_t i = 0; i < n; ++i) a[i * n + i] -= shift;
  for (std::size_t j = 0; j < n; ++j) {
    long double d = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    d = std::sqrt(d);
    a[j * n + j] = d;
    for (std::size_t i = j + 1; i < n; ++i) {
      long double s = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / d;
    }
  }
  return true;
}

TEST(SearchHessianMatrix, JacobiLambdaMinAndItsCertifiedBound) {
  std::mt19937_64 g(41);
  for (std::size_t n : {std::size_t{16}, std::size_t{32}}) {
    for (double cond : {1.0e2, 1.0e6, 1.0e9}) {
      const auto lambda = log_spectrum(n, cond);
      const auto m = with_spectrum(lambda, g);
      const auto h = block_hessians::from_matrices(std::span<const double>(m), n, n);
      double fro = 0;
      for (double v : m) fro += v * v;
      fro = std::sqrt(fro);
      EXPECT_NEAR(h.lambda_min(0), lambda.back(), 64 * static_cast<double>(n) * 0x1p-52 * fro) << n << " " << cond;
      const double bound = h[0].lambda_bound;
      EXPECT_GT(bound, 0.0);
      EXPECT_LE(bound, h.lambda_min(0));
      // H - bound I is positive definite: the bound is below every eigenvalue of the stored H.
      EXPECT_TRUE(positive_definite(m.data(), n, bound)) << n << " " << cond;
      EXPECT_GT(bound, lambda.back() * 0.99) << n << " " << cond;
    }
  }
  // Singular and indefinite matrices give a bound of 0 (every candidate is evaluated).
  auto l = log_spectrum(16, 1e3);
  l.back() = 0.0;
  EXPECT_EQ(block_hessians::from_matrices(std::span<const double>(with_spectrum(l, g)), 16, 16)[0].lambda_bound, 0.0);
  l.back() = -0.5;
  EXPECT_EQ(block_hessians::from_matrices(std::span<const double>(with_spectrum(l, g)), 16, 16)[0].lambda_bound, 0.0);
}

TEST(SearchHessianMatrix, FromActivationsIsXjTransposeXj) {
  std::mt19937_64 g(42);
  std::normal_distribution<float> nd;
  const std::size_t t = 50, k = 64, b = 32;
  std::vector<float> x(t * k);
  for (auto& v : x) v = nd(g);
  const auto h = block_hessians::from_activations(x, k, b);
  ASSERT_EQ(h.num_blocks(), 2u);
  for (std::size_t j = 0; j < 2; ++j) {
    const auto v = h[j];
    for (std::size_t p = 0; p < b; ++p)
      for (std::size_t q = 0; q < b; ++q) {
        double s = 0;
        for (std::size_t r = 0; r < t; ++r) s += static_cast<double>(x[r * k + j * b + p]) * x[r * k + j * b + q];
        ASSERT_NEAR(v.matrix[p * b + q], s, 1e-12 * std::fabs(s) + 1e-12);
      }
  }
}

// The kinds of H the search is checked with, for block size n.
std::vector<block_hessians> test_hessians(std::size_t n, std::mt19937_64& g) {
  std::vector<block_hessians> out;
  std::normal_distribution<float> nd;
  std::vector<float> x(4 * n * n);  // 4n tokens: well conditioned
  for (auto& v : x) v = nd(g);
  out.push_back(block_hessians::from_activations(x, n, n));
  for (double cond : {1.0e6, 1.0e9})
    out.push_back(block_hessians::from_matrices(std::span<const double>(with_spectrum(log_spectrum(n, cond), g)), n, n));
  x.resize(n * (n / 2));  // n/2 tokens: rank n/2, λ_min = 0
  out.push_back(block_hessians::from_activations(x, n, n));
  std::vector<float> d(n);
  std::uniform_real_distribution<float> u(0.01f, 10.0f);
  for (auto& v : d) v = u(g);
  out.push_back(block_hessians::from_diagonal(d, n));
  return out;
}

template <class E>
double hessian_error(std::span<const float> x, float s, const search::hessian_block& h, tie_mode ties) {
  std::vector<float> r(x.size());
  if (h.diagonal) return kernels::block_wsse<E>(scalar{}, x.data(), h.diagonal, x.size(), s, ties);
  kernels::block_residual<E>(scalar{}, x.data(), x.size(), s, ties, r.data());
  return kernels::quad_form(scalar{}, r.data(), h.matrix, x.size());
}

template <class E>
class SearchHessian : public ::testing::Test {};
using Elements = ::testing::Types<blockq::e2m1, blockq::e2m3, blockq::e4m3, blockq::int8_mx>;
TYPED_TEST_SUITE(SearchHessian, Elements);

TYPED_TEST(SearchHessian, EqualsExhaustiveSearchOverAllUe8m0Scales) {
  using E = TypeParam;
  std::mt19937_64 g(43);
  const std::size_t n = 32;
  const auto hs = test_hessians(n, g);
  std::vector<float> scratch(n);
  std::size_t differs_from_mse = 0, total = 0;
  for (std::size_t hi = 0; hi < hs.size(); ++hi) {
    const auto h = hs[hi][0];
    for (auto k : search_test::all_kinds) {
      for (int rep = 0; rep < 25; ++rep) {
        const auto x = search_test::make_block(k, n, g);
        const std::uint8_t start = blockq::mx_scale_code<E>(kernels::block_amax(scalar{}, x.data(), n), scale_rule::ocp);
        auto f = [&](std::size_t e) { return hessian_error<E>(x, ue8m0::decode(static_cast<std::uint8_t>(e)), h, tie_mode::even); };
        const auto r = search::discrete_hessian<E>(scalar{}, x, search::ue8m0_scales(), start, tie_mode::even, h, scratch);
        ASSERT_EQ(r.index, search_test::exhaustive(255, start, f(start), f)) << "H " << hi << " " << search_test::name(k) << " " << rep;
        EXPECT_EQ(r.error, f(r.index));
        // Never above the mse rule's scale evaluated under H.
        const auto m = search::discrete_mse<E>(scalar{}, x, search::ue8m0_scales(), start, tie_mode::even);
        EXPECT_LE(r.error, f(m.index));
        differs_from_mse += r.index != m.index;
        ++total;
      }
    }
  }
  std::printf("hessian scale differs from mse scale on %zu of %zu blocks\n", differs_from_mse, total);
}

// test_hessians plus near-identity matrices scaled by 2^-100 and 2^100 (their float copies
// scaled back) and by 1e-300 (beyond 2^-900: no float copy, the exact search).
std::vector<block_hessians> index_test_hessians(std::size_t n, std::mt19937_64& g) {
  auto hs = test_hessians(n, g);
  std::uniform_real_distribution<double> u(1.0, 1.01);
  for (double scale : {0x1p-100, 0x1p100, 1e-300}) {
    std::vector<double> l(n);
    for (auto& v : l) v = u(g);
    auto m = with_spectrum(l, g);
    for (auto& v : m) v *= scale;
    hs.push_back(block_hessians::from_matrices(std::span<const double>(m), n, n));
  }
  return hs;
}

// A block on the E2M1 grid of both s and 2s (s = 2^j): r^T H r is 0 at both, a tie the
// start must win.
std::vector<float> grid_block(std::size_t n, std::mt19937_64& g) {
  static const float q[] = {0.0f, 1.0f, -1.0f, 2.0f, -2.0f, 3.0f, -3.0f, 4.0f, -6.0f};
  const int j = static_cast<int>(g() % 21) - 10;
  std::vector<float> x(n);
  for (auto& v : x) v = std::ldexp(q[g() % std::size(q)], j);
  x[g() % n] = std::ldexp(6.0f, j);
  return x;
}

// discrete_hessian_index (the quantizers' path: float screens, exact sums for near-ties)
// equals exhaustive search for every element type, H kind and tie rule, with the scalar
// and the default tier. The MXFP4 window (detail::ue8m0_hessian_window) and
// detail::screened_search are also checked alone wherever they decide, and must decide
// on most blocks (else their paths would go untested here).
TYPED_TEST(SearchHessian, IndexEqualsExhaustiveSearch) {
  using E = TypeParam;
  using A = blockq::default_arch;
  std::mt19937_64 g(46);
  const std::size_t n = 32;
  const auto hs = index_test_hessians(n, g);
  std::vector<float> scratch(n);
  std::size_t window = 0, screened = 0, total = 0, ties_at_zero = 0;
  for (std::size_t hi = 0; hi < hs.size(); ++hi) {
    const auto h = hs[hi][0];
    for (int k = 0; k < 6; ++k) {
      for (int rep = 0; rep < 10; ++rep) {
        const auto x = k < 5 ? search_test::make_block(search_test::all_kinds[k], n, g) : grid_block(n, g);
        for (tie_mode ties : {tie_mode::even, tie_mode::away, tie_mode::toward_zero}) {
          const std::uint8_t start = blockq::mx_scale_code<E>(kernels::block_amax(scalar{}, x.data(), n), scale_rule::ocp);
          auto f = [&](std::size_t e) { return hessian_error<E>(x, ue8m0::decode(static_cast<std::uint8_t>(e)), h, ties); };
          const std::size_t want = search_test::exhaustive(255, start, f(start), f);
          const std::string at = "H " + std::to_string(hi) + ", kind " + std::to_string(k) + ", rep " + std::to_string(rep);
          ASSERT_EQ(search::discrete_hessian_index<E>(scalar{}, x, search::ue8m0_scales(), start, ties, h, scratch), want) << at;
          ASSERT_EQ(search::discrete_hessian_index<E>(A{}, x, search::ue8m0_scales(), start, ties, h, scratch), want) << at;
          ++total;
          ties_at_zero += k == 5 && f(want) == 0.0;
          if (!(h.matrix && h.scaled && h.lambda_bound > 0.0)) continue;
          std::size_t i = 0;
          if constexpr (std::is_same_v<E, blockq::e2m1>) {
            if (search::detail::ue8m0_hessian_window<A>(x, start, ties, h, scratch.data(),
                                                          kernels::block_amax(scalar{}, x.data(), n), i)) {
              ++window;
              ASSERT_EQ(i, want) << "window, " << at;
            }
          }
          if (search::detail::screened_search<E, A>(x, search::ue8m0_scales(), start, ties, h, scratch.data(),
                                                     kernels::block_amax(scalar{}, x.data(), n), i)) {
            ++screened;
            ASSERT_EQ(i, want) << "screened, " << at;
          }
        }
      }
    }
  }
  std::printf("window decided %zu, screened search %zu of %zu blocks\n", window, screened, total);
  EXPECT_GT(ties_at_zero, 0u);
  // (λ > 0 and a float copy: 5 of the 8 H; |x| within [2^-40, 2^40]: 4 of the 6 kinds)
  EXPECT_GT(screened, total / 3);
  if constexpr (std::is_same_v<E, blockq::e2m1>) {
    EXPECT_GT(window, total / 5);
  }
}

// The interval of the float screen holds the exact objective (the double kernel
// quad_form) for every candidate scale, on every H with a float copy: s = 2^(e - 127)
// for every code e whose residuals stay within the search's range.
TEST(SearchHessian, ScreenIntervalHoldsTheExactObjective) {
  using A = blockq::default_arch;
  std::mt19937_64 g(47);
  const std::size_t n = 32;
  const auto hs = index_test_hessians(n, g);
  std::vector<float> r(n), r2(n);
  std::size_t checked = 0;
  for (std::size_t hi = 0; hi < hs.size(); ++hi) {
    const auto h = hs[hi][0];
    if (!h.scaled) continue;
    for (int k = 0; k < 6; ++k)
      for (int rep = 0; rep < 6; ++rep) {
        const auto x = k < 5 ? search_test::make_block(search_test::all_kinds[k], n, g) : grid_block(n, g);
        const double amax = kernels::block_amax(scalar{}, x.data(), n);
        if (!(amax >= 0x1p-40 && amax <= 0x1p40)) continue;
        for (std::size_t e = 1; e < 255; e += 3) {
          const float s = ue8m0::decode(static_cast<std::uint8_t>(e));
          if (s > 0x1p60f || s < 0x1p-80f) continue;
          const auto b = search::detail::screen_candidate<blockq::e2m1, A>(x.data(), n, s, tie_mode::even, h, r.data());
          kernels::block_residual<blockq::e2m1>(scalar{}, x.data(), n, s, tie_mode::even, r2.data());
          const double exact = kernels::quad_form(scalar{}, r2.data(), h.matrix, n);
          ASSERT_LE(b.lo, exact) << "H " << hi << " kind " << k << " e " << e;
          ASSERT_GE(b.hi, exact) << "H " << hi << " kind " << k << " e " << e;
          ++checked;
        }
      }
  }
  EXPECT_GT(checked, 1000u);
}

// NVFP4's set (126 E4M3 scales under a tensor scale): discrete_hessian and the
// quantizer's path, discrete_hessian_index (detail::screened_search where it decides,
// which must be most blocks with a float copy of H), equal exhaustive search, with the
// scalar and the default tier; H of every kind of index_test_hessians (tiny and huge
// scales, no float copy, λ bound 0), each tie rule.
TEST(SearchHessian, Nvfp4EqualsExhaustiveOverE4m3Scales) {
  using A = blockq::default_arch;
  std::mt19937_64 g(44);
  const std::size_t n = 16;
  const auto hs = index_test_hessians(n, g);
  std::vector<float> scratch(n);
  std::array<float, 126> set;
  std::size_t screened = 0, eligible = 0;
  for (std::size_t hi = 0; hi < hs.size(); ++hi) {
    const auto h = hs[hi][0];
    for (auto k : search_test::all_kinds) {
      for (int rep = 0; rep < 20; ++rep) {
        const auto x = search_test::make_block(k, n, g);
        const float amax = kernels::block_amax(scalar{}, x.data(), n);
        const float s_t = amax * (rep % 4 == 0 ? 1.0f : 4.0f) / (6.0f * 448.0f);  // sometimes the block is not the tensor max
        search::e4m3_scales(s_t, set);
        const std::uint8_t code = blockq::e4m3::encode(amax / (6.0f * s_t));
        ASSERT_GT(code, 0u);  // (amax / (6 s_t) is 448 or 112)
        const std::size_t start = code - 1u;
        const tie_mode ties = std::array{tie_mode::even, tie_mode::away, tie_mode::toward_zero}[static_cast<std::size_t>(rep) % 3];
        auto f = [&](std::size_t i) { return hessian_error<blockq::e2m1>(x, set[i], h, ties); };
        const std::size_t want = search_test::exhaustive(set.size(), start, f(start), f);
        const auto r = search::discrete_hessian<blockq::e2m1>(scalar{}, x, set, start, ties, h, scratch);
        ASSERT_EQ(r.index, want) << hi << " " << rep;
        ASSERT_EQ(search::discrete_hessian_index<blockq::e2m1>(scalar{}, x, set, start, ties, h, scratch), want) << hi << " " << rep;
        ASSERT_EQ(search::discrete_hessian_index<blockq::e2m1>(A{}, x, set, start, ties, h, scratch), want) << hi << " " << rep;
        if (!(h.matrix && h.scaled && h.lambda_bound > 0.0)) continue;
        ++eligible;
        std::size_t i = 0;
        if (search::detail::screened_search<blockq::e2m1, A>(x, set, start, ties, h, scratch.data(), amax, i)) {
          ++screened;
          ASSERT_EQ(i, want) << "screened, " << hi << " " << rep;
        }
      }
    }
  }
  std::printf("screened search decided %zu of %zu NVFP4 blocks with a float copy of H\n", screened, eligible);
  EXPECT_GT(screened, eligible / 2);
}

using search_test::layer;
using search_test::the_layer;

TEST(SearchHessianQuantize, Mxfp4OutputErrorHessianBelowMseBelowOcp) {
  const layer& L = the_layer();
  const auto h = block_hessians::from_activations(L.x, layer::k, 32);
  auto err = [&](scale_rule r) {
    const blockq::mxfp4_quantizer q({32, r, tie_mode::even});
    return L.output_error(q.dequantize(q.quantize(L.w, h)));
  };
  const double ocp = err(scale_rule::ocp), mse = err(scale_rule::mse), hes = err(scale_rule::hessian);
  std::printf("MXFP4 ||X (W - Q(W))^T||_F: ocp %.4f  mse %.4f  hessian %.4f\n", ocp, mse, hes);
  EXPECT_LT(hes, mse);
  EXPECT_LT(mse, ocp);
  // The measured values (relative tolerance 1e-5: libm's exp may differ by an ulp elsewhere).
  EXPECT_NEAR(ocp, 3079.1583, 3079.1583 * 1e-5);
  EXPECT_NEAR(mse, 2995.8395, 2995.8395 * 1e-5);
  EXPECT_NEAR(hes, 2973.9830, 2973.9830 * 1e-5);
}

TEST(SearchHessianQuantize, Nvfp4OutputErrorHessianBelowMseBelowAbsmax) {
  const layer& L = the_layer();
  const auto h = block_hessians::from_activations(L.x, layer::k, 16);
  auto err = [&](scale_rule r) {
    const blockq::nvfp4_quantizer<> q({r, tie_mode::even, true});
    return L.output_error(q.dequantize(q.quantize(L.w, h)));
  };
  const double absmax = err(scale_rule::absmax), mse = err(scale_rule::mse), hes = err(scale_rule::hessian);
  std::printf("NVFP4 ||X (W - Q(W))^T||_F: absmax %.4f  mse %.4f  hessian %.4f\n", absmax, mse, hes);
  EXPECT_LT(hes, mse);
  EXPECT_LT(mse, absmax);
  EXPECT_NEAR(absmax, 2539.2156, 2539.2156 * 1e-5);
  EXPECT_NEAR(mse, 2178.3436, 2178.3436 * 1e-5);
  EXPECT_NEAR(hes, 1784.6460, 1784.6460 * 1e-5);
}

// A diagonal importance (imatrix) H: the column-weighted SSE of the hessian
// rule is at most the mse rule's, block by block.
TEST(SearchHessianQuantize, DiagonalImportance) {
  std::mt19937_64 g(45);
  std::normal_distribution<float> nd;
  std::uniform_real_distribution<float> u(0.0f, 8.0f);
  const std::size_t rows = 16, k = 128;
  std::vector<float> w(rows * k), imp(k);
  for (auto& v : w) v = nd(g);
  for (auto& v : imp) v = u(g) * u(g);
  const auto h = block_hessians::from_diagonal(imp, 32);
  const blockq::mxfp4_quantizer hq({32, scale_rule::hessian, tie_mode::even}), mq({32, scale_rule::mse, tie_mode::even});
  const auto yh = hq.dequantize(hq.quantize(w, h)), ym = mq.dequantize(mq.quantize(w));
  for (std::size_t b = 0; b < rows * k / 32; ++b) {
    double eh = 0, em = 0;
    for (std::size_t i = b * 32; i < b * 32 + 32; ++i) {
      const double c = imp[i % k];
      eh += c * (w[i] - yh[i]) * (w[i] - yh[i]);
      em += c * (w[i] - ym[i]) * (w[i] - ym[i]);
    }
    EXPECT_LE(eh, em * (1 + 1e-12)) << b;
  }
}

TEST(SearchHessianQuantize, InvalidArgumentsNameTheValue) {
  const auto message = [](auto&& f) { return blockq_test::invalid_argument_message(f); };
  std::vector<float> x(100, 1.0f);
  EXPECT_NE(message([&] { block_hessians::from_activations(x, 64, 32); }).find("100"), std::string::npos);
  EXPECT_NE(message([&] { block_hessians::from_activations(x, 50, 32); }).find("K = 50"), std::string::npos);
  EXPECT_NE(message([&] { block_hessians::from_activations(x, 50, 0); }).find("got 0"), std::string::npos);
  std::vector<double> m(3 * 16 * 16);
  EXPECT_NE(message([&] { block_hessians::from_matrices(std::span<const double>(m), 32, 16); }).find("768"), std::string::npos);
  std::vector<float> d(32, 1.0f);
  d[7] = -1.0f;
  EXPECT_NE(message([&] { block_hessians::from_diagonal(d, 32); }).find("importance 7"), std::string::npos);
  x[3] = std::nanf("");
  EXPECT_NE(message([&] { block_hessians::from_activations(x, 50, 25); }).find("activation 3"), std::string::npos);

  const auto h = block_hessians::from_diagonal(std::vector<float>(64, 1.0f), 32);
  const blockq::mxfp4_quantizer q({32, scale_rule::hessian, tie_mode::even});
  std::vector<float> w(100, 1.0f);
  EXPECT_NE(message([&] { q.quantize(w, h); }).find("100"), std::string::npos);
  const blockq::mxfp4_quantizer q16({16, scale_rule::hessian, tie_mode::even});
  w.resize(128);
  EXPECT_NE(message([&] { q16.quantize(w, h); }).find("block size 32"), std::string::npos);
  const blockq::nvfp4_quantizer<> nv({scale_rule::hessian});
  EXPECT_NE(message([&] { nv.quantize(w, h); }).find("block size 32"), std::string::npos);
  EXPECT_NE(message([&] { nv.quantize(w); }).find("hessian"), std::string::npos);
  // Other rules ignore the Hessians.
  const blockq::mxfp4_quantizer ocp;
  EXPECT_EQ(ocp.quantize(w, h).scales, ocp.quantize(w).scales);
}

}  // namespace
