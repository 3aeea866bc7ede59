// SPDX-License-Identifier: Apache-2.0
#include "gguf.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace blockq_tool::gguf {
namespace {

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

// ggml.h's enum ggml_type with the block of each (ggml-common.h's block
// structs): the types blockq quantizes and every other one by its size, so
// that a file holding them can be copied.
constexpr std::array<type_info, 35> types{{
    {0, "F32", 1, 4},        {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},  {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},  {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},       {27, "I64", 1, 8},        {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},   {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
    {40, "NVFP4", 64, 36},   {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
}};

// Reads through a byte_source with a window, so that a header of many small
// strings (a tokenizer's vocabulary) costs a few reads, not one per string.
class cursor {
 public:
  explicit cursor(const byte_source& src) : src_(src), size_(src.size()) {}

  std::uint64_t at() const noexcept { return at_; }
  std::uint64_t left() const noexcept { return size_ - at_; }

  void need(std::uint64_t n, std::string_view what) const {
    if (n > left())
      throw error(std::string(what) + " runs past the end of the file at byte " + std::to_string(at_) +
                  " (needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " left; truncated file?)");
  }
  void take(void* dst, std::size_t n, std::string_view what) {
    need(n, what);
    if (n > window_.size() / 2) {
      src_.read(at_, dst, n);
    } else {
      if (at_ < win_at_ || at_ + n > win_at_ + win_len_) refill();
      std::memcpy(dst, window_.data() + (at_ - win_at_), n);
    }
    at_ += n;
  }
  template <class T>
  T get(std::string_view what) {
    T v;
    take(&v, sizeof v, what);
    return v;
  }
  // Appends n bytes to out.
  void append(std::string& out, std::uint64_t n, std::string_view what) {
    need(n, what);
    const std::size_t old = out.size();
    out.resize(old + static_cast<std::size_t>(n));
    take(out.data() + old, static_cast<std::size_t>(n), what);
  }

 private:
  void refill() {
    win_at_ = at_;
    win_len_ = static_cast<std::size_t>(std::min<std::uint64_t>(window_.size(), size_ - at_));
    src_.read(win_at_, window_.data(), win_len_);
  }

  const byte_source& src_;
  std::uint64_t size_, at_ = 0;
  std::array<std::uint8_t, 1 << 16> window_{};
  std::uint64_t win_at_ = 0;
  std::size_t win_len_ = 0;
};

bool valid_type(std::uint32_t t) noexcept { return t <= 12; }

std::string read_string(cursor& c, std::uint64_t limit, std::string_view what) {
  const auto n = c.get<std::uint64_t>(what);
  if (n > limit) throw error(std::string(what) + " is " + std::to_string(n) + " bytes, over the limit of " + std::to_string(limit));
  std::string s;
  c.append(s, n, what);
  return s;
}

// Reads the encoding of one value of type t (after its tag) and appends it
// to payload verbatim; arrays also store elem and count in the caller's value.
void read_payload(cursor& c, value_type t, std::string& payload, const std::string& who);

void read_array(cursor& c, value& v, int depth, const std::string& who) {
  const auto elem = c.get<std::uint32_t>(who);
  if (!valid_type(elem)) throw error(who + ": unknown array element type " + std::to_string(elem));
  v.elem = static_cast<value_type>(elem);
  v.count = c.get<std::uint64_t>(who);
  if (v.elem == value_type::array && depth + 1 >= max_array_depth)
    throw error(who + ": arrays nested deeper than " + std::to_string(max_array_depth));
  // Every element takes at least this many bytes, which bounds the count by the file.
  const std::uint64_t least = v.elem == value_type::string ? 8 : v.elem == value_type::array ? 12 : scalar_size(v.elem);
  if (v.count > c.left() / least)
    throw error(who + ": array of " + std::to_string(v.count) + " " + std::string(to_string(v.elem)) +
                " runs past the end of the file (truncated file?)");
  if (scalar_size(v.elem) != 0) {
    c.append(v.payload, v.count * least, who);
    return;
  }
  for (std::uint64_t i = 0; i < v.count; ++i) {
    if (v.elem == value_type::array) {
      value inner;
      inner.type = value_type::array;
      read_array(c, inner, depth + 1, who);
      const std::uint32_t e = static_cast<std::uint32_t>(inner.elem);
      v.payload.append(reinterpret_cast<const char*>(&e), 4);
      v.payload.append(reinterpret_cast<const char*>(&inner.count), 8);
      v.payload += inner.payload;
    } else {
      read_payload(c, value_type::string, v.payload, who);
    }
  }
}

void read_payload(cursor& c, value_type t, std::string& payload, const std::string& who) {
  if (t == value_type::string) {
    const auto n = c.get<std::uint64_t>(who);
    if (n > max_string_bytes)
      throw error(who + ": string of " + std::to_string(n) + " bytes, over the limit of " + std::to_string(max_string_bytes));
    payload.append(reinterpret_cast<const char*>(&n), 8);
    c.append(payload, n, who);
    return;
  }
  c.append(payload, scalar_size(t), who);
}

template <class T>
T scalar_at(const std::string& payload, std::size_t at = 0) {
  T v;
  std::memcpy(&v, payload.data() + at, sizeof v);
  return v;
}

std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw error(std::string(what) + " overflows 64 bits");
  return r;
}

void check_tensor(const tensor_info& t) {
  const std::string who = "tensor " + in_quotes(t.name);
  if (t.name.empty()) throw error("a tensor has an empty name");
  if (t.name.size() > max_name_bytes)
    throw error(who + ": name of " + std::to_string(t.name.size()) + " bytes, over ggml's limit of " +
                std::to_string(max_name_bytes));
  if (t.ne.empty() || t.ne.size() > max_dims)
    throw error(who + ": " + std::to_string(t.ne.size()) + " dimensions, ggml allows 1 to " + std::to_string(max_dims));
  for (const std::uint64_t d : t.ne)
    if (d > static_cast<std::uint64_t>(INT64_MAX)) throw error(who + ": dimension " + std::to_string(d) + " exceeds int64");
  (void)t.nbytes();
}

void check_alignment(std::uint64_t a) {
  if (a == 0 || (a & (a - 1)) != 0) throw error("general.alignment " + std::to_string(a) + " is not a power of two");
  if (a > max_alignment)
    throw error("general.alignment " + std::to_string(a) + " exceeds blockq's limit of " + std::to_string(max_alignment));
}

nlohmann::json scalar_json(value_type t, const char*& p, bool wide_as_strings) {
  auto take = [&p]<class T>(T) {
    T v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  };
  switch (t) {
    case value_type::u8: return take(std::uint8_t{});
    case value_type::i8: return take(std::int8_t{});
    case value_type::u16: return take(std::uint16_t{});
    case value_type::i16: return take(std::int16_t{});
    case value_type::u32: return take(std::uint32_t{});
    case value_type::i32: return take(std::int32_t{});
    case value_type::f32: return static_cast<double>(take(float{}));
    case value_type::boolean: return take(std::uint8_t{}) != 0;
    case value_type::u64: {
      const auto v = take(std::uint64_t{});
      return wide_as_strings ? nlohmann::json(std::to_string(v)) : nlohmann::json(v);
    }
    case value_type::i64: {
      const auto v = take(std::int64_t{});
      return wide_as_strings ? nlohmann::json(std::to_string(v)) : nlohmann::json(v);
    }
    case value_type::f64: return take(double{});
    case value_type::string: {
      const auto n = take(std::uint64_t{});
      std::string s(p, static_cast<std::size_t>(n));
      p += n;
      return s;
    }
    default: return nullptr;
  }
}

nlohmann::json to_json(value_type t, const char*& p, bool wide_as_strings) {
  if (t != value_type::array) return scalar_json(t, p, wide_as_strings);
  std::uint32_t e;
  std::uint64_t n;
  std::memcpy(&e, p, 4);
  std::memcpy(&n, p + 4, 8);
  p += 12;
  nlohmann::json a = nlohmann::json::array();
  for (std::uint64_t i = 0; i < n; ++i) a.push_back(to_json(static_cast<value_type>(e), p, wide_as_strings));
  return a;
}

}  // namespace

std::string_view to_string(value_type t) noexcept {
  switch (t) {
    case value_type::u8: return "uint8";
    case value_type::i8: return "int8";
    case value_type::u16: return "uint16";
    case value_type::i16: return "int16";
    case value_type::u32: return "uint32";
    case value_type::i32: return "int32";
    case value_type::f32: return "float32";
    case value_type::boolean: return "bool";
    case value_type::string: return "string";
    case value_type::array: return "array";
    case value_type::u64: return "uint64";
    case value_type::i64: return "int64";
    case value_type::f64: return "float64";
  }
  return "unknown";
}

std::size_t scalar_size(value_type t) noexcept {
  switch (t) {
    case value_type::u8: case value_type::i8: case value_type::boolean: return 1;
    case value_type::u16: case value_type::i16: return 2;
    case value_type::u32: case value_type::i32: case value_type::f32: return 4;
    case value_type::u64: case value_type::i64: case value_type::f64: return 8;
    default: return 0;
  }
}

std::string_view value::as_string() const {
  if (type != value_type::string) throw error("expected a string, found " + std::string(to_string(type)));
  return std::string_view(payload).substr(8);
}

std::uint64_t value::as_uint() const {
  std::int64_t s = 0;
  switch (type) {
    case value_type::u8: return scalar_at<std::uint8_t>(payload);
    case value_type::u16: return scalar_at<std::uint16_t>(payload);
    case value_type::u32: return scalar_at<std::uint32_t>(payload);
    case value_type::u64: return scalar_at<std::uint64_t>(payload);
    case value_type::i8: s = scalar_at<std::int8_t>(payload); break;
    case value_type::i16: s = scalar_at<std::int16_t>(payload); break;
    case value_type::i32: s = scalar_at<std::int32_t>(payload); break;
    case value_type::i64: s = scalar_at<std::int64_t>(payload); break;
    default: throw error("expected an integer, found " + std::string(to_string(type)));
  }
  if (s < 0) throw error("expected a non-negative integer, found " + std::to_string(s));
  return static_cast<std::uint64_t>(s);
}

std::vector<std::string> value::as_strings() const {
  if (type != value_type::array || elem != value_type::string)
    throw error("expected an array of strings, found " + std::string(to_string(type)));
  std::vector<std::string> out;
  std::size_t at = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto n = scalar_at<std::uint64_t>(payload, at);
    out.emplace_back(payload.substr(at + 8, static_cast<std::size_t>(n)));
    at += 8 + static_cast<std::size_t>(n);
  }
  return out;
}

