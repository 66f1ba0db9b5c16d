#include "npeff/analysis/sae.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>

#include "npeff/core/error.h"
#include "npeff/core/log.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/resume.h"
#include "npeff/io/schema.h"

namespace npeff::analysis {
namespace {

struct Forward {
  at::Tensor centered;  ///< x - b_dec
  at::Tensor active;    ///< [B, k] TopK indices
  at::Tensor z;         ///< [B, C]
  at::Tensor x_hat;     ///< [B, h]
};

Forward forward(const SaeModel& s, const at::Tensor& x) {
  Forward f;
  f.centered = x - s.b_dec;
  const at::Tensor pre = at::addmm(s.b_enc, f.centered, s.w_enc.t());
  auto [values, indices] = pre.topk(s.k, 1, /*largest=*/true, /*sorted=*/true);
  f.active = indices;
  f.z = at::zeros_like(pre).scatter_(1, indices, values.clamp_min(0));
  f.x_hat = at::addmm(s.b_dec, f.z, s.w_dec.t());
  return f;
}

// Removes the component of each row (dim 1) / column (dim 0) of `grad` along the unit rows /
// columns of `w`: the tangent space of the unit sphere at w.
at::Tensor tangent(const at::Tensor& grad, const at::Tensor& w, int64_t dim) {
  return grad - (grad * w).sum(dim, true) * w;
}

at::Tensor unit(const at::Tensor& w, int64_t dim) {
  return w / w.norm(2, {dim}, true).clamp_min(1e-12);
}

struct Adam {
  at::Tensor m, v;
  void step(at::Tensor& p, const at::Tensor& g, double lr, int64_t t) {
    constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    if (!m.defined()) m = at::zeros_like(p), v = at::zeros_like(p);
    m.mul_(b1).add_(g, 1 - b1);
    v.mul_(b2).addcmul_(g, g, 1 - b2);
    const double c1 = 1 - std::pow(b1, static_cast<double>(t));
    const double c2 = 1 - std::pow(b2, static_cast<double>(t));
    p.sub_((m / c1) / ((v / c2).sqrt() + eps) * lr);
  }
};

// Everything training needs to continue bit for bit: the step, the SAE and Adam's moments (the
// batch order is a function of the step).
struct SaeState {
  std::int64_t step = 0;  // steps done
  SaeModel model;
  Adam w_enc, b_enc, w_dec, b_dec;
};

constexpr const char* kCheckpoint = "checkpoint.h5";
constexpr const char* kCheckpointSchema = "npeff.sae_checkpoint";

// Epoch e's generator of the batch order: a pure function of (seed, e).
std::mt19937_64 epoch_rng(std::uint64_t seed, std::int64_t epoch) {
  const auto e = static_cast<std::uint64_t>(epoch);
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(e), static_cast<std::uint32_t>(e >> 32), 0x5ae0u};
  return std::mt19937_64(seq);
}

void write_tensor(io::Group& g, const std::string& name, const at::Tensor& t) {
  const at::Tensor c = t.to(at::kFloat).contiguous().cpu();
  g.create_dataset(name, io::DType::kFloat32, c.sizes().vec()).write(c.data_ptr<float>());
}

// Reads `name` into a tensor shaped like `like` (npeff::Error on another shape).
at::Tensor read_tensor(const io::Group& g, const std::string& name, const at::Tensor& like) {
  const io::Dataset ds = g.dataset(name);
  ds.expect(io::DType::kFloat32, like.sizes().vec());
  at::Tensor t = at::empty(like.sizes(), at::kFloat);
  ds.read(t.data_ptr<float>());
  return t;
}

void write_checkpoint(io::File& f, const SaeState& st, const SaeTrainResult& history) {
  io::write_header(f, {kCheckpointSchema, 1}, nlohmann::json{{"step", st.step}});
  io::Group& root = f.root();
  root.set_attr("step", st.step);
  const std::pair<const char*, const at::Tensor*> params[] = {{"w_enc", &st.model.w_enc},
                                                              {"b_enc", &st.model.b_enc},
                                                              {"w_dec", &st.model.w_dec},
                                                              {"b_dec", &st.model.b_dec}};
  const Adam* adam[] = {&st.w_enc, &st.b_enc, &st.w_dec, &st.b_dec};
  io::Group moments = root.create_group("adam");
  for (size_t i = 0; i < 4; ++i) {
    write_tensor(root, params[i].first, *params[i].second);
    io::Group g = moments.create_group(params[i].first);
    write_tensor(g, "m", adam[i]->m);
    write_tensor(g, "v", adam[i]->v);
  }
  io::Group h = root.create_group("history");
  const auto k = static_cast<std::int64_t>(history.steps.size());
  h.create_dataset("step", io::DType::kInt64, {k}).write(history.steps.data());
  h.create_dataset("fvu", io::DType::kFloat64, {k}).write(history.fvu.data());
  h.create_dataset("seconds", io::DType::kFloat64, {k}).write(history.seconds.data());
}

// The state saved in `f`; `init` gives the shapes and k. Fills `history`.
SaeState read_checkpoint(const io::File& f, const SaeModel& init, SaeTrainResult& history) {
  io::expect_schema(f, kCheckpointSchema, 1);
  SaeState st;
  const io::Group& root = f.root();
  st.step = root.attr_int("step");
  st.model.k = init.k;
  std::pair<const char*, at::Tensor*> params[] = {{"w_enc", &st.model.w_enc},
                                                  {"b_enc", &st.model.b_enc},
                                                  {"w_dec", &st.model.w_dec},
                                                  {"b_dec", &st.model.b_dec}};
  const at::Tensor* like[] = {&init.w_enc, &init.b_enc, &init.w_dec, &init.b_dec};
  Adam* adam[] = {&st.w_enc, &st.b_enc, &st.w_dec, &st.b_dec};
  const io::Group moments = root.group("adam");
  for (size_t i = 0; i < 4; ++i) {
    *params[i].second = read_tensor(root, params[i].first, *like[i]);
    const io::Group g = moments.group(params[i].first);
    adam[i]->m = read_tensor(g, "m", *like[i]);
    adam[i]->v = read_tensor(g, "v", *like[i]);
  }
  const io::Group h = root.group("history");
  const std::int64_t k = h.dataset("step").shape().at(0);
  h.dataset("fvu").expect(io::DType::kFloat64, {k});
  h.dataset("seconds").expect(io::DType::kFloat64, {k});
  history.steps.resize(static_cast<size_t>(k));
  history.fvu.resize(static_cast<size_t>(k));
  history.seconds.resize(static_cast<size_t>(k));
  h.dataset("step").read(history.steps.data());
  h.dataset("fvu").read(history.fvu.data());
  h.dataset("seconds").read(history.seconds.data());
  return st;
}

}  // namespace

