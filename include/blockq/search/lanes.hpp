// SPDX-License-Identifier: Apache-2.0
// The continuous sweep of rule `mse` (FP4 with a float32 scale; symmetric
// integer codes of 2 to 4 bits) for several blocks at once: each block is a
// lane of a vector of doubles, and every lane walks its own breakpoints in
// step with the others.
//
// API
//   void continuous_element_mse_lanes<Element>(Arch, span<const lane_block> blocks, tie_mode ties,
//                                              scale_min_result* out);
//     blocks: any number, each of at most lane_block_max elements, all
//     weighted or all unweighted, each with its start (and the start's kernel
//     error when the caller has it); they are searched in groups of the tier's
//     width (8 lanes with AVX-512, 4 with AVX2, 2 otherwise). out[l] is what
//     continuous_element_mse defines for block l: the best float scale, never
//     worse than the block's start under the quantizer's kernel. Blocks the
//     search leaves alone (empty, a start that is not finite, a zero error)
//     keep their start. A lane's result does not depend on the other lanes
//     (a lane that has stopped is masked out of every later step), so the
//     width does not change it either.
//   bool int_lanes_take(int_format fmt, size_t block);
//   void continuous_int_mse_lanes(Arch, span<const lane_block> blocks, int_format fmt,
//                                 scale_min_result* out);
//     Symmetric integer codes of 2 to 4 bits, blocks of at most lane_block_max
//     (int_lanes_take): continuous_int_mse's result for each block (both signs
//     of the scale, start_min 0), a lane a block.
//
// Method (the sweep of continuous.hpp, reorganised for lanes). Each lane
// sorts its |x| in descending order (a bitonic network across the lanes), so
// for each threshold t_k the elements cross it, as the scale falls, in that
// order: level k's next breakpoint (its head) is |x|_(c_k) / t_k, c_k the
// count of elements already past it, and the lane's next breakpoint is the
// largest of the L heads. No breakpoint is gathered or sorted. The lanes
// step together, each from its own breakpoint to its own next one, with
// running sums A = Σ w |x| g and B = Σ w g² of the codes between them; each
// lane stops below its own bound, the vector when every lane has. The only
// branches on the data are the loop's end and the rare new minimum. The
// breakpoint after each head is loaded a step ahead, so that the next
// maximum never waits on a gather; with AVX-512 the walk runs in mask
// registers with the L counts as bytes of one vector (walk8 below).
//
// Integer codes (int_grid): a lane sweeps both signs of the scale (its two
// sides) at once. Its rows hold x itself, sorted by |x|; levels 1..qmax are
// every element's, and level -qmin = qmax + 1 only the elements of one sign
// reach (the negative ones under a positive scale). That level walks the same
// rows, and each of its breakpoints moves only the side of its element's sign
// (known a step ahead). Each side keeps its own A, B, minima and bounds, and
// checks its interval and its bounds only at the breakpoints that move it:
// its calls are those of a sweep of that side alone, in the same order.
//
// Which intervals count. E(s) is continuous with concave kinks (see
// continuous.hpp), so every local minimum is a stationary point A / B inside
// its interval, and only those are kept: the best four below the budget (the
// start's kernel error, raised by 1e-5 of it) and below the score cut of the
// best so far (score_cut: a minimum above it cannot score below the best's
// float), which are then scored in float as in continuous_element_mse. The
// cut only falls as the best does, so the minima kept and scored are those of
// keeping the best four and cutting at the end. The walk is bounded as the single sweep's:
// above hi = |x|_(p) / t_1 the elements from p on (the least ones, whose
// energy exceeds the budget) all round to zero; below lo = max (|x| -
// sqrt(budget / w)) / g_top (weighted) an element's clipping alone exceeds
// the budget, and a lane also stops as soon as its largest element's clipping
// w_0 (|x|_0 - g_top s)² exceeds its best minimum so far. Breakpoints are
// computed as |x| · (1 / t_k) (one rounding off the exact quotient): at a
// breakpoint the element is equally far from both levels, so codes that
// differ only there give the same error.
//
// The walk steps every lane whose breakpoint is positive, on or not (a lane
// that has stopped records nothing), so the step never waits on the bounds.
//
// Floating point. Every tier runs the same IEEE operations in the same order
// on each lane (the project builds with -ffp-contract=off), so every tier
// gives the same bits; arch_test checks them. Compilers without GNU vector
// extensions take continuous_element_mse block by block.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/formats/integer.hpp"
#include "blockq/formats/tie_mode.hpp"
#include "blockq/kernels.hpp"
#include "blockq/search/continuous.hpp"
#include "blockq/search/refit.hpp"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