value value::of_string(std::string_view s) {
  value v;
  v.type = value_type::string;
  const std::uint64_t n = s.size();
  v.payload.assign(reinterpret_cast<const char*>(&n), 8);
  v.payload += s;
  return v;
}

namespace {
template <class T>
value scalar_value(value_type t, T x) {
  value v;
  v.type = t;
  v.payload.assign(reinterpret_cast<const char*>(&x), sizeof x);
  return v;
}
}  // namespace

value value::of_u32(std::uint32_t x) { return scalar_value(value_type::u32, x); }
value value::of_i32(std::int32_t x) { return scalar_value(value_type::i32, x); }
value value::of_f32(float x) { return scalar_value(value_type::f32, x); }
value value::of_bool(bool x) { return scalar_value(value_type::boolean, std::uint8_t{x}); }

value value::of_strings(std::span<const std::string> items) {
  value v;
  v.type = value_type::array;
  v.elem = value_type::string;
  v.count = items.size();
  for (const std::string& s : items) v.payload += of_string(s).payload;
  return v;
}

value value::of_f32s(std::span<const float> items) {
  value v;
  v.type = value_type::array;
  v.elem = value_type::f32;
  v.count = items.size();
  v.payload.assign(reinterpret_cast<const char*>(items.data()), items.size_bytes());
  return v;
}

