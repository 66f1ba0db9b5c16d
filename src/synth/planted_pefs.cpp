#include "npeff/synth/planted_pefs.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "npeff/core/error.h"

namespace npeff::synth {

PlantedPefs make_planted_pefs(const PlantedOptions& o) {
  NPEFF_CHECK(o.examples > 0 && o.dim > 0 && o.components > 0,
              "planted PEFs need examples, dim "
              "and components > 0");
  NPEFF_CHECK(o.max_active >= 1 && o.max_active <= o.components, "max_active must be in [1, ",
              o.components, "], got ", o.max_active);
  NPEFF_CHECK(o.noise >= 0, "noise must be >= 0");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  at::Tensor h = at::randn({o.components, o.dim}, gen, at::kFloat);
  h = h / h.norm(2, {1}, true);
  at::Tensor w = at::zeros({o.examples, o.components}, at::kFloat);
  at::Tensor g = at::zeros({o.examples, o.max_active, o.dim}, at::kFloat);
  for (std::int64_t i = 0; i < o.examples; ++i) {
    const std::int64_t active =
        1 + at::randint(o.max_active, {1}, gen, at::kLong).item<std::int64_t>();
    const at::Tensor chosen = at::randperm(o.components, gen, at::kLong).narrow(0, 0, active);
    for (std::int64_t k = 0; k < active; ++k) {
      const std::int64_t j = chosen[k].item<std::int64_t>();
      const float weight = 0.5f + at::rand({1}, gen, at::kFloat).item<float>();
      w[i][j] = weight;
      g[i][k] = h[j] * std::sqrt(weight);
    }
    // ||G^T G||_F^2 = sum_jk w_j w_k (h_j . h_k)^2; normalise G_i and W_i to make it 1.
    const at::Tensor wi = w[i].to(at::kDouble);
    const at::Tensor hh = at::mm(h, h.t()).to(at::kDouble).square();
    const double norm = std::sqrt(at::dot(wi, at::mv(hh, wi)).item<double>());
    g[i].div_(static_cast<float>(std::sqrt(norm)));
    w[i].div_(static_cast<float>(norm));
  }
  if (o.noise > 0) {
    const at::Tensor noise = at::randn(g.sizes(), gen, at::kFloat);
    const at::Tensor scale = g.flatten(1).norm(2, {1}, true) / noise.flatten(1).norm(2, {1}, true);
    g = g + noise * (scale * o.noise).view({-1, 1, 1});
  }
  return {g, w, h};
}

}  // namespace npeff::synth
