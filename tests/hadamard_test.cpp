// Block Hadamard rotation (hadamard.hpp): the transform against the explicit matrix
// product R = D H_n / sqrt(n) in long double (H_n[i][j] = (-1)^popcount(i & j), Sylvester),
// rotation then inverse restoring the input, orthogonality, R^T H R against the explicit
// product, the signs against splitmix64's published outputs, every SIMD kernel bit for bit
// against the scalar oracle, and bad sizes.
#include "blockq/hadamard.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "blockq/mx.hpp"
#include "test_util.hpp"

namespace {

using blockq::block_rotation;
namespace kernels = blockq::kernels;
namespace arch = blockq::arch;

#if BLOCKQ_WITH_AVX2
using simd_tag = arch::avx2;
#elif BLOCKQ_WITH_NEON && defined(__aarch64__)
using simd_tag = arch::neon;
#else
using simd_tag = arch::scalar;
#endif

constexpr std::size_t kSizes[] = {2, 4, 8, 16, 32, 64, 128, 256};

// y = x R for one block, R = diag(s) H_n / sqrt(n), in long double from the matrix entries.
std::vector<long double> explicit_rotate(const float* x, std::size_t n, std::span<const float> signs) {
  std::vector<long double> y(n, 0.0L);
  const long double inv = 1.0L / std::sqrt(static_cast<long double>(n));
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t i = 0; i < n; ++i) {
      const long double hij = std::popcount(i & j) % 2 ? -1.0L : 1.0L;
      const long double si = signs.empty() ? 1.0L : signs[i];
      y[j] += static_cast<long double>(x[i]) * si * hij * inv;
    }
  return y;
}

TEST(Hadamard, EqualsTheExplicitMatrixProduct) {
  for (std::size_t n : kSizes)
    for (bool with_signs : {false, true}) {
      const block_rotation r = with_signs ? block_rotation(n, 77) : block_rotation(n);
      const std::size_t blocks = 3;
      auto x = blockq_test::normal_floats(n * blocks, 100 + n);
      auto y = x;
      r.rotate<arch::scalar>(std::span<float>(y));
      for (std::size_t b = 0; b < blocks; ++b) {
        const auto want = explicit_rotate(x.data() + b * n, n, r.signs());
        long double norm = 0;
        for (std::size_t i = 0; i < n; ++i) norm += static_cast<long double>(x[b * n + i]) * x[b * n + i];
        // log2(n) rounded stages and one scaling: a few float ulps of the block norm.
        const double tol = 4.0 * (std::log2(static_cast<double>(n)) + 1) * 0x1p-24 * std::sqrt(static_cast<double>(norm));
        for (std::size_t j = 0; j < n; ++j)
          ASSERT_NEAR(y[b * n + j], static_cast<double>(want[j]), tol) << "n " << n << " block " << b << " j " << j;
      }
    }
}

TEST(Hadamard, RotationThenInverseRestoresTheInput) {
  for (std::size_t n : kSizes)
    for (bool with_signs : {false, true}) {
      const block_rotation r = with_signs ? block_rotation(n, 5) : block_rotation(n);
      const auto x = blockq_test::normal_floats(n * 4, 200 + n);
      auto y = x;
      r.rotate(std::span<float>(y));
      double in = 0, out = 0;
      for (std::size_t i = 0; i < x.size(); ++i) in += double(x[i]) * x[i], out += double(y[i]) * y[i];
      EXPECT_NEAR(out, in, 1e-5 * in) << n;  // orthonormal: the norm is kept
      r.unrotate(std::span<float>(y));
      for (std::size_t i = 0; i < x.size(); ++i)
        ASSERT_NEAR(y[i], x[i], 2.0 * std::log2(static_cast<double>(n)) * 0x1p-24 * 4.0) << "n " << n << " i " << i;
      // double: to double rounding.
      std::vector<double> xd(x.begin(), x.end()), yd = xd;
      r.rotate(std::span<double>(yd));
      r.unrotate(std::span<double>(yd));
      for (std::size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(yd[i], xd[i], 1e-14) << n;
    }
  // n = 16 and 64 have an exact 1/sqrt(n) and no signs: the round trip of small integers is exact.
  const block_rotation r(16);
  std::vector<float> v(32);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<int>(i * 7 % 13) - 6);
  auto w = v;
  r.rotate(std::span<float>(w));
  r.unrotate(std::span<float>(w));
  EXPECT_EQ(w, v);
}

TEST(Hadamard, RotatedHessianIsRTransposeHR) {
  const std::size_t k = 64, n = 32;
  const block_rotation r(n, 9);
  std::mt19937_64 g(3);
  std::normal_distribution<double> nd;
  std::vector<double> a(k * k), h(k * k, 0.0);
  for (auto& v : a) v = nd(g);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j)
      for (std::size_t t = 0; t < k; ++t) h[i * k + j] += a[t * k + i] * a[t * k + j];
  // The explicit R [K, K], block-diagonal.
  std::vector<double> rm(k * k, 0.0);
  for (std::size_t b = 0; b < k / n; ++b)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        rm[(b * n + i) * k + b * n + j] = r.signs()[i] * (std::popcount(i & j) % 2 ? -1.0 : 1.0) / std::sqrt(double(n));
  const auto got = r.rotate_hessian(h, k);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      long double s = 0;
      for (std::size_t p = 0; p < k; ++p)
        for (std::size_t q = 0; q < k; ++q) s += (long double)rm[p * k + i] * h[p * k + q] * rm[q * k + j];
      ASSERT_NEAR(got[i * k + j], static_cast<double>(s), 1e-11 * k) << i << " " << j;
    }
}

