// SPDX-License-Identifier: Apache-2.0
// AVX2 search kernels (search/*.hpp): residuals, energies, the quadratic form of the Hessian
// search, weighted and integer errors, refit sums, the bound energies and the window estimates
// of the discrete searches (MXFP4, NVFP4), and the fused lsq step. Same contract as
// arch/avx2_codec.hpp: the bits of the arch/scalar.hpp oracle where a kernel returns a value the
// search compares exactly; the estimates keep within their documented error instead.
#pragma once

#include "blockq/arch/avx2_codec.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

// ------------------------------------------------------------------ search kernels

template <class Element>
void block_residual(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties, float* r) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace avx2_detail;
    const __m256 s = _mm256_set1_ps(scale);
    std::size_t done = 0;
    with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
      with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8) {
          const __m256 v = _mm256_loadu_ps(x + i);
          _mm256_storeu_ps(r + i, _mm256_sub_ps(v, _mm256_mul_ps(e2m1_round<decltype(t)::value>(div(v)), s)));
        }
        done = i;
      });
    });
    if (done < n) block_residual<Element>(arch::scalar{}, x + done, n - done, scale, ties, r + done);
  } else {
    block_residual<Element>(arch::scalar{}, x, n, scale, ties, r);
  }
}

// Sums in the scalar order (lane i % 8 of sum8x); masked lanes load 0 and add +0.
inline double block_energy(arch::avx2, const float* x, const float* w, std::size_t n) noexcept {
  using namespace avx2_detail;
  sum8x acc;
  for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
    if (!w)
      acc.add_sq(v);
    else
      acc.add_wsq(full ? _mm256_loadu_ps(w + i) : _mm256_maskload_ps(w + i, first_lanes(n - i)), v);
  });
  return acc.total();
}

namespace avx2_detail {
// quad_form for n a multiple of 8 up to 64 (the Hessian searches' blocks), four rows at a
// time: r converted to double once, the rows' sum8x lanes reduced together (a 4 x 4
// transpose gives each row's ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)) in one lane),
// and r[i] times the row total added to lane i % 8 of the outer sum, as the scalar kernel
// orders every operation.
inline double quad_form_rows4(const float* r, const double* h, std::size_t n) noexcept {
  alignas(32) double rd[64];
  for (std::size_t k = 0; k < n; k += 4) _mm256_store_pd(rd + k, _mm256_cvtps_pd(_mm_loadu_ps(r + k)));
  sum8x outer;
  for (std::size_t i = 0; i < n; i += 4) {
    __m256d t[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const double* row = h + (i + j) * n;
      __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
      for (std::size_t k = 0; k < n; k += 8) {
        lo = _mm256_add_pd(lo, _mm256_mul_pd(_mm256_loadu_pd(row + k), _mm256_load_pd(rd + k)));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(_mm256_loadu_pd(row + k + 4), _mm256_load_pd(rd + k + 4)));
      }
      t[j] = _mm256_add_pd(lo, hi);  // s0+s4, s1+s5, s2+s6, s3+s7
    }
    const __m256d a01 = _mm256_unpacklo_pd(t[0], t[1]), b01 = _mm256_unpackhi_pd(t[0], t[1]);
    const __m256d a23 = _mm256_unpacklo_pd(t[2], t[3]), b23 = _mm256_unpackhi_pd(t[2], t[3]);
    const __m256d c0 = _mm256_permute2f128_pd(a01, a23, 0x20), c2 = _mm256_permute2f128_pd(a01, a23, 0x31);
    const __m256d c1 = _mm256_permute2f128_pd(b01, b23, 0x20), c3 = _mm256_permute2f128_pd(b01, b23, 0x31);
    const __m256d total = _mm256_add_pd(_mm256_add_pd(c0, c2), _mm256_add_pd(c1, c3));
    const __m256d p = _mm256_mul_pd(_mm256_load_pd(rd + i), total);
    if (i % 8 == 0)
      outer.lo = _mm256_add_pd(outer.lo, p);
    else
      outer.hi = _mm256_add_pd(outer.hi, p);
  }
  return outer.total();
}
}  // namespace avx2_detail

