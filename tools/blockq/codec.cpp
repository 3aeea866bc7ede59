// SPDX-License-Identifier: Apache-2.0
// The one translation unit that instantiates the library's quantizers for the tool.
#include "codec.hpp"

#include <array>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "blockq/fp4.hpp"
#include "blockq/gptq.hpp"
#include "blockq/mx.hpp"
#include "blockq/nvfp4.hpp"
#include "blockq/pack.hpp"
#include "blockq/search/hessian.hpp"
#include "blockq/uniform.hpp"

namespace blockq_tool {
namespace {

using blockq::scale_rule;

constexpr std::array<format_info, 22> formats{{
    {"mxfp4", family::mx, 4, 32, scale_rule::ocp, "MX: E2M1 elements, UE8M0 scale per 32 (OCP MX v1.0)"},
    {"nvfp4", family::nvfp4, 4, 16, scale_rule::absmax, "E2M1, E4M3 scale per 16, FP32 tensor scale (ModelOpt)"},
    {"fp4", family::fp4, 4, 32, scale_rule::absmax, "E2M1 with a float32 scale per block"},
    {"mxfp6_e2m3", family::mx, 6, 32, scale_rule::ocp, "MX: E2M3 elements, UE8M0 scale"},
    {"mxfp6_e3m2", family::mx, 6, 32, scale_rule::ocp, "MX: E3M2 elements, UE8M0 scale"},
    {"mxfp8_e4m3", family::mx, 8, 32, scale_rule::ocp, "MX: E4M3 elements, UE8M0 scale"},
    {"mxfp8_e5m2", family::mx, 8, 32, scale_rule::ocp, "MX: E5M2 elements, UE8M0 scale"},
    {"mxint8", family::mx, 8, 32, scale_rule::ocp, "MX: int8 elements (scale 2^-6), UE8M0 scale"},
    {"int2", family::sint, 2, 32, scale_rule::absmax, "signed symmetric 2-bit, float32 scale"},
    {"int3", family::sint, 3, 32, scale_rule::absmax, "signed symmetric 3-bit, float32 scale"},
    {"int4", family::sint, 4, 32, scale_rule::absmax, "signed symmetric 4-bit, float32 scale"},
    {"int5", family::sint, 5, 32, scale_rule::absmax, "signed symmetric 5-bit, float32 scale"},
    {"int6", family::sint, 6, 32, scale_rule::absmax, "signed symmetric 6-bit, float32 scale"},
    {"int7", family::sint, 7, 32, scale_rule::absmax, "signed symmetric 7-bit, float32 scale"},
    {"int8", family::sint, 8, 32, scale_rule::absmax, "signed symmetric 8-bit, float32 scale"},
    {"uint2", family::uint, 2, 32, scale_rule::minmax, "asymmetric 2-bit, float32 scale and min"},
    {"uint3", family::uint, 3, 32, scale_rule::minmax, "asymmetric 3-bit, float32 scale and min"},
    {"uint4", family::uint, 4, 32, scale_rule::minmax, "asymmetric 4-bit, float32 scale and min"},
    {"uint5", family::uint, 5, 32, scale_rule::minmax, "asymmetric 5-bit, float32 scale and min"},
    {"uint6", family::uint, 6, 32, scale_rule::minmax, "asymmetric 6-bit, float32 scale and min"},
    {"uint7", family::uint, 7, 32, scale_rule::minmax, "asymmetric 7-bit, float32 scale and min"},
    {"uint8", family::uint, 8, 32, scale_rule::minmax, "asymmetric 8-bit, float32 scale and min"},
}};

// The library reports invalid arguments as "blockq: ..."; the tool adds its own prefix.
}  // namespace

std::string library_message(const std::exception& e) {
  std::string m = e.what();
  if (m.rfind("blockq: ", 0) == 0) m.erase(0, 8);
  return m;
}

namespace {

std::size_t packed_row_bytes(std::size_t k, int bits) { return blockq::packed_size(k, bits); }

void store_floats(std::span<std::uint8_t> dst, std::span<const float> src) {
  std::memcpy(dst.data(), src.data(), src.size() * sizeof(float));
}
std::vector<float> load_floats(std::span<const std::uint8_t> src, std::size_t offset, std::size_t n) {
  std::vector<float> v(n);
  std::memcpy(v.data(), src.data() + offset * sizeof(float), n * sizeof(float));
  return v;
}

// The block Hessians of rule hessian, built once per tensor by prepare().
using hessians_ptr = std::shared_ptr<const blockq::block_hessians>;

// A whole tensor quantized by GPTQ: codes one a byte, the scales as the quantizer stores
// them (UE8M0 / E4M3 bytes, or floats), mins, the NVFP4 tensor scale.
struct gptq_state {
  std::vector<std::uint8_t> codes, scale_bytes;
  std::vector<float> scales, mins;
  float tensor_scale = 1.0f;
};

hessians_ptr make_hessians(const quant_config& cfg, std::size_t k, const hessian_input* h) {
  if (cfg.rule != scale_rule::hessian) return nullptr;
  if (h && !h->matrix.empty()) {  // the diagonal blocks of a given H
    std::vector<double> blocks;
    blocks.reserve(k * cfg.block);
    for (std::size_t j = 0; j < k / cfg.block; ++j)
      for (std::size_t p = 0; p < cfg.block; ++p)
        for (std::size_t q = 0; q < cfg.block; ++q) blocks.push_back(h->matrix[(j * cfg.block + p) * k + j * cfg.block + q]);
    return std::make_shared<const blockq::block_hessians>(
        blockq::block_hessians::from_matrices(std::span<const double>(blocks), k, cfg.block));
  }
  if (h && h->activations.empty() && h->importance.size() == k)
    return std::make_shared<const blockq::block_hessians>(blockq::block_hessians::from_diagonal(h->importance, cfg.block));
  if (!h || h->activations.empty()) throw error("rule hessian needs calibration activations (--hessian ACTS) or --imatrix");
  return std::make_shared<const blockq::block_hessians>(
      blockq::block_hessians::from_activations(h->activations, k, cfg.block));
}

const blockq::block_hessians* hessians_of(const tensor_state& st) {
  return st.extra && st.extra_kind == 1 ? static_cast<const blockq::block_hessians*>(st.extra.get()) : nullptr;
}
const gptq_state* gptq_of(const tensor_state& st) {
  return st.extra && st.extra_kind == 2 ? static_cast<const gptq_state*>(st.extra.get()) : nullptr;
}

template <class Q, class Fill>
tensor_state run_gptq(const Q& q, const quant_config& cfg, std::span<const float> x, std::size_t k,
                      std::span<const double> h, Fill&& fill) {
  blockq::gptq_options o;
  o.damp = cfg.damp;
  o.act_order = cfg.act_order;
  auto out = blockq::gptq_quantize(q, x, k, h, o);
  auto g = std::make_shared<gptq_state>();
  fill(*g, out.tensor);
  tensor_state st;
  st.tensor_scale = g->tensor_scale;
  st.extra = std::move(g);
  st.extra_kind = 2;
  return st;
}

// shape with its last dimension replaced by `tail`.
shape_t lead_with(const shape_t& shape, std::initializer_list<std::uint64_t> tail) {
  shape_t s(shape.begin(), shape.end() - 1);
  s.insert(s.end(), tail.begin(), tail.end());
  return s;
}

// ------------------------------------------------------------------ MX
template <class Element>
class mx_codec final : public codec {
 public:
  explicit mx_codec(const quant_config& cfg) : codec(cfg), q_(blockq::mx_options{cfg.block, cfg.rule, cfg.ties}) {}

