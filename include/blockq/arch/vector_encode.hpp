// SPDX-License-Identifier: Apache-2.0
// encode / encode_packed of the vector tiers (AVX2 and AVX-512, NEON): each tier writes its
// element kernels once over both layouts as encode_codes<Element, Packed>; these two entry
// points forward to it, one code a byte or two codes a byte. Included at the end of
// arch/avx2_codec.hpp and arch/neon.hpp, after their encode_codes, so that the call below
// binds to the tier's own kernel (an unqualified call in a template sees the overloads
// declared before it; the tags' namespace is not searched by argument-dependent lookup).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

#include "blockq/arch/scalar.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

template <class Arch>
concept vector_tier = std::derived_from<Arch, arch::scalar> && !std::same_as<Arch, arch::scalar>;

template <class Element, vector_tier Arch>
void encode(Arch, const float* x, std::size_t n, float scale, tie_mode ties, std::uint8_t* codes) noexcept {
  encode_codes<Element, false>(Arch{}, x, n, scale, ties, codes);
}
template <class Element, vector_tier Arch>
void encode_packed(Arch, const float* x, std::size_t n, float scale, tie_mode ties, std::uint8_t* packed) noexcept {
  encode_codes<Element, true>(Arch{}, x, n, scale, ties, packed);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