// Each row's inner sum in eight double lanes (k % 8, sum8x), the outer one in kernels::sum8.
inline double quad_form(arch::avx2, const float* r, const double* h, std::size_t n) noexcept {
  using namespace avx2_detail;
  if (n % 8 == 0 && n <= 64) return quad_form_rows4(r, h, n);
  sum8 outer;
  for (std::size_t i = 0; i < n; ++i) {
    const double* row = h + i * n;
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    std::size_t k = 0;
    for (; k + 8 <= n; k += 8) {
      const __m256 v = _mm256_loadu_ps(r + k);
      lo = _mm256_add_pd(lo, _mm256_mul_pd(_mm256_loadu_pd(row + k), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
      hi = _mm256_add_pd(hi, _mm256_mul_pd(_mm256_loadu_pd(row + k + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
    }
    if (k < n) {  // masked lanes: 0 * 0 = +0
      const std::size_t m = n - k;
      const __m256i l = first_lanes(m);
      const __m256 v = _mm256_maskload_ps(r + k, l);
      const __m256i l0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(l)), l1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(l, 1));
      lo = _mm256_add_pd(lo, _mm256_mul_pd(_mm256_maskload_pd(row + k, l0), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
      hi = _mm256_add_pd(hi, _mm256_mul_pd(_mm256_maskload_pd(row + k + 4, l1), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
    }
    sum8x inner;
    inner.lo = lo;
    inner.hi = hi;
    outer.add(i, static_cast<double>(r[i]) * inner.total());
  }
  return outer.total();
}

inline double block_wsse_int(arch::avx2, const float* x, const float* w, std::size_t n, float scale, float min,
                             int_format fmt) noexcept {
  using namespace avx2_detail;
  if (scale == 0.0f) return block_wsse_int(arch::scalar{}, x, w, n, scale, min, fmt);
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  const __m256 s = _mm256_set1_ps(scale), mn = _mm256_set1_ps(min);
  sum8x acc;
  with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
    for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
      const __m256 r = int_residual8(v, div, s, mn, qmin, qmax, scale, min, fmt);
      if (full)
        acc.add_wsq(_mm256_loadu_ps(w + i), r);
      else {
        const __m256i l = first_lanes(n - i);
        acc.add_wsq(_mm256_maskload_ps(w + i, l), _mm256_and_ps(r, _mm256_castsi256_ps(l)));
      }
    });
  });
  return acc.total();
}

namespace avx2_detail {
// The five refit sums, each in eight double lanes; level(i, full) gives the 8 levels q of
// elements i..i+7 as floats (exact in double). Masked lanes have w = 0, x = 0, q = 0.
template <class Level>
BLOCKQ_ALWAYS_INLINE refit_sums refit_sums8(const float* x, const float* w, std::size_t n, Level&& level) noexcept {
  sum8x sw, sq, sqq, sx, sxq;
  auto add = [](sum8x& acc, __m256d a, __m256d b) BLOCKQ_LAMBDA_INLINE {
    acc.lo = _mm256_add_pd(acc.lo, a);
    acc.hi = _mm256_add_pd(acc.hi, b);
  };
  for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
    const __m256i lanes = full ? splat(0xFFFFFFFFu) : first_lanes(n - i);
    const __m256 wf = w ? (full ? _mm256_loadu_ps(w + i) : _mm256_maskload_ps(w + i, lanes))
                        : _mm256_and_ps(_mm256_set1_ps(1.0f), _mm256_castsi256_ps(lanes));
    const __m256 qf = level(i, lanes);
    const __m256d w0 = _mm256_cvtps_pd(_mm256_castps256_ps128(wf)), w1 = _mm256_cvtps_pd(_mm256_extractf128_ps(wf, 1));
    const __m256d q0 = _mm256_cvtps_pd(_mm256_castps256_ps128(qf)), q1 = _mm256_cvtps_pd(_mm256_extractf128_ps(qf, 1));
    const __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    const __m256d wq0 = _mm256_mul_pd(w0, q0), wq1 = _mm256_mul_pd(w1, q1);
    const __m256d wx0 = _mm256_mul_pd(w0, x0), wx1 = _mm256_mul_pd(w1, x1);
    add(sw, w0, w1);
    add(sq, wq0, wq1);
    add(sqq, _mm256_mul_pd(wq0, q0), _mm256_mul_pd(wq1, q1));
    add(sx, wx0, wx1);
    add(sxq, _mm256_mul_pd(wx0, q0), _mm256_mul_pd(wx1, q1));
  });
  return {sw.total(), sq.total(), sqq.total(), sx.total(), sxq.total()};
}

// 8 code bytes at c (masked: the lanes of `lanes`, the others 0) as 32-bit lanes.
BLOCKQ_ALWAYS_INLINE __m256i load_codes8(const std::uint8_t* c, __m256i lanes, bool full) noexcept {
  if (full) return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c)));
  alignas(16) std::uint8_t buf[16] = {};
  const int m = _mm256_movemask_ps(_mm256_castsi256_ps(lanes));
  for (int j = 0; j < 8; ++j)
    if (m & (1 << j)) buf[j] = c[j];
  return _mm256_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
}
}  // namespace avx2_detail

inline refit_sums int_refit_sums(arch::avx2, const float* x, const float* w, const std::uint8_t* codes, std::size_t n,
                                 int_format fmt) noexcept {
  using namespace avx2_detail;
  return refit_sums8(x, w, n, [&](std::size_t i, __m256i lanes) BLOCKQ_LAMBDA_INLINE {
    // Masked lanes read code 0, whose level is 0 in every format.
    const __m256i c = load_codes8(codes + i, lanes, i + 8 <= n);
    return _mm256_cvtepi32_ps(int_from_code(c, fmt));
  });
}

template <class Element>
refit_sums element_refit_sums(arch::avx2, const float* x, const float* w, const std::uint8_t* codes,
                              std::size_t n) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace avx2_detail;
    return refit_sums8(x, w, n, [&](std::size_t i, __m256i lanes) BLOCKQ_LAMBDA_INLINE {
      return e2m1_decode8(load_codes8(codes + i, lanes, i + 8 <= n));  // code 0 is +0
    });
  } else {
    return element_refit_sums<Element>(arch::scalar{}, x, w, codes, n);
  }
}