  std::vector<tensor_spec> outputs(const std::string& name, const shape_t& shape) const override {
    const std::uint64_t k = shape.back(), b = cfg_.block;
    if (cfg_.lay == layout::ggml) return {{name, dtype::U8, lead_with(shape, {k / 32, 17})}};
    const std::uint64_t per_block = Element::bits <= 4 ? b / 2 : b;
    return {{name + "_blocks", dtype::U8, lead_with(shape, {k / b, per_block})},
            {name + "_scales", dtype::U8, lead_with(shape, {k / b})}};
  }

  tensor_state prepare(std::span<const float>, std::size_t k, const hessian_input* h) const override {
    tensor_state st;
    st.extra = make_hessians(cfg_, k, h);
    st.extra_kind = 1;
    return st;
  }

  tensor_state prepare_gptq(std::span<const float> x, std::size_t k, std::span<const double> h) const override {
    return run_gptq(q_, cfg_, x, k, h, [](gptq_state& g, blockq::mx_tensor& t) {
      g.codes = std::move(t.codes);
      g.scale_bytes = std::move(t.scales);
    });
  }

  void quantize_rows(std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1, const tensor_state& st,
                     std::span<const std::span<std::uint8_t>> parts) const override {
    const std::size_t n = (r1 - r0) * k, nb = n / cfg_.block;
    const auto xs = x.subspan(r0 * k, n);
    if (const gptq_state* g = gptq_of(st)) {
      const auto codes = std::span<const std::uint8_t>(g->codes).subspan(r0 * k, n);
      const auto scales = std::span<const std::uint8_t>(g->scale_bytes).subspan(r0 * (k / cfg_.block), nb);
      if (cfg_.lay == layout::ggml) {
        const std::size_t gb = k / 32 * 17;
        blockq::pack_ggml_mxfp4(codes, scales, parts[0].subspan(r0 * gb, (r1 - r0) * gb));
        return;
      }
      if constexpr (Element::bits <= 4)
        blockq::pack_nibbles(codes, parts[0].subspan(r0 * k / 2, n / 2));
      else
        std::memcpy(parts[0].data() + r0 * k, codes.data(), n);
      std::memcpy(parts[1].data() + r0 * (k / cfg_.block), scales.data(), nb);
      return;
    }
    const blockq::block_hessians* h = hessians_of(st);
    if constexpr (std::is_same_v<Element, blockq::e2m1>) {  // ggml layout: mxfp4 only
      if (cfg_.lay == layout::ggml) {
        const std::size_t gb = k / 32 * 17;
        const auto out = parts[0].subspan(r0 * gb, (r1 - r0) * gb);
        if (!h) {
          q_.quantize_ggml(xs, out);
          return;
        }
        const auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(n + nb);
        const std::span<std::uint8_t> codes(buf.get(), n), scales(buf.get() + n, nb);
        q_.quantize(xs, *h, codes, scales);
        blockq::pack_ggml_mxfp4(codes, scales, out);
        return;
      }
    }
    const auto scales = parts[1].subspan(r0 * (k / cfg_.block), nb);
    if constexpr (Element::bits <= 4) {
      const auto packed = parts[0].subspan(r0 * k / 2, n / 2);
      if (h)
        q_.quantize_packed(xs, *h, packed, scales);
      else
        q_.quantize_packed(xs, packed, scales);
    } else {
      const auto codes = parts[0].subspan(r0 * k, n);
      if (h)
        q_.quantize(xs, *h, codes, scales);
      else
        q_.quantize(xs, codes, scales);
    }
  }

