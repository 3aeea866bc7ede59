// A program an engine author might write: quantize one block to MXFP4 in the
// packed OCP layout and check the bytes against the hand-computed ones.
#include <blockq/blockq.hpp>

#include <cstdio>
#include <vector>

int main() {
  std::vector<float> x(32, 1.0f);
  for (int i = 16; i < 32; ++i) x[static_cast<std::size_t>(i)] = -6.0f;
  std::vector<std::uint8_t> packed(16), scales(1);
  blockq::mxfp4_quantizer().quantize_packed(x, packed, scales);
  bool ok = scales[0] == 0x7F;
  for (int i = 0; i < 16; ++i) ok = ok && packed[static_cast<std::size_t>(i)] == (i < 8 ? 0x22 : 0xFF);
  std::printf("blockq %s: %s\n", BLOCKQ_VERSION_STRING, ok ? "ok" : "MISMATCH");
  return ok ? 0 : 1;
}
