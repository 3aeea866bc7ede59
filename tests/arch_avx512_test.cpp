// The AVX-512 tier's own kernels against the scalar oracle, bit for bit (linked into
// arch_avx512_test together with tests/arch_test.cpp, which runs every quantizer with the
// avx512 tag): here decode_blocks for E2M1 (arch/avx512_decode.hpp) directly, with every
// code byte, scales that make zero, -0, subnormal, overflowing and NaN products, block sizes
// it takes (multiples of 16) and those it hands to AVX2, partial last blocks, unaligned
// codes and outputs, and guard elements after the output that must stay untouched; then
// MXFP4 with every UE8M0 scale byte and NVFP4 with every E4M3 scale byte through the
// quantizers; the 16-lane integer encoders (arch/avx512_int.hpp) directly and through the tag,
// and their run-time choice against /proc/cpuinfo; the NVFP4 window's bounds. The tests skip
// loudly on a CPU without AVX-512 F/BW/VL/DQ.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blockq/blockq.hpp"
#include "search_oracle.hpp"

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

// ------------------------------------------------------------------- integer codecs
//
// int_amax_blocks and int_signed_max_blocks against the scalar loop, codes and scale bits,
// twice: the 16-lane loops of arch/avx512_int.hpp called directly, and the avx512 tag (which
// runs them or AVX2's, as avx512_detail::wide_int_loops decides for this CPU): every bit width 1..8, signed and unsigned, blocks 16 and 32 (the
// fused groups of 16 blocks) and 48 and 8 (handed to AVX2), lengths with partial groups and
// a partial last block, and blocks of every edge class mixed so that groups hold some blocks
// that decline (NaN, Inf, zeros, -0, +a beside -a, amax near FLT_MAX, subnormal scales) among
// ordinary ones (normal, Laplace, Student-t, outliers, exact powers of two, tiny, huge).

// Fills the block [p, p + len) with values of class k.
void fill_block(float* p, std::size_t len, int k, std::mt19937& g) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::exponential_distribution<float> expo(1.0f);
  std::student_t_distribution<float> student(2.0f);
  std::uniform_int_distribution<std::size_t> pos(0, len - 1);
  auto sign = [&] { return (g() & 1) != 0 ? -1.0f : 1.0f; };
  for (std::size_t i = 0; i < len; ++i) {
    switch (k) {
      case 0: p[i] = normal(g); break;
      case 1: p[i] = sign() * expo(g); break;                                      // Laplace
      case 2: p[i] = student(g); break;                                            // Student-t
      case 3: p[i] = normal(g) * (i == pos(g) ? 1e4f : 1.0f); break;               // outliers
      case 4: p[i] = 0.0f; break;                                                  // zeros
      case 5: p[i] = (g() & 1) != 0 ? -0.0f : 0.0f; break;                        // +-0
      case 6: p[i] = sign() * static_cast<float>(g() % 8); break;                  // ties, +a and -a
      case 7: p[i] = sign() * f32(g() % 300u); break;                              // a few subnormal ulps
      case 8: p[i] = normal(g) * 1e37f; break;                                     // huge
      case 9: p[i] = sign() * f32(0x7F7FFFFFu - (g() % 3)); break;                 // near FLT_MAX
      case 10: p[i] = sign() * std::ldexp(1.0f, static_cast<int>(g() % 8)); break;  // powers of two
      case 11: p[i] = normal(g) * ((g() & 1) != 0 ? 1e-30f : 1e-41f); break;       // tiny, subnormal
      default: p[i] = static_cast<float>(g() % 7) - 3.0f; break;                   // small integers
    }
  }
  if (k == 12) p[pos(g)] = f32(0x7FC00000u | (g() & 0x3FFFFFu)) * sign();  // a NaN
  if (k == 13) p[pos(g)] = sign() * kInf;
  if (k == 14) p[pos(g)] = f32(0x7F800001u);  // signalling NaN
}

