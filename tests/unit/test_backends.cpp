// The device test suite, after ggml's test-backend-ops: every op and stage with a device-generic
// entry point runs on the reference backend (CPU, all threads) and on a second backend (CUDA, or
// without a GPU the CPU with one thread and other block sizes: the self-check) on the same
// inputs, and the outputs are compared with the bound each op states (unit/backend_compare.h).
// A stage without a device path would run twice on the CPU and be reported "CPU only" (its
// k*OnDevice constant false); FPC, the SAE and k-means have theirs (issue 17).
// The report table goes to stdout, NPEFF_BACKENDS_MD and NPEFF_BACKENDS_JSON
// (tools/gpu-check.sh collects them).
//
// ReferenceModel compares npeff's logits and per-example gradients with PyTorch autograd: by
// default the transformers fixture of a tiny model, with NPEFF_REFERENCE_DIR a directory written
// by tools/gpu_reference.py (a random SmolLM2-360M-shaped model on the GPU machine).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "npeff/analysis/kmeans.h"
#include "npeff/analysis/sae.h"
#include "npeff/decomposition/decomposition.h"
#include "npeff/dist/communicator.h"
#include "npeff/model/loader.h"
#include "npeff/model/per_example_grad.h"
#include "npeff/pef/compute.h"
#include "npeff/perturbation/perturbation.h"
#include "npeff/projection/projection.h"
#include "npeff/recovery/recovery.h"
#include "npeff/synth/planted_pefs.h"
#include "unit/backend_compare.h"
#include "unit/model_fixtures.h"
#include "unit/task_fixtures.h"
#include "unit/test_util.h"

