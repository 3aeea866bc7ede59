// SPDX-License-Identifier: Apache-2.0
// GGUF, the file format of ggml and llama.cpp (versions 2 and 3, little-endian):
//   "GGUF", uint32 version, uint64 tensor count, uint64 key/value count,
//   key/value pairs (string key, uint32 value type, value),
//   tensor infos (string name, uint32 n_dims, uint64 ne[n_dims] innermost
//   first, uint32 ggml type, uint64 offset into the data section),
//   zero padding to `general.alignment` (uint32, default 32), the data section.
// Strings are a uint64 length and that many bytes, no terminator. Arrays are a
// uint32 element type, a uint64 count and the elements.
//
// The reader is bounded and validated (it is fuzzed) and reads through a
// byte_source (a buffer, or pread on a file), so nothing depends on a mapping
// staying valid: every problem is an `error` naming it. The writer keeps every
// key/value pair byte for byte (types, order) and lays the tensors out the way
// ggml's gguf_write does, which is also the only layout ggml's loader accepts:
// in order, each at the previous one's end rounded up to the alignment, the
// last one padded too.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tensor.hpp"

namespace blockq_tool::gguf {

inline constexpr std::uint32_t default_alignment = 32;
// Larger alignments (valid for ggml when a power of two) are refused: they
// only pad, and a hostile one would make the writer emit gigabytes of zeros.
inline constexpr std::uint32_t max_alignment = std::uint32_t{1} << 20;
inline constexpr std::size_t max_dims = 4;              // GGML_MAX_DIMS
inline constexpr std::size_t max_name_bytes = 63;       // GGML_MAX_NAME 64 with its terminator
inline constexpr std::uint64_t max_key_bytes = 65535;   // the specification's limit
inline constexpr std::uint64_t max_string_bytes = std::uint64_t{1} << 30;  // ggml's limit
inline constexpr int max_array_depth = 8;               // arrays of arrays (ggml itself reads none)

// The value types of key/value pairs (gguf_type).
enum class value_type : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
std::string_view to_string(value_type t) noexcept;
// Bytes of one scalar of this type (0 for string and array).
std::size_t scalar_size(value_type t) noexcept;

// A value as it is encoded in the file (without its leading type tag):
// `payload` holds the exact bytes, so writing it back is lossless.
struct value {
  value_type type = value_type::u8;
  value_type elem = value_type::u8;  // for arrays: the element type
  std::uint64_t count = 1;           // for arrays: the number of elements
  std::string payload;               // the bytes after the type tag (arrays: after elem and count)

  // Accessors; each throws error when the value has another type.
  std::string_view as_string() const;
  std::uint64_t as_uint() const;  // any unsigned or non-negative signed integer type
  std::vector<std::string> as_strings() const;  // an array of strings

  static value of_string(std::string_view s);
  static value of_u32(std::uint32_t v);
  static value of_i32(std::int32_t v);
  static value of_f32(float v);
  static value of_bool(bool v);
  static value of_strings(std::span<const std::string> items);
  static value of_f32s(std::span<const float> items);

  bool operator==(const value&) const = default;
};

struct kv {
  std::string key;
  gguf::value value;
  bool operator==(const kv&) const = default;
};

// ggml tensor types (enum ggml_type) and their blocks.
struct type_info {
  std::uint32_t id;
  std::string_view name;     // as ggml_type_name, upper case ("Q4_0", "MXFP4")
  std::uint32_t block;       // elements per block
  std::uint32_t type_size;   // bytes per block
};
// The known type with this id, or nullopt (ids 4, 5, 31-33, 36-38 were removed from ggml).
std::optional<type_info> find_type(std::uint32_t id) noexcept;
std::optional<type_info> find_type(std::string_view name) noexcept;  // case-insensitive
inline constexpr std::uint32_t type_f32 = 0, type_f16 = 1, type_q4_0 = 2, type_q4_1 = 3, type_q8_0 = 8,
                               type_bf16 = 30, type_mxfp4 = 39;

struct tensor_info {
  std::string name;
  std::uint32_t type = type_f32;
  std::vector<std::uint64_t> ne;  // innermost (row length) first, 1 to 4 entries
  std::uint64_t offset = 0;       // into the data section

  std::uint64_t numel() const;    // checked
  std::uint64_t nbytes() const;   // checked; needs a known type and ne[0] divisible by its block
  // The shape outermost first, as safetensors and numpy write it.
  shape_t shape() const { return shape_t(ne.rbegin(), ne.rend()); }
};

// Where a reader gets its bytes: a buffer or a file (pread).
class byte_source {
 public:
  virtual ~byte_source() = default;
  virtual std::uint64_t size() const = 0;
  // Reads exactly n bytes at offset; throws error when they are not there.
  virtual void read(std::uint64_t offset, void* dst, std::size_t n) const = 0;
};

class buffer_source final : public byte_source {
 public:
  explicit buffer_source(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  void read(std::uint64_t offset, void* dst, std::size_t n) const override;

 private:
  std::span<const std::uint8_t> bytes_;
};

// A file opened for reading; tensors are read with pread into the caller's buffers.
class file_source final : public byte_source {
 public:
  explicit file_source(const std::string& path);
  ~file_source() override;
  file_source(const file_source&) = delete;
  file_source& operator=(const file_source&) = delete;
  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, void* dst, std::size_t n) const override;

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// A parsed header.
struct file {
  std::uint32_t version = 3;
  std::vector<kv> kvs;               // in file order
  std::vector<tensor_info> tensors;  // in file order
  std::uint32_t alignment = default_alignment;
  std::uint64_t data_offset = 0;     // where the data section starts in the file

  const kv* find(std::string_view key) const noexcept;
  kv* find(std::string_view key) noexcept;
  // Sets (replacing in place, or appending) a key.
  void set(std::string_view key, value v);
  void erase(std::string_view key);
};

// True when the bytes start with the GGUF magic.
bool has_magic(std::span<const std::uint8_t> first4) noexcept;

// Parses and validates the header: magic, version 2 or 3 (1 and big-endian
// files are refused), counts bounded by the file size, keys (non-empty, at most
// max_key_bytes, unique), every value type including arrays of arrays (up to
// max_array_depth), general.alignment (a uint32 power of two), tensor names
// (non-empty, at most max_name_bytes, unique), 1-4 dims, known types, rows
// divisible by the block, 64-bit overflow everywhere, offsets aligned, inside
// the data section and not overlapping.
file parse(const byte_source& src);

// Reads a tensor's bytes (validated by parse) into a new buffer.
std::vector<std::uint8_t> read_tensor(const byte_source& src, const file& f, const tensor_info& t);

// Rounds n up to a multiple of align (a power of two); throws on overflow.
std::uint64_t padded(std::uint64_t n, std::uint64_t align);

// Lays the tensors out in order (each offset = the previous end padded to
// the alignment), sets general.alignment's value from the file's alignment
// when the key is present, and returns the header bytes including the zero
// padding up to the data section. Checks what parse checks (names, dims,
// types, rows, duplicate keys). f.data_offset is set.
std::string header_bytes(file& f);

// The value of a key/value pair as JSON text (for messages, metadata and
// tests); uint64/int64 as decimal strings when wide_as_strings (JavaScript).
std::string describe(const value& v, bool wide_as_strings = false);

}  // namespace blockq_tool::gguf
