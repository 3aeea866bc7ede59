// SPDX-License-Identifier: Apache-2.0
#include "input.hpp"

#include <filesystem>

namespace blockq_tool {

const tensor_view* loaded_input::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const std::string* loaded_input::meta(const std::string& key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

std::unique_ptr<loaded_input> load_input(const std::string& path) {
  auto in = std::make_unique<loaded_input>();
  in->path = path;
  in->file = std::make_unique<input_file>(path);
  const auto bytes = in->file->bytes();
  const std::filesystem::path p(path);
  try {
    if (is_npy(bytes) || p.extension() == ".npy") {
      in->is_npy = true;
      in->npy = parse_npy(bytes);
      in->tensors.push_back({p.stem().string(), in->npy.type, in->npy.shape, in->npy.bytes});
      in->file.reset();  // the array holds its own copy
    } else {
      auto st = parse_safetensors(bytes);
      in->metadata = std::move(st.metadata);
      in->tensors = std::move(st.tensors);
    }
  } catch (const error& e) {
    throw error(path + ": " + e.what());
  }
  return in;
}

}  // namespace blockq_tool
