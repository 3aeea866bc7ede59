// SPDX-License-Identifier: Apache-2.0
#include "imatrix.hpp"

#include <cmath>
#include <cstring>

namespace blockq_tool {
namespace {

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

constexpr std::string_view sum2_suffix = ".in_sum2", counts_suffix = ".counts";
// Longer names are not tensor names (the .dat reader's bound on a name).
constexpr std::int32_t max_dat_name = 4096;

void check_weights(const std::string& name, std::span<const float> w) {
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i]) || w[i] < 0.0f)
      throw error("imatrix entry " + in_quotes(name) + ": weight " + std::to_string(i) + " is " + std::to_string(w[i]) +
                  " (weights must be finite and non-negative)");
}

std::vector<float> f32_tensor(const gguf::byte_source& src, const gguf::file& f, const gguf::tensor_info& t) {
  if (t.type != gguf::type_f32) throw error("imatrix tensor " + in_quotes(t.name) + " is not F32");
  const auto bytes = gguf::read_tensor(src, f, t);
  std::vector<float> v(bytes.size() / 4);
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

importance_matrix parse_gguf_imatrix(const gguf::byte_source& src) {
  const gguf::file f = gguf::parse(src);
  const gguf::kv* type = f.find("general.type");
  if (!type || type->value.type != gguf::value_type::string || type->value.as_string() != "imatrix")
    throw error("a GGUF file but not an importance matrix (general.type is not 'imatrix')");
  importance_matrix m;
  m.format = "gguf";
  if (const gguf::kv* d = f.find("imatrix.datasets"); d && d->value.type == gguf::value_type::array &&
                                                      d->value.elem == gguf::value_type::string)
    m.datasets = d->value.as_strings();
  if (const gguf::kv* c = f.find("imatrix.chunk_count")) m.chunks = c->value.as_uint();
  std::map<std::string, const gguf::tensor_info*> by_name;
  for (const gguf::tensor_info& t : f.tensors) by_name[t.name] = &t;
  for (const gguf::tensor_info& t : f.tensors) {
    if (t.name.size() <= sum2_suffix.size() || !t.name.ends_with(sum2_suffix)) continue;
    const std::string name = t.name.substr(0, t.name.size() - sum2_suffix.size());
    const auto c = by_name.find(name + std::string(counts_suffix));
    if (c == by_name.end()) throw error("imatrix entry " + in_quotes(name) + " has in_sum2 but no counts");
    if (t.ne.size() > 2) throw error("imatrix tensor " + in_quotes(t.name) + " has more than 2 dimensions");
    const std::uint64_t cols = t.ne[0], n_mat = t.ne.size() == 2 ? t.ne[1] : 1;
    const std::vector<float> sums = f32_tensor(src, f, t), counts = f32_tensor(src, f, *c->second);
    if (counts.size() != n_mat || c->second->ne[0] != 1)
      throw error("imatrix entry " + in_quotes(name) + ": " + std::to_string(counts.size()) + " counts for " + std::to_string(n_mat) +
                  " rows of in_sum2");
    std::vector<float> w(sums.size());
    for (std::uint64_t j = 0; j < n_mat; ++j) {
      if (!std::isfinite(counts[j]) || counts[j] < 0.0f)
        throw error("imatrix entry " + in_quotes(name) + ": count " + std::to_string(counts[j]) + " is not a token count");
      for (std::uint64_t i = 0; i < cols; ++i)
        w[j * cols + i] = counts[j] > 0.0f ? sums[j * cols + i] / counts[j] : 1.0f;
    }
    check_weights(name, w);
    m.weights.emplace(name, std::move(w));
  }
  return m;
}

class dat_reader {
 public:
  explicit dat_reader(const gguf::byte_source& src) : src_(src) {}
  std::uint64_t left() const { return src_.size() - at_; }
  std::int32_t i32(const std::string& what) {
    std::int32_t v;
    bytes(&v, 4, what);
    return v;
  }
  void bytes(void* dst, std::uint64_t n, const std::string& what) {
    if (n > left()) throw error("imatrix: " + what + " runs past the end of the file (truncated file?)");
    src_.read(at_, dst, static_cast<std::size_t>(n));
    at_ += n;
  }

 private:
  const gguf::byte_source& src_;
  std::uint64_t at_ = 0;
};

importance_matrix parse_dat_imatrix(const gguf::byte_source& src) {
  dat_reader r(src);
  importance_matrix m;
  m.format = "dat";
  const std::int32_t n = r.i32("the entry count");
  // An entry takes at least 4 + 1 + 4 + 4 bytes.
  if (n < 1 || static_cast<std::uint64_t>(n) > r.left() / 13)
    throw error("imatrix: entry count " + std::to_string(n) + " is not possible in this file (not an imatrix .dat or .gguf?)");
  for (std::int32_t e = 0; e < n; ++e) {
    const std::string who = "entry " + std::to_string(e);
    const std::int32_t len = r.i32(who);
    if (len < 1 || len > max_dat_name) throw error("imatrix: " + who + " has a name length of " + std::to_string(len));
    std::string name(static_cast<std::size_t>(len), '\0');
    r.bytes(name.data(), name.size(), who);
    const std::int32_t ncall = r.i32(who), nval = r.i32(who);
    if (nval < 1 || static_cast<std::uint64_t>(nval) > r.left() / 4)
      throw error("imatrix: entry " + in_quotes(name) + " has " + std::to_string(nval) + " values, not possible in this file");
    std::vector<float> w(static_cast<std::size_t>(nval));
    r.bytes(w.data(), w.size() * 4, "entry " + in_quotes(name));
    if (ncall > 0)
      for (float& x : w) x /= static_cast<float>(ncall);
    check_weights(name, w);
    if (!m.weights.emplace(name, std::move(w)).second) throw error("imatrix: duplicate entry " + in_quotes(name));
  }
  // The optional trailer: the chunk count and the dataset's name.
  if (r.left() >= 4) {
    const std::int32_t chunks = r.i32("the chunk count");
    if (chunks > 0) m.chunks = static_cast<std::uint64_t>(chunks);
    if (r.left() >= 4) {
      const std::int32_t len = r.i32("the dataset name");
      if (len < 0 || static_cast<std::uint64_t>(len) > r.left()) throw error("imatrix: bad dataset name length " + std::to_string(len));
      std::string d(static_cast<std::size_t>(len), '\0');
      r.bytes(d.data(), d.size(), "the dataset name");
      if (!d.empty()) m.datasets.push_back(std::move(d));
    }
  }
  if (r.left() != 0) throw error("imatrix: " + std::to_string(r.left()) + " bytes after the end of the .dat layout");
  return m;
}

}  // namespace

