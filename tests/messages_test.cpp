// SPDX-License-Identifier: Apache-2.0
// Span-size errors name the argument that is wrong, its size and the size expected:
// quantizing, the input fixes the sizes of the codes and scales (the outputs are blamed);
// dequantizing, the codes fix the size of the output (the output is blamed), and the
// output's size that of the scales.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "blockq/blockq.hpp"
#include "blockq/ggml.hpp"
#include "test_util.hpp"

namespace {

using blockq_test::invalid_argument_message;

// The message starts with `head` (after "blockq: ") and mentions every fragment.
void expect_message(const std::string& msg, const std::string& head, std::initializer_list<std::string> fragments = {}) {
  EXPECT_EQ(msg.rfind("blockq: " + head, 0), 0u) << msg;
  for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg << "\n  missing: " << f;
}

TEST(Messages, MxDequantizeBlamesTheOutput) {
  const blockq::mxfp4_quantizer mx;
  std::vector<float> x(64, 1.0f);
  std::vector<std::uint8_t> packed(32), scales(2);
  mx.quantize_packed(x, packed, scales);
  std::vector<float> short_out(40), odd_out(63);
  expect_message(invalid_argument_message([&] { mx.dequantize_packed(packed, scales, short_out); }),
                 "output has 40 elements, expected 63 or 64", {"32 bytes of packed codes"});
  mx.dequantize_packed(packed, scales, odd_out);  // 63 elements fit 32 bytes: no error
  std::vector<std::uint8_t> codes(64);
  expect_message(invalid_argument_message([&] { mx.dequantize(codes, scales, short_out); }),
                 "output has 40 elements, expected 64", {"one per code"});
  std::vector<std::uint8_t> three(3);
  std::vector<float> out(64);
  expect_message(invalid_argument_message([&] { mx.dequantize(codes, three, out); }), "scales has 3 elements, expected 2",
                 {"block of 32", "output's 64 elements"});
}

TEST(Messages, MxQuantizeBlamesTheOutputs) {
  const blockq::mxfp4_quantizer mx;
  std::vector<float> x(70, 1.0f);
  std::vector<std::uint8_t> packed(34), scales(3), ggml(10);
  expect_message(invalid_argument_message([&] { mx.quantize_packed(x, packed, scales); }),
                 "packed codes has 34 elements, expected 35", {"input's 70 elements"});
  packed.resize(35);
  scales.resize(2);
  expect_message(invalid_argument_message([&] { mx.quantize_packed(x, packed, scales); }),
                 "scales has 2 elements, expected 3", {"input's 70 elements"});
  expect_message(invalid_argument_message([&] { mx.quantize_ggml(x, ggml); }), "the input has 70 elements",
                 {"multiple of 32"});
  x.resize(64);
  expect_message(invalid_argument_message([&] { mx.quantize_ggml(x, ggml); }), "ggml output has 10 elements, expected 34");
}

TEST(Messages, Nvfp4AndFp4) {
  const blockq::nvfp4_quantizer<> nv;
  std::vector<float> x(32, 1.0f), out(31);
  const blockq::nvfp4_tensor t = nv.quantize(x);
  expect_message(invalid_argument_message([&] { nv.dequantize(t.codes, t.scales, t.tensor_scale, out); }),
                 "output has 31 elements, expected 32");
  std::vector<std::uint8_t> codes(32), scales(1);
  expect_message(invalid_argument_message([&] { nv.quantize(x, t.tensor_scale, codes, scales); }),
                 "scales has 1 elements, expected 2");
  const blockq::fp4_quantizer<> f;
  const blockq::fp4_tensor ft = f.quantize(x);
  std::vector<float> wide(33);
  expect_message(invalid_argument_message([&] { f.dequantize(ft.codes, ft.scales, wide); }),
                 "output has 33 elements, expected 32");
  std::vector<float> w(31, 1.0f);
  expect_message(invalid_argument_message([&] { f.quantize_weighted(x, w); }), "weights has 31 elements, expected 32");
}

TEST(Messages, Uniform) {
  const blockq::uniform_quantizer<> q({4, false, 32, {}});
  std::vector<float> x(64, 1.0f), out(65);
  const blockq::uniform_tensor t = q.quantize(x);
  expect_message(invalid_argument_message([&] { q.dequantize(t.codes, t.scales, t.mins, out); }),
                 "output has 65 elements, expected 64");
  std::vector<float> one(1);
  out.resize(64);
  expect_message(invalid_argument_message([&] { q.dequantize(t.codes, t.scales, one, out); }),
                 "mins has 1 elements, expected 2", {"output's 64 elements"});
  const blockq::uniform_quantizer<> sym({4, true, 32, {}});
  std::vector<std::uint8_t> codes(64);
  std::vector<float> scales(2), mins(2);
  expect_message(invalid_argument_message([&] { sym.quantize(x, codes, scales, mins); }), "mins has 2 elements, expected 0",
                 {"symmetric"});
}

TEST(Messages, GgmlBlocks) {
  const blockq::ggml_quantizer<> q(blockq::ggml_type::q4_0);  // 18 bytes a block of 32
  std::vector<float> x(64, 1.0f), short_out(32);
  const std::vector<std::uint8_t> row = q.quantize(x);
  expect_message(invalid_argument_message([&] { q.dequantize(row, short_out); }), "output has 32 elements, expected 64",
                 {"ggml input's 2 blocks"});
  std::vector<std::uint8_t> odd(20), small(18);
  expect_message(invalid_argument_message([&] { q.dequantize(odd, short_out); }), "ggml input has 20 bytes");
  expect_message(invalid_argument_message([&] { q.quantize(x, small); }), "ggml output has 18 elements, expected 36");
}

TEST(Messages, Pack) {
  std::vector<std::uint8_t> codes(9), packed(4), ggml(17), scales(1), wide(6);
  expect_message(invalid_argument_message([&] { blockq::pack_nibbles(codes, wide); }),
                 "packed output has 6 elements, expected 5");
  expect_message(invalid_argument_message([&] { blockq::unpack_nibbles(packed, codes); }),
                 "output has 9 elements, expected 7 or 8");
  std::vector<std::uint8_t> c32(32), c64(64);
  expect_message(invalid_argument_message([&] { blockq::unpack_ggml_mxfp4(ggml, c64, scales); }),
                 "codes has 64 elements, expected 32");
  std::vector<std::uint8_t> bad(16);
  expect_message(invalid_argument_message([&] { blockq::unpack_ggml_mxfp4(bad, c32, scales); }),
                 "ggml input has 16 bytes");
  expect_message(invalid_argument_message([&] { blockq::pack_ggml_mxfp4(c32, scales, bad); }),
                 "ggml output has 16 elements, expected 17");
}

}  // namespace