BLOCKQ_BEGIN_NAMESPACE
namespace search {

// The blocks a quantizer hands to one call (a multiple of every tier's width), and the
// largest block the lane sweep takes.
inline constexpr std::size_t sweep_lanes = 8;
inline constexpr std::size_t lane_block_max = 32;

// One block of a lane sweep: n elements at x (and weights at w, or null), its start, and the
// start's kernel error when the caller has it (else negative: the sweep computes it).
struct lane_block {
  const float* x = nullptr;
  const float* w = nullptr;
  std::size_t n = 0;
  float start = 0.0f;
  double start_error = -1.0;
};

#if defined(__GNUC__) || defined(__clang__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // the vectors never cross a call: every helper is inlined
#endif

namespace lanes {

// W lanes of doubles and their masks (all bits set: true). (typedef: GCC 12 drops the
// attribute of a dependent alias declaration.)
template <std::size_t W>
struct of {
  typedef double vd __attribute__((vector_size(W * sizeof(double))));
  typedef std::int64_t vi __attribute__((vector_size(W * sizeof(std::int64_t))));
};

// The lanes of a tier: one vector register of doubles (two for the scalar reference).
template <class Arch>
constexpr std::size_t width() noexcept {
  if constexpr (std::is_base_of_v<arch::avx512, Arch>) return 8;
  else if constexpr (std::is_base_of_v<arch::avx2, Arch>) return 4;
  else return 2;
}

template <class VI>
BLOCKQ_ALWAYS_INLINE bool any(const VI& m) noexcept {
#if defined(__AVX512F__)
  if constexpr (sizeof(VI) == 64) return _mm512_test_epi64_mask((__m512i)m, (__m512i)m) != 0;
#endif
#if defined(__AVX__)
  if constexpr (sizeof(VI) == 32) return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#endif
  std::int64_t r = 0;
  for (std::size_t l = 0; l < sizeof(VI) / sizeof(std::int64_t); ++l) r |= m[l];
  return r != 0;
}

// rows[idx[l]][l] for each lane l.
template <class VD, class VI>
BLOCKQ_ALWAYS_INLINE void gather(VD& out, const VD* rows, const VI& idx) noexcept {
  constexpr std::size_t W = sizeof(VD) / sizeof(double);
#if defined(__AVX512F__)
  if constexpr (W == 8) {
    const VI at = idx * 8 + VI{0, 1, 2, 3, 4, 5, 6, 7};
    out = (VD)_mm512_i64gather_pd((__m512i)at, reinterpret_cast<const double*>(rows), 8);
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (W == 4) {
    const VI at = idx * 4 + VI{0, 1, 2, 3};
    out = (VD)_mm256_i64gather_pd(reinterpret_cast<const double*>(rows), (__m256i)at, 8);
    return;
  }
#endif
  for (std::size_t l = 0; l < W; ++l) out[l] = rows[idx[l]][l];
}

// f(integral_constant<size_t, k>) for k = 0 .. N-1, unrolled (arrays indexed by it stay in registers).
template <std::size_t N, class F>
BLOCKQ_ALWAYS_INLINE void unrolled(F&& f) {
  [&]<std::size_t... K>(std::index_sequence<K...>) BLOCKQ_LAMBDA_INLINE { (f(std::integral_constant<std::size_t, K>{}), ...); }
  (std::make_index_sequence<N>{});
}

// |v| of each lane (the sign bit cleared).
template <class VD>
BLOCKQ_ALWAYS_INLINE VD magnitude(const VD& v) noexcept {
  using VI = decltype(v < v);
  return (VD)((VI)v & std::numeric_limits<std::int64_t>::max());
}

// A grid of levels g_0 = 0 < g_1 < ... < g_L, and the sides (signs of the scale) a lane
// sweeps. Levels 1..Lc are every element's. Two's-complement integers have one level more
// for the elements of one sign, which depends on the sign of the scale: level L = Lc + 1,
// which a lane walks for both sides at once (side 0, a positive scale: the negative
// elements reach it; side 1, a negative scale: the others).
// score_slack: see score_cut.
template <class Element>
struct element_grid {
  static constexpr std::size_t L = Element::max_code, Lc = L, sides = 1;
  static constexpr double score_slack = 0x1p-20;
  static double level(std::size_t k) noexcept { return element_levels<Element>()[k]; }
};
template <std::size_t Q>
struct int_grid {
  static constexpr std::size_t L = Q + 1, Lc = Q, sides = 2;
  static constexpr double score_slack = 0x1p-18;
  static double level(std::size_t k) noexcept { return static_cast<double>(k); }
};

#if defined(__AVX512F__)
// The walk of sweep below for 8 lanes in AVX-512 registers, its operations one for one
// (the masks in mask registers; each level's count a byte of one vector, so the chosen
// level's count, step and constants are a shift and a permutation away).
template <std::size_t L, std::size_t S, bool Weighted, class VD, class VI>
BLOCKQ_ALWAYS_INLINE void walk8(double score_slack, const double* y, const double* w, const double* r,
                                const double* dg, const double* dg2, const VD* top_, const VD& c_, const VD& lo_,
                                const VD& y0_, const VD& w0_, const VI& act_, const VI* cnt, const VD* ev_, const VD* a_, const VD* b_, const VD& upper_,
                                VD (*es_)[4], VD (*ss_)[4]) noexcept {
  auto pd = [](const VD& v) BLOCKQ_LAMBDA_INLINE { return (__m512d)v; };
  const __m512d c = pd(c_), lo = pd(lo_), y0 = pd(y0_), w0 = pd(w0_), zero = _mm512_setzero_pd();
  __m512d a[S], b[S], upper[S], top[S], es[S][4], ss[S][4], ev[L], evn[L];
  __mmask8 on[S];
  for (std::size_t s = 0; s < S; ++s) {
    a[s] = pd(a_[s]), b[s] = pd(b_[s]), upper[s] = pd(upper_), top[s] = pd(top_[s]);
    on[s] = _mm512_test_epi64_mask((__m512i)act_, (__m512i)act_);
    for (std::size_t j = 0; j < 4; ++j) es[s][j] = pd(es_[s][j]), ss[s][j] = pd(ss_[s][j]);
  }
  alignas(64) double rt[8] = {}, dgt[8] = {}, dg2t[8] = {};
  __m512i packed = _mm512_setzero_si512();  // level k's count in byte k - 1
  for (std::size_t k = 1; k <= L; ++k) {
    rt[k - 1] = r[k], dgt[k - 1] = dg[k], dg2t[k - 1] = dg2[k];
    ev[k - 1] = pd(ev_[k]);
    packed = _mm512_or_si512(packed, _mm512_slli_epi64((__m512i)cnt[k], static_cast<unsigned>(8 * (k - 1))));
  }
  const __m512d rtab = _mm512_load_pd(rt), dgtab = _mm512_load_pd(dgt), dg2tab = _mm512_load_pd(dg2t);
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), byte = _mm512_set1_epi64(0xff),
                one = _mm512_set1_epi64(1), two_rows = _mm512_set1_epi64(16);
  auto mag = [](__m512d v) BLOCKQ_LAMBDA_INLINE {
    if constexpr (S == 1) return v;  // the rows hold |x|
    else return _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(v), _mm512_set1_epi64(0x7fffffffffffffff)));
  };
  // The breakpoint after each head, gathered a step ahead so that the walk's next maximum
  // never waits on a gather.
  unrolled<L>([&](auto k) BLOCKQ_LAMBDA_INLINE {
    const __m512i row = _mm512_add_epi64(_mm512_slli_epi64((__m512i)cnt[k + 1], 3), lane);
    evn[k] = _mm512_mul_pd(mag(_mm512_i64gather_pd(_mm512_add_epi64(row, _mm512_set1_epi64(8)), y, 8)),
                           _mm512_set1_pd(r[k + 1]));
  });
  // S == 2: whether the long level's head element is negative, and the one after it (so that
  // the sides a step moves never wait on a gather).
  __mmask8 lneg = 0, lnegn = 0;
  auto negative = [](__m512d v) BLOCKQ_LAMBDA_INLINE {
    return _mm512_cmplt_epi64_mask(_mm512_castpd_si512(v), _mm512_setzero_si512());
  };
  if constexpr (S == 2) {
    const __m512i row = _mm512_add_epi64(_mm512_slli_epi64((__m512i)cnt[L], 3), lane);
    lneg = negative(_mm512_i64gather_pd(row, y, 8));
    lnegn = negative(_mm512_i64gather_pd(_mm512_add_epi64(row, _mm512_set1_epi64(8)), y, 8));
  }
  const __m512d two = _mm512_set1_pd(2.0), slack = _mm512_set1_pd(1.0 + 1e-12);
  const __m512d cut_e = _mm512_set1_pd(1.0 + score_slack), cut_c = _mm512_mul_pd(_mm512_set1_pd(4.0 * score_slack), c),
                tiny = _mm512_set1_pd(0x1p-149), huge = _mm512_set1_pd(0x1p127),
                inf = _mm512_set1_pd(std::numeric_limits<double>::infinity());
  for (;;) {
    __m512d m;  // the largest head, by a tree
    if constexpr (L == 7) {
      m = _mm512_max_pd(_mm512_max_pd(_mm512_max_pd(ev[0], ev[1]), _mm512_max_pd(ev[2], ev[3])),
                        _mm512_max_pd(_mm512_max_pd(ev[4], ev[5]), ev[6]));
    } else if constexpr (L == 8) {
      m = _mm512_max_pd(_mm512_max_pd(_mm512_max_pd(ev[0], ev[1]), _mm512_max_pd(ev[2], ev[3])),
                        _mm512_max_pd(_mm512_max_pd(ev[4], ev[5]), _mm512_max_pd(ev[6], ev[7])));
    } else {
      m = ev[0];
      unrolled<L - 1>([&](auto k) BLOCKQ_LAMBDA_INLINE { m = _mm512_max_pd(ev[k + 1], m); });
    }
    __m512i kid = _mm512_setzero_si512();  // the first level whose head is at m, less one
    unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE {
      constexpr std::size_t k = L - 1 - j;  // from the last level down: the first one wins
      kid = _mm512_mask_mov_epi64(kid, _mm512_cmp_pd_mask(ev[k], m, _CMP_EQ_OQ),
                                  _mm512_set1_epi64(static_cast<long long>(k)));
    });
    // The lanes step while their breakpoints are positive, on or not (a lane that is off
    // records nothing): the step never waits on the bounds.
    const __mmask8 walk = _mm512_cmp_pd_mask(m, zero, _CMP_GT_OQ);
    const __m512i sh = _mm512_slli_epi64(kid, 3);
    const __m512i at = _mm512_and_si512(_mm512_srlv_epi64(packed, sh), byte);
    const __m512i row = _mm512_add_epi64(_mm512_slli_epi64(at, 3), lane);
    // The sides this breakpoint moves: every level's but the long one, which moves the side of
    // its element's sign; the last one (m <= 0) ends both.
    __mmask8 mv[S];
    if constexpr (S == 1) {
      mv[0] = on[0];
    } else {
      const __mmask8 lng = _mm512_cmpeq_epi64_mask(kid, _mm512_set1_epi64(static_cast<long long>(L - 1)));
      const __mmask8 end = static_cast<__mmask8>(~walk);
      mv[0] = on[0] & static_cast<__mmask8>(~lng | lneg | end);
      mv[1] = on[1] & static_cast<__mmask8>(~lng | ~lneg | end);
    }
    // The score cut of the best minimum of both sides (score_cut; infinite unless its scale
    // is well inside the floats): a minimum above it would never be scored.
    __m512d e0 = es[0][0], s0 = ss[0][0];
    if constexpr (S == 2) {
      const __mmask8 other = _mm512_cmp_pd_mask(es[1][0], es[0][0], _CMP_LT_OQ);
      e0 = _mm512_mask_mov_pd(e0, other, es[1][0]);
      s0 = _mm512_mask_mov_pd(s0, other, ss[1][0]);
    }
    const __mmask8 usable = _mm512_cmp_pd_mask(s0, tiny, _CMP_GT_OQ) & _mm512_cmp_pd_mask(s0, huge, _CMP_LT_OQ);
    const __m512d cut = _mm512_mask_add_pd(inf, usable, _mm512_mul_pd(e0, cut_e), cut_c);
    for (std::size_t s = 0; s < S; ++s) {
      // The interval [m, upper] of the side's current codes: its stationary point A / B when
      // inside and below both the fourth best and the cut (C - A²/B < e, without the
      // division; B = 0 fails it).
      const __m512d lim = _mm512_min_pd(es[s][3], cut);
      __mmask8 pre = _mm512_mask_cmp_pd_mask(mv[s], a[s], _mm512_mul_pd(m, b[s]), _CMP_GE_OQ);
      pre = _mm512_mask_cmp_pd_mask(pre, a[s], _mm512_mul_pd(upper[s], b[s]), _CMP_LE_OQ);
      pre = _mm512_mask_cmp_pd_mask(pre, _mm512_sub_pd(_mm512_mul_pd(c, b[s]), _mm512_mul_pd(a[s], a[s])),
                                    _mm512_mul_pd(lim, b[s]), _CMP_LT_OQ);
      if (pre) [[unlikely]] {
        const __m512d sc = _mm512_div_pd(a[s], b[s]);
        const __m512d e = _mm512_add_pd(_mm512_sub_pd(c, _mm512_mul_pd(_mm512_mul_pd(two, sc), a[s])),
                                        _mm512_mul_pd(_mm512_mul_pd(sc, sc), b[s]));
        const __mmask8 in = _mm512_mask_cmp_pd_mask(pre, e, lim, _CMP_LT_OQ);
#pragma GCC unroll 4
        for (std::size_t j = 3; j > 0; --j) {
          const __mmask8 up = _mm512_mask_cmp_pd_mask(in, e, es[s][j - 1], _CMP_LT_OQ);
          const __mmask8 here = _mm512_mask_cmp_pd_mask(in & ~up, e, es[s][j], _CMP_LT_OQ);
          es[s][j] = _mm512_mask_mov_pd(_mm512_mask_mov_pd(es[s][j], here, e), up, es[s][j - 1]);
          ss[s][j] = _mm512_mask_mov_pd(_mm512_mask_mov_pd(ss[s][j], here, sc), up, ss[s][j - 1]);
        }
        const __mmask8 first = _mm512_mask_cmp_pd_mask(in, e, es[s][0], _CMP_LT_OQ);
        es[s][0] = _mm512_mask_mov_pd(es[s][0], first, e);
        ss[s][0] = _mm512_mask_mov_pd(ss[s][0], first, sc);
      }
      // Below m the largest element alone is clipped by more than the side's best minimum:
      // its walk ends.
      const __m512d clip = _mm512_sub_pd(y0, _mm512_mul_pd(top[s], m));
      const __mmask8 clipped = _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(clip, zero, _CMP_GT_OQ),
                                                       _mm512_mul_pd(_mm512_mul_pd(clip, clip), w0),
                                                       _mm512_mul_pd(es[s][0], slack), _CMP_GT_OQ);
      const __mmask8 keep = _mm512_cmp_pd_mask(m, lo, _CMP_GE_OQ) & walk & static_cast<__mmask8>(~clipped);
      on[s] &= static_cast<__mmask8>(~mv[s] | keep);
    }
    if (!(S == 1 ? on[0] : on[0] | on[S - 1])) break;
    // Step: the level's head moves its element up (for the sides the breakpoint moves that are
    // on), and on to the breakpoint after it, and that one to the next element's.
    packed = _mm512_mask_add_epi64(packed, walk, packed, _mm512_sllv_epi64(one, sh));
    const __m512d dgs = _mm512_permutexvar_pd(kid, dgtab), dg2s = _mm512_permutexvar_pd(kid, dg2tab);
    const __m512d ym = mag(_mm512_mask_i64gather_pd(zero, walk, row, y, 8));
    __m512d da, db;
    if constexpr (Weighted) {
      const __m512d wc = _mm512_mask_i64gather_pd(zero, walk, row, w, 8);
      da = _mm512_mul_pd(_mm512_mul_pd(wc, ym), dgs);
      db = _mm512_mul_pd(wc, dg2s);
    } else {
      da = _mm512_mul_pd(ym, dgs);
      db = dg2s;
    }
    for (std::size_t s = 0; s < S; ++s) {
      const __mmask8 moved = mv[s] & on[s];
      a[s] = _mm512_mask_add_pd(a[s], moved, a[s], da);
      b[s] = _mm512_mask_add_pd(b[s], moved, b[s], db);
      upper[s] = _mm512_mask_mov_pd(upper[s], moved, m);
    }
    const __m512d next = _mm512_mask_i64gather_pd(zero, walk, _mm512_add_epi64(row, two_rows), y, 8);
    const __m512d after = _mm512_mul_pd(mag(next), _mm512_permutexvar_pd(kid, rtab));
    if constexpr (S == 2) {
      const __mmask8 sel = walk & _mm512_cmpeq_epi64_mask(kid, _mm512_set1_epi64(static_cast<long long>(L - 1)));
      lneg = (lneg & static_cast<__mmask8>(~sel)) | (lnegn & sel);
      lnegn = (lnegn & static_cast<__mmask8>(~sel)) | (negative(next) & sel);
    }
    unrolled<L>([&](auto k) BLOCKQ_LAMBDA_INLINE {
      const __mmask8 sel = walk & _mm512_cmpeq_epi64_mask(kid, _mm512_set1_epi64(static_cast<long long>(k())));
      ev[k] = _mm512_mask_mov_pd(ev[k], sel, evn[k]);
      evn[k] = _mm512_mask_mov_pd(evn[k], sel, after);
    });
  }
  for (std::size_t s = 0; s < S; ++s)
    for (std::size_t j = 0; j < 4; ++j) es_[s][j] = (VD)es[s][j], ss_[s][j] = (VD)ss[s][j];
}
#endif

