// SPDX-License-Identifier: Apache-2.0
// Search rules of ggml's block types (ggml.hpp), scoring every candidate scale as the file
// stores it: fp16 d (and m) for Q4_0, Q8_0, Q4_1, the exponent byte for MXFP4. Each search
// starts from ggml's own block (the default rule's bytes) and replaces it only by a strictly
// better one, so it is never worse than the default. The error is the (weighted) sum of
// squared differences between x and the decoded block, in exact arithmetic (double).
//
// - Q4_0, Q8_0, rule mse: exact over every fp16 d of either sign with |d| / d_0 in [1/2, 2]
//   (Q4_0, d_0 = amax / 8) or [7/8, 9/8] (Q8_0, d_0 = amax / 127), each with its nearest codes. A sweep over the
//   code changes: between two of them the error is a quadratic in d, whose best fp16
//   values are the two around its clamped minimum.
// - Q4_1, rule mse and lsq: least-squares refits of (d, m) from the current codes, each
//   rounded to fp16 with its neighbours (nine pairs), re-encoded at the stored values, until
//   no pair is better (mse also starts from every fp16 d of the Q4_0 sweep's kind at m = min,
//   see ggml_search_q4_1). Q4_0 / Q8_0 rule lsq: the same refits of d alone.
// - MXFP4, rule mse: every exponent within 4 below and 3 above ggml's, codes as ggml
//   chooses them at that scale.
// - rule hessian: the weighted error with the weights as the diagonal of the Hessian (an
//   importance matrix); the same searches.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "blockq/arch/ggml_scalar.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/formats/half.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

// Largest positive finite fp16 value <= v and smallest >= v (v > 0, as bits; 0 if none).
inline std::uint16_t fp16_at_or_below(double v) noexcept {
  if (!(v > 0.0)) return 0;
  if (v >= 65504.0) return 0x7BFF;
  std::uint16_t h = float16::from_float(static_cast<float>(v)).bits;
  while (h > 0 && static_cast<double>(float16::from_bits(h).to_float()) > v) --h;
  while (h < 0x7BFF && static_cast<double>(float16::from_bits(static_cast<std::uint16_t>(h + 1)).to_float()) <= v) ++h;
  return h;
}
inline std::uint16_t fp16_at_or_above(double v) noexcept {
  const std::uint16_t h = fp16_at_or_below(v);
  if (static_cast<double>(float16::from_bits(h).to_float()) >= v) return h;
  return h < 0x7BFF ? static_cast<std::uint16_t>(h + 1) : 0x7C00;  // 0x7C00: none (Inf)
}

inline double fp16_value(std::uint16_t h) noexcept { return static_cast<double>(float16::from_bits(h).to_float()); }

// The nearest integer level in [lo, hi] to y (exact ties: either level has the same error).
inline int nearest_level(double y, int lo, int hi) noexcept {
  const double r = std::floor(y + 0.5);
  return r < lo ? lo : r > hi ? hi : static_cast<int>(r);
}

inline double weight_at(std::span<const float> w, std::size_t i) noexcept { return w.empty() ? 1.0 : w[i]; }

// Symmetric levels k in [-kneg, kpos] times d: the weighted error of x at d with nearest levels.
inline double symmetric_error(const float* x, std::span<const float> w, double d, int kneg, int kpos) noexcept {
  double e = 0.0;
  for (std::size_t i = 0; i < 32; ++i) {
    const double k = d == 0.0 ? 0.0 : nearest_level(x[i] / d, -kneg, kpos);
    const double r = x[i] - k * d;
    e += weight_at(w, i) * r * r;
  }
  return e;
}

struct symmetric_best {
  double error;
  std::uint16_t d;  // fp16 bits, sign included
};