std::vector<float> int_input(std::size_t n, std::size_t block, std::uint32_t seed, int classes) {
  std::mt19937 g(seed);
  std::vector<float> x(n);
  for (std::size_t b = 0; b < n; b += block) fill_block(x.data() + b, std::min(block, n - b), static_cast<int>(g() % classes), g);
  return x;
}

// Rule absmax (Signed false) or signed_max of x through both tags; codes at byte offset co.
template <bool SignedMax>
void check_int_blocks(const std::vector<float>& x, std::size_t block, int_format fmt, std::size_t co, const std::string& what) {
  const std::size_t n = x.size(), nb = (n + block - 1) / block;
  std::vector<std::uint8_t> c0(n + co + 32, 0xA5);
  std::vector<float> s0(nb + 1, 7.0f);
  const kernels::quotient_block_scale scale_of{static_cast<float>(fmt.qmax())};
  if constexpr (SignedMax)
    kernels::int_signed_max_blocks(arch::scalar{}, x.data(), n, block, fmt, c0.data() + co, s0.data());
  else
    kernels::int_amax_blocks(arch::scalar{}, x.data(), n, block, fmt, scale_of, c0.data() + co, s0.data());
  for (const bool direct : {true, false}) {
  if (!direct && kernels::avx512_detail::wide_int_loops()) continue;  // the tag runs the same loops
  std::vector<std::uint8_t> c1(n + co + 32, 0xA5);
  std::vector<float> s1(nb + 1, 7.0f);
  if constexpr (SignedMax) {
    if (direct)
      kernels::avx512_detail::int_signed_max_blocks16(x.data(), n, block, fmt, c1.data() + co, s1.data());
    else
      kernels::int_signed_max_blocks(arch::avx512{}, x.data(), n, block, fmt, c1.data() + co, s1.data());
  } else {
    if (direct)
      kernels::avx512_detail::int_amax_blocks16(x.data(), n, block, fmt, scale_of, c1.data() + co, s1.data());
    else
      kernels::int_amax_blocks(arch::avx512{}, x.data(), n, block, fmt, scale_of, c1.data() + co, s1.data());
  }
  const std::string head = std::string(SignedMax ? "signed_max" : "absmax") + (direct ? " (16 lanes)" : " (tag)") + ", " +
                           std::to_string(fmt.bits) + (fmt.is_signed ? "-bit signed" : "-bit unsigned") + ", n " +
                           std::to_string(n) + ", block " + std::to_string(block) + ", " + what;
  for (std::size_t b = 0; b <= nb; ++b)
    if (u32(s0[b]) != u32(s1[b])) {
      ADD_FAILURE() << head << ": scale " << b << " scalar " << hex(s0[b]) << ", avx512 " << hex(s1[b]);
      return;
    }
  for (std::size_t i = 0; i < c0.size(); ++i)
    if (c0[i] != c1[i]) {
      const std::size_t e = i - co;
      ADD_FAILURE() << head << ": code byte " << i << " scalar " << int(c0[i]) << ", avx512 " << int(c1[i])
                    << (i >= co && e < n ? ", x " + hex(x[e]) + ", scale " + hex(s0[e / block]) : std::string(" (outside)"));
      return;
    }
  }
}

TEST_F(Avx512, IntAmaxAndSignedMaxBlocks) {
  std::uint32_t seed = 512;
  for (int bits = 1; bits <= 8; ++bits)
    for (bool is_signed : {true, false})
      for (std::size_t block : {16, 32, 48, 8})
        for (std::size_t n : {block * 16, block * 32 + 5, block * 48 + block - 3, block * 16 + 7 * block, block * 3 + 1}) {
          const int_format fmt{bits, is_signed};
          // Ordinary blocks only (every group fused), every class mixed (some blocks of a
          // group decline), the declining classes only.
          for (int mix = 0; mix < 3; ++mix) {
            ++seed;
            std::vector<float> x = int_input(n, block, seed, mix == 0 ? 4 : 15);
            if (mix == 2) {  // classes 4..14 in turn
              std::mt19937 g(seed);
              for (std::size_t b = 0; b < n; b += block)
                fill_block(x.data() + b, std::min(block, n - b), 4 + static_cast<int>((b / block) % 11), g);
            }
            const std::string what = "seed " + std::to_string(seed) + ", mix " + std::to_string(mix);
            check_int_blocks<false>(x, block, fmt, 0, what);
            check_int_blocks<true>(x, block, fmt, 0, what);
            check_int_blocks<false>(x, block, fmt, 3, what + ", codes offset 3");
          }
        }
}

