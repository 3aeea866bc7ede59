// The AVX-512 tier's own kernels against the scalar oracle, bit for bit (linked into
// arch_avx512_test together with tests/arch_test.cpp, which runs every quantizer with the
// avx512 tag): here decode_blocks for E2M1 (arch/avx512_decode.hpp) directly, with every
// code byte, scales that make zero, -0, subnormal, overflowing and NaN products, block sizes
// it takes (multiples of 16) and those it hands to AVX2, partial last blocks, unaligned
// codes and outputs, and guard elements after the output that must stay untouched; then
// MXFP4 with every UE8M0 scale byte and NVFP4 with every E4M3 scale byte through the
// quantizers. The tests skip loudly on a CPU without AVX-512 F/BW/VL/DQ.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blockq/blockq.hpp"

namespace {

using namespace blockq;

#if BLOCKQ_WITH_AVX512

class Avx512 : public ::testing::Test {
 protected:
  void SetUp() override {
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))) {
      std::printf("*** SKIPPED: this CPU lacks AVX-512 F/BW/VL/DQ; the avx512 kernels are NOT tested here ***\n");
      GTEST_SKIP() << "avx512 not supported by this CPU";
    }
  }
};

float f32(std::uint32_t u) { return std::bit_cast<float>(u); }
std::uint32_t u32(float f) { return std::bit_cast<std::uint32_t>(f); }

std::string hex(float f) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", u32(f));
  return buf;
}

constexpr float kInf = std::numeric_limits<float>::infinity();

// Block scales: products 0, -0, subnormal (0.5 * 2^-126, 6 * 2^-149), rounded (0.3, 1/3),
// overflowing (6 * 3e38), infinite and NaN (quiet, negative, signalling).
const float kScales[] = {1.0f, 0.5f, 3.0f, 0.3f, 1.0f / 3.0f, 0x1p-126f, 0x1p-149f, f32(0x00400000u), 0x1p127f, 3e38f,
                         6e37f, 0.0f, -0.0f, -0.5f, -0.3f, kInf, -kInf, f32(0x7FC00000u), f32(0xFFC00001u),
                         f32(0x7F800001u)};

// The first index where the two outputs differ (guard elements included), or npos.
std::size_t first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (u32(a[i]) != u32(b[i])) return i;
  return std::string::npos;
}

// decode_blocks<e2m1, Packed> of n elements, blocks of `block`, codes at byte offset co and
// output at float offset oo: scalar and avx512 write the same bits and nothing past n.
template <bool Packed>
void check_decode(std::size_t n, std::size_t block, std::size_t co, std::size_t oo, std::uint32_t seed) {
  std::mt19937 g(seed);
  const std::size_t bytes = Packed ? (n + 1) / 2 : n, nb = (n + block - 1) / block;
  std::vector<std::uint8_t> codes(co + bytes + 64);
  for (std::size_t i = 0; i < codes.size(); ++i)  // every byte value, then random ones
    codes[i] = static_cast<std::uint8_t>(i < 256 ? i : g());
  std::vector<float> scales(nb);
  for (float& s : scales) s = kScales[g() % std::size(kScales)];
  const float guard = f32(0x7FC0DEADu);
  std::vector<float> o0(oo + n + 32, guard), o1(oo + n + 32, guard);
  kernels::decode_blocks<e2m1, Packed>(arch::scalar{}, codes.data() + co, scales.data(), n, block,
                                       kernels::identity_divisor{}, o0.data() + oo);
  kernels::decode_blocks<e2m1, Packed>(arch::avx512{}, codes.data() + co, scales.data(), n, block,
                                       kernels::identity_divisor{}, o1.data() + oo);
  const std::size_t at = first_difference(o0, o1);
  if (at == std::string::npos) return;
  std::string what = std::string(Packed ? "packed" : "bytes") + ", n " + std::to_string(n) + ", block " +
                     std::to_string(block) + ", offsets " + std::to_string(co) + "/" + std::to_string(oo) + ", seed " +
                     std::to_string(seed) + ": output " + std::to_string(at) + " scalar " + hex(o0[at]) + ", avx512 " +
                     hex(o1[at]);
  if (at >= oo && at < oo + n) {
    const std::size_t i = at - oo;
    what += ", code byte " + std::to_string(codes[co + (Packed ? i / 2 : i)]) + ", " + "scale " + hex(scales[i / block]);
  } else {
    what += " (outside the output)";
  }
  ADD_FAILURE() << what;
}

