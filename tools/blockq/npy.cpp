// SPDX-License-Identifier: Apache-2.0
#include "npy.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace blockq_tool {
namespace {

constexpr std::string_view magic("\x93NUMPY", 6);

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// Only strings, True/False and tuples of non-negative integers are accepted.
class header_parser {
 public:
  explicit header_parser(std::string_view s) : s_(s) {}

  struct fields {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<shape_t> shape;
  };

  fields parse() {
    fields f;
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"') fail("descr is not a string (structured dtypes are not supported)");
        set_once(f.descr, string_literal(), key);
      } else if (key == "fortran_order") {
        set_once(f.fortran_order, boolean(), key);
      } else if (key == "shape") {
        set_once(f.shape, tuple(), key);
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == '}') break;
      fail("expected ',' or '}'");
    }
    ++i_;
    skip_space();
    if (i_ != s_.size()) fail("unexpected text after the dictionary");
    if (!f.descr || !f.fortran_order || !f.shape) fail("the header needs the keys descr, fortran_order and shape");
    return f;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw error("malformed .npy header: " + what + " (at byte " + std::to_string(i_) + ")");
  }
  template <class T>
  void set_once(std::optional<T>& slot, T value, const std::string& key) {
    if (slot) fail("duplicate key '" + key + "'");
    slot = std::move(value);
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string string_literal() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a string");
    const std::size_t start = ++i_;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\') fail("escapes in strings are not supported");
      ++i_;
    }
    if (i_ >= s_.size()) fail("unterminated string");
    return std::string(s_.substr(start, i_++ - start));
  }
  bool boolean() {
    if (s_.substr(i_, 4) == "True") return i_ += 4, true;
    if (s_.substr(i_, 5) == "False") return i_ += 5, false;
    fail("expected True or False");
  }
  std::uint64_t integer() {
    skip_space();
    if (peek() < '0' || peek() > '9') fail("expected a non-negative integer");
    std::uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      const auto d = static_cast<std::uint64_t>(peek() - '0');
      if (v > (UINT64_MAX - d) / 10) fail("dimension too large");
      v = v * 10 + d;
      ++i_;
    }
    if (peek() == 'L') ++i_;  // Python 2 long
    return v;
  }
  shape_t tuple() {
    expect('(');
    shape_t shape;
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      if (shape.size() >= 64) fail("more than 64 dimensions");
      shape.push_back(integer());
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++i_;
    return shape;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

bool is_npy(std::span<const std::uint8_t> file) noexcept {
  return file.size() >= magic.size() && std::memcmp(file.data(), magic.data(), magic.size()) == 0;
}

npy_array parse_npy(std::span<const std::uint8_t> file) {
  if (!is_npy(file)) throw error("not a .npy file (no \\x93NUMPY magic)");
  if (file.size() < 10) throw error(".npy file is truncated (" + std::to_string(file.size()) + " bytes)");
  const int major = file[6];
  std::uint64_t header_len = 0;
  std::size_t at = 0;
  if (major == 1) {
    header_len = static_cast<std::uint64_t>(file[8]) | static_cast<std::uint64_t>(file[9]) << 8;
    at = 10;
  } else if (major == 2 || major == 3) {
    if (file.size() < 12) throw error(".npy file is truncated (" + std::to_string(file.size()) + " bytes)");
    for (int k = 0; k < 4; ++k) header_len |= static_cast<std::uint64_t>(file[8 + k]) << (8 * k);
    at = 12;
  } else {
    throw error("unsupported .npy format version " + std::to_string(major) + "." + std::to_string(file[7]));
  }
  if (header_len > max_npy_header_bytes)
    throw error(".npy header length " + std::to_string(header_len) + " exceeds the limit of " +
                std::to_string(max_npy_header_bytes) + " bytes");
  if (header_len > file.size() - at)
    throw error(".npy header length " + std::to_string(header_len) + " runs past the end of the file (truncated file?)");
  const std::string_view text(reinterpret_cast<const char*>(file.data() + at), static_cast<std::size_t>(header_len));
  const auto f = header_parser(text).parse();
  at += static_cast<std::size_t>(header_len);

  npy_array a;
  const std::string& d = *f.descr;
  const bool big = d.size() == 3 && d[0] == '>';
  if (d == "<f4" || d == ">f4" || d == "=f4") {
    a.type = dtype::F32;
  } else if (d == "<f2" || d == ">f2" || d == "=f2") {
    a.type = dtype::F16;
  } else {
    throw error(".npy dtype '" + d + "' is not supported (float32 or float16 only)");
  }
  a.shape = *f.shape;
  const std::size_t item = dtype_size(a.type);
  const std::uint64_t n = checked_numel(a.shape);
  const std::uint64_t need = checked_mul(n, item, "the .npy data size");
  const std::uint64_t have = file.size() - at;
  if (have != need)
    throw error(".npy shape " + shape_string(a.shape) + " needs " + std::to_string(need) + " bytes of data but the file has " +
                std::to_string(have) + (have < need ? " (truncated file?)" : ""));
  const std::uint8_t* src = file.data() + at;
  a.bytes.resize(static_cast<std::size_t>(need));
  if (a.bytes.empty()) {
    // nothing to copy
  } else if (!*f.fortran_order || a.shape.size() < 2) {
    std::memcpy(a.bytes.data(), src, a.bytes.size());
  } else {
    // Fortran order: element (i_0, ..., i_{r-1}) is at sum i_k * prod_{j<k} d_j.
    // Walk the C-order indices with an odometer, tracking the Fortran offset.
    const std::size_t r = a.shape.size();
    std::vector<std::uint64_t> idx(r, 0), fstride(r, 1);
    for (std::size_t k = 1; k < r; ++k) fstride[k] = fstride[k - 1] * a.shape[k - 1];
    std::uint64_t foff = 0;
    for (std::uint64_t c = 0; c < n; ++c) {
      std::memcpy(a.bytes.data() + c * item, src + foff * item, item);
      for (std::size_t k = r; k-- > 0;) {
        if (++idx[k] < a.shape[k]) {
          foff += fstride[k];
          break;
        }
        foff -= (a.shape[k] - 1) * fstride[k];
        idx[k] = 0;
      }
    }
  }
  if (big)
    for (std::size_t i = 0; i < a.bytes.size(); i += item) std::reverse(a.bytes.begin() + static_cast<std::ptrdiff_t>(i), a.bytes.begin() + static_cast<std::ptrdiff_t>(i + item));
  return a;
}

}  // namespace blockq_tool
