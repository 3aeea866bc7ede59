// SPDX-License-Identifier: Apache-2.0
// llama.cpp's importance matrices (llama-imatrix), as per-column weights of
// each weight matrix: the mean over the calibration tokens of the squared
// activation entering each input column, E[x_k^2]. Two files hold them:
//  - GGUF (general.type = "imatrix"): per weight NAME the F32 tensors
//    NAME.in_sum2, ne = [columns, matrices] (the sums of x^2; one row per
//    expert of a mixture-of-experts tensor, else one row), and NAME.counts,
//    ne = [1, matrices] (the tokens each row saw). Weight = in_sum2 / count;
//    a row that saw no token gets weight 1, as llama-quantize does.
//  - the legacy .dat: int32 entry count; per entry int32 name length, name,
//    int32 ncall, int32 value count, float values (already divided by the
//    token count and multiplied by ncall); then optionally int32 chunk count,
//    int32 length and the dataset name. Weight = value / ncall (ncall > 0).
// Both layouts are bounded and validated; every problem is an `error`.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "gguf.hpp"

namespace blockq_tool {

struct importance_matrix {
  std::string format;                 // "gguf" or "dat"
  std::vector<std::string> datasets;  // where llama-imatrix says the activations came from
  std::uint64_t chunks = 0;           // how many chunks it ran (0: not stored)
  // Weight name -> the weights of every column, matrix after matrix
  // (values.size() = columns x matrices).
  std::map<std::string, std::vector<float>> weights;

  // The column weights of a weight tensor whose rows have k elements, for
  // matrix `index` of `n_mat` (experts of a 3-D tensor; 0 of 1 for a
  // matrix): a span of k weights, or an empty span when the file has no entry
  // for the name (the caller warns and falls back to its unweighted rule).
  // Throws error when the entry's length is neither k nor k x n_mat.
  std::span<const float> columns(const std::string& name, std::uint64_t k, std::uint64_t index, std::uint64_t n_mat) const;
};

// Reads either layout (GGUF by its magic, else .dat).
importance_matrix parse_imatrix(const gguf::byte_source& src);
importance_matrix read_imatrix(const std::string& path);

}  // namespace blockq_tool