TEST_F(Avx512, DecodeBlocksE2m1) {
  std::uint32_t seed = 12;
  // Multiples of 16 (the packed loop's 32-element steps and its 16-element rest: 48, 80) and
  // sizes it leaves to AVX2 (8, 20, 24).
  for (std::size_t block : {16, 32, 48, 64, 80, 128, 8, 20, 24})
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{17},
                          block - 1, block, block + 1, 3 * block, 3 * block + 5, 8 * block - 1, std::size_t{1000},
                          std::size_t{4099}})
      for (auto [co, oo] : {std::pair<std::size_t, std::size_t>{0, 0}, {1, 3}, {7, 1}}) {
        check_decode<false>(n, block, co, oo, ++seed);
        check_decode<true>(n, block, co, oo, ++seed);
      }
}

// The quantizers' dequantize over every scale byte, in turn, for nb blocks (from 1024 blocks
// the kernel looks the byte scales' divisors up in a table of all 256), the 256 code bytes
// cycled through.
void check_every_scale_byte(std::size_t nb) {
  const std::size_t n = nb * 32;
  std::vector<std::uint8_t> scales(nb), packed(n / 2), codes(n);
  for (std::size_t i = 0; i < nb; ++i) scales[i] = static_cast<std::uint8_t>(i * 3);
  for (std::size_t i = 0; i < packed.size(); ++i) packed[i] = static_cast<std::uint8_t>(i * 7 + i / 256);
  for (std::size_t i = 0; i < n; ++i) codes[i] = static_cast<std::uint8_t>(i * 5 + i / 256);
  std::vector<float> d0(n), d1(n);
  auto check = [&](const std::string& what) {
    const std::size_t at = first_difference(d0, d1);
    EXPECT_EQ(at, std::string::npos) << what << ", " << nb << " blocks, element " << at << ": scalar " << hex(d0[at])
                                     << ", avx512 " << hex(d1[at]);
  };
  const mx_quantizer<e2m1, arch::scalar> m0;
  const mx_quantizer<e2m1, arch::avx512> m1;
  m0.dequantize_packed(packed, scales, d0);
  m1.dequantize_packed(packed, scales, d1);
  check("mxfp4 dequantize_packed");
  m0.dequantize(codes, scales, d0);
  m1.dequantize(codes, scales, d1);
  check("mxfp4 dequantize");
  // NVFP4: blocks of 16, 2 nb of them (0x7F and 0xFF are NaN); tensor scales that make the
  // products subnormal or overflow.
  std::vector<std::uint8_t> nv_scales(2 * nb);
  for (std::size_t i = 0; i < nv_scales.size(); ++i) nv_scales[i] = static_cast<std::uint8_t>(i * 3);
  const nvfp4_quantizer<arch::scalar> q0;
  const nvfp4_quantizer<arch::avx512> q1;
  for (float st : {1.0f, 1.0f / 2688.0f, 0x1p-140f, 3e36f}) {
    q0.dequantize_packed(packed, nv_scales, st, d0);
    q1.dequantize_packed(packed, nv_scales, st, d1);
    check("nvfp4 dequantize_packed, tensor scale " + hex(st));
    q0.dequantize(codes, nv_scales, st, d0);
    q1.dequantize(codes, nv_scales, st, d1);
    check("nvfp4 dequantize, tensor scale " + hex(st));
  }
}

TEST_F(Avx512, DequantizeEveryScaleByte) {
  check_every_scale_byte(256);
  check_every_scale_byte(2048 + 3);
}

#else

TEST(Avx512, NotCompiledIn) {
  std::printf("*** SKIPPED: built without the AVX-512 flags; the avx512 kernels are NOT tested here ***\n");
  GTEST_SKIP() << "BLOCKQ_WITH_AVX512 is 0";
}

#endif

}  // namespace
