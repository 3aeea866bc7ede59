// Quantize a weight matrix to MXFP4 in the Hugging Face / gpt-oss layout,
// dequantize it, and print the error next to NVFP4 and int4 on the same data.
#include <blockq/blockq.hpp>

#include <cstdio>
#include <random>
#include <vector>

int main() {
  const std::size_t rows = 256, cols = 1024;
  std::mt19937_64 gen(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(rows * cols);
  for (auto& v : w) v = normal(gen);

  // MXFP4: codes packed two a byte (low nibble first), one UE8M0 scale per 32.
  const blockq::mxfp4_quantizer mx;  // rule ocp, ties to even
  std::vector<std::uint8_t> blocks(w.size() / 2), scales(mx.num_blocks(w.size()));
  mx.quantize_packed(w, blocks, scales);
  std::vector<float> back(w.size());
  mx.dequantize_packed(blocks, scales, back);
  const auto e_mx = blockq::compare(w, back);

  // NVFP4: FP32 tensor scale + E4M3 block scales over 16 elements.
  const blockq::nvfp4_quantizer<> nv;
  const auto t = nv.quantize(w);
  const auto e_nv = blockq::compare(w, nv.dequantize(t));

  // Signed 4-bit integers with a float scale per 32 (absmax).
  const blockq::uniform_quantizer<> i4({4, true, 32, {}});
  const auto e_i4 = blockq::compare(w, i4.dequantize(i4.quantize(w)));

  std::printf("%-8s %12s %10s %12s\n", "format", "MSE", "SQNR dB", "max |err|");
  std::printf("%-8s %12.4e %10.2f %12.4e\n", "mxfp4", e_mx.mse, e_mx.sqnr_db, e_mx.max_abs);
  std::printf("%-8s %12.4e %10.2f %12.4e\n", "nvfp4", e_nv.mse, e_nv.sqnr_db, e_nv.max_abs);
  std::printf("%-8s %12.4e %10.2f %12.4e\n", "int4", e_i4.mse, e_i4.sqnr_db, e_i4.max_abs);
}
