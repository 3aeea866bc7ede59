// SPDX-License-Identifier: Apache-2.0
#include "safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace blockq_tool {
namespace {

using json = nlohmann::json;

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string offsets_string(std::uint64_t b, std::uint64_t e) {
  return "[" + std::to_string(b) + ", " + std::to_string(e) + "]";
}

// A first pass over the header (SAX, no tree built) that rejects duplicate
// keys in any object and nesting deeper than a valid header has (which also
// bounds the second pass's stack). nlohmann's callback parser would do both
// but rescans the parent object whenever an object ends: quadratic in the
// number of tensors.
class header_checker {
 public:
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    open();
    keys_.emplace_back();
    return true;
  }
  bool key(json::string_t& k) {
    if (!keys_.back().insert(k).second) throw error("malformed header: duplicate key " + in_quotes(k));
    return true;
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {
    open();
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    throw error(std::string("malformed JSON header: ") + e.what());
  }

 private:
  void open() {
    if (depth_ >= 3) throw error("malformed header: JSON nested deeper than a safetensors header");
    ++depth_;
  }
  int depth_ = 0;
  std::vector<std::unordered_set<std::string>> keys_;
};

json parse_header(std::string_view text) {
  header_checker check;
  json::sax_parse(text.begin(), text.end(), &check);
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw error(std::string("malformed JSON header: ") + e.what());
  }
}

bool get_u64(const json& j, std::uint64_t& out) {
  if (!j.is_number_unsigned()) return false;
  out = j.get<std::uint64_t>();
  return true;
}

struct entry {
  tensor_info view;
  std::uint64_t begin = 0, end = 0;
};

entry parse_entry(const std::string& name, const json& j, std::uint64_t data_size) {
  const std::string who = "tensor " + in_quotes(name) + ": ";
  if (!j.is_object()) throw error(who + "entry must be an object with dtype, shape and data_offsets");
  const auto dt = j.find("dtype"), sh = j.find("shape"), off = j.find("data_offsets");
  if (dt == j.end() || sh == j.end() || off == j.end())
    throw error(who + "entry must have dtype, shape and data_offsets");
  entry e;
  e.view.name = name;
  if (!dt->is_string()) throw error(who + "dtype must be a string");
  const auto type = parse_dtype(dt->get_ref<const std::string&>());
  if (!type) throw error(who + "unknown dtype " + in_quotes(dt->get_ref<const std::string&>()));
  e.view.type = *type;
  if (!sh->is_array() || sh->size() > max_rank)
    throw error(who + "shape must be an array of at most " + std::to_string(max_rank) + " non-negative integers");
  for (const json& d : *sh) {
    std::uint64_t v = 0;
    if (!get_u64(d, v)) throw error(who + "shape must be an array of non-negative integers");
    e.view.shape.push_back(v);
  }
  if (!off->is_array() || off->size() != 2 || !get_u64((*off)[0], e.begin) || !get_u64((*off)[1], e.end))
    throw error(who + "data_offsets must be two non-negative integers [begin, end]");
  const std::string offs = offsets_string(e.begin, e.end);
  if (e.end < e.begin) throw error(who + "data_offsets " + offs + " end before they begin");
  if (e.end > data_size)
    throw error(who + "data_offsets " + offs + " run past the end of the data (" + std::to_string(data_size) +
                " bytes; truncated file?)");
  const std::uint64_t need = checked_mul(e.view.numel(), dtype_size(e.view.type), who + "byte size");
  if (need != e.end - e.begin)
    throw error(who + "shape " + shape_string(e.view.shape) + " of " + std::string(to_string(e.view.type)) +
                " needs " + std::to_string(need) + " bytes but data_offsets " + offs + " hold " +
                std::to_string(e.end - e.begin));
  return e;
}

}  // namespace

std::uint64_t safetensors_header_length(std::span<const std::uint8_t> first, std::uint64_t file_size) {
  if (file_size < 8 || first.size() < 8)
    throw error("file is " + std::to_string(file_size) + " bytes, too short for a safetensors header");
  std::uint64_t n = 0;
  std::memcpy(&n, first.data(), 8);
  const std::uint64_t rest = file_size - 8;
  if (n > max_header_bytes)
    throw error("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_header_bytes) +
                " bytes (not a safetensors file?)");
  if (n > rest)
    throw error("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(rest) +
                " bytes follow it; truncated file?)");
  return n;
}