// The sweep of the lanes whose mask is set: y (sorted by |y|, descending: |x| for an element
// grid, x for an integer one) and w (their weights, Weighted only) in rows 0..rows-1, rows
// `rows` and `rows` + 1 the sentinels (0: at or below every breakpoint); c = Σ w y²; bud the
// budget. es[s] / ss[s]: the best four minima of side s a lane (errors ascending, scales;
// unfilled: error bud, scale 0).
template <class Grid, bool Weighted, class VD, class VI>
void sweep(const VD* y, const VD* w, std::size_t rows, const VD& c, const VD& bud, VI act, VD (*es)[4],
           VD (*ss)[4]) noexcept {
  using vd = VD;
  using vi = VI;
  constexpr std::size_t W = sizeof(VD) / sizeof(double);
  constexpr std::size_t L = Grid::L, Lc = Grid::Lc, S = Grid::sides;  // levels above zero: all, every element's
  static_assert(S == 1 ? L == Lc : L == Lc + 1);
  double r[L + 1], dg[L + 1], dg2[L + 1];  // 1 / t_k, Δg, Δ(g²) of level k
  for (std::size_t k = 1; k <= L; ++k) {
    const double g0 = Grid::level(k - 1), g1 = Grid::level(k);
    r[k] = 1.0 / (0.5 * (g0 + g1));
    dg[k] = g1 - g0;
    dg2[k] = g1 * g1 - g0 * g0;
  }
  const double g_top = Grid::level(L);
  auto mag = [](const vd& v) BLOCKQ_LAMBDA_INLINE {
    if constexpr (S == 1) return v;  // the rows hold |x|
    else return magnitude(v);
  };
  const vd y0 = mag(y[0]), w0 = Weighted ? w[0] : vd{} + 1.0;
  // Each side's top level of the largest element (of an equal one of the side's sign, whose
  // bound is weaker).
  vd top0[S];
  if constexpr (S == 1) {
    top0[0] = vd{} + g_top;
  } else {
    vi neg_top = vi{}, pos_top = vi{};
    for (std::size_t j = 0; j < rows; ++j) {
      const vi largest = mag(y[j]) == y0, neg = (vi)y[j] < 0;  // the sign bit, -0 included
      neg_top |= largest & neg;
      pos_top |= largest & ~neg;
    }
    top0[0] = neg_top ? vd{} + g_top : vd{} + Grid::level(Lc);
    top0[1] = pos_top ? vd{} + g_top : vd{} + Grid::level(Lc);
  }

  // lo: below it some element's clipping alone exceeds the budget (weighted: any element;
  // the largest one's bound, the only one without weights, is tested as the walk goes).
  vd lo = vd{};
  if constexpr (Weighted && S == 1) {
    for (std::size_t j = 0; j < rows; ++j) {
      vd q = bud / w[j];
      for (std::size_t l = 0; l < W; ++l) q[l] = std::sqrt(q[l]);
      const vd v = (y[j] - q) / g_top;
      lo = ((w[j] > 0.0) & (v > lo)) ? v : lo;
    }
  }
  // hi: above |y_p| / t_1 the elements p.. round to zero, and carry more than the budget.
  vd hi = y0 * r[1];
  {
    vd tail = vd{};
    vi found = vi{};
    for (std::size_t j = rows; j-- > 0;) {
      if constexpr (Weighted)
        tail += w[j] * y[j] * y[j];
      else
        tail += y[j] * y[j];
      const vi hit = (tail > bud) & ~found;
      hi = hit ? mag(y[j]) * r[1] : hi;
      found |= hit;
    }
  }
  // The codes just below hi: element j is past level k when |y_j| / t_k > hi.
  vd a[S], b[S];
  a[0] = b[0] = vd{};
  vi cnt[L + 1];  // each level's head: a row of y
  for (std::size_t k = 1; k <= L; ++k) cnt[k] = vi{};
  for (std::size_t j = 0; j < rows; ++j) {
    const vd yj = mag(y[j]);
    vd gj = vd{};
    for (std::size_t k = 1; k <= Lc; ++k) {
      const vi past = yj * r[k] > hi;
      gj = past ? gj + dg[k] : gj;
      cnt[k] -= past;
    }
    if constexpr (Weighted) {
      a[0] += w[j] * yj * gj;
      b[0] += w[j] * gj * gj;
    } else {
      a[0] += yj * gj;
      b[0] += gj * gj;
    }
  }
  if constexpr (S == 2) {  // level L: each side's elements past it
    a[1] = a[0], b[1] = b[0];
    for (std::size_t j = 0; j < rows; ++j) {
      const vd yj = mag(y[j]);
      const vi past = yj * r[L] > hi, neg = (vi)y[j] < 0;
      for (std::size_t s = 0; s < S; ++s) {
        const vd one = (past & (s == 0 ? neg : ~neg)) ? vd{} + 1.0 : vd{};
        if constexpr (Weighted) {
          a[s] += w[j] * yj * dg[L] * one;
          b[s] += w[j] * dg2[L] * one;
        } else {
          a[s] += yj * dg[L] * one;
          b[s] += dg2[L] * one;
        }
      }
      cnt[L] -= past;
    }
  }
  // Each level's next breakpoint: the element at cnt[k].
  vd ev[L + 1];
#pragma GCC unroll 16
  for (std::size_t k = 1; k <= L; ++k) {
    vd yk;
    gather(yk, y, cnt[k]);
    ev[k] = mag(yk) * r[k];
  }
  vd upper = hi;
#if defined(__AVX512F__)
  if constexpr (W == 8 && L <= 8) {
    walk8<L, S, Weighted>(Grid::score_slack, reinterpret_cast<const double*>(y), reinterpret_cast<const double*>(w), r,
                          dg, dg2, top0, c, lo, y0, w0, act, cnt, ev, a, b, upper, es, ss);
    return;
  }
#endif
  vd up[S];
  vi on[S];
  for (std::size_t s = 0; s < S; ++s) up[s] = upper, on[s] = act;
  vd evn[L + 1];  // the breakpoint after each head (so the next maximum never waits on a gather)
  unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE {
    constexpr std::size_t k = j + 1;
    vd yk;
    gather(yk, y, cnt[k] + 1);
    evn[k] = mag(yk) * r[k];
  });
  // S == 2: whether the long level's head element is negative, and the one after it (so that
  // the sides a step moves never wait on a gather).
  vi lneg = vi{}, lnegn = vi{};
  if constexpr (S == 2) {
    vd yk;
    gather(yk, y, cnt[L]);
    lneg = (vi)yk < 0;
    gather(yk, y, cnt[L] + 1);
    lnegn = (vi)yk < 0;
  }
  for (;;) {
    vd m = ev[1];
    unrolled<L - 1>([&](auto j) BLOCKQ_LAMBDA_INLINE { m = ev[j + 2] > m ? ev[j + 2] : m; });
    // The lanes step while their breakpoints are positive, on or not (a lane that is off
    // records nothing): the step never waits on the bounds. The first level whose head is at
    // m, its element's row and its constants.
    const vi walk = m > 0.0;
    vi taken = vi{}, sel[L + 1], at = vi{};
    vd dgs = vd{}, dg2s = vd{}, rs = vd{};
    unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE {
      constexpr std::size_t k = j + 1;
      sel[k] = walk & (ev[k] == m) & ~taken;
      taken |= sel[k];
      at = sel[k] ? cnt[k] : at;
      dgs = sel[k] ? vd{} + dg[k] : dgs;
      dg2s = sel[k] ? vd{} + dg2[k] : dg2s;
      rs = sel[k] ? vd{} + r[k] : rs;
    });
    // The sides this breakpoint moves: every level's but the long one, which moves the side of
    // its element's sign; the last one (m <= 0) ends both.
    vi mv[S];
    if constexpr (S == 1) {
      mv[0] = on[0];
    } else {
      const vi end = ~walk;
      mv[0] = on[0] & (~sel[L] | lneg | end);
      mv[1] = on[1] & (~sel[L] | ~lneg | end);
    }
    // The score cut of the best minimum of both sides (score_cut; infinite unless its scale
    // is well inside the floats): a minimum above it would never be scored.
    vd e0 = es[0][0], s0 = ss[0][0];
    if constexpr (S == 2) {
      const vi other = es[1][0] < es[0][0];
      e0 = other ? es[1][0] : e0;
      s0 = other ? ss[1][0] : s0;
    }
    const vd cut = ((s0 > 0x1p-149) & (s0 < 0x1p127)) ? e0 * (1.0 + Grid::score_slack) + 4.0 * Grid::score_slack * c
                                                      : vd{} + std::numeric_limits<double>::infinity();
    for (std::size_t s = 0; s < S; ++s) {
      // The interval [m, upper] of the side's current codes: its stationary point A / B when
      // inside and below both the fourth best and the cut (C - A²/B < e, without the
      // division; B = 0 fails it).
      const vd lim = es[s][3] < cut ? es[s][3] : cut;
      const vi pre = mv[s] & (a[s] >= m * b[s]) & (a[s] <= up[s] * b[s]) & (c * b[s] - a[s] * a[s] < lim * b[s]);
      if (any(pre)) [[unlikely]] {
        const vd sc = a[s] / b[s];
        const vd e = c - 2.0 * sc * a[s] + sc * sc * b[s];
        const vi in = pre & (e < lim);
        for (std::size_t j = 3; j > 0; --j) {
          const vi above = in & (e < es[s][j - 1]);  // the entry above moves down
          const vi here = in & ~above & (e < es[s][j]);
          es[s][j] = above ? es[s][j - 1] : (here ? e : es[s][j]);
          ss[s][j] = above ? ss[s][j - 1] : (here ? sc : ss[s][j]);
        }
        const vi first = in & (e < es[s][0]);
        es[s][0] = first ? e : es[s][0];
        ss[s][0] = first ? sc : ss[s][0];
      }
      // Below m the largest element alone is clipped by more than the side's best minimum
      // when w_0 (y_0 - g_top m)² exceeds it: its walk ends.
      const vd clip = y0 - top0[s] * m;
      const vi keep = (m >= lo) & walk & ~((clip > 0.0) & (clip * clip * w0 > es[s][0] * (1.0 + 1e-12)));
      on[s] &= ~mv[s] | keep;
    }
    if (!any(S == 1 ? on[0] : on[0] | on[S - 1])) break;
    // Step: the level's head moves its element up (for the sides the breakpoint moves that are
    // on), and on to the breakpoint after it.
    unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE { cnt[j + 1] -= sel[j + 1]; });
    vd yc;
    gather(yc, y, at);
    const vd ym = mag(yc);
    vd da, db;
    if constexpr (Weighted) {
      vd wc;
      gather(wc, w, at);
      da = wc * ym * dgs;
      db = wc * dg2s;
    } else {
      da = ym * dgs;
      db = dg2s;
    }
    for (std::size_t s = 0; s < S; ++s) {
      const vi moved = mv[s] & on[s];
      a[s] = moved ? a[s] + da : a[s];
      b[s] = moved ? b[s] + db : b[s];
      up[s] = moved ? m : up[s];
    }
    vd ya;
    gather(ya, y, at + 2);
    const vd after = mag(ya) * rs;
    if constexpr (S == 2) {
      lneg = sel[L] ? lnegn : lneg;
      lnegn = sel[L] ? (vi)((vi)ya < 0) : lnegn;
    }
    unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE {
      constexpr std::size_t k = j + 1;
      ev[k] = sel[k] ? evn[k] : ev[k];
      evn[k] = sel[k] ? after : evn[k];
    });
  }
}

