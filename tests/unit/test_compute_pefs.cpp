// PEFs of real (tiny) models against an independent brute force: each example alone, its rows
// spelled out as plain causal sequences (suffix tasks: one row per label, no shared-prompt
// layout), autograd on the full selected-parameter vector, the projection as a materialised
// float64 matrix. Tolerance 1e-5 of the largest entry: float32 forward/backward and float32
// projection sums over ~2e4 terms, against float64 references of the same float32 gradients.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "npeff/model/loader.h"
#include "npeff/pef/compute.h"
#include "npeff/task/predict.h"
#include "unit/model_fixtures.h"
#include "unit/task_fixtures.h"
#include "unit/test_util.h"

namespace npeff::pef {
namespace {

using namespace npeff::testing;
using namespace npeff::task;  // Task, Example, load_examples: the tasks PEFs are computed for
using namespace npeff::io;    // the PEF files
using json = nlohmann::json;

class ComputePefsTest : public TempDirTest {
 protected:
  Task task(const std::string& kind, const std::vector<std::string>& labels,
            const std::string& prefix = " ") {
    std::ofstream(path("d.tsv")) << "sentence\tlabel\ngreat fun\t1\nawful, dull\t0\nfine\t1\n"
                                    "not good\t0\nWow!\t1\n";
    json j = {{"name", "t"},
              {"kind", kind},
              {"template", "Review: {text}\nSentiment:"},
              {"label_prefix", prefix},
              {"data",
               {{"format", "tsv"},
                {"path", path("d.tsv")},
                {"fields", {{"text", "sentence"}}},
                {"label_field", "label"},
                {"label_names", {{"0", labels[0]}, {"1", labels[1]}}}}}};
    if (kind != "vocab") j["labels"] = labels;
    if (kind == "vocab") j["data"].erase("label_field");
    return Task::from_json_text(j.dump(), "task.json");
  }
};

// Differentiable log p over the task's categories for one example, from full-length causal rows.
at::Tensor brute_log_probs(const model::CausalLM& m, const tokenizer::Tokenizer& tok, const Task& t,
                           const Example& e) {
  const std::vector<int32_t> prompt = tok.encode(e.prompt);
  const auto row = [](std::vector<int32_t> ids) {
    return at::tensor(std::vector<int64_t>(ids.begin(), ids.end())).view({1, -1});
  };
  if (t.kind != TaskKind::kSuffixes) {
    const at::Tensor in = row(prompt);
    const at::Tensor logits = m.forward(in, at::ones_like(in))[0][in.size(1) - 1];
    if (t.kind == TaskKind::kVocab) return at::log_softmax(logits, 0);
    std::vector<at::Tensor> first;
    for (const auto& l : label_token_ids(t, tok)) first.push_back(logits[l[0]]);
    return at::log_softmax(at::stack(first), 0);
  }
  std::vector<at::Tensor> scores;
  for (const auto& l : label_token_ids(t, tok)) {
    std::vector<int32_t> ids = prompt;
    ids.insert(ids.end(), l.begin(), l.end());
    const at::Tensor in = row(ids);
    const at::Tensor lp = at::log_softmax(m.forward(in, at::ones_like(in))[0], -1);
    at::Tensor s = at::zeros({}, at::kFloat);
    for (size_t j = 0; j < l.size(); ++j)
      s = s + lp[static_cast<int64_t>(prompt.size() + j - 1)][l[j]];
    scores.push_back(s);
  }
  return at::log_softmax(at::stack(scores), 0);
}

// Gradient of each entry of `objectives` [k] with respect to the selected parameters: [k, n].
at::Tensor full_gradients(const model::CausalLM& m, const model::ParameterSelection& sel,
                          const std::function<at::Tensor()>& objectives) {
  std::vector<at::Tensor> leaves;
  for (const auto& s : sel.slices()) {
    leaves.push_back(m.parameters()[s.index].tensor);
    leaves.back().set_requires_grad(true);
  }
  const at::Tensor obj = objectives();
  at::Tensor rows = at::zeros({obj.size(0), sel.total()}, at::kDouble);
  for (int64_t j = 0; j < obj.size(0); ++j) {
    const auto grads = torch::autograd::grad({obj[j]}, leaves, {}, true, false, true);
    for (size_t s = 0; s < leaves.size(); ++s) {
      if (grads[s].defined())
        rows[j]
            .narrow(0, sel.slices()[s].offset, sel.slices()[s].numel)
            .copy_(grads[s].reshape(-1));
    }
  }
  for (at::Tensor& l : leaves) l.set_requires_grad(false);
  return rows;
}

at::Tensor materialise(const projection::Projection& p, int64_t n) {
  at::Tensor a = at::zeros({p.dim(), n}, at::kDouble);
  auto acc = a.accessor<double, 2>();
  for (int64_t j = 0; j < p.dim(); ++j)
    for (int64_t i = 0; i < n; ++i) acc[j][i] = p.entry(j, i);
  return a;
}

double gram_norm(const at::Tensor& g) {  // ||G^T G||_F = ||G G^T||_F
  return at::matmul(g, g.t()).norm().item<double>();
}

struct Case {
  const char* model;
  const char* kind;
  PefKind pef;
  int64_t top_k;
};

void check_against_brute_force(const Case& c, const Task& t) {
  SCOPED_TRACE(std::string(c.model) + " " + c.kind + " " + pef_kind_name(c.pef));
  const model::LoadedModel m = model::load_model(tiny_model(c.model));
  const tokenizer::Tokenizer tok = char_tokenizer();
  const auto sel = model::ParameterSelection::parse(*m.model, model::ParameterSelection::kDefault);
  const projection::Projection proj({11, 48, 0, projection::Kind::kSparse});
  PefOptions o;
  o.kind = c.pef;
  o.top_k = c.top_k;
  const PefComputer computer(*m.model, tok, t, sel, proj, o);
  const std::vector<Example> ex = load_examples(t, 0, 3);  // different lengths: padding
  const PefBatch got = computer.compute(ex);
  ASSERT_EQ(got.pefs.sizes(), (at::IntArrayRef{3, computer.rank(), 48}));
  const at::Tensor A = materialise(proj, sel.total());
  for (size_t i = 0; i < ex.size(); ++i) {
    SCOPED_TRACE("example " + std::to_string(i));
    at::Tensor p;
    const at::Tensor rows = full_gradients(*m.model, sel, [&] {
      const at::Tensor lp = brute_log_probs(*m.model, tok, t, ex[i]);
      p = lp.detach().exp();
      if (c.pef == PefKind::kGradient) return lp[p.argmax()].view({1});
      const at::Tensor idx =
          c.top_k > 0 ? std::get<1>(p.topk(c.top_k)) : at::arange(p.size(0), at::kLong);
      return p.index_select(0, idx).sqrt() * lp.index_select(0, idx);
    });
    const at::Tensor projected = at::matmul(rows, A.t());  // [k, d]
    const double raw = gram_norm(projected);
    EXPECT_NEAR(got.param_norms[i].item<double>(), gram_norm(rows), 1e-5 * gram_norm(rows));
    EXPECT_NEAR(got.raw_norms[i].item<double>(), raw, 1e-5 * raw);
    EXPECT_LE(scaled_error(got.pefs[i], projected / std::sqrt(raw)), 1e-5);
    if (t.kind != TaskKind::kVocab) {
      EXPECT_LE(scaled_error(got.probs[i], p), 1e-5);
      EXPECT_EQ(got.prediction[i].item<int64_t>(), p.argmax().item<int64_t>());
    }
  }
}

TEST_F(ComputePefsTest, ExactPefsEqualBruteForceForEveryTaskKind) {
  check_against_brute_force({"llama_untied_gqa", "label-tokens", PefKind::kExact, 0},
                            task("label-tokens", {"Negative", "Positive"}, ""));
  check_against_brute_force({"qwen2_bias", "suffixes", PefKind::kExact, 0},
                            task("suffixes", {"bad", "good"}));
  check_against_brute_force({"llama_tied", "vocab", PefKind::kExact, 5}, task("vocab", {"x", "y"}));
}

TEST_F(ComputePefsTest, GradientRowsAreTheGradientOfLogPOfTheArgmax) {
  check_against_brute_force({"llama3_rope", "label-tokens", PefKind::kGradient, 0},
                            task("label-tokens", {"Negative", "Positive"}, ""));
  check_against_brute_force({"llama_tied", "vocab", PefKind::kGradient, 0},
                            task("vocab", {"x", "y"}));
}

// Expectation PEFs: the engine's K rows equal A G (Appendix B) for the documented A, and
// ||G'^T G' - G^T G||_F / ||G^T G||_F falls like 1/sqrt(K) over fresh draws of A.
TEST_F(ComputePefsTest, ExpectationPefsApproachTheExactPefLikeOneOverSqrtK) {
  const model::LoadedModel m = model::load_model(tiny_model("llama_tied"));
  const tokenizer::Tokenizer tok = char_tokenizer();
  const Task t = task("vocab", {"x", "y"});
  const auto sel = model::ParameterSelection::parse(*m.model, model::ParameterSelection::kDefault);
  const projection::Projection dense({5, 64, 1, projection::Kind::kDense});
  const std::vector<Example> ex = load_examples(t, 0, 2);
  // G in category order, by brute force: rows sqrt(p_c) grad log p_c for all 96 tokens.
  std::vector<at::Tensor> gs;
  for (const Example& e : ex) {
    gs.push_back(full_gradients(*m.model, sel, [&] {
      const at::Tensor lp = brute_log_probs(*m.model, tok, t, e);
      return lp.detach().exp().sqrt() * lp;
    }));
  }
  const at::Tensor G = at::stack(gs);  // [2, 96, n] float64
  // (1) Engine rows (projected with a dense d = 64 projection) equal A G, A from (eps_seed, K).
  PefOptions eo;
  eo.kind = PefKind::kExpectation;
  eo.eps = 4;
  eo.eps_seed = 9;
  const PefBatch got = PefComputer(*m.model, tok, t, sel, dense, eo).compute(ex);
  const projection::Projection a_gen({9, 4, 1, projection::Kind::kDense});
  const at::Tensor A = materialise(a_gen, 96);
  const at::Tensor P = materialise(dense, sel.total());
  for (int64_t i = 0; i < 2; ++i) {
    const at::Tensor want = at::matmul(at::matmul(A, G[i]), P.t());
    EXPECT_LE(scaled_error(got.pefs[i], want / std::sqrt(gram_norm(want))), 1e-5) << i;
  }
  // (2) Relative error of F' over 24 seeds per K: ||G^T (A^T A - I) G||_F via r x r matrices.
  std::vector<double> err;
  for (int64_t K : {1, 4, 16, 64}) {
    double sum = 0;
    int count = 0;
    for (uint64_t seed = 0; seed < 24; ++seed) {
      const at::Tensor Ak =
          materialise(projection::Projection({seed, K, 1, projection::Kind::kDense}), 96);
      for (int64_t i = 0; i < 2; ++i) {
        const at::Tensor gg = at::matmul(G[i], G[i].t());  // [r, r] = G G^T
        // ||G^T M G||_F^2 = tr(M GG^T M GG^T) for symmetric M.
        const at::Tensor M = at::matmul(Ak.t(), Ak) - at::eye(96, at::kDouble);
        const double diff =
            at::trace(at::matmul(at::matmul(M, gg), at::matmul(M, gg))).item<double>();
        sum += std::sqrt(std::max(diff, 0.0)) / gg.norm().item<double>();
        ++count;
      }
    }
    err.push_back(sum / count);
  }
  // Each 4x in K halves the error (1/sqrt(K)); 24 draws leave ~15% noise in each mean.
  for (size_t j = 1; j < err.size(); ++j) {
    const double ratio = err[j - 1] / err[j];
    EXPECT_GT(ratio, 1.5) << "K step " << j << " errors " << err[j - 1] << " -> " << err[j];
    EXPECT_LT(ratio, 2.7) << "K step " << j << " errors " << err[j - 1] << " -> " << err[j];
  }
  std::cout << "relative PEF error for K = 1, 4, 16, 64: " << err[0] << " " << err[1] << " "
            << err[2] << " " << err[3] << "\n";
}

TEST(SvdReduce, KeepsTheTopSpectrumExactly) {
  at::manual_seed(3);
  const at::Tensor g = at::randn({4, 6, 40}, at::kDouble);
  const at::Tensor r = svd_reduce(g, 3);
  ASSERT_EQ(r.sizes(), (at::IntArrayRef{4, 3, 40}));
  for (int64_t i = 0; i < 4; ++i) {
    // Eigenvalues of G'^T G' are the top 3 of G^T G's, and G'^T G' is its best rank-3 part.
    const at::Tensor ev = at::linalg_eigvalsh(at::matmul(g[i], g[i].t()));    // ascending
    const at::Tensor ev_r = at::linalg_eigvalsh(at::matmul(r[i], r[i].t()));  // ascending
    EXPECT_LE(scaled_error(ev_r, ev.narrow(0, 3, 3)), 1e-12) << i;
    const auto [u, s, vh] = at::linalg_svd(g[i], false);
    const at::Tensor v3 = vh.narrow(0, 0, 3);
    const at::Tensor best = at::matmul(v3.t() * s.narrow(0, 0, 3).square(), v3);
    EXPECT_LE(scaled_error(at::matmul(r[i].t(), r[i]), best), 1e-12) << i;
  }
  EXPECT_TRUE(svd_reduce(g, 6).equal(g));
  EXPECT_TRUE(svd_reduce(g, 0).equal(g));
}

TEST_F(ComputePefsTest, BadSettingsAreRefused) {
  const model::LoadedModel m = model::load_model(tiny_model("llama_tied"));
  const tokenizer::Tokenizer tok = char_tokenizer();
  const auto sel = model::ParameterSelection::parse(*m.model, model::ParameterSelection::kDefault);
  const projection::Projection proj({1, 16, 0, projection::Kind::kSparse});
  const auto make = [&](const Task& t, PefOptions o) {
    PefComputer(*m.model, tok, t, sel, proj, o);
  };
  PefOptions o;
  expect_error([&] { make(task("vocab", {"x", "y"}), o); }, {"--top-classes", "--pef expectation"});
  o.top_k = 3;
  expect_error(
      [&] {
        make(task("label-tokens", {"Negative", "Positive"}, ""), o);
      },
      {"--top-classes 3 exceeds the 2 categories"});
  o = PefOptions();
  o.kind = PefKind::kExpectation;
  expect_error([&] { make(task("vocab", {"x", "y"}), o); }, {"needs --eps"});
  expect_error([] { parse_pef_kind("fisher"); }, {"unknown PEF kind 'fisher'"});
  // An example longer than the model's context (64 positions) is refused, naming it.
  const Task t = task("label-tokens", {"Negative", "Positive"}, "");
  Example longer{7, "Review: " + std::string(80, 'a') + "\nSentiment:", 1};
  const PefComputer c(*m.model, tok, t, sel, proj, PefOptions());
  expect_error([&] { c.compute({longer}); }, {"example 7", "more than the model's context (64)"});
}

}  // namespace
}  // namespace npeff::pef