std::optional<type_info> find_type(std::uint32_t id) noexcept {
  for (const type_info& t : types)
    if (t.id == id) return t;
  return std::nullopt;
}

std::optional<type_info> find_type(std::string_view name) noexcept {
  for (const type_info& t : types)
    if (std::equal(name.begin(), name.end(), t.name.begin(), t.name.end(),
                   [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; }))
      return t;
  return std::nullopt;
}

std::uint64_t tensor_info::numel() const {
  std::uint64_t n = 1;
  for (const std::uint64_t d : ne)
    if (__builtin_mul_overflow(n, d, &n) || n > static_cast<std::uint64_t>(INT64_MAX))
      throw error("tensor " + in_quotes(name) + ": the number of elements overflows int64");
  return n;
}

std::uint64_t tensor_info::nbytes() const {
  const auto t = find_type(type);
  if (!t) throw error("tensor " + in_quotes(name) + ": unknown ggml type " + std::to_string(type));
  if (ne.empty() || ne[0] % t->block != 0)
    throw error("tensor " + in_quotes(name) + ": rows of " + std::to_string(ne.empty() ? 0 : ne[0]) + " elements are not a multiple of " +
                std::string(t->name) + "'s block of " + std::to_string(t->block));
  return checked_mul(numel() / t->block, t->type_size, "tensor " + in_quotes(name) + "'s byte size");
}

void buffer_source::read(std::uint64_t offset, void* dst, std::size_t n) const {
  if (offset > bytes_.size() || n > bytes_.size() - offset) throw error("read past the end of the buffer");
  if (n) std::memcpy(dst, bytes_.data() + offset, n);
}

