// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the tool's safetensors reader. Any input must either
// parse or raise blockq_tool::error; a parsed file must be self-consistent
// and survive a write (the tool's header writer) and re-read unchanged.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace blockq_tool;
  safetensors_contents c;
  try {
    c = parse_safetensors({data, size});
  } catch (const error&) {
    return 0;
  }
  std::vector<tensor_spec> specs;
  std::string body;
  for (const tensor_view& t : c.tensors) {
    if (t.bytes.size() != t.numel() * dtype_size(t.type)) std::abort();
    if (!t.bytes.empty() && (t.bytes.data() < data || t.bytes.data() + t.bytes.size() > data + size)) std::abort();
    specs.push_back({t.name, t.type, t.shape});
    body.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  }
  std::string file;
  try {
    file = safetensors_header(specs, c.metadata) + body;
  } catch (const error&) {
    return 0;  // names the writer refuses (empty)
  }
  const auto again = parse_safetensors({reinterpret_cast<const std::uint8_t*>(file.data()), file.size()});
  if (again.metadata != c.metadata || again.tensors.size() != c.tensors.size()) std::abort();
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    const tensor_view &a = c.tensors[i], &b = again.tensors[i];
    if (a.name != b.name || a.type != b.type || a.shape != b.shape || a.bytes.size() != b.bytes.size() ||
        (!a.bytes.empty() && std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()) != 0))
      std::abort();
  }
  return 0;
}