// The exact sweep of the header over d = s * a, a in [a_lo, a_hi], for both signs s: the
// fp16 d of least weighted error with nearest levels in [-kneg, kpos].
inline void symmetric_sweep(const float* x, std::span<const float> w, int kneg, int kpos, double a_lo, double a_hi,
                            symmetric_best& best, std::vector<std::pair<double, int>>& events) noexcept {
  double c = 0.0;
  for (std::size_t i = 0; i < 32; ++i) c += weight_at(w, i) * double(x[i]) * x[i];
  for (int s : {1, -1}) {
    // Levels of x' = s x at a = a_lo, and the values of a where a level steps toward zero.
    int k[32];
    double skx = 0.0, skk = 0.0;
    events.clear();
    for (int i = 0; i < 32; ++i) {
      const double xi = s * double(x[i]), wi = weight_at(w, static_cast<std::size_t>(i));
      k[i] = nearest_level(xi / a_lo, -kneg, kpos);
      skx += wi * k[i] * xi;
      skk += wi * double(k[i]) * k[i];
      // |k| -> |k| - 1 at a = |x'| / (|k| - 1/2).
      for (int m = std::abs(k[i]); m >= 1; --m) {
        const double at = std::fabs(xi) / (m - 0.5);
        if (at > a_hi) break;
        if (at > a_lo) events.emplace_back(at, i);
      }
    }
    std::sort(events.begin(), events.end());
    double left = a_lo;
    for (std::size_t e = 0; e <= events.size(); ++e) {
      const double right = e < events.size() ? events[e].first : a_hi;
      if (right >= left) {
        // error(a) = c - 2 a skx + a^2 skk on [left, right]: its best fp16 values.
        double a_star = skk > 0.0 ? skx / skk : left;
        a_star = std::clamp(a_star, left, right);
        // No fp16 value of the interval beats its real minimum: most intervals stop here.
        const double floor_err = c - 2.0 * a_star * skx + a_star * a_star * skk;
        if (floor_err < best.error)
        for (std::uint16_t h : {fp16_at_or_below(a_star), fp16_at_or_above(a_star)}) {
          if (h == 0 || h >= 0x7C00) continue;
          const double a = fp16_value(h);
          if (a < left || a > right) continue;
          // The interval's quadratic is the error there (codes fixed); the chosen block is
          // checked against ggml's once more, decoded, at the end.
          const double err = c - 2.0 * a * skx + a * a * skk;
          if (err < best.error) best = {err, static_cast<std::uint16_t>(h | (s < 0 ? 0x8000 : 0))};
        }
      }
      if (e == events.size()) break;
      const int i = events[e].second;
      const double xi = s * double(x[i]), wi = weight_at(w, static_cast<std::size_t>(i));
      const int nk = k[i] > 0 ? k[i] - 1 : k[i] + 1;
      skx += wi * (nk - k[i]) * xi;
      skk += wi * (double(nk) * nk - double(k[i]) * k[i]);
      k[i] = nk;
      left = right;
    }
  }
}

// Least-squares refits of d alone (codes fixed), rounded to fp16 with its neighbours.
inline void symmetric_refit(const float* x, std::span<const float> w, int kneg, int kpos, symmetric_best& best) noexcept {
  for (int iter = 0; iter < 4; ++iter) {
    const double d = fp16_value(best.d & 0x7FFF) * ((best.d & 0x8000) ? -1.0 : 1.0);
    if (d == 0.0) return;
    double skx = 0.0, skk = 0.0;
    for (std::size_t i = 0; i < 32; ++i) {
      const int k = nearest_level(x[i] / d, -kneg, kpos);
      skx += weight_at(w, i) * k * double(x[i]);
      skk += weight_at(w, i) * double(k) * k;
    }
    if (!(skk > 0.0)) return;
    const double fit = skx / skk;
    const std::uint16_t sign = fit < 0 ? 0x8000 : 0;
    const std::uint16_t h0 = fp16_at_or_below(std::fabs(fit));
    bool improved = false;
    for (int dh = -1; dh <= 2; ++dh) {
      const int h = int(h0) + dh;
      if (h <= 0 || h > 0x7BFF) continue;
      const double e = symmetric_error(x, w, (sign ? -1.0 : 1.0) * fp16_value(static_cast<std::uint16_t>(h)), kneg, kpos);
      if (e < best.error) {
        best = {e, static_cast<std::uint16_t>(h | sign)};
        improved = true;
      }
    }
    if (!improved) return;
  }
}

// The weighted error of a block's decoded bytes (any of the four types).
template <class Decode>
double block_error(const float* x, std::span<const float> w, const std::uint8_t* blk, Decode decode) noexcept {
  float y[32];
  decode(blk, y);
  double e = 0.0;
  for (std::size_t i = 0; i < 32; ++i) {
    const double r = double(x[i]) - y[i];
    e += weight_at(w, i) * r * r;
  }
  return e;
}

inline bool finite_block(const float* x) noexcept {
  for (int i = 0; i < 32; ++i)
    if (!is_finite(x[i])) return false;
  return true;
}