at::Tensor normalize_rows(const at::Tensor& x) {
  const at::Tensor n = x.norm(2, {1}, true);
  return x / at::where(n.gt(0), n, at::ones_like(n));
}

double fraction_of_variance_unexplained(const at::Tensor& x, const at::Tensor& x_hat) {
  const at::Tensor xd = x.to(at::kDouble), yd = x_hat.to(at::kDouble);
  const double residual = (xd - yd).pow(2).sum().item<double>();
  const double variance = (xd - xd.mean(0, true)).pow(2).sum().item<double>();
  return variance > 0 ? residual / variance : 0.0;
}

SaeModel init_sae(const at::Tensor& x, std::int64_t latents, std::int64_t k, std::uint64_t seed) {
  const std::int64_t h = x.size(1);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  at::Tensor w = at::empty({latents, h}, at::kFloat);
  float* p = w.data_ptr<float>();
  for (std::int64_t i = 0; i < latents * h; ++i) p[i] = normal(rng);
  SaeModel s;
  s.k = k;
  // Drawn on the CPU (one generator whatever the device), placed on x's device.
  s.w_enc = unit(w, 1).to(x.device());
  s.w_dec = s.w_enc.t().contiguous();  // Gao et al.: decoder = encoder transpose
  s.b_enc = at::zeros({latents}, x.options().dtype(at::kFloat));
  s.b_dec = x.to(at::kFloat).mean(0);
  return s;
}