  void dequantize_rows(std::span<const std::span<const std::uint8_t>> parts, std::size_t k, std::size_t r0,
                       std::size_t r1, std::span<float> out) const override {
    const std::size_t n = (r1 - r0) * k, nb = n / cfg_.block;
    const auto os = out.subspan(r0 * k, n);
    if constexpr (std::is_same_v<Element, blockq::e2m1>) {
      if (cfg_.lay == layout::ggml) {
        const auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(n + nb);
        const std::span<std::uint8_t> codes(buf.get(), n), scales(buf.get() + n, nb);
        const std::size_t gb = k / 32 * 17;
        blockq::unpack_ggml_mxfp4(parts[0].subspan(r0 * gb, (r1 - r0) * gb), codes, scales);
        q_.dequantize(codes, scales, os);
        return;
      }
    }
    const auto scales = parts[1].subspan(r0 * (k / cfg_.block), nb);
    if constexpr (Element::bits <= 4)
      q_.dequantize_packed(parts[0].subspan(r0 * k / 2, n / 2), scales, os);
    else
      q_.dequantize(parts[0].subspan(r0 * k, n), scales, os);
  }

  double bits_per_element(std::size_t) const override {
    return Element::bits + 8.0 / static_cast<double>(cfg_.block);
  }

 private:
  blockq::mx_quantizer<Element> q_;
};

// ------------------------------------------------------------------ NVFP4
class nvfp4_codec final : public codec {
 public:
  explicit nvfp4_codec(const quant_config& cfg) : codec(cfg), q_(blockq::nvfp4_options{cfg.rule, cfg.ties, true}) {}

  std::vector<tensor_spec> outputs(const std::string& name, const shape_t& shape) const override {
    const std::uint64_t k = shape.back();
    return {{name, dtype::U8, lead_with(shape, {k / 2})},
            {name + "_scale", dtype::F8_E4M3, lead_with(shape, {k / 16})},
            {name + "_scale_2", dtype::F32, {}}};
  }

  tensor_state prepare(std::span<const float> x, std::size_t k, const hessian_input* h) const override {
    tensor_state st;
    st.tensor_scale = q_.tensor_scale(x);
    st.extra = make_hessians(cfg_, k, h);
    st.extra_kind = 1;
    return st;
  }

