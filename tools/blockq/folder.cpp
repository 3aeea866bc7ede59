// SPDX-License-Identifier: Apache-2.0
#include "folder.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <set>

#include "parallel.hpp"

namespace blockq_tool {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string q(const std::string& s) { return "'" + s + "'"; }

json read_json(const fs::path& p, const std::string& what) {
  const input_file f(p.string());
  const std::vector<std::uint8_t> b = f.read_all();
  try {
    return json::parse(b.begin(), b.end());
  } catch (const json::exception&) {
    throw error(p.string() + ": " + what + " is not valid JSON");
  }
}

// A shard named by the index: a relative path that stays inside the folder,
// also once symbolic links are followed.
fs::path checked_shard_path(const fs::path& dir, const fs::path& canon_dir, const std::string& name) {
  const fs::path rel(name);
  if (name.empty() || rel.is_absolute() || name.find('\\') != std::string::npos)
    throw error(index_file_name + std::string(" names the shard ") + q(name) + ", which is not a file name inside the folder");
  for (const auto& c : rel)
    if (c == "..")
      throw error(index_file_name + std::string(" names the shard ") + q(name) + ", which points outside the folder");
  const fs::path p = dir / rel;
  std::error_code ec;
  if (!fs::exists(p, ec)) throw error("the shard " + q(name) + " named by " + index_file_name + " is missing");
  const fs::path c = fs::canonical(p, ec);
  if (ec) throw error("cannot resolve the shard " + q(p.string()) + ": " + ec.message());
  const std::string cs = c.string(), ds = canon_dir.string();
  if (cs.size() <= ds.size() || cs.compare(0, ds.size(), ds) != 0 || cs[ds.size()] != '/')
    throw error("the shard " + q(name) + " is a link to " + q(cs) + ", outside the model folder");
  return p;
}

}  // namespace

bool is_model_folder(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  // A folder named like a tensor file is a mistaken file name, reported as such.
  const bool file_like = p.extension() == ".safetensors" || p.extension() == ".npy";
  return fs::is_directory(p, ec) && !file_like;
}

folder_source::~folder_source() = default;

folder_source::folder_source(const std::string& dir, const std::vector<std::string>& only_shards) : source(dir), dir_(dir) {
  const fs::path d(dir);
  std::error_code ec;
  if (!fs::is_directory(d, ec)) throw error(q(dir) + " is not a folder");
  const fs::path canon = fs::canonical(d, ec);
  if (ec) throw error("cannot resolve " + q(dir) + ": " + ec.message());

  if (!fs::exists(d / "config.json", ec)) throw error(dir + ": no config.json (not a Hugging Face model folder)");
  config_ = read_json(d / "config.json", "config.json");
  if (!config_.is_object()) throw error(dir + ": config.json is not a JSON object");

  // Which tensor is in which file, by name.
  std::map<std::string, std::string> where;
  if (fs::exists(d / index_file_name, ec)) {
    indexed_ = true;
    const json idx = read_json(d / index_file_name, index_file_name);
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw error(dir + ": " + index_file_name + " has no weight_map object");
    for (const auto& [name, file] : idx["weight_map"].items()) {
      if (!file.is_string()) throw error(dir + ": " + index_file_name + ": the entry of " + q(name) + " is not a file name");
      where.emplace(name, file.get<std::string>());
    }
    if (where.empty()) throw error(dir + ": " + index_file_name + " names no tensor");
    std::set<std::string> files;
    for (const auto& kv : where) files.insert(kv.second);
    shard_names_.assign(files.begin(), files.end());
  } else if (fs::exists(d / single_file_name, ec)) {
    shard_names_ = {single_file_name};
  } else {
    throw error(dir + ": neither " + index_file_name + " nor " + single_file_name);
  }

  for (const std::string& want : only_shards)
    if (std::find(shard_names_.begin(), shard_names_.end(), want) == shard_names_.end())
      throw error("--shards: " + q(want) + " is not a shard of " + dir);

  // Open and validate every shard.
  std::map<std::string, std::string> seen;  // tensor -> shard
  for (std::size_t s = 0; s < shard_names_.size(); ++s) {
    const std::string& name = shard_names_[s];
    const fs::path p = indexed_ ? checked_shard_path(d, canon, name) : d / name;
    auto f = std::make_unique<input_file>(p.string());
    std::array<std::uint8_t, 8> first{};
    const std::uint64_t size = f->size();
    safetensors_layout layout;
    try {
      if (size >= 8) f->read(0, first);
      const std::uint64_t n = safetensors_header_length(std::span<const std::uint8_t>(first).first(size >= 8 ? 8 : 0), size);
      std::string text(static_cast<std::size_t>(n), '\0');
      f->read(8, {reinterpret_cast<std::uint8_t*>(text.data()), text.size()});
      layout = parse_safetensors_header(text, size);
    } catch (const error& e) {
      throw error(p.string() + ": " + e.what());
    }
    for (tensor_info& t : layout.tensors) {
      if (const auto it = seen.find(t.name); it != seen.end())
        throw error("tensor " + q(t.name) + " is in two shards: " + it->second + " and " + name);
      seen.emplace(t.name, name);
      if (indexed_) {
        const auto w = where.find(t.name);
        if (w == where.end()) throw error("tensor " + q(t.name) + " of " + name + " is missing from " + index_file_name);
        if (w->second != name)
          throw error("tensor " + q(t.name) + " is in " + name + " but " + index_file_name + " puts it in " + w->second);
      }
      t.part = s;
      all_.push_back(std::move(t));
    }
    files_.push_back(f->id());
    shard_files_.push_back(std::move(f));
  }
  for (const auto& [name, file] : where)
    if (!seen.count(name)) throw error(index_file_name + std::string(" puts tensor ") + q(name) + " in " + file + ", which does not hold it");

  for (std::size_t i = 0; i < all_.size(); ++i) all_by_name_.emplace(all_[i].name, i);
  for (const tensor_info& t : all_)
    if (only_shards.empty() ||
        std::find(only_shards.begin(), only_shards.end(), shard_names_[t.part]) != only_shards.end())
      tensors_.push_back(t);
  index();

  // Everything else is copied by an export.
  std::set<std::string> skip(shard_names_.begin(), shard_names_.end());
  skip.insert({index_file_name, "config.json"});
  for (auto it = fs::recursive_directory_iterator(d, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string leaf = it->path().filename().string();
    if (it->is_directory() && (leaf == ".git" || leaf == ".cache")) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    const std::string rel = it->path().lexically_relative(d).string();
    if (skip.count(rel)) continue;
    if (it->path().extension() == ".safetensors")
      warn(dir + ": " + rel + " is not a shard of the index; it is copied unchanged");
    others_.push_back(rel);
  }
  if (ec) throw error("cannot list " + q(dir) + ": " + ec.message());
  std::sort(others_.begin(), others_.end());
}

void folder_source::read(const tensor_info& t, std::uint64_t offset, std::span<std::uint8_t> out) const {
  shard_files_.at(t.part)->read(t.offset + offset, out);
}

const tensor_info* folder_source::find_any(std::string_view name) const {
  const auto it = all_by_name_.find(name);
  return it == all_by_name_.end() ? nullptr : &all_[it->second];
}

}  // namespace blockq_tool