// Q4_0 (kneg 8, kpos 7, codes k + 8) or Q8_0 (127, 127, codes k): blk holds ggml's block and
// is replaced by a strictly better one. exact: the sweep; else the refits alone.
inline void ggml_search_symmetric(const float* x, std::span<const float> w, bool q8, bool exact, std::uint8_t* blk,
                                  std::vector<std::pair<double, int>>& events) noexcept {
  if (!finite_block(x)) return;
  const int kneg = q8 ? 127 : 8, kpos = q8 ? 127 : 7;
  auto decode = [&](const std::uint8_t* b, float* y) {
    if (q8) kernels::ggml_q8_0_decode(arch::scalar{}, b, y);
    else kernels::ggml_q4_0_decode(arch::scalar{}, b, y);
  };
  const double start = block_error(x, w, blk, decode);
  const std::uint16_t d0 = static_cast<std::uint16_t>(blk[0] | blk[1] << 8);
  symmetric_best best{start, d0};
  float amax = 0.0f;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (amax == 0.0f) return;
  if (exact) {
    const double a0 = double(amax) / kneg, lo = q8 ? a0 * 0.875 : a0 / 2, hi = q8 ? a0 * 1.125 : a0 * 2;
    symmetric_sweep(x, w, kneg, kpos, lo, hi, best, events);
  }
  symmetric_refit(x, w, kneg, kpos, best);
  if (!(best.error < start)) return;
  const double d = fp16_value(best.d & 0x7FFF) * ((best.d & 0x8000) ? -1.0 : 1.0);
  std::uint8_t cand[34];
  cand[0] = static_cast<std::uint8_t>(best.d & 0xFF);
  cand[1] = static_cast<std::uint8_t>(best.d >> 8);
  int k[32];
  for (int i = 0; i < 32; ++i) k[i] = nearest_level(x[i] / d, -kneg, kpos);
  if (q8) {
    for (int i = 0; i < 32; ++i) cand[2 + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(k[i]));
  } else {
    for (int j = 0; j < 16; ++j) cand[2 + j] = static_cast<std::uint8_t>((k[j] + 8) | (k[j + 16] + 8) << 4);
  }
  // Decoded as ggml decodes (float products), the block must still be strictly better.
  if (block_error(x, w, cand, decode) < start) std::copy(cand, cand + (q8 ? 34 : 18), blk);
}

// Q4_1: x ~ q d + m, q in [0, 15], d and m fp16.
inline double q4_1_error(const float* x, std::span<const float> w, double d, double m, int* q = nullptr) noexcept {
  double e = 0.0;
  for (std::size_t i = 0; i < 32; ++i) {
    const int k = d == 0.0 ? 0 : nearest_level((x[i] - m) / d, 0, 15);
    if (q) q[i] = k;
    const double r = x[i] - (k * d + m);
    e += weight_at(w, i) * r * r;
  }
  return e;
}

// n steps in value order from the fp16 bits h (finite; -0 and +0 are one step apart).
inline std::uint16_t fp16_step(std::uint16_t h, int n) noexcept {
  int ord = (h & 0x8000) ? -int(h & 0x7FFF) - 1 : int(h);
  ord += n;
  if (ord < -0x7C00) ord = -0x7C00;
  if (ord > 0x7BFF) ord = 0x7BFF;
  return static_cast<std::uint16_t>(ord < 0 ? (0x8000 | (-ord - 1)) : ord);
}

