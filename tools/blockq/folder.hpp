// SPDX-License-Identifier: Apache-2.0
// A Hugging Face model folder as a pipeline source: config.json, the shards
// named by model.safetensors.index.json (or one model.safetensors), and every
// other file (tokenizer, generation_config.json, ...), which an export copies
// byte for byte. Everything is validated when the folder is opened, before
// anything is written: config.json is a JSON object; the index's weight_map
// names files inside the folder (no "..", no absolute path, no symbolic link
// leading out of it) that exist; every tensor of the index is in the shard it
// names, every tensor of a shard is in the index, no tensor is in two shards.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline.hpp"

namespace blockq_tool {

inline constexpr const char* index_file_name = "model.safetensors.index.json";
inline constexpr const char* single_file_name = "model.safetensors";

class folder_source final : public source {
 public:
  // only_shards: file names of the shards whose tensors are listed by
  // tensors() (empty: all); every shard is still opened and validated, and
  // all_tensors() lists them all.
  explicit folder_source(const std::string& dir, const std::vector<std::string>& only_shards = {});
  ~folder_source() override;

  void read(const tensor_info& t, std::uint64_t offset, std::span<std::uint8_t> out) const override;

  const std::string& dir() const noexcept { return dir_; }
  const nlohmann::json& config() const noexcept { return config_; }
  // Shard file names (relative to dir), in the order of their first tensor in
  // the sorted index; tensor_info::part indexes it.
  const std::vector<std::string>& shards() const noexcept { return shard_names_; }
  bool indexed() const noexcept { return indexed_; }
  // Every tensor of every shard, in shard order then data order.
  const std::vector<tensor_info>& all_tensors() const noexcept { return all_; }
  const tensor_info* find_any(std::string_view name) const;
  // Regular files other than the shards, the index and config.json, relative
  // to dir (subfolders included), sorted.
  const std::vector<std::string>& other_files() const noexcept { return others_; }

 private:
  std::string dir_;
  nlohmann::json config_;
  bool indexed_ = false;
  std::vector<std::string> shard_names_, others_;
  std::vector<std::unique_ptr<input_file>> shard_files_;
  std::vector<tensor_info> all_;
  std::unordered_map<std::string_view, std::size_t> all_by_name_;
};

// Whether `path` is a folder to read as a model folder (not one named *.safetensors or *.npy).
bool is_model_folder(const std::string& path);

}  // namespace blockq_tool