  tensor_state prepare_gptq(std::span<const float> x, std::size_t k, std::span<const double> h) const override {
    return run_gptq(q_, cfg_, x, k, h, [](gptq_state& g, blockq::nvfp4_tensor& t) {
      g.codes = std::move(t.codes);
      g.scale_bytes = std::move(t.scales);
      g.tensor_scale = t.tensor_scale;
    });
  }

  void quantize_rows(std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1, const tensor_state& st,
                     std::span<const std::span<std::uint8_t>> parts) const override {
    const std::size_t n = (r1 - r0) * k;
    const auto xs = x.subspan(r0 * k, n);
    const auto packed = parts[0].subspan(r0 * k / 2, n / 2);
    const auto scales = parts[1].subspan(r0 * k / 16, n / 16);
    if (const gptq_state* g = gptq_of(st)) {
      blockq::pack_nibbles(std::span<const std::uint8_t>(g->codes).subspan(r0 * k, n), packed);
      std::memcpy(scales.data(), g->scale_bytes.data() + r0 * k / 16, n / 16);
    } else if (const blockq::block_hessians* h = hessians_of(st))
      q_.quantize_packed(xs, st.tensor_scale, *h, packed, scales);
    else
      q_.quantize_packed(xs, st.tensor_scale, packed, scales);
    if (r0 == 0) store_floats(parts[2], std::span<const float>(&st.tensor_scale, 1));
  }

  void dequantize_rows(std::span<const std::span<const std::uint8_t>> parts, std::size_t k, std::size_t r0,
                       std::size_t r1, std::span<float> out) const override {
    const std::size_t n = (r1 - r0) * k;
    const float s_t = load_floats(parts[2], 0, 1)[0];
    q_.dequantize_packed(parts[0].subspan(r0 * k / 2, n / 2), parts[1].subspan(r0 * k / 16, n / 16), s_t,
                         out.subspan(r0 * k, n));
  }

  double bits_per_element(std::size_t n) const override { return 4.5 + (n ? 32.0 / static_cast<double>(n) : 0.0); }

 private:
  blockq::nvfp4_quantizer<> q_;
};

// Codes of rows [r0, r1) (one a byte, row-major) into a part holding one
// row of `row_bytes` bytes per row: nibble-packed per row for <= 4 bits.
void store_codes(std::span<const std::uint8_t> codes, std::size_t k, int bits, std::size_t r0, std::size_t r1,
                 std::span<std::uint8_t> part) {
  const std::size_t rb = packed_row_bytes(k, bits);
  for (std::size_t r = r0; r < r1; ++r) {
    const auto row = codes.subspan((r - r0) * k, k);
    if (bits <= 4)
      blockq::pack_nibbles(row, part.subspan(r * rb, rb));
    else
      std::memcpy(part.data() + r * rb, row.data(), row.size());
  }
}
std::vector<std::uint8_t> load_codes(std::span<const std::uint8_t> part, std::size_t k, int bits, std::size_t r0,
                                     std::size_t r1) {
  const std::size_t rb = packed_row_bytes(k, bits);
  std::vector<std::uint8_t> codes((r1 - r0) * k);
  for (std::size_t r = r0; r < r1; ++r) {
    const auto dst = std::span<std::uint8_t>(codes).subspan((r - r0) * k, k);
    if (bits <= 4)
      blockq::unpack_nibbles(part.subspan(r * rb, rb), dst);
    else
      std::memcpy(dst.data(), part.data() + r * rb, k);
  }
  return codes;
}

// ------------------------------------------------------------------ FP4 with a float scale
class fp4_codec final : public codec {
 public:
  explicit fp4_codec(const quant_config& cfg) : codec(cfg), q_(blockq::fp4_options{cfg.block, cfg.rule, cfg.ties}) {}

  std::vector<tensor_spec> outputs(const std::string& name, const shape_t& shape) const override {
    const std::uint64_t k = shape.back();
    return {{name + "_codes", dtype::U8, lead_with(shape, {packed_row_bytes(k, 4)})},
            {name + "_scales", dtype::F32, lead_with(shape, {k / cfg_.block})}};
  }

  tensor_state prepare_gptq(std::span<const float> x, std::size_t k, std::span<const double> h) const override {
    return run_gptq(q_, cfg_, x, k, h, [](gptq_state& g, blockq::fp4_tensor& t) {
      g.codes = std::move(t.codes);
      g.scales = std::move(t.scales);
    });
  }