// Bitonic sort, descending by |y| (Signed: the rows hold x, else |x|), of each lane's N rows
// (weights alongside when Weighted), every compare-exchange unrolled: no branch, no loop.
template <std::size_t N, bool Signed, bool Weighted, class VD>
BLOCKQ_ALWAYS_INLINE void bitonic(VD* y, VD* w) noexcept {
  constexpr std::size_t stages = std::bit_width(N) - 1;
  unrolled<stages>([&](auto st) BLOCKQ_LAMBDA_INLINE {
    constexpr std::size_t k = std::size_t{2} << st;
    unrolled<st + 1>([&](auto sj) BLOCKQ_LAMBDA_INLINE {
      constexpr std::size_t j = k >> (sj + 1);
      unrolled<N / 2>([&](auto t) BLOCKQ_LAMBDA_INLINE {
        constexpr std::size_t i = ((t & ~(j - 1)) << 1) | (t & (j - 1)), p = i | j;
        const VD a = y[i], b = y[p];
        const VD ka = Signed ? magnitude(a) : a, kb = Signed ? magnitude(b) : b;
        const auto swap = (i & k) == 0 ? ka < kb : ka > kb;  // descending within blocks of k that start at a multiple of 2k
        y[i] = swap ? b : a;
        y[p] = swap ? a : b;
        if constexpr (Weighted) {
          const VD wa = w[i], wb = w[p];
          w[i] = swap ? wb : wa;
          w[p] = swap ? wa : wb;
        }
      });
    });
  });
}

