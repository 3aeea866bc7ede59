// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE

// How a value exactly halfway between two element values is rounded (SPEC §1).
enum class tie_mode : std::uint8_t {
  even,         // to the even code: OCP, torchao, ModelOpt
  toward_zero,  // to the smaller magnitude: ggml, the seed reference, qwantize
  away,         // to the larger magnitude: microxcaling
};

constexpr std::string_view to_string(tie_mode t) noexcept {
  switch (t) {
    case tie_mode::even: return "even";
    case tie_mode::toward_zero: return "toward_zero";
    case tie_mode::away: return "away";
  }
  return "?";
}

constexpr std::optional<tie_mode> parse_tie_mode(std::string_view s) noexcept {
  if (s == "even") return tie_mode::even;
  if (s == "toward_zero") return tie_mode::toward_zero;
  if (s == "away") return tie_mode::away;
  return std::nullopt;
}

BLOCKQ_END_NAMESPACE