// 32 MiB of input: the loops' non-temporal stores (16-byte aligned codes), every class mixed.
TEST_F(Avx512, IntBlocksStreaming) {
  const std::size_t n = (std::size_t{32} << 20) / sizeof(float);
  for (std::size_t block : {16, 32}) {
    const std::vector<float> x = int_input(n + block * 5 + 3, block, 77, 15);
    check_int_blocks<false>(x, block, int_format{4, true}, 0, "streaming");
    check_int_blocks<true>(x, block, int_format{8, true}, 0, "streaming");
  }
}

// decode_int of the avx512 tag (AVX2's: a 16-lane decoder measured no steadier win, see
// arch/avx512_int.hpp), and its whole-tensor int_decode_blocks over blocks of 16, 32 and 24
// with a partial last block: every code byte at scales and mins that make zero, -0, subnormal, rounded,
// overflowing (the scalar int_level's halving and saturation), infinite and NaN levels,
// every bit width, lengths around the 16-lane steps, unaligned codes and outputs; nothing
// written past n.
TEST_F(Avx512, DecodeInt) {
  const float mins[] = {0.0f, -0.0f, 1.5f, -3e38f, 3e38f, 1e-40f, kInf, f32(0x7FC00000u)};
  std::vector<std::uint8_t> codes(256 + 64);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<std::uint8_t>(i * 37 + (i >> 8));
  const float guard = f32(0x7FC0DEADu);
  for (int bits = 1; bits <= 8; ++bits)
    for (bool is_signed : {true, false})
      for (float scale : kScales)
        for (float mn : mins)
          for (std::size_t n : {1, 7, 15, 16, 17, 31, 32, 33, 48, 100, 256})
            for (std::size_t off : {0, 1}) {
              const int_format fmt{bits, is_signed};
              std::vector<float> o0(n + off + 20, guard);
              kernels::decode_int(arch::scalar{}, codes.data() + off, n, scale, mn, fmt, o0.data() + off);
              std::vector<float> o1(n + off + 20, guard);
              kernels::decode_int(arch::avx512{}, codes.data() + off, n, scale, mn, fmt, o1.data() + off);
              const std::size_t at = first_difference(o0, o1);
              if (at != std::string::npos) {
                ADD_FAILURE() << "decode_int " << bits << (is_signed ? "-bit signed" : "-bit unsigned") << ", n " << n
                              << ", offset " << off << ", scale " << hex(scale) << ", min " << hex(mn) << ": output "
                              << at << " scalar " << hex(o0[at]) << ", avx512 " << hex(o1[at]);
                return;
              }
            }
  // The whole tensor: per-block scales and mins drawn from the lists above.
  std::mt19937 g(274);
  for (int bits : {2, 4, 8})
    for (bool is_signed : {true, false})
      for (std::size_t block : {16, 32, 24})
        for (std::size_t n : {block * 40, block * 40 + 5}) {
          const int_format fmt{bits, is_signed};
          const std::size_t nb = (n + block - 1) / block;
          std::vector<std::uint8_t> c(n);
          for (auto& v : c) v = static_cast<std::uint8_t>(g());
          std::vector<float> sc(nb), mi(nb);
          for (std::size_t b = 0; b < nb; ++b) {
            sc[b] = kScales[g() % std::size(kScales)];
            mi[b] = mins[g() % std::size(mins)];
          }
          std::vector<float> o0(n + 20, guard), o1(n + 20, guard);
          kernels::int_decode_blocks(arch::scalar{}, c.data(), sc.data(), is_signed ? nullptr : mi.data(), n, block, fmt,
                                     o0.data());
          kernels::int_decode_blocks(arch::avx512{}, c.data(), sc.data(), is_signed ? nullptr : mi.data(), n, block, fmt,
                                     o1.data());
          const std::size_t at = first_difference(o0, o1);
          if (at != std::string::npos) {
            ADD_FAILURE() << "int_decode_blocks " << bits << (is_signed ? "-bit signed" : "-bit unsigned") << ", block "
                          << block << ", n " << n << ": output " << at << " scalar " << hex(o0[at]) << ", avx512 "
                          << hex(o1[at]);
            return;
          }
        }
}