inline void ggml_search_q4_1(const float* x, std::span<const float> w, bool mse, std::uint8_t* blk) noexcept {
  if (!finite_block(x)) return;
  auto decode = [](const std::uint8_t* b, float* y) { kernels::ggml_q4_1_decode(arch::scalar{}, b, y); };
  const double start = block_error(x, w, blk, decode);
  std::uint16_t bd = static_cast<std::uint16_t>(blk[0] | blk[1] << 8), bm = static_cast<std::uint16_t>(blk[2] | blk[3] << 8);
  if (!is_finite(float16::from_bits(bd).to_float()) || !is_finite(float16::from_bits(bm).to_float())) return;
  double best = q4_1_error(x, w, fp16_value(bd), fp16_value(bm));
  // Refits: least squares of x on (q, 1) with the codes at the stored (d, m), then the fp16
  // pairs around the fit.
  auto refit = [&] {
    for (int iter = 0; iter < 4; ++iter) {
      int q[32];
      q4_1_error(x, w, fp16_value(bd), fp16_value(bm), q);
      double sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
      for (std::size_t i = 0; i < 32; ++i) {
        const double wi = weight_at(w, i);
        sw += wi, sq += wi * q[i], sqq += wi * double(q[i]) * q[i], sx += wi * x[i], sqx += wi * q[i] * double(x[i]);
      }
      const double det = sw * sqq - sq * sq;
      if (!(det > 0.0)) return;
      const double d = (sw * sqx - sq * sx) / det, m = (sx - d * sq) / sw;
      if (!(d > 0.0) || !(d < 65504.0) || !(std::fabs(m) < 65504.0)) return;
      const std::uint16_t dh = fp16_at_or_below(d);
      const std::uint16_t mh = m >= 0 ? fp16_at_or_below(m) : fp16_step(static_cast<std::uint16_t>(fp16_at_or_below(-m) | 0x8000), -1);
      bool improved = false;
      for (int i = -1; i <= 2; ++i)
        for (int j = -1; j <= 2; ++j) {
          const std::uint16_t cd = fp16_step(dh, i), cm = fp16_step(mh, j);
          if (cd == 0 || (cd & 0x8000)) continue;
          const double e = q4_1_error(x, w, fp16_value(cd & 0x7FFF), (cm & 0x8000 ? -1.0 : 1.0) * fp16_value(cm & 0x7FFF));
          if (e < best) best = e, bd = cd, bm = cm, improved = true;
        }
      if (!improved) return;
    }
  };
  auto signed_value = [](std::uint16_t h) { return (h & 0x8000 ? -1.0 : 1.0) * fp16_value(h & 0x7FFF); };
  refit();
  if (mse) {
    // More starts: m at fp16(min), d at 64 fp16 values spread over [d0 / 2, 2 d0].
    float mn = x[0], mx = x[0];
    for (int i = 1; i < 32; ++i) mn = std::min(mn, x[i]), mx = std::max(mx, x[i]);
    const double d0 = (double(mx) - mn) / 15.0;
    if (d0 > 0.0 && d0 < 30000.0) {
      const std::uint16_t m_h = float16::from_float(mn).bits;
      const std::uint16_t lo = fp16_at_or_above(d0 / 2), hi = fp16_at_or_below(d0 * 2);
      const int stride = std::max(1, (int(hi) - int(lo)) / 64);
      for (int h = lo; h > 0 && h <= hi && h < 0x7C00; h += stride) {
        const double e = q4_1_error(x, w, fp16_value(static_cast<std::uint16_t>(h)), signed_value(m_h));
        if (e < best) best = e, bd = static_cast<std::uint16_t>(h), bm = m_h;
      }
      refit();
    }
  }
  std::uint8_t cand[20];
  int q[32];
  q4_1_error(x, w, signed_value(bd), signed_value(bm), q);
  cand[0] = static_cast<std::uint8_t>(bd & 0xFF), cand[1] = static_cast<std::uint8_t>(bd >> 8);
  cand[2] = static_cast<std::uint8_t>(bm & 0xFF), cand[3] = static_cast<std::uint8_t>(bm >> 8);
  for (int j = 0; j < 16; ++j) cand[4 + j] = static_cast<std::uint8_t>(q[j] | q[j + 16] << 4);
  if (block_error(x, w, cand, decode) < start) std::copy(cand, cand + 20, blk);
}

// MXFP4: exponents e0 - 4 .. e0 + 3 of ggml's e0, codes as ggml chooses them.
inline void ggml_search_mxfp4(const float* x, std::span<const float> w, std::uint8_t* blk) noexcept {
  if (!finite_block(x)) return;
  auto decode = [](const std::uint8_t* b, float* y) { kernels::ggml_mxfp4_decode(arch::scalar{}, b, y); };
  double best = block_error(x, w, blk, decode);
  const int e0 = blk[0];
  std::uint8_t cand[17];
  for (int e = std::max(0, e0 - 4); e <= std::min(254, e0 + 3); ++e) {
    if (e == e0) continue;
    const float d = ggml_e8m0_half(static_cast<std::uint8_t>(e));
    cand[0] = static_cast<std::uint8_t>(e);
    for (int j = 0; j < 16; ++j)
      cand[1 + j] = static_cast<std::uint8_t>(ggml_mxfp4_code(x[j], d) | ggml_mxfp4_code(x[j + 16], d) << 4);
    const double err = block_error(x, w, cand, decode);
    if (err < best) {
      best = err;
      std::copy(cand, cand + 17, blk);
    }
  }
}

}  // namespace detail
BLOCKQ_END_NAMESPACE