SaeCodes sae_encode(const SaeModel& s, const at::Tensor& x) {
  SaeCodes out;
  const std::int64_t m = x.size(0), chunk = 8192;
  std::vector<at::Tensor> codes, active, recon;
  for (std::int64_t i = 0; i < m; i += chunk) {
    const Forward f = forward(s, x.slice(0, i, std::min(m, i + chunk)).to(at::kFloat));
    codes.push_back(f.z), active.push_back(f.active), recon.push_back(f.x_hat);
  }
  out.codes = at::cat(codes);
  out.active = at::cat(active);
  out.reconstruction = at::cat(recon);
  return out;
}

SaeGradients sae_gradients(const SaeModel& s, const at::Tensor& x) {
  const Forward f = forward(s, x);
  const double B = static_cast<double>(x.size(0));
  const at::Tensor err = f.x_hat - x;
  SaeGradients g;
  g.loss = err.to(at::kDouble).pow(2).sum().item<double>() / B;
  const at::Tensor d_hat = err * (2.0 / B);                  // dL/dx_hat [B, h]
  g.w_dec = at::mm(d_hat.t(), f.z);                          // [h, C]
  const at::Tensor d_z = at::mm(d_hat, s.w_dec);             // [B, C]
  const at::Tensor d_pre = d_z * f.z.gt(0).to(d_z.dtype());  // TopK and ReLU pass only z > 0
  g.w_enc = at::mm(d_pre.t(), f.centered);                   // [C, h]
  g.b_enc = d_pre.sum(0);
  g.b_dec = d_hat.sum(0) - at::mm(d_pre, s.w_enc).sum(0);
  return g;
}

nlohmann::json sae_resume_settings(const std::vector<std::string>& inputs, const SaeOptions& o) {
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& path : inputs) files.push_back(io::file_fingerprint(path));
  return {{"pefs", files},  {"latents", o.latents},          {"k", o.k},
          {"lr", o.lr},     {"batch_size", o.batch_size},    {"steps", o.steps},
          {"seed", o.seed}, {"record_every", o.record_every}};
}