// The run-time choice of the integer loops (avx512_detail::wide_int_loops) against the CPU
// as Linux describes it in /proc/cpuinfo: AVX2's loops on AMD family 25 (Zen 4), the 16-lane
// ones on every other AVX-512 CPU. Skipped where /proc/cpuinfo is not there.
TEST_F(Avx512, IntLoopsChosenByCpuFamily) {
  std::FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (f == nullptr) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string vendor;
  int family = -1;
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr && (vendor.empty() || family < 0)) {
    const std::string l = line;
    const std::size_t colon = l.find(':');
    if (colon == std::string::npos) continue;
    if (l.rfind("vendor_id", 0) == 0) vendor = l.substr(l.find_first_not_of(" \t", colon + 1), std::string::npos);
    if (l.rfind("cpu family", 0) == 0) family = std::atoi(l.c_str() + colon + 1);
  }
  std::fclose(f);
  ASSERT_FALSE(vendor.empty());
  ASSERT_GE(family, 0);
  const bool zen4 = vendor.rfind("AuthenticAMD", 0) == 0 && family == 25;
  std::printf("vendor %s family %d: the avx512 tag runs %s integer loops\n", vendor.substr(0, vendor.find('\n')).c_str(),
              family, kernels::avx512_detail::wide_int_loops() ? "its 16-lane" : "AVX2's");
  EXPECT_EQ(kernels::avx512_detail::wide_int_loops(), !zen4);
}

// ------------------------------------------------------------- the NVFP4 window's bounds
//
// kernels::window_sse_bounds (arch/nvfp4_search_avx512.hpp), a bounds contract rather than
// bits: every k = 1..16 and n = 1..16 (and the fallback n = 17, 33), scales of every kind
// (E4M3 steps of a tensor scale, tiny ones around 2^-126 where fl(1 / s) passes 2^126 and
// the lane must be unknown, large ones up to 2^38), elements a few float steps and a
// relative 2^-20 to 2^-8 around the E2M1 thresholds times the scales, on the grid, random,
// zeros and subnormal. Checked: each known est[j] within
// window_bounds_relative_error(n) t + window_bounds_absolute_error(n)
// of the exact t = block_sse<e2m1>(scalar) under every tie rule; est[j] = -1 exactly where
// fl(1 / s_j) > 2^126 (the kernel's documented unknown lanes); the tail within the estimates'
// error of its definition; least the least known est[j]; nothing written past est[k - 1],
// and scales past k (poison ones at which the block's SSE is 0) never read into least.
// Then the search built on it: search::e4m3_mse_index with the avx512 tag equals the exact
// window search (search::e4m3_mse, scalar), the window decides most ordinary blocks on its
// own, and nvfp4_quantizer<avx512> rule mse writes the scalar quantizer's bytes.