file_source::file_source(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw error("cannot open " + in_quotes(path) + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw error(in_quotes(path) + " is not a regular file");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

file_source::~file_source() {
  if (fd_ >= 0) ::close(fd_);
}

void file_source::read(std::uint64_t offset, void* dst, std::size_t n) const {
  auto* p = static_cast<std::uint8_t*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw error("cannot read " + in_quotes(path_) + (r < 0 ? std::string(": ") + std::strerror(errno) : ": unexpected end of file"));
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
}

const kv* file::find(std::string_view key) const noexcept {
  for (const kv& p : kvs)
    if (p.key == key) return &p;
  return nullptr;
}

kv* file::find(std::string_view key) noexcept {
  for (kv& p : kvs)
    if (p.key == key) return &p;
  return nullptr;
}

void file::set(std::string_view key, value v) {
  if (kv* p = find(key)) {
    p->value = std::move(v);
  } else {
    kvs.push_back({std::string(key), std::move(v)});
  }
}

void file::erase(std::string_view key) {
  std::erase_if(kvs, [&](const kv& p) { return p.key == key; });
}

bool has_magic(std::span<const std::uint8_t> b) noexcept {
  return b.size() >= 4 && b[0] == 'G' && b[1] == 'G' && b[2] == 'U' && b[3] == 'F';
}

file parse(const byte_source& src) {
  cursor c(src);
  std::array<std::uint8_t, 4> magic{};
  c.take(magic.data(), 4, "the GGUF magic");
  if (!has_magic(magic)) throw error("not a GGUF file (the first 4 bytes are not 'GGUF')");
  file f;
  f.version = c.get<std::uint32_t>("the GGUF version");
  if ((f.version & 0xFFFF) == 0 && f.version != 0)
    throw error("GGUF version " + std::to_string(f.version) + ": a big-endian file? only little-endian GGUF is supported");
  if (f.version == 1) throw error("GGUF version 1 is not supported (32-bit counts; convert it with a current llama.cpp)");
  if (f.version != 2 && f.version != 3)
    throw error("unsupported GGUF version " + std::to_string(f.version) + " (2 and 3 are supported)");
  const auto n_tensors = c.get<std::uint64_t>("the tensor count");
  const auto n_kv = c.get<std::uint64_t>("the key/value count");
  // A key/value pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8.
  if (n_kv > c.left() / 14)
    throw error("key/value count " + std::to_string(n_kv) + " is more than the file can hold (truncated or not GGUF?)");
  if (n_tensors > c.left() / 33)
    throw error("tensor count " + std::to_string(n_tensors) + " is more than the file can hold (truncated or not GGUF?)");

  std::unordered_set<std::string> keys;
  f.kvs.reserve(static_cast<std::size_t>(n_kv));
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    const std::string key_what = "key " + std::to_string(i);
    kv p;
    p.key = read_string(c, max_key_bytes, key_what);
    if (p.key.empty()) throw error(key_what + " is empty");
    const std::string who = "key " + in_quotes(p.key);
    if (!keys.insert(p.key).second) throw error("duplicate " + who);
    const auto t = c.get<std::uint32_t>(who);
    if (!valid_type(t)) throw error(who + ": unknown value type " + std::to_string(t));
    p.value.type = static_cast<value_type>(t);
    if (p.value.type == value_type::array) {
      read_array(c, p.value, 0, who);
    } else {
      read_payload(c, p.value.type, p.value.payload, who);
    }
    f.kvs.push_back(std::move(p));
  }
  if (const kv* a = f.find("general.alignment")) {
    if (a->value.type != value_type::u32)
      throw error("general.alignment must be a uint32, found " + std::string(to_string(a->value.type)));
    check_alignment(a->value.as_uint());
    f.alignment = static_cast<std::uint32_t>(a->value.as_uint());
  }

  std::unordered_set<std::string> names;
  f.tensors.reserve(static_cast<std::size_t>(n_tensors));
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    tensor_info t;
    t.name = read_string(c, max_string_bytes, "the name of tensor " + std::to_string(i));
    const std::string who = "tensor " + in_quotes(t.name);
    if (!t.name.empty() && !names.insert(t.name).second) throw error("duplicate " + who);
    const auto n_dims = c.get<std::uint32_t>(who);
    if (n_dims == 0 || n_dims > max_dims)
      throw error(who + ": " + std::to_string(n_dims) + " dimensions, ggml allows 1 to " + std::to_string(max_dims));
    for (std::uint32_t d = 0; d < n_dims; ++d) t.ne.push_back(c.get<std::uint64_t>(who));
    t.type = c.get<std::uint32_t>(who);
    t.offset = c.get<std::uint64_t>(who);
    check_tensor(t);
    f.tensors.push_back(std::move(t));
  }

  f.data_offset = padded(c.at(), f.alignment);
  if (f.tensors.empty()) return f;
  if (f.data_offset > src.size())
    throw error("the data section would start at byte " + std::to_string(f.data_offset) + ", past the end of the file (" +
                std::to_string(src.size()) + " bytes; truncated file?)");
  const std::uint64_t data_size = src.size() - f.data_offset;
  std::vector<std::size_t> order(f.tensors.size());
  for (const tensor_info& t : f.tensors) {
    const std::string who = "tensor " + in_quotes(t.name);
    if (t.offset % f.alignment != 0)
      throw error(who + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(f.alignment));
    const std::uint64_t end = checked_add(t.offset, t.nbytes(), who + "'s end");
    if (end > data_size)
      throw error(who + ": bytes [" + std::to_string(t.offset) + ", " + std::to_string(end) + ") run past the end of the data section (" +
                  std::to_string(data_size) + " bytes; truncated file?)");
  }
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return f.tensors[a].offset < f.tensors[b].offset ||
           (f.tensors[a].offset == f.tensors[b].offset && f.tensors[a].nbytes() < f.tensors[b].nbytes());
  });
  for (std::size_t i = 1; i < order.size(); ++i) {
    const tensor_info &a = f.tensors[order[i - 1]], &b = f.tensors[order[i]];
    if (a.offset + a.nbytes() > b.offset)
      throw error("tensors " + in_quotes(a.name) + " and " + in_quotes(b.name) + " overlap (offsets " + std::to_string(a.offset) +
                  " and " + std::to_string(b.offset) + ")");
  }
  return f;
}

