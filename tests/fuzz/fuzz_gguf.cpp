// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the tool's GGUF reader and its importance-matrix reader.
// Any input must either parse or raise blockq_tool::error; a parsed GGUF must
// be self-consistent and survive a write (the tool's GGUF writer) and re-read
// with the same key/value pairs, tensor infos and tensor bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gguf.hpp"
#include "imatrix.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace blockq_tool;
  const gguf::buffer_source src({data, size});
  try {
    (void)parse_imatrix(src);
  } catch (const error&) {
  }
  gguf::file f;
  try {
    f = gguf::parse(src);
  } catch (const error&) {
    return 0;
  }
  std::vector<std::vector<std::uint8_t>> bytes;
  for (const gguf::tensor_info& t : f.tensors) {
    if (f.data_offset + t.offset + t.nbytes() > size || t.offset % f.alignment != 0) std::abort();
    bytes.push_back(gguf::read_tensor(src, f, t));
  }
  gguf::file out = f;
  std::string file;
  try {
    file = gguf::header_bytes(out);
  } catch (const error&) {
    std::abort();  // whatever the reader accepts, the writer must write
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    file.append(reinterpret_cast<const char*>(bytes[i].data()), bytes[i].size());
    file.resize(static_cast<std::size_t>(gguf::padded(file.size(), out.alignment)), '\0');
  }
  const gguf::buffer_source again_src({reinterpret_cast<const std::uint8_t*>(file.data()), file.size()});
  const gguf::file again = gguf::parse(again_src);
  if (again.kvs != f.kvs || again.tensors.size() != f.tensors.size() || again.alignment != f.alignment) std::abort();
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    const gguf::tensor_info &a = f.tensors[i], &b = again.tensors[i];
    if (a.name != b.name || a.type != b.type || a.ne != b.ne || b.offset != out.tensors[i].offset) std::abort();
    if (gguf::read_tensor(again_src, again, b) != bytes[i]) std::abort();
  }
  return 0;
}