safetensors_layout parse_safetensors_header(std::string_view text, std::uint64_t file_size) {
  const json header = parse_header(text);
  if (!header.is_object()) throw error("malformed header: not a JSON object");
  const std::uint64_t data_start = 8 + text.size(), data_size = file_size - data_start;
  safetensors_layout out;
  std::vector<entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw error("malformed header: __metadata__ must map strings to strings");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) throw error("malformed header: __metadata__ value of " + in_quotes(mk) + " is not a string");
        out.metadata.emplace_back(mk, mv.get<std::string>());
      }
      continue;
    }
    entries.push_back(parse_entry(key, value, data_size));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  // The tensors must tile [0, data_size) exactly.
  std::uint64_t at = 0;
  const entry* prev = nullptr;
  for (const entry& e : entries) {
    if (e.begin < at)
      throw error("tensors " + in_quotes(prev->view.name) + " and " + in_quotes(e.view.name) + " overlap (data_offsets " +
                  offsets_string(prev->begin, prev->end) + " and " + offsets_string(e.begin, e.end) + ")");
    if (e.begin > at)
      throw error("tensor " + in_quotes(e.view.name) + " starts at " + std::to_string(e.begin) + " but the data before it ends at " +
                  std::to_string(at) + " (a gap in the data section)");
    at = e.end;
    prev = &e;
  }
  if (at != data_size)
    throw error("the data section has " + std::to_string(data_size - at) + " bytes after the last tensor");
  out.tensors.reserve(entries.size());
  for (entry& e : entries) {
    e.view.offset = data_start + e.begin;
    e.view.size = e.end - e.begin;
    out.tensors.push_back(std::move(e.view));
  }
  return out;
}

safetensors_contents parse_safetensors(std::span<const std::uint8_t> file) {
  const std::uint64_t n = safetensors_header_length(file.first(std::min<std::size_t>(8, file.size())), file.size());
  auto layout = parse_safetensors_header(
      std::string_view(reinterpret_cast<const char*>(file.data() + 8), static_cast<std::size_t>(n)), file.size());
  safetensors_contents out;
  out.metadata = std::move(layout.metadata);
  out.tensors.reserve(layout.tensors.size());
  for (tensor_info& t : layout.tensors) {
    const auto bytes = file.subspan(static_cast<std::size_t>(t.offset), static_cast<std::size_t>(t.size));
    out.tensors.push_back({std::move(t.name), t.type, std::move(t.shape), bytes});
  }
  return out;
}

std::uint64_t tensor_spec::bytes() const {
  return checked_mul(checked_numel(shape), dtype_size(type), "the byte size of tensor " + in_quotes(name));
}

namespace {

// A JSON string as nlohmann::json dumps it (the escaping the reader undoes);
// throws error on invalid UTF-8.
void append_json_string(std::string& out, const std::string& s, const char* what) {
  try {
    out += json(s).dump();
  } catch (const json::exception&) {
    throw error(std::string(what) + " is not valid UTF-8");
  }
}

}  // namespace

std::string safetensors_header(std::span<const tensor_spec> tensors, const metadata_t& metadata) {
  // Written by hand, in one pass with a hash set for duplicates: linear in
  // the number of tensors (an ordered JSON object would search linearly on
  // every insertion).
  std::string text = "{";
  if (!metadata.empty()) {
    std::unordered_set<std::string_view> keys;
    keys.reserve(metadata.size());
    text += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      if (!keys.insert(k).second) throw error("metadata key " + in_quotes(k) + " would be written twice");
      if (text.back() != '{') text += ',';
      append_json_string(text, k, "a metadata key");
      text += ':';
      append_json_string(text, v, "a metadata value");
    }
    text += '}';
  }
  std::unordered_set<std::string_view> names;
  names.reserve(tensors.size());
  std::uint64_t at = 0;
  for (const tensor_spec& t : tensors) {
    // What the reader would refuse is refused here, before anything is written.
    if (t.name == "__metadata__") throw error("invalid output tensor name " + in_quotes(t.name));
    if (!names.insert(t.name).second) throw error("output tensor name " + in_quotes(t.name) + " would be written twice");
    if (t.shape.size() > max_rank)
      throw error("output tensor " + in_quotes(t.name) + " would have rank " + std::to_string(t.shape.size()) +
                  ", more than the " + std::to_string(max_rank) + " the reader accepts");
    const std::uint64_t size = t.bytes();
    std::uint64_t end = 0;
    if (__builtin_add_overflow(at, size, &end)) throw error("output file size overflows 64 bits");
    if (text.size() > 1) text += ',';
    append_json_string(text, t.name, "a tensor name");
    text += ":{\"dtype\":\"";
    text += to_string(t.type);
    text += "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      if (i) text += ',';
      text += std::to_string(t.shape[i]);
    }
    text += "],\"data_offsets\":[" + std::to_string(at) + "," + std::to_string(end) + "]}";
    at = end;
  }
  text += '}';
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::uint64_t n = text.size();
  if (n > max_header_bytes)
    throw error("the output header would be " + std::to_string(n) + " bytes, more than the " +
                std::to_string(max_header_bytes) + " a reader accepts (too many or too long tensor names)");
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + text;
}

}  // namespace blockq_tool