constexpr float kThresholds[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
constexpr float kGrid[] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

// 16 scales of kind `kind` (sorted or not: the kernel does not care).
void window_scales(int kind, std::mt19937& g, float* sc) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  switch (kind) {
    case 0: {  // E4M3 steps of a tensor scale
      const float st = std::ldexp(1.0f + u(g), static_cast<int>(g() % 40) - 20);
      const auto c0 = static_cast<std::uint32_t>(1 + g() % 100);
      for (std::size_t j = 0; j < 16; ++j) sc[j] = e4m3::decode(static_cast<std::uint8_t>(std::min(126u, c0 + static_cast<std::uint32_t>(j)))) * st;
      break;
    }
    case 1:  // around 2^-126: fl(1 / s) on both sides of 2^126, subnormal scales
      for (std::size_t j = 0; j < 16; ++j) {
        float v = std::ldexp(1.0f + u(g), -127 - static_cast<int>(g() % 3));
        if (g() % 3 == 0) v = 0x1p-126f;
        for (int m = static_cast<int>(g() % 5) - 2; m != 0; m += m > 0 ? -1 : 1) v = std::nextafter(v, m > 0 ? 1.0f : 0.0f);
        sc[j] = v;
      }
      break;
    case 2:  // large (the blocks stay within the search's |x| <= 2^40, their squares finite)
      for (std::size_t j = 0; j < 16; ++j) sc[j] = std::ldexp(1.0f + u(g), 20 + static_cast<int>(g() % 18));
      break;
    default:  // any magnitude, a few tiny and large among them
      for (std::size_t j = 0; j < 16; ++j) {
        sc[j] = std::ldexp(1.0f + u(g), static_cast<int>(g() % 60) - 30);
        if (g() % 8 == 0) sc[j] = std::ldexp(1.0f + u(g), (g() & 1) != 0 ? -128 : 37);
      }
  }
}

// n elements of kind `kind` for the scales sc[0..k); kind 2 puts them all on the grid of
// one scale past k when there is one (the poison: a block SSE of 0 there, so that a kernel
// reading scales past k would return least = 0).
std::vector<float> window_block(int kind, std::size_t n, const float* sc, std::size_t k, std::mt19937& g) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(n);
  const float poison = k < 16 ? sc[k + g() % (16 - k)] : sc[g() % 16];
  for (float& v : x) {
    const float s = kind == 2 ? poison : sc[g() % k];
    switch (kind) {
      case 0:  // a few float steps around a threshold times a scale
        v = kThresholds[g() % 7] * s;
        for (int m = static_cast<int>(g() % 7) - 3; m != 0; m += m > 0 ? -1 : 1) v = std::nextafter(v, m > 0 ? kInf : 0.0f);
        break;
      case 1:  // a relative 2^-20 to 2^-8 around a threshold times a scale
        v = kThresholds[g() % 7] * s * (1.0f + ((g() & 1) != 0 ? 1.0f : -1.0f) * std::ldexp(1.0f + u(g), -8 - static_cast<int>(g() % 13)));
        break;
      case 2: v = kGrid[g() % 8] * s; break;                     // on the grid (a zero residual)
      case 3: v = 7.0f * u(g) * s; break;                        // random, some clipped
      case 4: v = (g() % 4 == 0) ? 0.0f : 3.0f * u(g) * s; break;  // zeros among them
      default: v = f32(static_cast<std::uint32_t>(g() % 5000u)); break;  // subnormal
    }
    if ((g() & 1) != 0) v = -v;
  }
  return x;
}