// splitmix64 from seed 0 gives 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F,
// 0xF88BB8A8724C81EC (the reference outputs of Vigna's splitmix64.c): signs -, +, +, -.
TEST(Hadamard, SignsAreSplitmix64TopBits) {
  const auto s = blockq::rademacher_signs(4, 0);
  EXPECT_EQ(s, (std::vector<float>{-1.0f, 1.0f, 1.0f, -1.0f}));
  const auto t = blockq::rademacher_signs(128, 2026);
  int minus = 0;
  for (float v : t) {
    ASSERT_TRUE(v == 1.0f || v == -1.0f);
    minus += v < 0;
  }
  EXPECT_GT(minus, 40);
  EXPECT_LT(minus, 88);
  EXPECT_EQ(block_rotation(32, 2026).signs().size(), 32u);
  EXPECT_TRUE(block_rotation(32).signs().empty());
  // An optional seed: a value gives that seed's signs, none gives no signs.
  const block_rotation with(32, std::optional<std::uint64_t>(2026)), without(32, std::optional<std::uint64_t>());
  EXPECT_EQ(std::vector<float>(with.signs().begin(), with.signs().end()), blockq::rademacher_signs(32, 2026));
  EXPECT_EQ(with.seed(), std::optional<std::uint64_t>(2026));
  EXPECT_TRUE(without.signs().empty());
  EXPECT_FALSE(without.seed().has_value());
}

// Bits of two floats equal, or both NaN (the payload of a sum of two NaNs depends on
// the operand order the compiler picks for the scalar oracle).
bool same(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

TEST(Hadamard, SimdKernelEqualsScalarBitForBit) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t n : kSizes)
    for (int kind = 0; kind < 3; ++kind)
      for (bool with_signs : {false, true})
        for (bool inverse : {false, true}) {
          const std::size_t len = n * 5;
          auto x = blockq_test::normal_floats(len, 300 + n + static_cast<std::size_t>(kind), kind == 1 ? 1e30f : 1.0f);
          if (kind == 2) {
            const float edge[] = {0.0f, -0.0f, 1e-45f, -1e-40f, 3.4e38f, -3.4e38f, inf, -inf, nan, 1.0f, -1.0f};
            for (std::size_t i = 0; i < len; ++i) x[i] = edge[(i * 7 + n) % std::size(edge)];
          }
          const auto signs = blockq::rademacher_signs(n, 11);
          const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
          auto a = x, b = x;
          kernels::hadamard_blocks(arch::scalar{}, a.data(), len, n, with_signs ? signs.data() : nullptr, scale, inverse);
          kernels::hadamard_blocks(simd_tag{}, b.data(), len, n, with_signs ? signs.data() : nullptr, scale, inverse);
          for (std::size_t i = 0; i < len; ++i)
            ASSERT_TRUE(same(a[i], b[i])) << simd_tag::name << " n " << n << " kind " << kind << " signs " << with_signs
                                          << " inverse " << inverse << " i " << i << " input " << x[i] << ": "
                                          << a[i] << " vs " << b[i];
        }
}

TEST(Hadamard, QuantizeRotatedAndDequantizeInEitherBasis) {
  const blockq::mxfp4_quantizer q;
  const block_rotation r(32, 1);
  const auto w = blockq_test::normal_floats(4 * 64, 12);
  auto wr = w;
  r.rotate(std::span<float>(wr));
  const auto t = blockq::rotated_quantize(q, w, r);
  const auto direct = q.quantize(std::span<const float>(wr));
  EXPECT_EQ(t.codes, direct.codes);
  EXPECT_EQ(t.scales, direct.scales);
  const auto rot = blockq::rotated_dequantize(q, t, r, true);
  EXPECT_EQ(rot, q.dequantize(t));
  auto back = rot;
  r.unrotate(std::span<float>(back));
  EXPECT_EQ(blockq::rotated_dequantize(q, t, r), back);
  // Rotation spreads an outlier over its block: the quantization error of a block with one
  // large element falls.
  std::vector<float> spike(32, 0.01f);
  spike[5] = 40.0f;
  double plain = 0, rotated = 0;
  const auto p = q.dequantize(q.quantize(std::span<const float>(spike)));
  const auto rr = blockq::rotated_dequantize(q, blockq::rotated_quantize(q, spike, r), r);
  for (std::size_t i = 0; i < 32; ++i)
    plain += (p[i] - spike[i]) * (p[i] - spike[i]), rotated += (rr[i] - spike[i]) * (rr[i] - spike[i]);
  EXPECT_LT(rotated, plain);
}

TEST(Hadamard, BadSizesNameTheValue) {
  const auto message = [](auto&& f) { return blockq_test::invalid_argument_message(f); };
  EXPECT_NE(message([] { block_rotation r(12); }).find("got 12"), std::string::npos);
  EXPECT_NE(message([] { block_rotation r(0); }).find("got 0"), std::string::npos);
  EXPECT_NE(message([] { block_rotation r(1); }).find("got 1"), std::string::npos);
  EXPECT_NE(message([] { block_rotation(32).check_columns(48); }).find("K = 48"), std::string::npos);
  std::vector<float> x(40);
  EXPECT_NE(message([&] { block_rotation(32).rotate(std::span<float>(x)); }).find("40"), std::string::npos);
  std::vector<double> h(10);
  EXPECT_NE(message([&] { block_rotation(16).rotate_hessian(h, 32); }).find("10"), std::string::npos);
}

}  // namespace