// Bounds only: the same terms as the scalar kernel, summed in four double lanes (the
// searches allow any order, see arch/scalar.hpp).
inline bound_energies block_bound_energies(arch::avx2, const float* x, std::size_t n, double zero_below,
                                           double clip_above) noexcept {
  using namespace avx2_detail;
  const __m256d zb = _mm256_set1_pd(zero_below), ca = _mm256_set1_pd(clip_above);
  const __m256d eps = _mm256_set1_pd(0x1p-22), tiny = _mm256_set1_pd(0x1p-148), zero = _mm256_setzero_pd();
  __m256d z = zero, c = zero;
  auto add4 = [&](__m128 v) BLOCKQ_LAMBDA_INLINE {
    const __m256d y = _mm256_cvtps_pd(_mm_andnot_ps(_mm_set1_ps(-0.0f), v));
    z = _mm256_add_pd(z, _mm256_and_pd(_mm256_mul_pd(y, y), _mm256_cmp_pd(y, zb, _CMP_LT_OQ)));
    const __m256d r = _mm256_sub_pd(_mm256_sub_pd(_mm256_sub_pd(y, ca), _mm256_mul_pd(y, eps)), tiny);
    const __m256d keep = _mm256_and_pd(_mm256_cmp_pd(y, ca, _CMP_GT_OQ), _mm256_cmp_pd(r, zero, _CMP_GT_OQ));
    c = _mm256_add_pd(c, _mm256_and_pd(_mm256_mul_pd(r, r), keep));
  };
  for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, no term
    add4(_mm256_castps256_ps128(v));
    add4(_mm256_extractf128_ps(v, 1));
  });
  const __m128d z2 = _mm_add_pd(_mm256_castpd256_pd128(z), _mm256_extractf128_pd(z, 1));
  const __m128d c2 = _mm_add_pd(_mm256_castpd256_pd128(c), _mm256_extractf128_pd(c, 1));
  return {_mm_cvtsd_f64(_mm_add_sd(z2, _mm_unpackhi_pd(z2, z2))), _mm_cvtsd_f64(_mm_add_sd(c2, _mm_unpackhi_pd(c2, c2)))};
}

namespace avx2_detail {
BLOCKQ_ALWAYS_INLINE float hsum_ps(__m256 v) noexcept {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// e2m1_round for y >= 0 (not NaN): the magnitude alone.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256 e2m1_round_magnitude(__m256 a) noexcept {
  if constexpr (T == tie_mode::even) {
    const __m256 a8 = _mm256_min_ps(a, _mm256_set1_ps(8.0f));
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(_mm256_castps_si256(a8), splat(0x7F800000u)), splat(0x3F800000u));
    const __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(e, splat(22u << 23)));
    return _mm256_min_ps(_mm256_sub_ps(_mm256_add_ps(a8, m), m), _mm256_set1_ps(6.0f));
  } else {
    return e2m1_round<T>(a);
  }
}

// K candidates in one pass over the block (see block_sse_estimates below).
template <tie_mode T, std::size_t K, bool Exact>
BLOCKQ_ALWAYS_INLINE void e2m1_estimates(const float* x, std::size_t n, const float* rcp, const float* scales,
                                         float zero_below, float* est, float& zero) noexcept {
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu)), zb = _mm256_set1_ps(zero_below);
  __m256 z = _mm256_setzero_ps(), acc[K + 1], r[K + 1], s[K + 1];  // (+1: no empty arrays)
  __m256i near[K + 1];
  for (std::size_t j = 0; j < K; ++j) {
    acc[j] = _mm256_setzero_ps();
    near[j] = _mm256_setzero_si256();
    r[j] = _mm256_set1_ps(rcp[j]);
    s[j] = _mm256_set1_ps(scales[j]);
  }
  for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, no term
    const __m256 y = _mm256_and_ps(v, abs_mask);
    const __m256 y0 = _mm256_and_ps(y, _mm256_cmp_ps(y, zb, _CMP_LT_OQ));
    z = _mm256_fmadd_ps(y0, y0, z);
    for (std::size_t j = 0; j < K; ++j) {
      const __m256 q = _mm256_mul_ps(y, r[j]);
      if constexpr (!Exact) {
        const __m256i b = _mm256_castps_si256(q);
        const __m256i in = _mm256_and_si256(_mm256_cmpgt_epi32(b, splat(0x3DFFFFFFu)), _mm256_cmpgt_epi32(splat(0x40E00001u), b));
        const __m256i low = _mm256_and_si256(_mm256_add_epi32(b, splat(8u)), splat(0x1FFFFFu));
        near[j] = _mm256_or_si256(near[j], _mm256_and_si256(in, _mm256_cmpgt_epi32(splat(16u), low)));
      }
      const __m256 res = _mm256_sub_ps(y, _mm256_mul_ps(e2m1_round_magnitude<T>(q), s[j]));
      acc[j] = _mm256_fmadd_ps(res, res, acc[j]);
    }
  });
  zero = hsum_ps(z);
  for (std::size_t j = 0; j < K; ++j) est[j] = Exact || _mm256_testz_si256(near[j], near[j]) ? hsum_ps(acc[j]) : -1.0f;
}
}  // namespace avx2_detail