template <bool Signed, bool Weighted, class VD>
void sort_rows(VD* y, VD* w, std::size_t rows) noexcept {
  switch (rows) {
    case 1: return;
    case 2: return bitonic<2, Signed, Weighted>(y, w);
    case 4: return bitonic<4, Signed, Weighted>(y, w);
    case 8: return bitonic<8, Signed, Weighted>(y, w);
    case 16: return bitonic<16, Signed, Weighted>(y, w);
    default: return bitonic<32, Signed, Weighted>(y, w);
  }
}

// Loads count blocks into lanes (lane i: x itself, the sign kept), each block's error at its
// start in out[i] (error_at(block)) and its budget; returns the rows to sort (0: no block to
// search).
template <class VD, class VI, class ErrorAt>
std::size_t load_lanes(const lane_block* blocks, std::size_t count, ErrorAt error_at, VD* y, VD* w, VD& bud, VI& act,
                       scale_min_result* out) noexcept {
  std::size_t n_max = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const lane_block& bl = blocks[i];
    out[i] = {bl.start, 0.0f, 0.0};
    if (bl.n == 0 || bl.n > lane_block_max || !blockq::detail::is_finite(bl.start)) continue;
    out[i].error = bl.start_error >= 0.0 ? bl.start_error : error_at(bl);
    if (!(out[i].error > 0.0)) continue;
    n_max = std::max(n_max, bl.n);
    act[i] = -1;
    bud[i] = detail::budget(out[i].error);
    for (std::size_t j = 0; j < bl.n; ++j) {
      y[j][i] = static_cast<double>(bl.x[j]);
      if (bl.w) w[j][i] = static_cast<double>(bl.w[j]);
    }
  }
  return n_max ? std::bit_ceil(n_max) : 0;
}

