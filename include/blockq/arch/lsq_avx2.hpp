// SPDX-License-Identifier: Apache-2.0
// The lsq starts' kernels on the AVX2 tier (tag arch::avx2), search/refit.hpp:
//   int_lsq_start: the codes and refit sums of one start (starts are not scored), AVX2's fused
//     int_lsq_step pass without its error (avx2_detail::int_lsq_step8<Weighted, false>): the
//     same codes and sums, bit for bit, as encode_int and int_refit_sums. Blocks whose length
//     is not a multiple of 8, a zero scale and any overflow of x - min take those two kernels.
//   int_lsq_starts: the sums of many starts (the scales of one orientation) in one transposed
//     pass, lanes = scales, with the same bits as int_lsq_start at each.
#pragma once

#include "blockq/arch/avx2.hpp"

#if BLOCKQ_WITH_AVX2
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

inline void int_lsq_start(arch::avx2, const float* x, const float* w, std::size_t n, float scale, float min,
                          int_format fmt, std::uint8_t* codes, refit_sums& sums) noexcept {
  double unused = 0.0;
  constexpr std::size_t max_int_sums_n = std::size_t{1} << 16;  // as int_lsq_step's bound
  if (scale != 0.0f && n % 8 == 0 && (w || n <= max_int_sums_n) &&
      (w ? avx2_detail::int_lsq_step8<true, false>(x, w, n, scale, min, fmt, codes, sums, unused)
         : avx2_detail::int_lsq_step8<false, false>(x, w, n, scale, min, fmt, codes, sums, unused)))
    return;
  encode_int(arch::avx2{}, x, n, scale, min, fmt, codes);
  const refit_sums r = int_refit_sums(arch::avx2{}, x, w, codes, n, fmt);
  sums.sq = r.sq;
  sums.sqq = r.sqq;
  sums.sxq = r.sxq;
}

// Whether every product x[i] * q (|q| <= max(-qmin, qmax)) and every partial sum of them, in
// any order, is exact in double: then sum8's order gives the exact sum, and any order gives
// the same bits. x[i] * q is exact (24 + 8 bits); each is a multiple of 2^(e - 150), e the
// smallest biased exponent (1 for subnormals) of a non-zero x[i], and every partial sum is at
// most qabs * sum |x[i]|, so below 2^(e - 150 + 53) all are representable (the bound is
// computed in double; 2^52 leaves room for its own rounding, n <= 2^15). Non-finite x: false.
// A sum of zeros (and any exact sum 0, in round-to-nearest) is +0 in every order from +0.
inline bool xq_sums_exact(const float* x, std::size_t n, int_format fmt) noexcept {
  const __m256i abs = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
  __m256i emin = _mm256_set1_epi32(255), bad = _mm256_setzero_si256();
  __m256d total = _mm256_setzero_pd();
  auto add8 = [&](__m256i u) BLOCKQ_LAMBDA_INLINE {  // u: |x| bits
    bad = _mm256_or_si256(bad, _mm256_cmpgt_epi32(u, _mm256_sub_epi32(inf, _mm256_set1_epi32(1))));
    const __m256i e = _mm256_max_epi32(_mm256_srli_epi32(u, 23), _mm256_set1_epi32(1));
    const __m256i zero = _mm256_cmpeq_epi32(u, _mm256_setzero_si256());
    emin = _mm256_min_epi32(emin, _mm256_blendv_epi8(e, _mm256_set1_epi32(255), zero));
    const __m256 a = _mm256_castsi256_ps(u);
    total = _mm256_add_pd(total, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                                               _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1))));
  };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) add8(_mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs));
  if (i < n) add8(_mm256_and_si256(_mm256_maskload_epi32(reinterpret_cast<const int*>(x + i), avx2_detail::first_lanes(n - i)), abs));
  if (!_mm256_testz_si256(bad, bad)) return false;
  alignas(32) std::int32_t e[8];
  alignas(32) double t[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(e), emin);
  _mm256_store_pd(t, total);
  int m = 255;
  for (int j = 0; j < 8; ++j) m = e[j] < m ? e[j] : m;
  if (m == 255) return true;
  const double qabs = static_cast<double>(-fmt.qmin() > fmt.qmax() ? -fmt.qmin() : fmt.qmax());
  return qabs * ((t[0] + t[1]) + (t[2] + t[3])) < std::ldexp(1.0, m - 150 + 52);
}