// E2M1: the residuals are the kernel's own (up to the sign), squared and summed in float.
// A scale without an exact reciprocal multiplies by fl(1 / s) instead of dividing: the
// product is within 5 float steps of fl(|x| / s), so it gives the same code unless it lies
// within 8 steps of a multiple of 2^21 in the bits (where every E2M1 threshold lies, see
// e2m1_key_bits) in [0.125, 7]; such a candidate is reported unknown (-1), and so is a
// scale whose reciprocal is not a normal float.
namespace avx2_detail {
// The per-call part of block_sse_estimates shared by the x86 tiers: the reciprocals
// (unknown, -1, where fl(1 / s) is not a normal float), then
// f(tie constant, K constant, exact constant, rcp, scales, out) on the K usable scales.
template <class F>
BLOCKQ_ALWAYS_INLINE void run_estimates(const float* scales, std::size_t k, tie_mode ties, float* est, F&& f) {
  float rcp[max_estimates], sc[max_estimates], out[max_estimates];
  std::size_t idx[max_estimates], m = 0;
  bool exact = true;
  for (std::size_t j = 0; j < k; ++j) {
    float r = exact_reciprocal(scales[j]);
    if (r == 0.0f) {
      exact = false;
      r = 1.0f / scales[j];
      if (!(r >= 0x1p-126f && r <= 0x1p126f)) {
        est[j] = -1.0f;
        continue;
      }
    }
    rcp[m] = r;
    sc[m] = scales[j];
    idx[m++] = j;
  }
  with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
    auto run = [&](auto kk) BLOCKQ_LAMBDA_INLINE {
      if (exact)
        f(t, kk, std::true_type{}, rcp, sc, out);
      else
        f(t, kk, std::false_type{}, rcp, sc, out);
    };
    switch (m) {
      case 0: run(std::integral_constant<std::size_t, 0>{}); break;
      case 1: run(std::integral_constant<std::size_t, 1>{}); break;
      case 2: run(std::integral_constant<std::size_t, 2>{}); break;
      case 3: run(std::integral_constant<std::size_t, 3>{}); break;
      default: run(std::integral_constant<std::size_t, 4>{}); break;
    }
  });
  for (std::size_t j = 0; j < m; ++j) est[idx[j]] = out[j];
}
}  // namespace avx2_detail

namespace avx2_detail {
template <tie_mode T, std::size_t K, bool Exact>
void tier8::estimates(const float* x, std::size_t n, const float* rcp, const float* scales, float zero_below,
                      float* est, float& zero) noexcept {
  e2m1_estimates<T, K, Exact>(x, n, rcp, scales, zero_below, est, zero);
}

template <class Element, class V>
void tier_block_sse_estimates(const float* x, std::size_t n, const float* scales, std::size_t k, tie_mode ties,
                              float zero_below, float* est, float& zero) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    run_estimates(scales, k, ties, est, [&](auto t, auto kk, auto ex, const float* rcp, const float* sc,
                                            float* out) BLOCKQ_LAMBDA_INLINE {
      V::template estimates<decltype(t)::value, decltype(kk)::value, decltype(ex)::value>(x, n, rcp, sc, zero_below,
                                                                                           out, zero);
    });
  } else {
    block_sse_estimates<Element>(arch::scalar{}, x, n, scales, k, ties, zero_below, est, zero);
  }
}
}  // namespace avx2_detail

template <class Element>
void block_sse_estimates(arch::avx2, const float* x, std::size_t n, const float* scales, std::size_t k,
                         tie_mode ties, float zero_below, float* est, float& zero) noexcept {
  avx2_detail::tier_block_sse_estimates<Element, avx2_detail::tier8>(x, n, scales, k, ties, zero_below, est, zero);
}

// ----------------------------------------------------------- NVFP4 window estimates
// window_sse_estimates (arch/scalar.hpp) with the scales in the lanes: two vectors of 8
// candidates, one broadcast element at a time, so that a block of 16 scores 16 E4M3
// scales in 32 vector steps and no horizontal sums. Each lane multiplies by fl(1 / s)
// (within 3 float steps of fl(|x| / s)) and is reported unknown (-1) when a product lies
// within 8 steps of a multiple of 2^21 in the bits (where every E2M1 threshold lies) in
// [0.2, 5.5] (below 0.2 and above 5.5 both quotients round to 0 and to 6 under every tie
// rule), or when fl(1 / s) is not a normal float; elsewhere the code, the product by s and
// the residual |x| - d are block_sse's (up to the sign). The squares are summed in float
// by fused multiply-adds, each term through at most n roundings: relative n 2^-24 plus
// n 2^-150 below FLT_MIN, inside estimate_relative_error / estimate_absolute_error; the
// tail bound likewise, 8 lanes of float fused multiply-adds.
namespace avx2_detail {
// E2M1 rounding of a quotient clamped to [0.2, 5.5] (the same codes as the quotient's:
// below 0.25 zero, above 5 six), round to nearest even: the magic-number rounding of
// e2m1_round_magnitude without its clamps.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256 e2m1_round_clamped(__m256 c) noexcept {
  if constexpr (T == tie_mode::even) {
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(_mm256_castps_si256(c), splat(0x7F800000u)), splat(0x3F800000u));
    const __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(e, splat(22u << 23)));
    return _mm256_sub_ps(_mm256_add_ps(c, m), m);
  } else {
    return e2m1_round<T>(c);
  }
}