// Sorts the rows, ends them with the sentinels (0: at or below every breakpoint) and runs the
// sweep: each side's four best minima a lane in es[s] / ss[s] (es starting at the budget).
// Returns the lanes' energy C = Σ w y².
template <class Grid, class VD, class VI>
VD sort_and_sweep(VD* y, VD* w, std::size_t rows, bool weighted, const VD& bud, const VI& act, VD (*es)[4],
                  VD (*ss)[4]) noexcept {
  constexpr bool Signed = Grid::sides == 2;
  if (weighted)
    sort_rows<Signed, true>(y, w, rows);
  else
    sort_rows<Signed, false>(y, w, rows);
  y[rows] = y[rows + 1] = w[rows] = w[rows + 1] = VD{};
  VD c = VD{};
  for (std::size_t j = 0; j < rows; ++j) c += weighted ? w[j] * y[j] * y[j] : y[j] * y[j];
  for (std::size_t s = 0; s < Grid::sides; ++s)
    for (std::size_t j = 0; j < 4; ++j) es[s][j] = bud, ss[s][j] = VD{};
  if (weighted)
    sweep<Grid, true>(y, w, rows, c, bud, act, es, ss);
  else
    sweep<Grid, false>(y, w, rows, c, bud, act, es, ss);
  return c;
}