namespace avx2_detail {
// int_lsq_starts for up to 8 G scales, unweighted, transposed: lanes are the scales, the loop
// runs over the elements. Element i at scale lane l: y = (x[i] - min) / scales[l] (a division
// in every lane; where encode_int multiplies by an exact reciprocal 1 / s, x * (1 / s) is the
// same real number as x / s and rounds to the same float), then int_round<true> (the clamp,
// vcvtps2dq, NaN to 0). sq and sqq are int32 lane sums (exact in any order); sxq keeps
// kernels::sum8's order: accumulator i % 8 of each lane gets x[i] * q in increasing i, and the
// eight are added in sum8's tree. False (nothing written) when an x - min overflows.
// Exact (xq_sums_exact): sxq in one accumulator per lane, in element order, each product added
// by a fused multiply-add (exact products and sums: the same bits as a multiply, then an add).
template <std::size_t G, bool Exact>
BLOCKQ_ALWAYS_INLINE bool int_lsq_starts8(const float* x, std::size_t n, const float* scales, std::size_t k,
                                          float min, int_format fmt, refit_sums* sums) noexcept {
  alignas(32) float sc[8 * G];
  for (std::size_t l = 0; l < 8 * G; ++l) sc[l] = l < k ? scales[l] : 1.0f;  // unused lanes: any finite scale
  __m256 s[G];
  __m256i iq[G], iqq[G];
  for (std::size_t g = 0; g < G; ++g) {
    s[g] = _mm256_load_ps(sc + 8 * g);
    iq[g] = iqq[g] = _mm256_setzero_si256();
  }
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  constexpr std::size_t rows = Exact ? 1 : 8;
  __m256d acc[rows][2 * G];
  for (auto& a : acc)
    for (auto& v : a) v = _mm256_setzero_pd();
  // The largest |x[i] - min| (NaN ones left out: maxss returns its second operand when either
  // is NaN), one scalar max an element: x - min is the same in every lane.
  const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7FFFFFFF));
  __m128 dmax = _mm_setzero_ps();
  for (std::size_t i = 0; i < n; ++i) {
    const __m128 d1 = _mm_sub_ss(_mm_set_ss(x[i]), _mm_set_ss(min));
    dmax = _mm_max_ss(_mm_and_ps(d1, abs_mask), dmax);
    const __m256 d = _mm256_broadcastss_ps(d1);
    const __m256d xd = _mm256_set1_pd(static_cast<double>(x[i]));
    __m256d* a = acc[Exact ? 0 : i & 7u];
    for (std::size_t g = 0; g < G; ++g) {
      const __m256i q = int_round<true>(_mm256_div_ps(d, s[g]), qmin, qmax);
      iq[g] = _mm256_add_epi32(iq[g], q);
      iqq[g] = _mm256_add_epi32(iqq[g], _mm256_mullo_epi32(q, q));
      const __m256d q0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(q)), q1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256(q, 1));
      if constexpr (Exact) {  // x * q and the sum are exact: the fused add rounds nothing either
        a[2 * g] = _mm256_fmadd_pd(xd, q0, a[2 * g]);
        a[2 * g + 1] = _mm256_fmadd_pd(xd, q1, a[2 * g + 1]);
      } else {
        a[2 * g] = _mm256_add_pd(a[2 * g], _mm256_mul_pd(xd, q0));
        a[2 * g + 1] = _mm256_add_pd(a[2 * g + 1], _mm256_mul_pd(xd, q1));
      }
    }
  }
  if (_mm_cvtss_f32(dmax) == std::numeric_limits<float>::infinity()) [[unlikely]] return false;
  alignas(32) double sxq[8 * G];
  alignas(32) std::int32_t tq[8 * G], tqq[8 * G];
  for (std::size_t h = 0; h < 2 * G; ++h) {
    if constexpr (Exact) {
      _mm256_store_pd(sxq + 4 * h, acc[0][h]);
    } else {
      const __m256d t = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(acc[0][h], acc[4][h]), _mm256_add_pd(acc[2][h], acc[6][h])),
                                      _mm256_add_pd(_mm256_add_pd(acc[1][h], acc[5][h]), _mm256_add_pd(acc[3][h], acc[7][h])));
      _mm256_store_pd(sxq + 4 * h, t);
    }
  }
  for (std::size_t g = 0; g < G; ++g) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(tq + 8 * g), iq[g]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(tqq + 8 * g), iqq[g]);
  }
  for (std::size_t l = 0; l < k; ++l) {
    sums[l].sq = static_cast<double>(tq[l]);
    sums[l].sqq = static_cast<double>(tqq[l]);
    sums[l].sxq = sxq[l];
  }
  return true;
}
// The passes of int_lsq_starts, 24 scales at a time; returns how many scales they did (all
// but those from a pass that overflowed).
template <bool Exact>
BLOCKQ_ALWAYS_INLINE std::size_t int_lsq_starts_passes(const float* x, std::size_t n, const float* scales, std::size_t k,
                                                       float min, int_format fmt, refit_sums* sums) noexcept {
  std::size_t j = 0;
  for (; j < k; j += 24) {
    const std::size_t m = k - j < 24 ? k - j : 24;
    const bool ok = m <= 8    ? int_lsq_starts8<1, Exact>(x, n, scales + j, m, min, fmt, sums + j)
                    : m <= 16 ? int_lsq_starts8<2, Exact>(x, n, scales + j, m, min, fmt, sums + j)
                              : int_lsq_starts8<3, Exact>(x, n, scales + j, m, min, fmt, sums + j);
    if (!ok) break;
  }
  return j < k ? j : k;
}
}  // namespace avx2_detail

// int_lsq_start at each of k scales (the same min), unweighted blocks of up to 2^15 elements
// in the transposed passes above (24 scales at a time), the rest one start at a time.
inline void int_lsq_starts(arch::avx2, const float* x, const float* w, std::size_t n, const float* scales, std::size_t k,
                           float min, int_format fmt, std::uint8_t* codes, refit_sums* sums) noexcept {
  std::size_t j = 0;
  if (!w && n <= (std::size_t{1} << 15)) {  // a lane's int32 sums of q^2 stay below 2^31
    j = xq_sums_exact(x, n, fmt) ? avx2_detail::int_lsq_starts_passes<true>(x, n, scales, k, min, fmt, sums)
                                 : avx2_detail::int_lsq_starts_passes<false>(x, n, scales, k, min, fmt, sums);
  }
  for (; j < k; ++j) int_lsq_start(arch::avx2{}, x, w, n, scales[j], min, fmt, codes, sums[j]);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX2