// One vector of 8 candidates (s, r = fl(1 / s)) over m magnitudes y: the float sums of
// squares (two partial sums, even and odd elements, so that the fused multiply-adds'
// latency overlaps; each term still goes through at most n roundings) and the unsigned
// minimum of (bits + 8) & 0x1FFFF0 of the clamped products (0 exactly where one lies
// within 8 steps of a multiple of 2^21), carried over the block's chunks.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE void e2m1_window8(const float* y, std::size_t m, __m256 s, __m256 r, __m256 (&a)[2],
                                       __m256i& l) noexcept {
  const __m256 lo_clamp = _mm256_set1_ps(0.2f), hi_clamp = _mm256_set1_ps(5.5f);
  auto step = [&](std::size_t i, std::size_t p) BLOCKQ_LAMBDA_INLINE {
    const __m256 yi = _mm256_broadcast_ss(y + i);
    const __m256 c = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(yi, r), lo_clamp), hi_clamp);
    l = _mm256_min_epu32(l, _mm256_and_si256(_mm256_add_epi32(_mm256_castps_si256(c), splat(8u)), splat(0x1FFFF0u)));
    const __m256 res = _mm256_sub_ps(yi, _mm256_mul_ps(e2m1_round_clamped<T>(c), s));
    a[p] = _mm256_fmadd_ps(res, res, a[p]);
  };
  std::size_t i = 0;
  for (; i + 2 <= m; i += 2) {
    step(i, 0);
    step(i + 1, 1);
  }
  if (i < m) step(i, 0);
}

template <tie_mode T, bool Two>
BLOCKQ_ALWAYS_INLINE void e2m1_window_estimates(const float* x, std::size_t n, const float* scales, float half,
                                                float* est, float& tail) noexcept {
  constexpr std::size_t V = Two ? 2 : 1, chunk = 64;
  __m256 s[V], r[V], acc[V][2];
  __m256i low[V];
  for (std::size_t v = 0; v < V; ++v) {
    s[v] = _mm256_loadu_ps(scales + 8 * v);
    r[v] = _mm256_div_ps(_mm256_set1_ps(1.0f), s[v]);
    acc[v][0] = acc[v][1] = _mm256_setzero_ps();
    low[v] = splat(0xFFFFFFFFu);
  }
  // The magnitudes a chunk at a time on the stack (broadcast from memory in the loops
  // over the candidates), and the tail bound on the way.
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu)), h = _mm256_set1_ps(half);
  __m256 z = _mm256_setzero_ps();
  alignas(32) float y[chunk];
  for (std::size_t c0 = 0; c0 < n; c0 += chunk) {
    const std::size_t m = n - c0 < chunk ? n - c0 : chunk;
    for_each8(x + c0, m, [&](__m256 v, std::size_t i, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: 0, no term
      const __m256 a = _mm256_and_ps(v, abs_mask);
      _mm256_store_ps(y + i, a);
      const __m256 t = _mm256_min_ps(a, _mm256_max_ps(_mm256_sub_ps(h, a), _mm256_setzero_ps()));
      z = _mm256_fmadd_ps(t, t, z);
    });
    for (std::size_t v = 0; v < V; ++v) e2m1_window8<T>(y, m, s[v], r[v], acc[v], low[v]);  // (no spills)
  }
  tail = hsum_ps(z);
  for (std::size_t v = 0; v < V; ++v) {
    // not (r >= 2^-126 and r <= 2^126): NaN-safe, true where the lane is unusable
    const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(r[v], _mm256_set1_ps(0x1p-126f), _CMP_GE_OQ),
                                    _mm256_cmp_ps(r[v], _mm256_set1_ps(0x1p126f), _CMP_LE_OQ));
    const __m256 unknown =
        _mm256_or_ps(_mm256_xor_ps(ok, _mm256_castsi256_ps(splat(0xFFFFFFFFu))),
                     _mm256_castsi256_ps(_mm256_cmpeq_epi32(low[v], _mm256_setzero_si256())));
    _mm256_storeu_ps(est + 8 * v,
                     _mm256_blendv_ps(_mm256_add_ps(acc[v][0], acc[v][1]), _mm256_set1_ps(-1.0f), unknown));
  }
}
}  // namespace avx2_detail

template <class Element>
void window_sse_estimates(arch::avx2, const float* x, std::size_t n, const float* scales, std::size_t k,
                          tie_mode ties, float half, float* est, float& tail) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (k == 0 || k > max_window_estimates) {
      window_sse_estimates<Element>(arch::scalar{}, x, n, scales, k, ties, half, est, tail);
      return;
    }
    float sc[max_window_estimates], out[max_window_estimates];
    for (std::size_t j = 0; j < max_window_estimates; ++j) sc[j] = scales[j < k ? j : k - 1];
    avx2_detail::with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
      if (k > 8)
        avx2_detail::e2m1_window_estimates<decltype(t)::value, true>(x, n, sc, half, out, tail);
      else
        avx2_detail::e2m1_window_estimates<decltype(t)::value, false>(x, n, sc, half, out, tail);
    });
    for (std::size_t j = 0; j < k; ++j) est[j] = out[j];
  } else {
    window_sse_estimates<Element>(arch::scalar{}, x, n, scales, k, ties, half, est, tail);
  }
}

