#include "blockq/pack.hpp"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <vector>

#include "blockq/mx.hpp"

namespace {

// A hand-computed block: 16 x 1.0 then 16 x -6.0. amax 6 -> floor(log2 6) - 2
// = 0 -> UE8M0 127 (scale 1); 1.0 is E2M1 code 2, -6.0 is code 15.
std::vector<float> known_block() {
  std::vector<float> x(32, 1.0f);
  std::fill(x.begin() + 16, x.end(), -6.0f);
  return x;
}

TEST(Pack, OcpLayoutBytesOfAKnownBlock) {
  const auto x = known_block();
  const blockq::mxfp4_quantizer q;
  std::vector<std::uint8_t> packed(16), scales(1);
  q.quantize_packed(x, packed, scales);
  EXPECT_EQ(scales[0], 0x7F);
  const std::vector<std::uint8_t> want = {0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
                                          0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  EXPECT_EQ(packed, want);
  // Low nibble first: element 0 -> low nibble of byte 0.
  EXPECT_EQ(blockq::pack_nibbles(std::vector<std::uint8_t>{1, 2, 3, 4, 15, 0, 7}),
            (std::vector<std::uint8_t>{0x21, 0x43, 0x0F, 0x07}));
}

TEST(Pack, GgmlBlockBytesOfAKnownBlock) {
  const auto x = known_block();
  const auto t = blockq::mxfp4_quantizer().quantize(x);
  std::vector<std::uint8_t> out(17);
  blockq::pack_ggml_mxfp4(t.codes, t.scales, out);
  // {e, qs[16]} with qs[j] = code(x[j]) | code(x[j + 16]) << 4 = 2 | 15 << 4.
  std::vector<std::uint8_t> want(17, 0xF2);
  want[0] = 0x7F;
  EXPECT_EQ(out, want);
}

TEST(Pack, RoundTripsBothLayouts) {
  std::mt19937 gen(5);
  for (std::size_t n : {0u, 1u, 2u, 5u, 31u, 32u, 33u, 1000u}) {
    std::vector<std::uint8_t> codes(n);
    for (auto& c : codes) c = static_cast<std::uint8_t>(gen() & 15u);
    std::vector<std::uint8_t> back(n);
    blockq::unpack_nibbles(blockq::pack_nibbles(codes), back);
    EXPECT_EQ(back, codes) << n;
    if (n % 32 == 0) {
      std::vector<std::uint8_t> scales(n / 32);
      for (auto& s : scales) s = static_cast<std::uint8_t>(gen());
      std::vector<std::uint8_t> g(n / 32 * 17), c2(n), s2(n / 32);
      blockq::pack_ggml_mxfp4(codes, scales, g);
      blockq::unpack_ggml_mxfp4(g, c2, s2);
      // ggml's only zero is code 0: E2M1's -0 (code 8) comes back as 0.
      std::vector<std::uint8_t> want = codes;
      for (auto& c : want) c = c == 8 ? 0 : c;
      EXPECT_EQ(c2, want);
      EXPECT_EQ(s2, scales);
    }
  }
}

// A negative value that rounds to zero is E2M1 code 8 (-0) in the OCP layout and code 0 in
// ggml's, from pack_ggml_mxfp4 and quantize_ggml alike (SPEC §8).
TEST(Pack, GgmlWritesNegativeZeroAsCodeZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 6.0f;
  x[1] = -0.1f;   // rounds to -0 at scale 1
  x[17] = -0.0f;
  const blockq::mxfp4_quantizer q;
  const auto t = q.quantize(x);
  EXPECT_EQ(t.codes[1], 8);
  EXPECT_EQ(t.codes[17], 8);
  std::vector<std::uint8_t> packed(17), direct(17);
  blockq::pack_ggml_mxfp4(t.codes, t.scales, packed);
  q.quantize_ggml(x, direct);
  std::vector<std::uint8_t> want(17, 0);
  want[0] = 0x7F;  // scale 2^0: 6 is code 7, -0.1 and -0 are -0 (code 8 in OCP)
  want[1] = 0x07;
  EXPECT_EQ(packed, want);
  EXPECT_EQ(direct, want);
}

TEST(Pack, BadSizesThrow) {
  std::vector<std::uint8_t> codes(33), scales(1), out(17);
  EXPECT_THROW(blockq::pack_ggml_mxfp4(codes, scales, out), std::invalid_argument);
  std::vector<std::uint8_t> small(3);
  EXPECT_THROW(blockq::unpack_nibbles(small, codes), std::invalid_argument);
}

}  // namespace
