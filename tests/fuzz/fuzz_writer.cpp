// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the tool's safetensors writer. The input describes
// tensors (arbitrary names, dtypes, shapes) and metadata; whatever the writer
// accepts, the reader must read back identically (what the tool writes, it
// reads), and whatever it refuses is a blockq_tool::error.
//   input: records separated by 0xFF bytes; a record is a kind byte (even:
//   tensor, odd: metadata), then for a tensor a dtype byte, a rank byte and
//   that many dimension bytes, then the name (the rest); for metadata, key
//   and value split at the first 0xFE byte.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace blockq_tool;
  constexpr dtype types[] = {dtype::BOOL, dtype::U8,  dtype::I8,  dtype::F8_E4M3, dtype::F8_E5M2, dtype::F8_E8M0,
                             dtype::I16,  dtype::U16, dtype::F16, dtype::BF16,    dtype::I32,     dtype::U32,
                             dtype::F32,  dtype::I64, dtype::U64, dtype::F64};
  std::vector<tensor_spec> specs;
  metadata_t meta;
  std::size_t i = 0;
  while (i < size) {
    std::size_t end = i;
    while (end < size && data[end] != 0xFF) ++end;
    const std::string rec(reinterpret_cast<const char*>(data + i), end - i);
    i = end + 1;
    if (rec.empty()) continue;
    if (static_cast<std::uint8_t>(rec[0]) % 2 == 1) {
      const std::size_t cut = rec.find('\xFE', 1);
      meta.emplace_back(rec.substr(1, cut == std::string::npos ? std::string::npos : cut - 1),
                        cut == std::string::npos ? "" : rec.substr(cut + 1));
      continue;
    }
    if (rec.size() < 3) continue;
    tensor_spec t;
    t.type = types[static_cast<std::uint8_t>(rec[1]) % 16];
    const std::size_t rank = std::min<std::size_t>(static_cast<std::uint8_t>(rec[2]) % 80, rec.size() - 3);
    // Dimensions 0..3 keep the data small; rank up to 79 crosses the limit of 64.
    for (std::size_t d = 0; d < rank; ++d) t.shape.push_back(static_cast<std::uint8_t>(rec[3 + d]) % 4);
    t.name = rec.substr(3 + rank);
    specs.push_back(std::move(t));
  }
  std::string file;
  std::uint64_t data_bytes = 0;
  try {
    file = safetensors_header(specs, meta);
    for (const tensor_spec& t : specs) data_bytes += t.bytes();
  } catch (const error&) {
    return 0;
  }
  if (data_bytes > (std::uint64_t{1} << 24)) return 0;
  const std::size_t header_end = file.size();
  file.resize(header_end + static_cast<std::size_t>(data_bytes));
  for (std::size_t k = header_end; k < file.size(); ++k) file[k] = static_cast<char>(k * 31);
  safetensors_contents c;
  try {
    c = parse_safetensors({reinterpret_cast<const std::uint8_t*>(file.data()), file.size()});
  } catch (const error&) {
    std::abort();  // written but unreadable
  }
  // The same tensors at the same offsets. (Order alone can differ: the
  // format orders tensors by offset, so empty tensors sharing an offset come
  // back in the reader's order.)
  if (c.tensors.size() != specs.size()) std::abort();
  struct placed {
    std::string name;
    dtype type;
    shape_t shape;
    std::uint64_t offset, size;
    bool operator<(const placed& o) const { return std::tie(offset, size, name) < std::tie(o.offset, o.size, o.name); }
    bool operator==(const placed& o) const {
      return name == o.name && type == o.type && shape == o.shape && offset == o.offset && size == o.size;
    }
  };
  std::vector<placed> written, read;
  std::uint64_t at = header_end;
  for (const tensor_spec& t : specs) {
    written.push_back({t.name, t.type, t.shape, at, t.bytes()});
    at += t.bytes();
  }
  const auto* base = reinterpret_cast<const std::uint8_t*>(file.data());
  for (const tensor_view& t : c.tensors)
    read.push_back({t.name, t.type, t.shape, t.bytes.empty() ? 0 : static_cast<std::uint64_t>(t.bytes.data() - base),
                    t.bytes.size()});
  for (placed& p : written)
    if (p.size == 0) p.offset = 0;  // an empty view has no address
  std::sort(written.begin(), written.end());
  std::sort(read.begin(), read.end());
  if (written != read) std::abort();
  std::sort(meta.begin(), meta.end());
  if (c.metadata != meta) std::abort();
  return 0;
}
