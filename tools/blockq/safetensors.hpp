// SPDX-License-Identifier: Apache-2.0
// The safetensors format: an 8-byte little-endian header length N, N bytes of
// JSON {"NAME": {"dtype": ..., "shape": [...], "data_offsets": [begin, end]},
// "__metadata__": {string: string}}, then the tensors' bytes. The reader is
// bounded and validated (it is fuzzed): every problem is an `error` naming it.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "tensor.hpp"

namespace blockq_tool {

using metadata_t = std::vector<std::pair<std::string, std::string>>;

// Headers longer than this are rejected before anything is allocated (the
// reference implementation's limit).
inline constexpr std::uint64_t max_header_bytes = std::uint64_t{100} << 20;
// Tensors of higher rank are rejected.
inline constexpr std::size_t max_rank = 64;

struct safetensors_contents {
  metadata_t metadata;               // __metadata__, sorted by key
  std::vector<tensor_view> tensors;  // in the order of their data, viewing the input bytes
};

// The header length N from a file's first 8 bytes, checked against the
// limit and the file's size.
std::uint64_t safetensors_header_length(std::span<const std::uint8_t> first8, std::uint64_t file_size);

struct safetensors_layout {
  metadata_t metadata;               // __metadata__, sorted by key
  std::vector<tensor_info> tensors;  // in the order of their data; offsets from the file's start
};

// Parses and validates the header JSON (the N bytes after the length) of a
// file of `file_size` bytes, as parse_safetensors does, without the data.
safetensors_layout parse_safetensors_header(std::string_view header, std::uint64_t file_size);

// Parses a whole file held in memory. Checks the header length against the
// file and the limit, the JSON, every entry's dtype, shape and offsets, that
// shape x dtype size equals the bytes given, and that the tensors tile the
// data section exactly (no overlap, no gap, nothing past the end, nothing left over).
safetensors_contents parse_safetensors(std::span<const std::uint8_t> file);

// A tensor to be written.
struct tensor_spec {
  std::string name;
  dtype type = dtype::U8;
  shape_t shape;
  std::uint64_t bytes() const;  // checked numel x dtype size
};

// The start of a file holding `tensors` in this order, back to back: the
// 8-byte length and the JSON header, padded with spaces so that the data
// starts at a multiple of 8. __metadata__ comes first when not empty. Throws
// error on what parse_safetensors would refuse: a duplicate name or metadata
// key, the name __metadata__, a rank above max_rank, invalid UTF-8, a header
// above max_header_bytes.
std::string safetensors_header(std::span<const tensor_spec> tensors, const metadata_t& metadata);

}  // namespace blockq_tool