std::span<const float> importance_matrix::columns(const std::string& name, std::uint64_t k, std::uint64_t index,
                                                  std::uint64_t n_mat) const {
  const auto it = weights.find(name);
  if (it == weights.end()) return {};
  const std::vector<float>& w = it->second;
  if (w.size() == k) return w;
  if (n_mat > 1 && k != 0 && w.size() / k == n_mat && w.size() % k == 0) return std::span<const float>(w).subspan(index * k, k);
  throw error("imatrix entry " + in_quotes(name) + " has " + std::to_string(w.size()) + " weights but the tensor has rows of " +
              std::to_string(k) + (n_mat > 1 ? " in " + std::to_string(n_mat) + " matrices" : std::string()) +
              " (an importance matrix of another model?)");
}

importance_matrix parse_imatrix(const gguf::byte_source& src) {
  std::uint8_t head[4] = {};
  if (src.size() >= 4) src.read(0, head, 4);
  if (gguf::has_magic(head)) return parse_gguf_imatrix(src);
  return parse_dat_imatrix(src);
}

importance_matrix read_imatrix(const std::string& path) {
  const gguf::file_source src(path);
  try {
    return parse_imatrix(src);
  } catch (const error& e) {
    throw error("--imatrix " + in_quotes(path) + ": " + e.what());
  }
}

}  // namespace blockq_tool
