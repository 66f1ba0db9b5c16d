// Perturbations: KL against a brute-force double loop; a patch restores the parameters exactly;
// with delta = 0 every KL is 0 and every ratio 1; a direction planted from one group's gradients
// disrupts that group far more than the others (selectivity sanity check).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "npeff/model/loader.h"
#include "npeff/pef/compute.h"
#include "npeff/perturbation/perturbation.h"
#include "npeff/task/predict.h"
#include "npeff/task/task_batch.h"
#include "unit/model_fixtures.h"
#include "unit/task_fixtures.h"
#include "unit/test_util.h"

namespace npeff::perturbation {
namespace {

using namespace npeff::testing;

TEST(Kl, EqualsABruteForceSum) {
  at::manual_seed(4);
  const at::Tensor lp = at::log_softmax(at::randn({5, 7}, at::kDouble), 1);
  const at::Tensor lq = at::log_softmax(at::randn({5, 7}, at::kDouble), 1);
  const at::Tensor kl = kl_divergence(lp, lq);
  for (int64_t i = 0; i < 5; ++i) {
    double want = 0;
    for (int64_t c = 0; c < 7; ++c) {
      const double p = std::exp(lp[i][c].item<double>());
      want += p * (std::log(p) - lq[i][c].item<double>());
    }
    EXPECT_NEAR(kl[i].item<double>(), want, 1e-12) << i;
  }
  EXPECT_EQ(kl_divergence(lp, lp).abs().max().item<double>(), 0.0);
  EXPECT_EQ(mean_ratio(0, 0), 1.0);
}

class PerturbationTest : public TempDirTest {
 protected:
  task::Task task() { return toy_sentiment_task(path("d.tsv")); }
};

TEST_F(PerturbationTest, PatchRestoresExactlyAndZeroDeltaChangesNothing) {
  const model::LoadedModel m = model::load_model(tiny_model("llama_untied_gqa"));
  const auto tok = char_tokenizer();
  const task::Task t = task();
  const auto sel = model::ParameterSelection::parse(*m.model, model::ParameterSelection::kDefault);
  std::vector<at::Tensor> before;
  for (const auto& p : m.model->parameters()) before.push_back(p.tensor.clone());
  SparseVector v{at::tensor(std::vector<int64_t>{0, 5, 1000, sel.total() - 1}),
                 at::tensor(std::vector<float>{0.5f, -1.f, 2.f, 0.25f})};
  {
    const ParameterPatch patch(*m.model, sel, v, 0.3);
    const auto& first = m.model->parameters()[sel.slices()[0].index].tensor;
    EXPECT_FLOAT_EQ(first.view(-1)[5].item<float>(),
                    before[sel.slices()[0].index].view(-1)[5].item<float>() - 0.3f);
  }
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_TRUE(m.model->parameters()[i].tensor.equal(before[i])) << m.model->parameters()[i].name;
  const std::vector<task::Example> ex = task::load_examples(t);
  const std::vector<task::Example> top(ex.begin(), ex.begin() + 3), base(ex.begin() + 3, ex.end());
  const at::Tensor lt = task_log_probs(*m.model, tok, t, top, 2);
  const at::Tensor lb = task_log_probs(*m.model, tok, t, base, 2);
  const Selectivity s = measure_selectivity(*m.model, tok, t, sel, v, 0.0, top, lt, base, lb, 2);
  EXPECT_EQ(s.kl_top[0], 0.0);
  EXPECT_EQ(s.kl_baseline[1], 0.0);
  EXPECT_EQ(s.best_ratio(), 1.0);
  expect_error([&] { measure_selectivity(*m.model, tok, t, sel, v, -1, top, lt, base, lb, 2); },
               {"--magnitude"});
  SparseVector outside{at::tensor(std::vector<int64_t>{sel.total()}), at::ones({1})};
  expect_error([&] { ParameterPatch(*m.model, sel, outside, 1.0); }, {"must lie in [0,"});
}

// A direction planted to affect one group (the negative examples) disrupts it far more than the
// other group.
TEST_F(PerturbationTest, APlantedGroupDirectionIsSelective) {
  const model::LoadedModel m = model::load_model(tiny_model("llama_untied_gqa"));
  const auto tok = char_tokenizer();
  const task::Task t = task();
  const auto sel = model::ParameterSelection::parse(*m.model, model::ParameterSelection::kDefault);
  const std::vector<task::Example> ex = task::load_examples(t);
  std::vector<task::Example> neg, pos;
  for (const auto& e : ex) (e.label == 0 ? neg : pos).push_back(e);
  // Per-example gradients of log p(Negative), through the engine.
  const auto labels = task::label_token_ids(t, tok);
  const auto grads = [&](const std::vector<task::Example>& group) {
    at::Tensor rows = at::zeros({static_cast<int64_t>(group.size()), sel.total()}, at::kFloat);
    const task::TaskBatch tb = task::make_task_batch(t, tok, labels, group, 64);
    model::per_example_gradients(
        *m.model, sel, tb.batch,
        [&](const model::ModelOutputs& out, const model::GradientBatch&) {
          return task::class_log_probs(t, labels, tb, out).narrow(1, 0, 1);
        },
        [&](const model::ParameterSlice& s, const at::Tensor& g) {
          rows.narrow(1, s.offset, s.numel).copy_(g.select(1, 0));
        });
    return rows.to(at::kDouble);
  };
  // The negatives' summed gradient with the positives' gradients projected out: to first order
  // it moves the negatives' p and leaves the positives' unchanged (two labels: log p(Negative)
  // determines p).
  at::Tensor dir = grads(neg).sum(0);
  const at::Tensor q = std::get<0>(at::linalg_qr(grads(pos).t()));  // [n, |pos|] orthonormal
  dir = (dir - at::matmul(q, at::matmul(q.t(), dir))).to(at::kFloat);
  SparseVector v{at::arange(sel.total(), at::kLong), dir};
  const at::Tensor ln = task_log_probs(*m.model, tok, t, neg, 4);
  const at::Tensor lp = task_log_probs(*m.model, tok, t, pos, 4);
  const Selectivity s = measure_selectivity(*m.model, tok, t, sel, v, 0.05, neg, ln, pos, lp, 4);
  std::cout << "KL top " << s.kl_top[0] << " / " << s.kl_top[1] << ", baseline " << s.kl_baseline[0]
            << " / " << s.kl_baseline[1] << ", ratio " << s.best_ratio() << "\n";
  EXPECT_GT(s.best_ratio(), 20.0);
}

}  // namespace
}  // namespace npeff::perturbation