TEST_F(Avx512, Nvfp4WindowBoundsContract) {
  std::mt19937 g(512);
  const float guard = f32(0x7FC0BEEFu);
  std::size_t known = 0, unknown = 0, checked_least = 0;
  for (int rep = 0; rep < 1500; ++rep) {
    float sc[16];
    window_scales(rep % 4, g, sc);
    for (std::size_t k = 1; k <= 16; ++k) {
      const std::size_t n = rep % 40 == 39 ? (rep % 80 == 79 ? 33 : 17) : 1 + (static_cast<std::size_t>(rep) * 7 + k) % 16;
      const auto x = window_block(static_cast<int>(g() % 6), n, sc, k, g);
      const float* scales = sc;
      const float half = (g() & 1) != 0 ? 0.5f * sc[g() % 16] : 0.0f;
      double z = 0.0;
      for (float v : x) {
        const float y = std::fabs(v), d = half - y;
        const double w = d <= 0.0f ? 0.0 : std::min(y, d);
        z += w * w;
      }
      const double rel = kernels::window_bounds_relative_error(n), abs = kernels::window_bounds_absolute_error(n);
      for (tie_mode t : {tie_mode::even, tie_mode::toward_zero, tie_mode::away}) {
        float est[17], tail = -1.0f, least = -1.0f;
        std::fill(est, est + 17, guard);
        kernels::window_sse_bounds(arch::avx512{}, x.data(), n, scales, k, t, half, est, tail, least);
        const std::string at = "rep " + std::to_string(rep) + ", k " + std::to_string(k) + ", n " + std::to_string(n) + ", ties " + std::string(to_string(t));
        float expect = kInf;
        for (std::size_t j = 0; j < k; ++j) {
          const bool out_of_range = 1.0f / scales[j] > 0x1p126f;
          if (n <= 16) {
            ASSERT_EQ(est[j] == -1.0f, out_of_range) << at << ", scale " << hex(scales[j]) << ", est " << est[j];
          }
          if (est[j] == -1.0f) {
            ++unknown;
            continue;
          }
          ++known;
          expect = std::min(expect, est[j]);
          const double v = kernels::block_sse<e2m1>(arch::scalar{}, x.data(), n, scales[j], t);
          ASSERT_LE(std::abs(est[j] - v), rel * v + abs) << at << ", scale " << hex(scales[j]) << ": " << est[j] << " vs " << v;
        }
        for (std::size_t j = k; j < 17; ++j) ASSERT_EQ(u32(est[j]), u32(guard)) << at << ": written past k at " << j;
        ASSERT_EQ(u32(least), u32(expect)) << at << ": least " << least << " vs " << expect;
        checked_least += expect < kInf;
        const double erel = kernels::estimate_relative_error(n), eabs = kernels::estimate_absolute_error(n);
        ASSERT_LE(std::abs(tail - z), erel * z + eabs) << at << ": tail " << tail << " vs " << z;
      }
    }
  }
  EXPECT_GT(known, 50000u);
  EXPECT_GT(unknown, 2000u);
  EXPECT_GT(checked_least, 40000u);
}

// The window's extra margin at work, as SearchNvfp4Mse.WindowBoundsCoverQuotientsAtThresholds
// (tests/search_discrete_test.cpp) for the default tag: blocks of 1 to 3 elements all a few
// float steps around the same threshold times scale j, so that every term of candidate j
// is one the kernel may round to the other neighbour.
TEST_F(Avx512, Nvfp4WindowBoundsAtThresholds) {
  std::mt19937 g(513);
  std::size_t checked = 0;
  for (int rep = 0; rep < 20000; ++rep) {
    float sc[16];
    const auto b = search_test::block_at_threshold(g, sc, 16, 1 + static_cast<std::size_t>(rep % 3));
    for (tie_mode t : {tie_mode::even, tie_mode::toward_zero, tie_mode::away}) {
      float est[16], tail = -1.0f, least = -1.0f;
      kernels::window_sse_bounds(arch::avx512{}, b.x.data(), b.n, sc, 16, t, 0.0f, est, tail, least);
      ASSERT_NE(est[b.j], -1.0f);
      ++checked;
      const double e = kernels::block_sse<e2m1>(arch::scalar{}, b.x.data(), b.n, sc[b.j], t);
      ASSERT_LE(std::abs(est[b.j] - e),
                kernels::window_bounds_relative_error(b.n) * e + kernels::window_bounds_absolute_error(b.n))
          << rep << " threshold " << b.threshold << " steps " << b.steps;
    }
  }
  EXPECT_EQ(checked, 60000u);
}