namespace avx2_detail {
// The scales of block_sse_window in one pass; they have exact reciprocals. The residual
// |x| - round(|x| r) s is the kernel's x - d up to the sign (E2M1 rounding is odd under
// every tie rule), and sum8x adds its square in block_sse's lanes and order.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE window_sums e2m1_window(const float* x, std::size_t n, const float* rcp, const float* scales,
                                             float zero_below, float clip_above) noexcept {
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu));
  window_sums w;
  {  // The float sums (and amax) in one pass, as e2m1_estimates.
    const __m256 zb = _mm256_set1_ps(zero_below), ca = _mm256_set1_ps(clip_above);
    const __m256 r = _mm256_set1_ps(rcp[2]), s = _mm256_set1_ps(scales[2]);
    __m256 z = _mm256_setzero_ps(), c = _mm256_setzero_ps(), e = _mm256_setzero_ps(), m = _mm256_setzero_ps();
    for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, no term
      const __m256 y = _mm256_and_ps(v, abs_mask);
      m = _mm256_max_ps(m, y);
      const __m256 y0 = _mm256_and_ps(y, _mm256_cmp_ps(y, zb, _CMP_LT_OQ));
      z = _mm256_fmadd_ps(y0, y0, z);
      const __m256 yc = _mm256_and_ps(_mm256_sub_ps(y, ca), _mm256_cmp_ps(y, ca, _CMP_GT_OQ));
      c = _mm256_fmadd_ps(yc, yc, c);
      const __m256 res = _mm256_sub_ps(y, _mm256_mul_ps(e2m1_round_magnitude<T>(_mm256_mul_ps(y, r)), s));
      e = _mm256_fmadd_ps(res, res, e);
    });
    w.zero = hsum_ps(z);
    w.clip = hsum_ps(c);
    w.est = hsum_ps(e);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    w.amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
  }
  // The exact pair in a second pass (with the float sums too, the accumulators would spill).
  const __m256 r0 = _mm256_set1_ps(rcp[0]), s0 = _mm256_set1_ps(scales[0]);
  const __m256 r1 = _mm256_set1_ps(rcp[1]), s1 = _mm256_set1_ps(scales[1]);
  sum8x a0, a1;
  for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, adds +0
    const __m256 y = _mm256_and_ps(v, abs_mask);
    a0.add_sq(_mm256_sub_ps(y, _mm256_mul_ps(e2m1_round_magnitude<T>(_mm256_mul_ps(y, r0)), s0)));
    a1.add_sq(_mm256_sub_ps(y, _mm256_mul_ps(e2m1_round_magnitude<T>(_mm256_mul_ps(y, r1)), s1)));
  });
  w.sse = {a0.total(), a1.total()};
  return w;
}
}  // namespace avx2_detail

template <class Element>
window_sums block_sse_window(arch::avx2, const float* x, std::size_t n, const float* scales, tie_mode ties,
                             float zero_below, float clip_above) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    const float rcp[] = {avx2_detail::exact_reciprocal(scales[0]), avx2_detail::exact_reciprocal(scales[1]),
                         avx2_detail::exact_reciprocal(scales[2])};
    if (rcp[0] != 0.0f && rcp[1] != 0.0f && rcp[2] != 0.0f) {
      switch (ties) {
        case tie_mode::toward_zero:
          return avx2_detail::e2m1_window<tie_mode::toward_zero>(x, n, rcp, scales, zero_below, clip_above);
        case tie_mode::away: return avx2_detail::e2m1_window<tie_mode::away>(x, n, rcp, scales, zero_below, clip_above);
        default: return avx2_detail::e2m1_window<tie_mode::even>(x, n, rcp, scales, zero_below, clip_above);
      }
    }
  }
  return block_sse_window<Element>(arch::scalar{}, x, n, scales, ties, zero_below, clip_above);
}