  void quantize_rows(std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1, const tensor_state& st,
                     std::span<const std::span<std::uint8_t>> parts) const override {
    const std::size_t n = (r1 - r0) * k, nb = n / cfg_.block;
    if (const gptq_state* g = gptq_of(st)) {
      store_codes(std::span<const std::uint8_t>(g->codes).subspan(r0 * k, n), k, 4, r0, r1, parts[0]);
      store_floats(parts[1].subspan(r0 * (k / cfg_.block) * 4), std::span<const float>(g->scales).subspan(r0 * (k / cfg_.block), nb));
      return;
    }
    std::vector<std::uint8_t> codes(n);
    std::vector<float> scales(nb);
    q_.quantize(x.subspan(r0 * k, n), codes, scales);
    store_codes(codes, k, 4, r0, r1, parts[0]);
    store_floats(parts[1].subspan(r0 * (k / cfg_.block) * 4), scales);
  }

  void dequantize_rows(std::span<const std::span<const std::uint8_t>> parts, std::size_t k, std::size_t r0,
                       std::size_t r1, std::span<float> out) const override {
    const std::size_t n = (r1 - r0) * k, nb = n / cfg_.block;
    const auto codes = load_codes(parts[0], k, 4, r0, r1);
    const auto scales = load_floats(parts[1], r0 * (k / cfg_.block), nb);
    q_.dequantize(codes, scales, out.subspan(r0 * k, n));
  }

  double bits_per_element(std::size_t) const override { return 4.0 + 32.0 / static_cast<double>(cfg_.block); }

 private:
  blockq::fp4_quantizer<> q_;
};

// ------------------------------------------------------------------ integers
class int_codec final : public codec {
 public:
  explicit int_codec(const quant_config& cfg)
      : codec(cfg),
        sym_(cfg.format->fam == family::sint),
        q_(blockq::uniform_options{cfg.format->bits, sym_, cfg.block, cfg.rule}) {}

  std::vector<tensor_spec> outputs(const std::string& name, const shape_t& shape) const override {
    const std::uint64_t k = shape.back();
    std::vector<tensor_spec> out{
        {name + "_codes", dtype::U8, lead_with(shape, {packed_row_bytes(k, cfg_.format->bits)})},
        {name + "_scales", dtype::F32, lead_with(shape, {k / cfg_.block})}};
    if (!sym_) out.push_back({name + "_mins", dtype::F32, lead_with(shape, {k / cfg_.block})});
    return out;
  }

  tensor_state prepare_gptq(std::span<const float> x, std::size_t k, std::span<const double> h) const override {
    return run_gptq(q_, cfg_, x, k, h, [](gptq_state& g, blockq::uniform_tensor& t) {
      g.codes = std::move(t.codes);
      g.scales = std::move(t.scales);
      g.mins = std::move(t.mins);
    });
  }

  void quantize_rows(std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1, const tensor_state& st,
                     std::span<const std::span<std::uint8_t>> parts) const override {
    const std::size_t n = (r1 - r0) * k, nb = n / cfg_.block, off = r0 * (k / cfg_.block) * 4;
    if (const gptq_state* g = gptq_of(st)) {
      const std::size_t first = r0 * (k / cfg_.block);
      store_codes(std::span<const std::uint8_t>(g->codes).subspan(r0 * k, n), k, cfg_.format->bits, r0, r1, parts[0]);
      store_floats(parts[1].subspan(off), std::span<const float>(g->scales).subspan(first, nb));
      if (!sym_) store_floats(parts[2].subspan(off), std::span<const float>(g->mins).subspan(first, nb));
      return;
    }
    std::vector<std::uint8_t> codes(n);
    std::vector<float> scales(nb), mins(sym_ ? 0 : nb);
    q_.quantize(x.subspan(r0 * k, n), codes, scales, mins);
    store_codes(codes, k, cfg_.format->bits, r0, r1, parts[0]);
    store_floats(parts[1].subspan(off), scales);
    if (!sym_) store_floats(parts[2].subspan(off), mins);
  }

  void dequantize_rows(std::span<const std::span<const std::uint8_t>> parts, std::size_t k, std::size_t r0,
                       std::size_t r1, std::span<float> out) const override {
    const std::size_t n = (r1 - r0) * k, nb = n / cfg_.block, first = r0 * (k / cfg_.block);
    const auto codes = load_codes(parts[0], k, cfg_.format->bits, r0, r1);
    const auto scales = load_floats(parts[1], first, nb);
    const auto mins = sym_ ? std::vector<float>{} : load_floats(parts[2], first, nb);
    q_.dequantize(codes, scales, mins, out.subspan(r0 * k, n));
  }