// NVFP4 rule mse through the avx512 tag: the index of search::e4m3_mse_index against the
// exact window search (scalar) on blocks of 1..16 elements of every class of fill_block
// that the search takes (finite), every tie rule, tensor scales of many magnitudes; the
// window must decide (without an exact sum) most of the ordinary blocks, as often as with
// the avx2 tag; then whole
// tensors through nvfp4_quantizer<avx512> against nvfp4_quantizer<scalar>, codes and scales.
TEST_F(Avx512, Nvfp4MseMatchesScalar) {
  std::mt19937 g(514);
  std::size_t decided = 0, decided_avx2 = 0, ordinary = 0;
  std::array<float, 126> set;
  float blk[16];
  for (int rep = 0; rep < 30000; ++rep) {
    const int cls = static_cast<int>(g() % 12);
    const std::size_t n = rep % 5 == 0 ? 1 + g() % 16 : 16;
    fill_block(blk, n, cls, g);
    const float st = std::ldexp(1.0f, static_cast<int>(g() % 40) - 20) * (1.0f + static_cast<float>(g() % 100) / 100.0f);
    search::e4m3_scales(st, set);
    const float amax = kernels::block_amax(arch::scalar{}, blk, n);
    if (!std::isfinite(amax)) continue;
    // the quantizer's start: the absmax code
    const float d = amax / (6.0f * st);
    std::size_t start = search::zero_start;
    for (std::size_t i = 0; i < 126; ++i)
      if (set[i] >= amax / 6.0f) {
        start = i;
        break;
      }
    if (!(d > 0.0f) || start == search::zero_start) continue;
    const std::span<const float> x(blk, n);
    for (tie_mode t : {tie_mode::even, tie_mode::toward_zero, tie_mode::away}) {
      const std::size_t want = search::e4m3_mse(arch::scalar{}, x, set, start, t).index;
      const std::size_t got = search::e4m3_mse_index(arch::avx512{}, x, set, start, t, amax);
      ASSERT_EQ(got, want) << "rep " << rep << ", class " << cls << ", n " << n << ", tensor scale " << hex(st);
      std::size_t i = 0;
      if (cls <= 3 && n == 16) {
        ++ordinary;
        decided += search::detail::e4m3_window_index<arch::avx512>(x, set, start, t, amax, i);
        decided_avx2 += search::detail::e4m3_window_index<arch::avx2>(x, set, start, t, amax, i);
      }
    }
  }
  EXPECT_GT(ordinary, 10000u);
  // (the same arithmetic as AVX2's kernel but the tail's sum order: as many decisions)
  EXPECT_GT(decided * 10, ordinary * 6) << decided << " of " << ordinary;
  EXPECT_GE(decided * 100, decided_avx2 * 99) << decided << " vs avx2 " << decided_avx2;
  std::printf("window decided %zu of %zu ordinary blocks (avx2: %zu)\n", decided, ordinary, decided_avx2);
  for (std::uint32_t seed = 0; seed < 6; ++seed) {
    const std::vector<float> x = int_input(16 * 2000 + seed, 16, 600 + seed, 15);
    for (tie_mode t : {tie_mode::even, tie_mode::toward_zero, tie_mode::away})
      for (bool ts : {true, false}) {
        const nvfp4_options opt{scale_rule::mse, t, ts};
        const nvfp4_quantizer<arch::scalar> q0(opt);
        const nvfp4_quantizer<arch::avx512> q1(opt);
        const std::size_t nb = q0.num_blocks(x.size());
        std::vector<std::uint8_t> c0(x.size()), c1(x.size()), s0(nb), s1(nb);
        const float st = q0.tensor_scale(std::span<const float>(x));
        q0.quantize(std::span<const float>(x), st, c0, s0);
        q1.quantize(std::span<const float>(x), st, c1, s1);
        for (std::size_t b = 0; b < nb; ++b) ASSERT_EQ(s0[b], s1[b]) << "seed " << seed << ", block " << b;
        ASSERT_EQ(c0, c1) << "seed " << seed;
      }
  }
}

#else

TEST(Avx512, NotCompiledIn) {
  std::printf("*** SKIPPED: built without the AVX-512 flags; the avx512 kernels are NOT tested here ***\n");
  GTEST_SKIP() << "BLOCKQ_WITH_AVX512 is 0";
}

#endif

}  // namespace