namespace avx2_detail {
// block_window_estimates in one pass, in the units of the scale: q = |x| / s (an exact
// product), q / 2 the quotient at 2 s (exact too), and q_j - round(q_j) the kernel's residual
// at 2^j s divided by 2^j s. At 4 s the quotient q / 4 is below 2 when q < 8, where the E2M1
// values are the multiples of 1/2 and even codes are even multiples: the residual in units
// of 2 s (its square a quarter in units of 4 s) is q / 2 - rint(q / 2) (ties to even; toward zero ceil(q / 2 - 1/2), exact there);
// ties away take the general rounding. A block with amax >= 8 s reports 4 s unknown (-1).
// The four sums reduce together, pairwise (n / 8 + 3 roundings).
// (Given: amax = block_amax(x, n) is the caller's `given`, not found again.)
template <tie_mode T, bool Given = false>
BLOCKQ_ALWAYS_INLINE window_estimates e2m1_window_estimates(const float* x, std::size_t n, float rcp, float zero_below,
                                                            float clip_above, float given = 0.0f) noexcept {
  constexpr bool find_amax = !Given;
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu)), r = _mm256_set1_ps(rcp);
  const __m256 zb = _mm256_set1_ps(zero_below), ca = _mm256_set1_ps(clip_above), half = _mm256_set1_ps(0.5f);
  __m256 e0 = _mm256_setzero_ps(), e1 = e0, e2 = e0, z = e0, c = e0, m = e0;
  for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: q = 0, no term
    const __m256 y = _mm256_and_ps(v, abs_mask);
    if constexpr (find_amax) m = _mm256_max_ps(m, y);
    const __m256 q0 = _mm256_mul_ps(y, r), q1 = _mm256_mul_ps(q0, half);
    const __m256 y0 = _mm256_and_ps(q0, _mm256_cmp_ps(q0, zb, _CMP_LT_OQ));
    z = _mm256_fmadd_ps(y0, y0, z);
    const __m256 yc = _mm256_and_ps(_mm256_sub_ps(q0, ca), _mm256_cmp_ps(q0, ca, _CMP_GT_OQ));
    c = _mm256_fmadd_ps(yc, yc, c);
    const __m256 d0 = _mm256_sub_ps(q0, e2m1_round_magnitude<T>(q0));
    const __m256 d1 = _mm256_sub_ps(q1, e2m1_round_magnitude<T>(q1));
    __m256 d2;
    if constexpr (T == tie_mode::even)
      d2 = _mm256_sub_ps(q1, _mm256_round_ps(q1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    else if constexpr (T == tie_mode::toward_zero)
      d2 = _mm256_sub_ps(q1, _mm256_round_ps(_mm256_sub_ps(q1, half), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC));
    else {  // 2 (q / 4 - round(q / 4)), exact
      const __m256 q2 = _mm256_mul_ps(q1, half);
      d2 = _mm256_add_ps(_mm256_sub_ps(q2, e2m1_round_magnitude<T>(q2)), _mm256_sub_ps(q2, e2m1_round_magnitude<T>(q2)));
    }
    e0 = _mm256_fmadd_ps(d0, d0, e0);
    e1 = _mm256_fmadd_ps(d1, d1, e1);
    e2 = _mm256_fmadd_ps(d2, d2, e2);
  });
  // Lanes pairwise (hadd), then the halves: {e0, e1, e2, z} in one vector.
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(e0, e1), _mm256_hadd_ps(e2, z));
  const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  window_estimates w;
  if constexpr (find_amax) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    w.amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
  } else {
    w.amax = given;
  }
  const __m128 t2 = _mm_movehl_ps(t, t);
  // (4 s's residuals are in units of 2 s: a quarter in units of 4 s, exactly.)
  w.est = {_mm_cvtss_f32(t), _mm_cvtss_f32(_mm_movehdup_ps(t)), w.amax * rcp < 8.0f ? _mm_cvtss_f32(t2) * 0.25f : -1.0f};
  w.zero = _mm_cvtss_f32(_mm_movehdup_ps(t2));
  w.clip = hsum_ps(c);
  return w;
}
}  // namespace avx2_detail

namespace avx2_detail {
// Both overloads below: the E2M1 kernel for a power-of-two scale, else the scalar one;
// Given: amax is the caller's (block_amax(x, n)), not found again.
template <class Element, bool Given>
window_estimates window_estimates_of(const float* x, std::size_t n, float scale, tie_mode ties, float zero_below,
                                     float clip_above, float amax) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    // 1 / 2^k from the bits (no division): exponent field e becomes 254 - e, for e in 1..253.
    const std::uint32_t u = std::bit_cast<std::uint32_t>(scale);
    if ((u & 0x807FFFFFu) == 0 && u - 0x00800000u < 0x7F000000u - 0x00800000u) {
      const float rcp = std::bit_cast<float>(0x7F000000u - u);
      switch (ties) {
        case tie_mode::toward_zero:
          return e2m1_window_estimates<tie_mode::toward_zero, Given>(x, n, rcp, zero_below, clip_above, amax);
        case tie_mode::away: return e2m1_window_estimates<tie_mode::away, Given>(x, n, rcp, zero_below, clip_above, amax);
        default: return e2m1_window_estimates<tie_mode::even, Given>(x, n, rcp, zero_below, clip_above, amax);
      }
    }
  }
  if constexpr (Given)
    return block_window_estimates<Element>(arch::scalar{}, x, n, scale, ties, zero_below, clip_above, amax);
  else
    return block_window_estimates<Element>(arch::scalar{}, x, n, scale, ties, zero_below, clip_above);
}
}  // namespace avx2_detail

template <class Element>
window_estimates block_window_estimates(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties,
                                        float zero_below, float clip_above) noexcept {
  return avx2_detail::window_estimates_of<Element, false>(x, n, scale, ties, zero_below, clip_above, 0.0f);
}

// As above with amax = block_amax(x, n) given by the caller (not found again).
template <class Element>
window_estimates block_window_estimates(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties,
                                        float zero_below, float clip_above, float amax) noexcept {
  return avx2_detail::window_estimates_of<Element, true>(x, n, scale, ties, zero_below, clip_above, amax);
}

// ------------------------------------------------------------ lsq search step