  double bits_per_element(std::size_t) const override {
    return cfg_.format->bits + (sym_ ? 32.0 : 64.0) / static_cast<double>(cfg_.block);
  }

 private:
  bool sym_;
  blockq::uniform_quantizer<> q_;
};

std::unique_ptr<codec> make_codec_unchecked(const quant_config& cfg) {
  const std::string_view n = cfg.format->name;
  switch (cfg.format->fam) {
    case family::mx:
      if (n == "mxfp4") return std::make_unique<mx_codec<blockq::e2m1>>(cfg);
      if (n == "mxfp6_e2m3") return std::make_unique<mx_codec<blockq::e2m3>>(cfg);
      if (n == "mxfp6_e3m2") return std::make_unique<mx_codec<blockq::e3m2>>(cfg);
      if (n == "mxfp8_e4m3") return std::make_unique<mx_codec<blockq::e4m3>>(cfg);
      if (n == "mxfp8_e5m2") return std::make_unique<mx_codec<blockq::e5m2>>(cfg);
      return std::make_unique<mx_codec<blockq::int8_mx>>(cfg);
    case family::nvfp4:
      return std::make_unique<nvfp4_codec>(cfg);
    case family::fp4:
      return std::make_unique<fp4_codec>(cfg);
    case family::sint:
    case family::uint:
      return std::make_unique<int_codec>(cfg);
  }
  throw error("unknown format");
}

}  // namespace

std::span<const format_info> all_formats() noexcept { return formats; }

const format_info* find_format(std::string_view name) noexcept {
  for (const auto& f : formats)
    if (f.name == name) return &f;
  return nullptr;
}

std::string format_list() {
  std::string s;
  for (const auto& f : formats) {
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s;
}

std::string_view to_string(layout l) noexcept { return l == layout::ggml ? "ggml" : "ocp"; }

tensor_state codec::prepare(std::span<const float>, std::size_t, const hessian_input*) const { return {}; }
tensor_state codec::prepare_gptq(std::span<const float>, std::size_t, std::span<const double>) const {
  throw error("--method gptq is not available for this output");
}

quant_config make_config(std::string_view format, std::string_view rule, std::size_t block, std::string_view ties,
                         std::string_view layout_name) {
  quant_config cfg;
  cfg.format = find_format(format);
  if (!cfg.format) throw error("unknown format '" + std::string(format) + "' (formats: " + format_list() + ")");
  const format_info& f = *cfg.format;
  cfg.rule = f.default_rule;
  if (!rule.empty()) {
    const auto r = blockq::parse_scale_rule(rule);
    if (!r)
      throw error("unknown rule '" + std::string(rule) +
                  "' (rules: ocp, ceil, floor, absmax, signed_max, minmax, mse, lsq, hessian)");
    cfg.rule = *r;
  }
  cfg.block = block ? block : f.default_block;
  if (block > (std::size_t{1} << 24)) throw error("--block " + std::to_string(block) + " is too large");
  if (f.fam == family::nvfp4 && cfg.block != 16)
    throw error("nvfp4 blocks are 16 elements, got --block " + std::to_string(cfg.block));
  if (f.fam == family::mx && f.bits <= 4 && cfg.block % 2 != 0)
    throw error(std::string(f.name) + " packs two codes a byte and needs an even --block, got " +
                std::to_string(cfg.block));
  if (!ties.empty()) {
    const auto t = blockq::parse_tie_mode(ties);
    if (!t) throw error("unknown --ties '" + std::string(ties) + "' (even, toward_zero, away)");
    cfg.ties = *t;
  }
  if (layout_name.empty() || layout_name == "ocp") {
    cfg.lay = layout::ocp;
  } else if (layout_name == "ggml") {
    cfg.lay = layout::ggml;
    if (f.name != "mxfp4") throw error("--layout ggml applies to mxfp4 only, not " + std::string(f.name));
    if (cfg.block != 32) throw error("--layout ggml needs blocks of 32, got --block " + std::to_string(cfg.block));
  } else {
    throw error("unknown --layout '" + std::string(layout_name) + "' (ocp, ggml)");
  }
  make_codec(cfg);  // the library's constructors check the rule
  return cfg;
}

std::unique_ptr<codec> make_codec(const quant_config& cfg) {
  try {
    return make_codec_unchecked(cfg);
  } catch (const std::invalid_argument& e) {
    throw error(library_message(e));
  }
}

}  // namespace blockq_tool