// Lane l's minima to score: the first `kept` (best first), and the others whose error is
// below cut.
template <class VD>
std::size_t lane_minima(const VD* es, const VD* ss, std::size_t l, std::size_t kept, double cut,
                        std::array<scale_candidate, 4>& cands) noexcept {
  std::size_t got = 0;
  for (std::size_t j = 0; j < 4; ++j)
    if (ss[j][l] > 0.0 && (j < kept || es[j][l] < cut)) cands[got++] = {ss[j][l], es[j][l]};
  return got;
}

// The error e0 (1 + slack) + 4 slack C below which a minimum could still beat the best one
// (error e0, scale s0; C the block's energy) once both are scored in float, slack from the
// kernel's rounding (below); infinity when s0 does not round to a usable float (it is not
// scored).
inline double score_cut(double e0, double s0, double c, double slack) noexcept {
  const auto f0 = static_cast<float>(s0);
  return blockq::detail::is_finite(f0) && f0 != 0.0f ? e0 * (1.0 + slack) + 4.0 * slack * c
                                                     : std::numeric_limits<double>::infinity();
}

// The lane sweep of W blocks (count of them real).
template <class Element, class Arch, std::size_t W>
void search_group(const lane_block* blocks, std::size_t count, tie_mode ties, scale_min_result* out) noexcept {
  using vd = typename of<W>::vd;
  using vi = typename of<W>::vi;
  auto score = [&](const lane_block& bl, float s) {
    return bl.w ? kernels::block_wsse<Element>(Arch{}, bl.x, bl.w, bl.n, s, ties)
                : kernels::block_sse<Element>(Arch{}, bl.x, bl.n, s, ties);
  };
  vd y[lane_block_max + 2] = {}, w[lane_block_max + 2] = {}, bud = vd{};
  vi act = vi{};
  const std::size_t rows = load_lanes(blocks, count, [&](const lane_block& bl) {
    return bl.start > 0.0f ? score(bl, bl.start) : kernels::block_energy(Arch{}, bl.x, bl.w, bl.n);
  }, y, w, bud, act, out);
  if (rows == 0) return;
  for (std::size_t j = 0; j < rows; ++j) y[j] = magnitude(y[j]);
  vd es[1][4], ss[1][4];
  const vd c = sort_and_sweep<element_grid<Element>>(y, w, rows, blocks[0].w != nullptr, bud, act, es, ss);
  for (std::size_t l = 0; l < count; ++l) {
    if (!act[l]) continue;
    // The best minimum is scored (with its float neighbours); another one only when it could
    // beat it in float: the kernel's error at fl(s) is within 2^-22 of E there, E moves by at
    // most 2^-22 C over one float step (|E'| <= 2 sqrt(B E) and s² B <= 4 C), and the kernel's
    // codes differ from the nearest levels only at ties worth 2^-21 C: a minimum above
    // e_0 (1 + 2^-20) + 2^-18 C scores above e_0's own float.
    const double cut = score_cut(es[0][0][l], ss[0][0][l], c[l], element_grid<Element>::score_slack);
    std::array<scale_candidate, 4> cands{};
    const std::size_t got = lane_minima(es[0], ss[0], l, 1, cut, cands);
    const lane_block& bl = blocks[l];
    detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), 1.0, 0.0f,
                             [&](float s, float) { return score(bl, s); }, out[l]);
  }
}