// One step of the lsq descents (search/refit.hpp) at (scale, min) in one pass: the codes
// (encode_int), the kernel error (block_sse_int, or block_wsse_int when w is given) and the
// refit sums sq, sqq, sxq of those codes (int_refit_sums; sums.sw and sums.sx, which do not
// depend on the codes, are left as they are), each with the arithmetic and lane order of its
// own kernel. Blocks whose length is not a multiple of 8, a zero scale, and any overflow of
// x - min or of a level fall back to the three kernels.
namespace avx2_detail {
// Error false: the codes and sums only (error left as it is), for the lsq starts, which are not scored.
template <bool Weighted, bool Error = true>
BLOCKQ_ALWAYS_INLINE bool int_lsq_step8(const float* x, const float* w, std::size_t n, float scale, float min,
                                        int_format fmt, std::uint8_t* codes, refit_sums& sums, double& error) noexcept {
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  [[maybe_unused]] const __m256 s = _mm256_set1_ps(scale), mn = _mm256_set1_ps(min);
  const __m256i mask = _mm256_set1_epi32(fmt.mask());
  sum8x acc, sq, sqq, sxq;
  // Unweighted, every partial sum of q and of q^2 is an integer below 2^53, so the double sums
  // are exact in any order: lane sums in int32 (n <= max_int_sums_n keeps them below 2^31).
  __m256i iq = _mm256_setzero_si256(), iqq = _mm256_setzero_si256();
  // Lanes where x - min or a level is +-Inf, gathered over the block and tested once.
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 overflow = _mm256_setzero_ps();
  auto note_inf = [&](__m256 v) BLOCKQ_LAMBDA_INLINE {
    overflow = _mm256_or_ps(overflow, _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), inf, _CMP_EQ_OQ));
  };
  auto add = [](sum8x& a, __m256d lo, __m256d hi) BLOCKQ_LAMBDA_INLINE {
    a.lo = _mm256_add_pd(a.lo, lo);
    a.hi = _mm256_add_pd(a.hi, hi);
  };
  with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
    for (std::size_t i = 0; i < n; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      const __m256 d = _mm256_sub_ps(v, mn);
      const __m256i qi = int_round<true>(div(d), qmin, qmax);  // NaN: q 0, whose code is 0 & mask as encode_int's
      const __m256 q = _mm256_cvtepi32_ps(qi);
      if constexpr (Error) {
        const __m256 level = _mm256_add_ps(_mm256_mul_ps(q, s), mn);
        note_inf(d);
        note_inf(level);
        const __m256 r = _mm256_sub_ps(v, level);
        if constexpr (Weighted)
          acc.add_wsq(_mm256_loadu_ps(w + i), r);
        else
          acc.add_sq(r);
      } else {
        note_inf(d);
      }
      const __m256i c = _mm256_and_si256(qi, mask);
      const __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(c16, c16));
      const __m256d q0 = _mm256_cvtps_pd(_mm256_castps256_ps128(q)), q1 = _mm256_cvtps_pd(_mm256_extractf128_ps(q, 1));
      const __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      if constexpr (Weighted) {
        const __m256 wf = _mm256_loadu_ps(w + i);
        const __m256d w0 = _mm256_cvtps_pd(_mm256_castps256_ps128(wf)), w1 = _mm256_cvtps_pd(_mm256_extractf128_ps(wf, 1));
        const __m256d wq0 = _mm256_mul_pd(w0, q0), wq1 = _mm256_mul_pd(w1, q1);
        const __m256d wx0 = _mm256_mul_pd(w0, x0), wx1 = _mm256_mul_pd(w1, x1);
        add(sq, wq0, wq1);
        add(sqq, _mm256_mul_pd(wq0, q0), _mm256_mul_pd(wq1, q1));
        add(sxq, _mm256_mul_pd(wx0, q0), _mm256_mul_pd(wx1, q1));
      } else {  // w = 1: the products by w are exact and left out; sq, sqq in integers (below)
        iq = _mm256_add_epi32(iq, qi);
        iqq = _mm256_add_epi32(iqq, _mm256_mullo_epi32(qi, qi));
        add(sxq, _mm256_mul_pd(x0, q0), _mm256_mul_pd(x1, q1));
      }
    }
  });
  if (!_mm256_testz_ps(overflow, overflow)) [[unlikely]] return false;
  if constexpr (Weighted) {
    sums.sq = sq.total();
    sums.sqq = sqq.total();
  } else {
    // The eight int32 lanes summed in int64 (exact; their total may pass 2^31).
    auto total64 = [](__m256i v) BLOCKQ_LAMBDA_INLINE {
      const __m256i t = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                         _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
      const __m128i u = _mm_add_epi64(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
      return _mm_cvtsi128_si64(_mm_add_epi64(u, _mm_unpackhi_epi64(u, u)));
    };
    sums.sq = static_cast<double>(total64(iq));
    sums.sqq = static_cast<double>(total64(iqq));
  }
  sums.sxq = sxq.total();
  if constexpr (Error) error = acc.total();
  return true;
}
}  // namespace avx2_detail

inline double int_lsq_step(arch::avx2, const float* x, const float* w, std::size_t n, float scale, float min,
                           int_format fmt, std::uint8_t* codes, refit_sums& sums) noexcept {
  double error = 0.0;
  constexpr std::size_t max_int_sums_n = std::size_t{1} << 16;  // a lane: 2^13 elements * 255^2 < 2^31
  if (scale != 0.0f && n % 8 == 0 && (w || n <= max_int_sums_n) &&
      (w ? avx2_detail::int_lsq_step8<true>(x, w, n, scale, min, fmt, codes, sums, error)
         : avx2_detail::int_lsq_step8<false>(x, w, n, scale, min, fmt, codes, sums, error)))
    return error;
  return int_lsq_step_of_kernels(arch::avx2{}, x, w, n, scale, min, fmt, codes, sums);
}


}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX2
