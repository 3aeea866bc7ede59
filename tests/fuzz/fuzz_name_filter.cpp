// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the tool's --tensors name filter (RE2). The input is a
// pattern, a newline, and a tensor name. Any pattern must either compile or
// raise blockq_tool::error, and matching must return (RE2: linear time, no
// recursion; the fuzzer's -timeout catches a slow case). Oracles: the name
// quoted as a literal is found in itself and in any name containing it, and
// the empty pattern matches every name.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <re2/re2.h>

#include "select.hpp"
#include "tensor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace blockq_tool;
  const std::string in(reinterpret_cast<const char*>(data), size);
  const std::size_t nl = in.find('\n');
  const std::string pattern = in.substr(0, nl), name = nl == std::string::npos ? "" : in.substr(nl + 1);
  try {
    const name_filter f(pattern);
    (void)f.matches(name);
    (void)f.matches(pattern);
  } catch (const error&) {
  }
  try {
    // (Invalid UTF-8 in the name makes the quoted pattern invalid: an error.)
    const name_filter literal(RE2::QuoteMeta(name));
    if (!literal.matches(name) || !literal.matches("a." + name + ".z")) std::abort();
  } catch (const error&) {
  }
  if (!name_filter("").matches(name)) std::abort();
  return 0;
}