std::vector<std::uint8_t> read_tensor(const byte_source& src, const file& f, const tensor_info& t) {
  const std::uint64_t n = t.nbytes();
  std::vector<std::uint8_t> out(static_cast<std::size_t>(n));
  src.read(f.data_offset + t.offset, out.data(), out.size());
  return out;
}

std::uint64_t padded(std::uint64_t n, std::uint64_t align) {
  const std::uint64_t r = checked_add(n, align - 1, "a padded size");
  return r & ~(align - 1);
}

std::string header_bytes(file& f) {
  check_alignment(f.alignment);
  std::unordered_set<std::string> keys;
  for (const kv& p : f.kvs) {
    if (p.key.empty() || p.key.size() > max_key_bytes) throw error("invalid key " + in_quotes(p.key));
    if (!keys.insert(p.key).second) throw error("key " + in_quotes(p.key) + " would be written twice");
  }
  if (f.find("general.alignment") || f.alignment != default_alignment) f.set("general.alignment", value::of_u32(f.alignment));
  std::unordered_set<std::string> names;
  std::uint64_t at = 0;
  for (tensor_info& t : f.tensors) {
    check_tensor(t);
    if (!names.insert(t.name).second) throw error("tensor " + in_quotes(t.name) + " would be written twice");
    t.offset = at;
    at = padded(checked_add(at, t.nbytes(), "the data section's size"), f.alignment);
  }
  f.version = 3;
  std::string out = "GGUF";
  auto put = [&out]<class T>(T v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
  auto put_string = [&](const std::string& s) {
    put(std::uint64_t{s.size()});
    out += s;
  };
  put(f.version);
  put(std::uint64_t{f.tensors.size()});
  put(std::uint64_t{f.kvs.size()});
  for (const kv& p : f.kvs) {
    put_string(p.key);
    put(static_cast<std::uint32_t>(p.value.type));
    if (p.value.type == value_type::array) {
      put(static_cast<std::uint32_t>(p.value.elem));
      put(p.value.count);
    }
    out += p.value.payload;
  }
  for (const tensor_info& t : f.tensors) {
    put_string(t.name);
    put(static_cast<std::uint32_t>(t.ne.size()));
    for (const std::uint64_t d : t.ne) put(d);
    put(t.type);
    put(t.offset);
  }
  f.data_offset = padded(out.size(), f.alignment);
  out.resize(static_cast<std::size_t>(f.data_offset), '\0');
  return out;
}

std::string describe(const value& v, bool wide_as_strings) {
  const char* p = v.payload.data();
  if (v.type != value_type::array)
    return scalar_json(v.type, p, wide_as_strings).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  nlohmann::json a = nlohmann::json::array();
  for (std::uint64_t i = 0; i < v.count; ++i) a.push_back(to_json(v.elem, p, wide_as_strings));
  return a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace blockq_tool::gguf
