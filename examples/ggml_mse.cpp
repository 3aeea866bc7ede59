// SPDX-License-Identifier: Apache-2.0
// The MSE of ggml's block types under each rule on 2^20 values of N(0, 1) and of Student-t
// with 3 degrees of freedom (fixed seeds), decoded as ggml decodes: the table of README's
// "ggml block types" section.
//   ./build/examples/example_ggml_mse
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "blockq/ggml.hpp"

int main() {
  using blockq::ggml_type;
  using blockq::scale_rule;
  const std::size_t n = std::size_t{1} << 20;
  std::mt19937_64 gen(2026);
  std::normal_distribution<float> normal;
  std::student_t_distribution<float> student(3.0f);
  std::vector<float> xn(n), xt(n);
  for (auto& v : xn) v = normal(gen);
  for (auto& v : xt) v = student(gen);
  std::printf("| type | rule | MSE N(0,1) | gain | MSE Student-t(3) | gain |\n|---|---|---|---|---|---|\n");
  for (ggml_type t : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0, ggml_type::mxfp4}) {
    double base[2] = {0, 0};
    for (auto r : {blockq::ggml_default_rule(t), scale_rule::lsq, scale_rule::mse}) {
      if (t == ggml_type::mxfp4 && r == scale_rule::lsq) continue;
      const blockq::ggml_quantizer<> q(t, {r});
      double mse[2];
      for (int k = 0; k < 2; ++k) {
        const std::vector<float>& x = k ? xt : xn;
        std::vector<float> y(n);
        q.dequantize(q.quantize(x), y);
        double s = 0;
        for (std::size_t i = 0; i < n; ++i) s += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        mse[k] = s / double(n);
        if (r == blockq::ggml_default_rule(t)) base[k] = mse[k];
      }
      const bool def = r == blockq::ggml_default_rule(t);
      std::printf("| %s | %s | %.4e | %s | %.4e | %s |\n", std::string(to_string(t)).c_str(),
                  def ? "default" : std::string(to_string(r)).c_str(), mse[0],
                  def ? "" : (std::to_string(100.0 * (1.0 - mse[0] / base[0])).substr(0, 4) + " %").c_str(), mse[1],
                  def ? "" : (std::to_string(100.0 * (1.0 - mse[1] / base[1])).substr(0, 4) + " %").c_str());
    }
  }
}
