// SPDX-License-Identifier: Apache-2.0
// --tensors: a regular expression (RE2 syntax) searched in tensor names.
#pragma once

#include <memory>
#include <string>

namespace blockq_tool {

class name_filter {
 public:
  // Throws error for an invalid expression.
  explicit name_filter(const std::string& pattern);
  ~name_filter();
  name_filter(name_filter&&) noexcept;
  name_filter& operator=(name_filter&&) noexcept;

  // Whether the expression matches somewhere in the name.
  bool matches(const std::string& name) const;
  const std::string& pattern() const noexcept { return pattern_; }

 private:
  struct impl;
  std::string pattern_;
  std::unique_ptr<impl> p_;
};

}  // namespace blockq_tool