namespace npeff {
namespace {

using namespace npeff::testing;
using namespace npeff::testing::backends;
using projection::Kind;
using projection::Projection;

// Stages whose library entry point runs on the tensors' device today.
constexpr bool kFpcOnDevice = true;     // fpc() works on the device of h
constexpr bool kSaeOnDevice = true;     // SaeOptions::device
constexpr bool kKmeansOnDevice = true;  // spherical_kmeans works on the device of x

// float32 sums of the same terms in another order (CUDA, or CPU at another thread count).
const Bounds kFloatOrder{
    {Metric::kScaled, 1e-4}, {Metric::kScaled, 1e-5}, "float32 sums in another order"};

std::string dims(std::initializer_list<int64_t> v) {
  std::string s;
  for (int64_t x : v) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

// ---- projection ---------------------------------------------------------------------------

struct ProjCase {
  int64_t rows, n, d, offset;
  Kind kind;
  uint64_t seed;
};
const ProjCase kProjCases[] = {{2, 100003, 256, 12345, Kind::kSparse, 3},
                               {16, 50000, 1024, 0, Kind::kSparse, 5},
                               {3, 5000, 64, 7, Kind::kDense, 9}};

TEST(Backends, ProjectionThroughTheDispatcher) {
  const Backend& b = second();
  // CUDA sums each output's terms per segment (projection.h): the same ~32 n / d float32 terms
  // in another order; the CPU promises the same bits at any thread count and slicing.
  const Bounds fwd{{Metric::kScaled, 2e-5},
                   {Metric::kMaxAbs, 0},
                   "CPU: bit-identical at any thread count; CUDA: summation order"};
  const Bounds transpose{
      {Metric::kMaxAbs, 0}, {Metric::kMaxAbs, 0}, "bit-identical on CPU and CUDA (projection.h)"};
  for (const ProjCase& c : kProjCases) {
    const Projection p({c.seed, c.d, 0, c.kind});
    const std::string shape = dims({c.rows, c.n}) + " -> d " + std::to_string(c.d) +
                              (c.kind == Kind::kDense ? " dense" : "");
    at::manual_seed(c.seed);
    const at::Tensor big = at::randn({c.rows, c.n + 5});  // rows with a stride != n
    const at::Tensor x = big.narrow(1, 2, c.n);
    at::Tensor want;
    {
      OnBackend on(reference());
      want = projection::project(p, x, c.offset);
    }
    OnBackend on(b);
    const at::Tensor xb = big.to(b.device).narrow(1, 2, c.n);
    check("project", shape, b, want, projection::project(p, xb, c.offset), fwd);
    // Streamed in three uneven slices: the same as one call.
    at::Tensor out = at::zeros({c.rows, c.d}, xb.options());
    const int64_t cut1 = c.n / 3, cut2 = c.n - 1;
    projection::project_accumulate(p, xb.narrow(1, 0, cut1), c.offset, out);
    projection::project_accumulate(p, xb.narrow(1, cut1, cut2 - cut1), c.offset + cut1, out);
    projection::project_accumulate(p, xb.narrow(1, cut2, c.n - cut2), c.offset + cut2, out);
    check("project, 3 slices", shape, b, want, out, fwd);
    const at::Tensor y = at::randn({c.rows, c.d});
    at::Tensor t_want;
    {
      OnBackend on_ref(reference());
      t_want = projection::project_transpose(p, y, c.offset, c.n);
    }
    check("project_transpose", shape, b, t_want,
          projection::project_transpose(p, y.to(b.device), c.offset, c.n), transpose);
  }
}

// ---- decomposition ------------------------------------------------------------------------

struct DecState {
  at::Tensor h_step, w_update, w, h, losses;
};

// One H-only step, one W update alone, then three joint steps (their losses at the start).
DecState run_decomposition(const Backend& b, const at::Tensor& g, at::ScalarType storage,
                           decomposition::ComputeDtype dtype, int64_t components) {
  OnBackend on(b);
  const at::Tensor gb = g.to(b.device, storage);
  decomposition::Decomposer dec = storage == at::kFloat
                                      ? decomposition::Decomposer(gb, components)
                                      : decomposition::Decomposer(decomposition::memory_source(gb),
                                                                  components, dist::world(), -1, 0);
  dec.set_block_examples(b.block_examples);
  // TF32 is cuBLAS-wide: the Decomposer must switch it on only around its own products, or
  // every later float32 product here (the fp32 variants, fit-coeffs) would be TF32 (checked
  // below).
  const bool tf32_before = at::globalContext().allowTF32CuBLAS();
  dec.set_compute_dtype(dtype);
  dec.initialize(3);
  DecState s;
  dec.step(false, 1e-2);
  s.h_step = dec.h().cpu().clone();
  dec.update_coefficients();
  // clone(): on the CPU, .cpu() returns W itself, which the joint steps below update in place.
  s.w_update = dec.w().cpu().clone();
  std::vector<double> losses;
  for (int t = 0; t < 3; ++t) {
    double loss = 0;
    dec.step(true, 3e-3, &loss);
    losses.push_back(loss);
  }
  losses.push_back(dec.loss());
  s.w = dec.w().cpu();
  s.h = dec.h().cpu();
  s.losses = at::tensor(losses, at::kDouble);
  EXPECT_EQ(at::globalContext().allowTF32CuBLAS(), tf32_before)
      << "the Decomposer left cuBLAS's TF32 switch changed";
  return s;
}

TEST(Backends, DecompositionStep) {
  const Backend& b = second();
  const int64_t m = 60, n = 128, C = 6;
  synth::PlantedPefs planted = synth::make_planted_pefs({m, n, 8, 2, 0.05, 7});
  at::Tensor g = planted.pefs.clone();
  const at::Tensor norms = decomposition::normalize_pefs(g);
  {
    OnBackend on(b);
    at::Tensor gb = planted.pefs.to(b.device);
    const at::Tensor nb = decomposition::normalize_pefs(gb);
    check("normalize_pefs", dims({m, 2, n}), b, g, gb, kFloatOrder);
    check("normalize_pefs norms", dims({m}), b, norms, nb, kFloatOrder);
  }
  using decomposition::ComputeDtype;
  struct Variant {
    const char* name;
    at::ScalarType storage;
    ComputeDtype dtype;
    Bounds bounds;
  };
  // Bounds: fp32 differs by summation order only (NMSE ~1e-12 per product; 5 steps compound it
  // mildly). tf32 (10-bit mantissa products, CUDA only) is compared with the CPU's fp32.
  // bf16: both sides round G and H to bfloat16 alike, but products accumulated in another order
  // round to neighbouring bfloat16 values (2^-8 relative) from the first step on: NMSE 2e-5
  // measured between 1 and 2 CPU threads. fp16 storage: both sides hold the same fp16 G.
  const Variant variants[] = {
      {"fp32",
       at::kFloat,
       ComputeDtype::kFp32,
       {{Metric::kNmse, 1e-8}, {Metric::kNmse, 1e-8}, "fp32 summation order"}},
      {"tf32",
       at::kFloat,
       ComputeDtype::kTf32,
       {{Metric::kNmse, 1e-4}, {Metric::kNmse, 0}, "tf32 products vs CPU fp32"}},
      {"bf16",
       at::kFloat,
       ComputeDtype::kBf16,
       {{Metric::kNmse, 1e-3}, {Metric::kNmse, 1e-3}, "bf16 inputs, fp32 accumulation"}},
      {"fp16 storage, fp32",
       at::kHalf,
       ComputeDtype::kFp32,
       {{Metric::kNmse, 1e-8}, {Metric::kNmse, 1e-8}, "same fp16 G, fp32 summation order"}}};
  const std::string shape = dims({m, 2, n}) + ", C " + std::to_string(C);
  for (const Variant& v : variants) {
    const std::string op = std::string("decompose ") + v.name;
    if (v.dtype == ComputeDtype::kTf32 && !b.cuda()) {
      not_applicable(op, shape, b, "tf32 is CUDA-only");
      continue;
    }
    const ComputeDtype ref_dtype = v.dtype == ComputeDtype::kTf32 ? ComputeDtype::kFp32 : v.dtype;
    const DecState want = run_decomposition(reference(), g, v.storage, ref_dtype, C);
    const DecState got = run_decomposition(b, g, v.storage, v.dtype, C);
    check(op + ": H step", shape, b, want.h_step, got.h_step, v.bounds);
    check(op + ": W update", shape, b, want.w_update, got.w_update, v.bounds);
    check(op + ": 3 joint steps, W", shape, b, want.w, got.w, v.bounds);
    check(op + ": 3 joint steps, H", shape, b, want.h, got.h, v.bounds);
    check(op + ": losses", shape, b, want.losses, got.losses, v.bounds);
  }
  // fit-coeffs: W fitted to fixed components (the planted ones).
  const at::Tensor w_want = decomposition::fit_coefficients(g, planted.h, 20, 5);
  OnBackend on(b);
  const at::Tensor gb = g.to(b.device), hb = planted.h.to(b.device);
  check("fit_coefficients (20 steps)", shape, b, w_want,
        decomposition::fit_coefficients(gb, hb, 20, 5),
        {{Metric::kNmse, 1e-8}, {Metric::kNmse, 1e-8}, "fp32 summation order"});
  check("npeff_example_losses", shape, b, decomposition::npeff_example_losses(g, w_want, planted.h),
        decomposition::npeff_example_losses(gb, w_want.to(b.device), hb), kFloatOrder);
}

// ---- models: per-example gradients, compute-pefs rows, perturbation KL ----------------------

// The tiny model moved to the backend's device (weights stay float32).
model::LoadedModel load_on(const std::string& name, const Backend& b) {
  model::LoadedModel m = model::load_model(tiny_model(name));
  if (b.cuda()) m.model->to(b.device, at::kFloat);
  return m;
}

// Per-example gradients of every selected parameter, concatenated: [G, k, total] on the CPU.
at::Tensor all_gradients(const model::CausalLM& m, const model::ParameterSelection& sel,
                         const model::GradientBatch& batch, const model::Objectives& obj, bool loop,
                         at::Tensor* objectives) {
  std::vector<at::Tensor> parts;
  const auto consumer = [&](const model::ParameterSlice&, const at::Tensor& g) {
    parts.push_back(g.detach().cpu());
  };
  const model::GradientResult r =
      loop ? model::per_example_gradients_loop(m, sel, batch, obj, consumer)
           : model::per_example_gradients(m, sel, batch, obj, consumer);
  *objectives = r.objectives.cpu();
  return at::cat(parts, 2);
}

TEST(Backends, PerExampleGradients) {
  const Backend& b = second();
  for (const char* name : {"llama_untied_gqa", "qwen2_bias", "llama3_rope"}) {
    const safetensors::File fx =
        safetensors::File::open(tiny_model(name) + "/expected.safetensors");
    model::GradientBatch batch;
    batch.input_ids = read_expected(fx, "input_ids");
    batch.attention_mask = read_expected(fx, "attention_mask");
    const at::Tensor targets = at::tensor(std::vector<int64_t>{5, 7, 17, 3, 42, 90}).view({3, 2});
    const auto obj = model::last_token_log_prob_objectives(targets);
    const std::string shape = std::string(name) + ", B 3 x T 7, k 2";
    at::Tensor want_obj, got_obj;
    at::Tensor want;
    {
      OnBackend on(reference());
      const model::LoadedModel m = load_on(name, reference());
      const auto sel = model::ParameterSelection::parse(*m.model, "*,!model.embed_tokens.weight");
      want = all_gradients(*m.model, sel, batch, obj, false, &want_obj);
    }
    OnBackend on(b);
    const model::LoadedModel m = load_on(name, b);
    const auto sel = model::ParameterSelection::parse(*m.model, "*,!model.embed_tokens.weight");
    model::GradientBatch bb = batch;
    bb.input_ids = batch.input_ids.to(b.device);
    bb.attention_mask = batch.attention_mask.to(b.device);
    check("per-example gradients (engine)", shape, b, want,
          all_gradients(*m.model, sel, bb, obj, false, &got_obj), kFloatOrder);
    check("per-example objectives", shape, b, want_obj, got_obj, kFloatOrder);
    check("per-example gradients (loop)", shape, b, want,
          all_gradients(*m.model, sel, bb, obj, true, &got_obj), kFloatOrder);
  }
}

class BackendsWithTask : public TempDirTest {
 protected:
  task::Task task() { return toy_sentiment_task(path("d.tsv")); }
};

TEST_F(BackendsWithTask, ComputePefsRows) {
  const Backend& b = second();
  const task::Task t = task();
  const auto tok = char_tokenizer();
  const std::vector<task::Example> ex = task::load_examples(t, 0, 5);
  const Projection proj({11, 64, 0, Kind::kSparse});
  struct Kind_ {
    const char* name;
    pef::PefKind kind;
    int64_t eps;
  };
  for (const Kind_& k : {Kind_{"exact", pef::PefKind::kExact, 0},
                         Kind_{"expectation K=4", pef::PefKind::kExpectation, 4},
                         Kind_{"gradient", pef::PefKind::kGradient, 0}}) {
    pef::PefOptions o;
    o.kind = k.kind;
    o.eps = k.eps;
    o.eps_seed = 3;
    const auto run = [&](const Backend& on_b) {
      OnBackend on(on_b);
      const model::LoadedModel m = load_on("llama_untied_gqa", on_b);
      const auto sel =
          model::ParameterSelection::parse(*m.model, model::ParameterSelection::kDefault);
      const pef::PefComputer computer(*m.model, tok, t, sel, proj, o);
      return computer.compute(ex);
    };
    const pef::PefBatch want = run(reference());
    const pef::PefBatch got = run(b);
    const std::string op = std::string("compute-pefs ") + k.name;
    const std::string shape = "llama_untied_gqa, 5 examples, d 64";
    check(op + ": PEFs", shape, b, want.pefs, got.pefs, kFloatOrder);
    check(op + ": raw norms", shape, b, want.raw_norms, got.raw_norms, kFloatOrder);
    check(op + ": p(y|x)", shape, b, want.probs, got.probs, kFloatOrder);
  }
}

TEST_F(BackendsWithTask, PerturbationKl) {
  const Backend& b = second();
  const task::Task t = task();
  const auto tok = char_tokenizer();
  const std::vector<task::Example> ex = task::load_examples(t);
  const std::vector<task::Example> top(ex.begin(), ex.begin() + 3), base(ex.begin() + 3, ex.end());
  const auto run = [&](const Backend& on_b, at::Tensor* log_probs) {
    OnBackend on(on_b);
    const model::LoadedModel m = load_on("llama_untied_gqa", on_b);
    const auto sel =
        model::ParameterSelection::parse(*m.model, model::ParameterSelection::kDefault);
    at::manual_seed(17);
    const perturbation::SparseVector v{
        std::get<0>(at::randperm(sel.total(), at::kLong).narrow(0, 0, 200).sort()),
        at::randn({200})};
    const at::Tensor lt = perturbation::task_log_probs(*m.model, tok, t, top, 2);
    const at::Tensor lb = perturbation::task_log_probs(*m.model, tok, t, base, 2);
    *log_probs = at::cat({lt, lb});
    const perturbation::Selectivity s =
        perturbation::measure_selectivity(*m.model, tok, t, sel, v, 2.0, top, lt, base, lb, 2);
    return at::cat({s.kl_top_examples[0], s.kl_top_examples[1],
                    at::tensor(std::vector<double>{s.kl_baseline[0], s.kl_baseline[1]})});
  };
  at::Tensor lp_want, lp_got;
  const at::Tensor want = run(reference(), &lp_want);
  const at::Tensor got = run(b, &lp_got);
  std::cout << "[ info ] KL per example (top +/-, baseline +/-): " << want << "\n";
  const std::string shape = "llama_untied_gqa, 8 examples, 200-entry direction";
  check("task_log_probs", shape, b, lp_want, lp_got, kFloatOrder);
  // KL = sum p (log p - log q) from float32 log-probabilities: their summation-order errors
  // (~1e-6) relative to KLs of ~1e-2.
  check("perturbation KL (top, baseline)", shape, b, want, got,
        {{Metric::kScaled, 1e-3}, {Metric::kScaled, 1e-4}, "differences of float32 log-probs"});
}

// ---- recover (FPC), SAE, k-means ------------------------------------------------------------

TEST(Backends, FpcRecovery) {
  const Backend& b = kFpcOnDevice ? second() : cpu_only_second();
  const int64_t n = 20000, d = 512, k = 12;
  const Projection P({5, d, 0, Kind::kSparse});
  at::manual_seed(8);
  at::Tensor truth = at::zeros({n});
  truth.index_put_({at::randperm(n, at::kLong).narrow(0, 0, k)}, at::randn({k}));
  const auto solve = [&](const Backend& on_b) {
    OnBackend on(on_b);
    const auto forward = [&](const at::Tensor& u) {
      return projection::project(P, u.view({1, n})).view({d});
    };
    const auto adjoint = [&](const at::Tensor& y) {
      return projection::project_transpose(P, y.view({1, d}), 0, n).view({n});
    };
    recovery::FpcOptions o;
    o.final_iterations = 15;
    return recovery::fpc(forward, adjoint, forward(truth.to(on_b.device)), n, o).u.cpu();
  };
  const at::Tensor want = solve(reference());
  check("FPC recovery u", dims({n}) + " from d " + std::to_string(d) + ", k " + std::to_string(k),
        b, want, solve(b),
        {{Metric::kNmse, 1e-6}, {Metric::kNmse, 1e-6}, "float32 reductions in another order"},
        kFpcOnDevice ? Path::kDevice : Path::kCpuOnly);
}

TEST(Backends, SaeStep) {
  const Backend& b = kSaeOnDevice ? second() : cpu_only_second();
  at::manual_seed(5);
  const at::Tensor x = analysis::normalize_rows(at::randn({256, 24}));
  const auto run = [&](const Backend& on_b) {
    OnBackend on(on_b);
    const at::Tensor xb = x.to(on_b.device);
    const analysis::SaeModel init = analysis::init_sae(xb, 32, 4, 1);
    const analysis::SaeGradients g = analysis::sae_gradients(init, xb);
    analysis::SaeOptions o;
    o.latents = 32;
    o.k = 4;
    o.batch_size = 64;
    o.steps = 10;
    o.record_every = 5;
    o.device = on_b.device;
    const analysis::SaeTrainResult r = analysis::train_sae(xb, o);
    return std::make_pair(at::cat({g.w_enc.flatten().cpu(), g.w_dec.flatten().cpu()}),
                          at::cat({r.model.w_enc.flatten().cpu(), r.model.w_dec.flatten().cpu()}));
  };
  const auto want = run(reference());
  const auto got = run(b);
  const Path path = kSaeOnDevice ? Path::kDevice : Path::kCpuOnly;
  const Bounds bounds{{Metric::kNmse, 1e-8}, {Metric::kNmse, 1e-8}, "fp32 summation order"};
  check("SAE gradients", "256x24, 32 latents, k 4", b, want.first, got.first, bounds, path);
  check("SAE 10 Adam steps", "256x24, 32 latents, k 4", b, want.second, got.second, bounds, path);
}

TEST(Backends, KMeans) {
  const Backend& b = kKmeansOnDevice ? second() : cpu_only_second();
  const int64_t k = 5, per = 40, d = 32;
  at::manual_seed(11);
  const at::Tensor centers = analysis::normalize_rows(at::randn({k, d}));
  const at::Tensor x = centers.repeat_interleave(per, 0) + 0.15 * at::randn({k * per, d});
  const auto run = [&](const Backend& on_b) {
    OnBackend on(on_b);
    analysis::KMeansOptions o;
    o.clusters = k;
    o.restarts = 2;
    o.seed = 4;
    return analysis::spherical_kmeans(x.to(on_b.device), o);
  };
  const analysis::KMeansResult want = run(reference());
  const analysis::KMeansResult got = run(b);
  const Path path = kKmeansOnDevice ? Path::kDevice : Path::kCpuOnly;
  const std::string shape = dims({k * per, d}) + ", k " + std::to_string(k);
  check("k-means assignment", shape, b, want.assignment, got.assignment,
        {{Metric::kMaxAbs, 0}, {Metric::kMaxAbs, 0}, "well-separated clusters: no ties"}, path);
  check("k-means centroids", shape, b, want.centroids, got.centroids,
        {{Metric::kNmse, 1e-10}, {Metric::kNmse, 1e-10}, "fp32 summation order"}, path);
}

// ---- npeff against PyTorch autograd (phase b of tools/gpu-check.sh) ------------------------

TEST(ReferenceModel, LogitsAndGradientsMatchTorch) {
  const Backend& b = second();
  const char* env = std::getenv("NPEFF_REFERENCE_DIR");
  const std::string dir = env ? env : tiny_model("llama_untied_gqa");
  // Bounds: a reference directory states its own (tools/gpu_reference.py: deep model, CUDA on
  // both sides); the tiny fixtures' are those of test_model/test_model_grad.
  double logit_bound = 1e-5, grad_bound = 1e-4, norm_bound = 1e-4;
  std::string source = "transformers fixture";
  if (env) {
    const nlohmann::json meta = read_json(dir + "/expected.json");
    logit_bound = meta.at("bounds").at("logits");
    grad_bound = meta.at("bounds").at("grad");
    norm_bound = meta.at("bounds").at("grad_norm");
    source = meta.value("source", "torch autograd");
  }
  OnBackend on(b);
  model::LoadedModel m = model::load_model(dir);
  if (b.cuda()) m.model->to(b.device, at::kFloat);
  const safetensors::File fx = safetensors::File::open(dir + "/expected.safetensors");
  const at::Tensor ids = read_expected(fx, "input_ids"), mask = read_expected(fx, "attention_mask");
  const at::Tensor logits = read_expected(fx, "logits");
  const std::string summary = m.model->config().summary();
  const std::string shape = std::filesystem::path(dir).filename().string() + " (" +
                            summary.substr(0, summary.find(',')) + "), B " +
                            std::to_string(ids.size(0)) + " x T " + std::to_string(ids.size(1));
  const at::Tensor real = mask.to(at::kBool).unsqueeze(-1).expand_as(logits);
  at::Tensor got_logits;
  {
    at::NoGradGuard no_grad;
    got_logits = m.model->forward(ids.to(b.device), mask.to(b.device)).cpu();
  }
  const Bounds lb{{Metric::kScaled, logit_bound}, {Metric::kScaled, logit_bound}, source};
  check("logits vs torch", shape, b, logits.masked_select(real), got_logits.masked_select(real),
        lb);
  // Per-example gradients of log p(target) at the last real token, every parameter but the
  // embedding; the reference stores full entries for some tensors and norms for all.
  model::GradientBatch batch;
  batch.input_ids = ids.to(b.device);
  batch.attention_mask = mask.to(b.device);
  const at::Tensor targets = read_expected(fx, "targets").view({-1, 1});
  const auto sel = model::ParameterSelection::parse(*m.model, "*,!model.embed_tokens.weight");
  double worst = 0, worst_norm = 0;
  std::string worst_name, worst_norm_name;
  int64_t full = 0, normed = 0;
  const model::GradientResult r = model::per_example_gradients(
      *m.model, sel, batch, model::last_token_log_prob_objectives(targets),
      [&](const model::ParameterSlice& s, const at::Tensor& g) {
        for (int64_t e = 0; e < ids.size(0); ++e) {
          const std::string key = std::to_string(e) + "." + s.name;
          if (fx.find("grad." + key) != nullptr) {
            const double err =
                scaled_error(g[e][0].cpu(), read_expected(fx, "grad." + key).reshape(-1));
            full += e == 0;
            if (!(err <= worst)) worst = err, worst_name = key;
          }
          if (fx.find("grad_norm." + key) != nullptr) {
            const double want = read_expected(fx, "grad_norm." + key).item<double>();
            const double got = g[e][0].to(at::kDouble).norm().item<double>();
            const double err = std::abs(got - want) / std::max(want, 1e-30);
            normed += e == 0;
            if (!(err <= worst_norm)) worst_norm = err, worst_norm_name = key;
          }
        }
      });
  check("objectives log p(target) vs torch", shape, b, read_expected(fx, "objective"),
        r.objectives.select(1, 0).cpu(), lb);
  const auto row = [&](const std::string& op, double err, double bound, const std::string& why) {
    // The worst tensor's error, as a 1-entry comparison against 0.
    check(op, shape, b, at::zeros({1}, at::kDouble), at::full({1}, err, at::kDouble),
          {{Metric::kMaxAbs, bound}, {Metric::kMaxAbs, bound}, why});
  };
  ASSERT_GT(full + normed, 0) << "no grad.* or grad_norm.* tensors in " << dir;
  if (full > 0)
    row("per-example gradients vs torch (" + std::to_string(full) + " tensors, worst)", worst,
        grad_bound, "max abs / max |ref| of the worst tensor: " + worst_name);
  if (normed > 0)
    row("gradient norms vs torch (" + std::to_string(normed) + " tensors, worst)", worst_norm,
        norm_bound, "relative error of the worst tensor: " + worst_norm_name);
}

}  // namespace
}  // namespace npeff