SaeTrainResult train_sae(const at::Tensor& x_in, const SaeOptions& o,
                         const std::function<void(std::int64_t)>& on_step, io::ResumeDir* resume) {
  NPEFF_CHECK(x_in.dim() == 2 && x_in.size(0) > 0, "SAE input must be [m, h] with m > 0, got ",
              x_in.sizes());
  NPEFF_CHECK(o.latents >= 1, "--latents must be >= 1, got ", o.latents);
  NPEFF_CHECK(o.k >= 1 && o.k <= o.latents, "--k must lie in [1, latents = ", o.latents, "], got ",
              o.k);
  NPEFF_CHECK(o.lr > 0 && o.batch_size >= 1 && o.steps >= 0,
              "--lr must be > 0, --batch-size >= 1, --steps >= 0");
  NPEFF_CHECK(o.checkpoint_every >= 0, "--checkpoint-every must be >= 0");
  // Initialisation on the CPU (one generator, every device the same start), training on
  // o.device.
  const at::Tensor x_cpu = x_in.to(at::kFloat).cpu().contiguous();
  const at::Tensor x = x_cpu.to(o.device);
  const std::int64_t m = x.size(0), B = std::min(o.batch_size, m), per_epoch = m / B;
  SaeTrainResult r;
  SaeState st;
  st.model = init_sae(x_cpu, o.latents, o.k, o.seed);
  double seconds_before = 0;
  const bool resumed = resume != nullptr && resume->has(kCheckpoint);
  if (resumed) {
    st = read_checkpoint(resume->open(kCheckpoint), st.model, r);
    NPEFF_CHECK(st.step <= o.steps, resume->path(kCheckpoint), " is at step ", st.step,
                ", beyond --steps ", o.steps, ": delete ", resume->dir(), " to start over");
    seconds_before = r.seconds.empty() ? 0 : r.seconds.back();
    for (Adam* a : {&st.w_enc, &st.b_enc, &st.w_dec, &st.b_dec})
      a->m = a->m.to(o.device), a->v = a->v.to(o.device);
    log::info("sae: resuming ", resume->path(kCheckpoint), " at step ", st.step);
  }
  SaeModel& s = st.model;
  for (at::Tensor* t : {&s.w_enc, &s.b_enc, &s.w_dec, &s.b_dec}) *t = t->to(o.device);
  const auto t0 = std::chrono::steady_clock::now();
  const auto record = [&](std::int64_t step) {
    const double fvu = fraction_of_variance_unexplained(x, sae_encode(s, x).reconstruction);
    // Divergence: a non-finite FVU, or one 100x the first recorded (a sane run starts near 1
    // and falls). The checkpoint on disk is the last one written before.
    const double first = r.fvu.empty() ? fvu : r.fvu.front();
    if (!std::isfinite(fvu) || fvu > 100.0 * std::max(first, 1.0))
      throw DivergedError(
          detail::concat("sae diverged at step ", step, ": FVU ", fvu, " with --lr ", o.lr,
                         ". Rerun with a smaller --lr (e.g. ", o.lr / 10, ")",
                         resume != nullptr && resume->has(kCheckpoint)
                             ? "; the last good checkpoint is kept: " + resume->path(kCheckpoint)
                             : std::string()));
    r.steps.push_back(step);
    r.fvu.push_back(fvu);
    r.seconds.push_back(
        seconds_before +
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  if (!resumed) record(0);
  std::vector<std::int64_t> order(static_cast<size_t>(m));
  std::int64_t order_epoch = -1;
  for (std::int64_t step = st.step + 1; step <= o.steps; ++step) {
    const std::int64_t epoch = (step - 1) / per_epoch, j = (step - 1) % per_epoch;
    if (epoch != order_epoch) {  // this epoch's permutation, from (seed, epoch) alone
      std::iota(order.begin(), order.end(), 0);
      std::mt19937_64 rng = epoch_rng(o.seed, epoch);
      std::shuffle(order.begin(), order.end(), rng);
      order_epoch = epoch;
    }
    const at::Tensor idx = at::from_blob(order.data() + j * B, {B}, at::kLong).to(o.device);
    const SaeGradients g = sae_gradients(s, x.index_select(0, idx));
    st.w_enc.step(s.w_enc, tangent(g.w_enc, s.w_enc, 1), o.lr, step);
    st.w_dec.step(s.w_dec, tangent(g.w_dec, s.w_dec, 0), o.lr, step);
    st.b_enc.step(s.b_enc, g.b_enc, o.lr, step);
    st.b_dec.step(s.b_dec, g.b_dec, o.lr, step);
    s.w_enc = unit(s.w_enc, 1);
    s.w_dec = unit(s.w_dec, 0);
    st.step = step;
    if (step % std::max<std::int64_t>(1, o.record_every) == 0 || step == o.steps) record(step);
    if (resume != nullptr && o.checkpoint_every > 0 && step % o.checkpoint_every == 0 &&
        step < o.steps) {
      io::File f = resume->create(kCheckpoint);
      write_checkpoint(f, st, r);
      f.commit();  // replaces the previous checkpoint atomically
    }
    if (on_step) on_step(step);
  }
  const SaeCodes c = sae_encode(s, x);
  r.model = s;
  for (at::Tensor* t : {&r.model.w_enc, &r.model.b_enc, &r.model.w_dec, &r.model.b_dec})
    *t = t->cpu();
  r.final_fvu = fraction_of_variance_unexplained(x, c.reconstruction);
  r.dead_latents = c.codes.gt(0).any(0).logical_not().sum().item<std::int64_t>();
  return r;
}

}  // namespace npeff::analysis
