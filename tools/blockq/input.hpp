// SPDX-License-Identifier: Apache-2.0
// Opening an input of the tool: a .safetensors file, or a .npy file holding
// one tensor named after the file's stem.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "file.hpp"
#include "npy.hpp"
#include "safetensors.hpp"
#include "tensor.hpp"

namespace blockq_tool {

struct loaded_input {
  std::string path;
  std::unique_ptr<input_file> file;
  npy_array npy;  // the data of a .npy input
  metadata_t metadata;
  std::vector<tensor_view> tensors;  // in the order of their data
  bool is_npy = false;

  const tensor_view* find(const std::string& name) const;
  const std::string* meta(const std::string& key) const;
};

// Reads and validates the file; errors name the path.
std::unique_ptr<loaded_input> load_input(const std::string& path);

}  // namespace blockq_tool
