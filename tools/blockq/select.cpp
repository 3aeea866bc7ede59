// SPDX-License-Identifier: Apache-2.0
// The only translation unit with <regex> (slow to compile, and GCC 12 warns
// falsely inside it under the sanitizers).
#include "select.hpp"

#include <regex>

#include "tensor.hpp"

namespace blockq_tool {

struct name_filter::impl {
  std::regex re;
};

name_filter::name_filter(const std::string& pattern) : pattern_(pattern), p_(std::make_unique<impl>()) {
  try {
    p_->re = std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw error("invalid --tensors regex '" + pattern + "': " + e.what());
  }
}

name_filter::~name_filter() = default;
name_filter::name_filter(name_filter&&) noexcept = default;
name_filter& name_filter::operator=(name_filter&&) noexcept = default;

bool name_filter::matches(const std::string& name) const { return std::regex_search(name, p_->re); }

}  // namespace blockq_tool