// The lane sweep of symmetric integer codes with qmax = Q, W blocks (count of them real): a
// lane a block, which sweeps both signs of the scale (int_grid).
template <class Arch, std::size_t W, std::size_t Q>
void search_group_int(const lane_block* blocks, std::size_t count, int_format fmt, scale_min_result* out) noexcept {
  using vd = typename of<W>::vd;
  using vi = typename of<W>::vi;
  auto score = [&](const lane_block& bl, float s) {
    return bl.w ? kernels::block_wsse_int(Arch{}, bl.x, bl.w, bl.n, s, 0.0f, fmt)
                : kernels::block_sse_int(Arch{}, bl.x, bl.n, s, 0.0f, fmt);
  };
  vd y[lane_block_max + 2] = {}, w[lane_block_max + 2] = {}, bud = vd{};
  vi act = vi{};
  const std::size_t rows =
      load_lanes(blocks, count, [&](const lane_block& bl) { return score(bl, bl.start); }, y, w, bud, act, out);
  if (rows == 0) return;
  vd es[2][4], ss[2][4];
  const vd c = sort_and_sweep<int_grid<Q>>(y, w, rows, blocks[0].w != nullptr, bud, act, es, ss);
  for (std::size_t l = 0; l < count; ++l) {
    if (!act[l]) continue;
    const lane_block& bl = blocks[l];
    // The best minimum of both signs is scored (with its float neighbours); another one only
    // when it could beat it in float. The kernel's residual fl(x - fl(q s)) is off by at most
    // 2^-24 (|q s| + |r|) each, so its error is within 2^-23 (sqrt(E C) + 2 E) of E; E moves by
    // at most 2^-21 sqrt(C E) over one float step (|E'| <= 2 sqrt(B E), s² B <= 4 C); codes
    // off the nearest level (x / s rounded in float near a tie) cost at most 2^-22 C: within
    // 2^-20 (E + C) in all, so a minimum above e_0 (1 + 2^-18) + 2^-16 C scores above e_0's float.
    const std::size_t best = es[1][0][l] < es[0][0][l] ? 1 : 0;
    const double cut = score_cut(es[best][0][l], (best ? -1.0 : 1.0) * ss[best][0][l], c[l], int_grid<Q>::score_slack);
    for (std::size_t side = 0; side < 2; ++side) {  // the positive scales' minima first, as continuous_int_mse
      std::array<scale_candidate, 4> cands{};
      const std::size_t got = lane_minima(es[side], ss[side], l, side == best ? 1 : 0, cut, cands);
      detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), side ? -1.0 : 1.0, 0.0f,
                               [&](float s, float) { return score(bl, s); }, out[l]);
    }
  }
}

}  // namespace lanes

template <class Element, class Arch>
void continuous_element_mse_lanes(Arch, std::span<const lane_block> blocks, tie_mode ties,
                                  scale_min_result* out) noexcept {
  constexpr std::size_t W = lanes::width<Arch>();
  for (std::size_t b = 0; b < blocks.size(); b += W)
    lanes::search_group<Element, Arch, W>(blocks.data() + b, std::min(W, blocks.size() - b), ties, out + b);
}

// Whether continuous_int_mse_lanes takes blocks of this format and size.
constexpr bool int_lanes_take(int_format fmt, std::size_t block) noexcept {
  return fmt.is_signed && fmt.bits >= 2 && fmt.bits <= 4 && block <= lane_block_max;
}

// Symmetric integer codes of 2 to 4 bits, blocks of at most lane_block_max elements (all
// weighted or none): for each block, continuous_int_mse's result (both signs of the scale, the
// start kept unless strictly beaten; start_min 0), a lane a block.
template <class Arch>
void continuous_int_mse_lanes(Arch, std::span<const lane_block> blocks, int_format fmt, scale_min_result* out) noexcept {
  constexpr std::size_t W = lanes::width<Arch>();
  auto run = [&]<std::size_t Q>(std::integral_constant<std::size_t, Q>) {
    for (std::size_t b = 0; b < blocks.size(); b += W)
      lanes::search_group_int<Arch, W, Q>(blocks.data() + b, std::min(W, blocks.size() - b), fmt, out + b);
  };
  if (fmt.bits == 2)
    run(std::integral_constant<std::size_t, 1>{});
  else if (fmt.bits == 3)
    run(std::integral_constant<std::size_t, 3>{});
  else
    run(std::integral_constant<std::size_t, 7>{});
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#else
template <class Element, class Arch>
void continuous_element_mse_lanes(Arch, std::span<const lane_block> blocks, tie_mode ties,
                                  scale_min_result* out) {
  std::vector<sweep_entry> heap(continuous_heap_entries(lane_block_max));
  for (std::size_t l = 0; l < blocks.size(); ++l) {
    const lane_block& bl = blocks[l];
    out[l] = continuous_element_mse<Element>(Arch{}, std::span<const float>(bl.x, bl.n),
                                             std::span<const float>(bl.w, bl.w ? bl.n : 0), bl.start, ties, heap);
  }
}

constexpr bool int_lanes_take(int_format, std::size_t) noexcept { return false; }

template <class Arch>
void continuous_int_mse_lanes(Arch, std::span<const lane_block> blocks, int_format fmt, scale_min_result* out) {
  std::vector<sweep_entry> heap(continuous_heap_entries(lane_block_max));
  for (std::size_t l = 0; l < blocks.size(); ++l) {
    const lane_block& bl = blocks[l];
    out[l] = continuous_int_mse(Arch{}, std::span<const float>(bl.x, bl.n), std::span<const float>(bl.w, bl.w ? bl.n : 0),
                                fmt, bl.start, 0.0f, heap, {}, {});
  }
}
#endif

}  // namespace search
BLOCKQ_END_NAMESPACE
