// SPDX-License-Identifier: Apache-2.0
// --tensors with RE2: matching takes time linear in the name's length for any
// pattern, with no recursion (std::regex backtracks: exponential time on
// nested repetitions, and a stack frame per character on long names).
#include "select.hpp"

#include <re2/re2.h>

#include "tensor.hpp"

namespace blockq_tool {

struct name_filter::impl {
  explicit impl(const std::string& pattern, const RE2::Options& o) : re(pattern, o) {}
  RE2 re;
};

namespace {

RE2::Options filter_options() {
  RE2::Options o;
  o.set_log_errors(false);
  // Bounds the memory (and so the time) of compiling a huge pattern; RE2
  // reports "pattern too large" past it.
  o.set_max_mem(std::int64_t{64} << 20);
  return o;
}

}  // namespace

name_filter::name_filter(const std::string& pattern)
    : pattern_(pattern), p_(std::make_unique<impl>(pattern, filter_options())) {
  if (!p_->re.ok()) throw error("invalid --tensors regex '" + pattern + "': " + p_->re.error() + " (RE2 syntax)");
}

name_filter::~name_filter() = default;
name_filter::name_filter(name_filter&&) noexcept = default;
name_filter& name_filter::operator=(name_filter&&) noexcept = default;

bool name_filter::matches(const std::string& name) const { return RE2::PartialMatch(name, p_->re); }

}  // namespace blockq_tool
