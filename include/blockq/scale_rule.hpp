// SPDX-License-Identifier: Apache-2.0
// The rules that choose a block's scale (SPEC §3–§7).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE

enum class scale_rule : std::uint8_t {
  ocp,         // MX: 2^(floor(log2 amax) - emax), OCP MX v1.0
  ceil,        // MX: smallest power of two that does not clip
  floor,       // MX: 2^floor(log2(amax / max)); may clip
  absmax,      // amax / max (NVFP4: rounded to E4M3; FP4: float; integers: amax / qmax)
  signed_max,  // integers: d = m / qmin, m the element of largest magnitude (ggml Q4_0)
  minmax,      // asymmetric integers: scale = (max - min) / (2^b - 1), min = min
  mse,         // the scale with the least sum of squared errors, exactly
  lsq,         // least-squares refit with a candidate search (never worse than the start)
  hessian,     // the scale with the least r^T H r, exactly
};

constexpr std::string_view to_string(scale_rule r) noexcept {
  switch (r) {
    case scale_rule::ocp: return "ocp";
    case scale_rule::ceil: return "ceil";
    case scale_rule::floor: return "floor";
    case scale_rule::absmax: return "absmax";
    case scale_rule::signed_max: return "signed_max";
    case scale_rule::minmax: return "minmax";
    case scale_rule::mse: return "mse";
    case scale_rule::lsq: return "lsq";
    case scale_rule::hessian: return "hessian";
  }
  return "?";
}

constexpr std::optional<scale_rule> parse_scale_rule(std::string_view s) noexcept {
  for (auto r : {scale_rule::ocp, scale_rule::ceil, scale_rule::floor, scale_rule::absmax,
                 scale_rule::signed_max, scale_rule::minmax, scale_rule::mse, scale_rule::lsq,
                 scale_rule::hessian})
    if (to_string(r) == s) return r;
  return std::nullopt;
}

namespace detail {
inline std::string rule_error(scale_rule r, std::string_view quantizer) {
  return "scale rule '" + std::string(to_string(r)) + "' does not apply to " + std::string(quantizer);
}
}  // namespace detail

BLOCKQ_END_NAMESPACE
