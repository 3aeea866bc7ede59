// SPDX-License-Identifier: Apache-2.0
// AVX-512 intrinsics emulated by SIMDe on a CPU without AVX-512 (AVX2 native), for
// tests/avx512_emulated/run.sh only (see there). Never on the include path of a real build.
#pragma once
#include_next <immintrin.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define __AVX512F__ 1
#define __AVX512BW__ 1
#define __AVX512VL__ 1
#define __AVX512DQ__ 1
#define __builtin_cpu_supports(x) 1
#include <stdint.h>
static inline simde__m512i blockq_emul_cvtepu8_epi32(simde__m128i a) {
  uint8_t b[16]; int32_t r[16];
  simde_mm_storeu_si128((simde__m128i*)b, a);
  for (int i = 0; i < 16; ++i) r[i] = b[i];
  return simde_mm512_loadu_si512(r);
}
#define _mm512_cvtepu8_epi32(a) blockq_emul_cvtepu8_epi32(a)
#include <string.h>
// Intrinsics SIMDe 0.7.4 lacks, by lanes (the float conversions through the native AVX2
// instructions on each half, so that rounding is the hardware's).
static inline simde__m128i blockq_emul_maskz_loadu_epi8(uint16_t k, const void* p) {
  uint8_t r[16] = {0};
  for (int i = 0; i < 16; ++i) if ((k >> i) & 1) r[i] = ((const uint8_t*)p)[i];
  return simde_mm_loadu_si128(r);
}
#define _mm_maskz_loadu_epi8(k, p) blockq_emul_maskz_loadu_epi8(k, p)
static inline simde__m512i blockq_emul_sra_epi32(simde__m512i a, simde__m128i c) {
  int32_t v[16]; uint64_t n; memcpy(v, &a, 64); memcpy(&n, &c, 8);
  for (int i = 0; i < 16; ++i) v[i] = n > 31 ? (v[i] < 0 ? -1 : 0) : (v[i] >> n);
  simde__m512i r; memcpy(&r, v, 64); return r;
}
#define _mm512_sra_epi32(a, c) blockq_emul_sra_epi32(a, c)
static inline simde__m512 blockq_emul_cvtepi32_ps(simde__m512i a) {
  __m256i h[2]; memcpy(h, &a, 64);
  __m256 r[2] = {_mm256_cvtepi32_ps(h[0]), _mm256_cvtepi32_ps(h[1])};
  simde__m512 o; memcpy(&o, r, 64); return o;
}
#define _mm512_cvtepi32_ps(a) blockq_emul_cvtepi32_ps(a)
static inline simde__m512i blockq_emul_cvtps_epi32(simde__m512 a) {
  __m256 h[2]; memcpy(h, &a, 64);
  __m256i r[2] = {_mm256_cvtps_epi32(h[0]), _mm256_cvtps_epi32(h[1])};
  simde__m512i o; memcpy(&o, r, 64); return o;
}
#define _mm512_cvtps_epi32(a) blockq_emul_cvtps_epi32(a)
static inline void blockq_emul_mask_storeu_ps(void* p, uint16_t k, simde__m512 a) {
  float v[16]; memcpy(v, &a, 64);
  for (int i = 0; i < 16; ++i) if ((k >> i) & 1) memcpy((char*)p + 4 * i, &v[i], 4);
}
#define _mm512_mask_storeu_ps(p, k, a) blockq_emul_mask_storeu_ps(p, k, a)
static inline simde__m128i blockq_emul_cvtepi32_epi8(simde__m512i a) {
  int32_t v[16]; uint8_t r[16]; memcpy(v, &a, 64);
  for (int i = 0; i < 16; ++i) r[i] = (uint8_t)v[i];
  return simde_mm_loadu_si128(r);
}
#define _mm512_cvtepi32_epi8(a) blockq_emul_cvtepi32_epi8(a)
static inline uint16_t blockq_emul_cmpgt_epu32_mask(simde__m512i a, simde__m512i b) {
  uint32_t x[16], y[16]; memcpy(x, &a, 64); memcpy(y, &b, 64); uint16_t k = 0;
  for (int i = 0; i < 16; ++i) k |= (uint16_t)((x[i] > y[i]) << i);
  return k;
}
#define _mm512_cmpgt_epu32_mask(a, b) blockq_emul_cmpgt_epu32_mask(a, b)
static inline __m256 blockq_emul_extractf32x8_ps(simde__m512 a, int i) {
  __m256 h[2]; memcpy(h, &a, 64); return h[i & 1];
}
#define _mm512_extractf32x8_ps(a, i) blockq_emul_extractf32x8_ps(a, i)
static inline simde__m512d blockq_emul_cvtps_pd(__m256 a) {
  __m128 h[2]; memcpy(h, &a, 32);
  __m256d r[2] = {_mm256_cvtps_pd(h[0]), _mm256_cvtps_pd(h[1])};
  simde__m512d o; memcpy(&o, r, 64); return o;
}
#define _mm512_cvtps_pd(a) blockq_emul_cvtps_pd(a)
static inline simde__m512 blockq_emul_maskz_loadu_ps(uint16_t k, const void* p) {
  float r[16] = {0};
  for (int i = 0; i < 16; ++i) if ((k >> i) & 1) memcpy(&r[i], (const char*)p + 4 * i, 4);
  simde__m512 o; memcpy(&o, r, 64); return o;
}
#define _mm512_maskz_loadu_ps(k, p) blockq_emul_maskz_loadu_ps(k, p)
static inline float blockq_emul_reduce_add_ps(simde__m512 a) {  // GCC's tree: 16 -> 8 -> 4 -> 2 -> 1
  float v[16]; memcpy(v, &a, 64);
  for (int w = 8; w >= 1; w /= 2) for (int i = 0; i < w; ++i) v[i] = v[i + w] + v[i];
  return v[0];
}
#define _mm512_reduce_add_ps(a) blockq_emul_reduce_add_ps(a)
static inline __m128i blockq_emul_cvtepi16_epi8(__m256i a) {
  int16_t v[16]; uint8_t r[16]; memcpy(v, &a, 32);
  for (int i = 0; i < 16; ++i) r[i] = (uint8_t)v[i];
  __m128i o; memcpy(&o, r, 16); return o;
}
#define _mm256_cvtepi16_epi8(a) blockq_emul_cvtepi16_epi8(a)
static inline uint32_t blockq_emul_cmpneq_epi16_mask(simde__m512i a, simde__m512i b) {
  int16_t x[32], y[32]; memcpy(x, &a, 64); memcpy(y, &b, 64); uint32_t k = 0;
  for (int i = 0; i < 32; ++i) k |= (uint32_t)(x[i] != y[i]) << i;
  return k;
}
#define _mm512_cmpneq_epi16_mask(a, b) blockq_emul_cmpneq_epi16_mask(a, b)
static inline __m256i blockq_emul_cvtepi32_epi16(simde__m512i a) {
  int32_t v[16]; int16_t r[16]; memcpy(v, &a, 64);
  for (int i = 0; i < 16; ++i) r[i] = (int16_t)v[i];
  __m256i o; memcpy(&o, r, 32); return o;
}
#define _mm512_cvtepi32_epi16(a) blockq_emul_cvtepi32_epi16(a)
static inline uint16_t blockq_emul_cmplt_epi32_mask(simde__m512i a, simde__m512i b) {
  int32_t x[16], y[16]; memcpy(x, &a, 64); memcpy(y, &b, 64); uint16_t k = 0;
  for (int i = 0; i < 16; ++i) k |= (uint16_t)((x[i] < y[i]) << i);
  return k;
}
#define _mm512_cmplt_epi32_mask(a, b) blockq_emul_cmplt_epi32_mask(a, b)
static inline void blockq_emul_stream_ps(float* p, simde__m512 a) {
  if (((uintptr_t)p) % 64 != 0) __builtin_trap();  // the instruction faults on unaligned addresses
  memcpy(p, &a, 64);
}
#define _mm512_stream_ps(p, a) blockq_emul_stream_ps(p, a)
