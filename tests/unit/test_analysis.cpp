// Analyses (paper Sections 3.1, 3.3, 4, App. H, I): tunings, the ICL classifier, similarity and
// splits against values computed by hand; eigenvalue decay against a materialised G^T G;
// k-means against planted clusters (adjusted Rand index, itself checked by hand); the TopK SAE's
// gradients against finite differences and its training on planted sparse data.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "npeff/analysis/compare.h"
#include "npeff/analysis/examples.h"
#include "npeff/analysis/kmeans.h"
#include "npeff/analysis/sae.h"
#include "npeff/analysis/tuning.h"
#include "npeff/io/hdf5.h"
#include "npeff/io/schema.h"
#include "unit/task_fixtures.h"
#include "unit/test_util.h"

namespace npeff::analysis {
namespace {

// 6 examples, 5 components, top_k = 3.
//   c0: rows 0, 1, 4 (labels 0 0 0, predictions 0 1 0): label-tuned, not prediction-tuned: LnP.
//   c1: rows 1, 2, 3 (labels 0 1 1, predictions 1 1 1): prediction-tuned only.
//   c2: two non-zero rows: excluded.
//   c3: all equal: ties go to the lower rows 0, 1, 2 (labels 0 0 1, predictions 0 1 1): neither.
//   c4: 0.5 0.9 0.5 0.5 0 0: rows 1, 0, 2.
const std::vector<int64_t> kLabels = {0, 0, 1, 1, 0, 1};
const std::vector<int64_t> kPredictions = {0, 1, 1, 1, 0, 0};
at::Tensor hand_w() {
  return at::tensor({3.0, 0.0, 0.0, 1.0, 0.5,  //
                     2.0, 1.0, 0.0, 1.0, 0.9,  //
                     0.0, 3.0, 1.0, 1.0, 0.5,  //
                     0.0, 2.0, 0.0, 1.0, 0.5,  //
                     1.0, 0.0, 2.0, 1.0, 0.0,  //
                     0.0, 0.0, 0.0, 1.0, 0.0},
                    at::kDouble)
      .view({6, 5});
}

TEST(Tunings, HandConstructedDecomposition) {
  const auto t = component_tunings(hand_w(), kLabels, kPredictions, 3);
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(t[0].top_rows, (std::vector<int64_t>{0, 1, 4}));
  EXPECT_TRUE(t[0].label_tuned && !t[0].prediction_tuned && t[0].lnp);
  EXPECT_EQ(t[1].top_rows, (std::vector<int64_t>{2, 3, 1}));
  EXPECT_TRUE(t[1].prediction_tuned && !t[1].label_tuned && !t[1].lnp);
  EXPECT_EQ(t[1].majority_prediction, 1);
  EXPECT_FALSE(t[2].included);
  EXPECT_EQ(t[2].nonzero, 2);
  EXPECT_EQ(t[2].top_rows, (std::vector<int64_t>{4, 2}));
  EXPECT_FALSE(t[2].prediction_tuned || t[2].label_tuned);
  EXPECT_EQ(t[3].top_rows, (std::vector<int64_t>{0, 1, 2}));  // ties: lower row
  EXPECT_FALSE(t[3].prediction_tuned || t[3].label_tuned);
  EXPECT_EQ(t[4].top_rows, (std::vector<int64_t>{1, 0, 2}));
  EXPECT_DOUBLE_EQ(t[4].majority_label_fraction, 2.0 / 3.0);
  const TuningSummary s = summarize_tunings(t, true);
  EXPECT_EQ(s.components, 5);
  EXPECT_EQ(s.included, 4);
  EXPECT_EQ(s.excluded, 1);
  EXPECT_EQ(s.prediction_tuned, 1);
  EXPECT_EQ(s.label_tuned, 1);
  EXPECT_EQ(s.lnp, 1);
  EXPECT_DOUBLE_EQ(s.prediction_fraction, 0.25);
  EXPECT_DOUBLE_EQ(s.lnp_fraction, 0.25);
  // top_k larger than every column: everything excluded, fractions 0.
  const TuningSummary none =
      summarize_tunings(component_tunings(hand_w(), kLabels, kPredictions, 7), true);
  EXPECT_EQ(none.included, 0);
  EXPECT_EQ(none.prediction_fraction, 0.0);
}

TEST(Tunings, UnknownLabelsNeverMatch) {
  const std::vector<int64_t> unknown(6, -1);
  const auto t = component_tunings(hand_w(), unknown, kPredictions, 3);
  for (const auto& c : t) EXPECT_FALSE(c.label_tuned || c.lnp);
  EXPECT_TRUE(t[1].prediction_tuned);
}

TEST(IclClassifier, HandComputed) {
  const at::Tensor w = hand_w();
  const auto t = component_tunings(w, kLabels, kPredictions, 3);
  // At 0.75 only c0 (3/3 label 0) is tuned: scores (w_i0, 0); rows 2, 3, 5 have w_i0 = 0 ->
  // undecided -> label 0.
  IclClassifier c = icl_classifier(w, t, kLabels, kPredictions, 2, 0.75, false);
  EXPECT_EQ(c.tuned_components, 1);
  EXPECT_EQ(c.predictions, (std::vector<int64_t>{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(c.undecided, 3);
  EXPECT_DOUBLE_EQ(c.accuracy, 3.0 / 6.0);
  EXPECT_DOUBLE_EQ(c.agreement, 3.0 / 6.0);
  // At 0.6: c1 (2/3 label 1), c3 (2/3 label 0), c4 (2/3 label 0) join.
  // label 0 score = w0 + w3 + w4, label 1 = w1:
  //   row0 3+1+0.5 vs 0 -> 0; row1 2+1+0.9 vs 1 -> 0; row2 0+1+0.5 vs 3 -> 1;
  //   row3 0+1+0.5 vs 2 -> 1; row4 1+1+0 vs 0 -> 0; row5 0+1+0 vs 0 -> 0.
  c = icl_classifier(w, t, kLabels, kPredictions, 2, 0.6, false);
  EXPECT_EQ(c.tuned_components, 4);
  EXPECT_EQ(c.predictions, (std::vector<int64_t>{0, 0, 1, 1, 0, 0}));
  EXPECT_DOUBLE_EQ(c.accuracy, 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(c.agreement, 5.0 / 6.0);
  // One-hot (clusters): label 0 = [w0>0]+[w3>0]+[w4>0], label 1 = [w1>0]:
  //   row2: 0+1+1 vs 1 -> 0; row3: 0+1+1 vs 1 -> 0.
  c = icl_classifier(w, t, kLabels, kPredictions, 2, 0.6, true);
  EXPECT_EQ(c.predictions, (std::vector<int64_t>{0, 0, 0, 0, 0, 0}));
}

TEST(Similarity, SelfIsOneSymmetricAndHandValue) {
  const at::Tensor a = at::rand({50, 7}, at::kDouble), b = at::rand({50, 4}, at::kDouble);
  EXPECT_NEAR(decomposition_similarity(a, a), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(decomposition_similarity(a, b), decomposition_similarity(b, a));
  // Columns (1,0),(0,1) vs (1,0),(1,1): S = [[1, 1/sqrt2], [0, 1/sqrt2]];
  // row maxima 1, 1/sqrt2; column maxima 1, 1/sqrt2 -> (2 + sqrt2) / 4.
  const at::Tensor w1 = at::tensor({1.0, 0.0, 0.0, 1.0}, at::kDouble).view({2, 2});
  const at::Tensor w2 = at::tensor({1.0, 1.0, 0.0, 1.0}, at::kDouble).view({2, 2});
  EXPECT_NEAR(decomposition_similarity(w1, w2), (2 + std::sqrt(2.0)) / 4, 1e-15);
  // A zero column is similar to nothing.
  const at::Tensor z = at::tensor({1.0, 0.0, 0.0, 0.0}, at::kDouble).view({2, 2});
  EXPECT_NEAR(decomposition_similarity(z, z), 0.5, 1e-15);
}

TEST(Similarity, AlignRowsByExampleId) {
  const at::Tensor w1 = at::tensor({1.0, 2.0, 3.0}, at::kDouble).view({3, 1});
  const at::Tensor w2 = at::tensor({30.0, 10.0}, at::kDouble).view({2, 1});
  const auto [a, b] =
      align_rows(w1, at::tensor({5, 6, 7}, at::kLong), w2, at::tensor({7, 5}, at::kLong));
  EXPECT_TRUE(at::equal(a.flatten(), at::tensor({1.0, 3.0}, at::kDouble)));
  EXPECT_TRUE(at::equal(b.flatten(), at::tensor({10.0, 30.0}, at::kDouble)));
}

TEST(Splits, HandComputed) {
  // Coarse: c0 on rows 0-3 (predictions 0), c1 on rows 4-7 (predictions 1 1 0 0). Fine: f0 rows
  // 0-1, f1 rows 2-3, f2 rows 4-5, f3 rows 6-7; top_k = 2.
  const std::vector<int64_t> pred = {0, 0, 0, 0, 1, 1, 0, 0}, lab(8, -1);
  at::Tensor wc = at::zeros({8, 2}, at::kDouble), wf = at::zeros({8, 4}, at::kDouble);
  for (int64_t i = 0; i < 8; ++i) {
    wc[i][i / 4] = 1.0 + 0.1 * static_cast<double>(i);
    wf[i][i / 2] = 1.0;
  }
  const auto tc = component_tunings(wc, lab, pred, 2), tf = component_tunings(wf, lab, pred, 2);
  // Coarse top-2: c0 rows 3, 2 (pred 0, 0): tuned to 0. c1 rows 7, 6 (0, 0): tuned to 0.
  const ComponentSplits s = component_splits(wc, wf, tc, tf);
  EXPECT_EQ(s.coarse_of_fine, (std::vector<int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(s.coarse_matched, 2);
  // All four matches are of prediction-tuned coarse components; f2 is tuned to 1: 3 of 4 kept.
  EXPECT_EQ(s.considered, 4);
  EXPECT_EQ(s.preserved, 3);
  EXPECT_DOUBLE_EQ(s.preserved_fraction, 0.75);
}

TEST(EigenDecay, EqualsMaterialisedFisherSpectrum) {
  at::manual_seed(3);
  // float-representable, so the float32 batch below is exact.
  const at::Tensor g = at::randn({6, 3, 12}, at::kDouble).to(at::kFloat).to(at::kDouble);
  g[2].zero_();  // a zero PEF is skipped
  EigenDecayAccumulator acc;
  acc.add(g.slice(0, 0, 4));
  acc.add(g.slice(0, 4, 6).to(at::kFloat));
  const EigenDecay d = acc.result();
  EXPECT_EQ(d.examples, 5);
  EXPECT_EQ(d.skipped, 1);
  std::vector<double> want(3, 0.0);
  for (int64_t i = 0; i < 6; ++i) {
    if (i == 2) continue;
    const at::Tensor F = at::mm(g[i].t(), g[i]);  // 12 x 12, rank 3
    const at::Tensor ev = std::get<0>(at::linalg_eigvalsh(F).sort(0, true));
    for (int q = 0; q < 3; ++q) want[q] += ev[q].item<double>() / ev[0].item<double>() / 5.0;
  }
  for (int q = 0; q < 3; ++q) EXPECT_NEAR(d.mean[q], want[q], 1e-10) << "eigenvalue " << q;
  EXPECT_DOUBLE_EQ(d.mean[0], 1.0);
}

TEST(AdjustedRandIndex, HandValues) {
  // Contingency of {0,0,1,1} vs {0,0,1,2}: sum C(n_ij,2) = 1, a: 2, b: 1, C(4,2) = 6:
  // (1 - 2/6) / (1.5 - 2/6) = 4/7.
  EXPECT_NEAR(adjusted_rand_index({0, 0, 1, 1}, {0, 0, 1, 2}), 4.0 / 7.0, 1e-15);
  EXPECT_DOUBLE_EQ(adjusted_rand_index({0, 0, 1, 1, 2}, {5, 5, 3, 3, 9}), 1.0);
}

TEST(KMeans, RecoversPlantedClusters) {
  const uint64_t seed = 11;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  const int64_t k = 6, per = 80, d = 48;
  at::Tensor centers = at::empty({k, d}, at::kFloat), x = at::empty({k * per, d}, at::kFloat);
  for (int64_t i = 0; i < k * d; ++i) centers.data_ptr<float>()[i] = normal(rng);
  centers = centers / centers.norm(2, {1}, true);
  std::vector<int64_t> truth;
  for (int64_t c = 0; c < k; ++c)
    for (int64_t p = 0; p < per; ++p) {
      at::Tensor row = x[c * per + p];
      for (int64_t j = 0; j < d; ++j) row[j] = centers[c][j].item<float>() + 0.12f * normal(rng);
      row.mul_(0.5f + static_cast<float>(p % 5));  // scale must not matter (cosine)
      truth.push_back(c);
    }
  KMeansOptions o;
  o.clusters = k;
  o.seed = seed;
  o.restarts = 2;
  const KMeansResult r = spherical_kmeans(x, o);
  const at::Tensor a = r.assignment.contiguous();
  const std::vector<int64_t> got(a.data_ptr<int64_t>(), a.data_ptr<int64_t>() + a.numel());
  const double ari = adjusted_rand_index(truth, got);
  EXPECT_GE(ari, 0.95) << "seed " << seed;
  EXPECT_NEAR(r.centroids.norm(2, {1}).sub(1).abs().max().item<float>(), 0.0f, 1e-5f);
  for (size_t i = 1; i < r.history.size(); ++i)  // Lloyd never decreases the objective
    EXPECT_GE(r.history[i], r.history[i - 1] - 1e-6) << "iteration " << i;
  const KMeansResult again = spherical_kmeans(x, o);
  EXPECT_TRUE(at::equal(again.assignment, r.assignment)) << "same seed, same clusters";
}

TEST(KMeans, ReportsEveryIterationAndRestart) {
  at::manual_seed(3);
  const at::Tensor x = at::randn({60, 8});
  KMeansOptions o;
  o.clusters = 4;
  o.restarts = 3;
  o.max_iterations = 5;  // small enough that some restarts stop at the cap
  std::vector<KMeansStep> steps;
  const KMeansResult r = spherical_kmeans(x, o, [&](const KMeansStep& s) { steps.push_back(s); });
  std::vector<int64_t> iterations(3, 0);
  int64_t ends = 0;
  for (const KMeansStep& s : steps) {
    ASSERT_LT(s.restart, 3);
    if (!s.restart_done) {
      EXPECT_EQ(s.iteration, ++iterations[static_cast<size_t>(s.restart)]) << "in order, 1-based";
      continue;
    }
    EXPECT_EQ(s.restart, ends++) << "one end per restart, in order";
    EXPECT_EQ(s.iteration, iterations[static_cast<size_t>(s.restart)]);
    EXPECT_LE(s.iteration, o.max_iterations);
    EXPECT_TRUE(s.converged || s.iteration == o.max_iterations);
    EXPECT_LE(s.mean_similarity, r.mean_similarity + 1e-12) << "the best restart wins";
  }
  EXPECT_EQ(ends, 3);
  EXPECT_EQ(steps.back().restart_done, true);
  EXPECT_NO_THROW(spherical_kmeans(x, o)) << "the callback is optional";
}

// The facts of a 3-example predictions file in the layout of `version` (1: /label and the names
// in /labels; 2: /labels and /label_names, as npeff.pefs).
void write_predictions(const std::string& path, std::int64_t version,
                       const std::vector<std::string>& names, nlohmann::json provenance = {}) {
  io::File f = io::File::create(path);
  io::write_header(f, {"npeff.predictions", version},
                   provenance.is_object() ? provenance : nlohmann::json::object());
  const std::vector<std::int64_t> ids = {10, 11, 12}, pred = {1, 0, 1}, gold = {1, 1, -1};
  f.root().create_dataset("example_ids", io::DType::kInt64, {3}).write(ids.data());
  f.root().create_dataset("prediction", io::DType::kInt64, {3}).write(pred.data());
  f.root()
      .create_dataset(version == 1 ? "label" : "labels", io::DType::kInt64, {3})
      .write(gold.data());
  f.root().create_strings("prompts", {"a", "b", "c"});
  if (!names.empty()) f.root().create_strings(version == 1 ? "labels" : "label_names", names);
  if (names.empty()) {  // a vocabulary task: /top_ids marks it
    const std::vector<std::int64_t> top = {1, 0, 1};
    f.root().create_dataset("top_ids", io::DType::kInt64, {3, 1}).write(top.data());
  }
  f.commit();
}

class ExampleFiles : public testing::TempDirTest {};

TEST_F(ExampleFiles, PredictionsOfBothVersionsReadAlike) {
  write_predictions(path("v1.h5"), 1, {"Negative", "Positive"});
  write_predictions(path("v2.h5"), 2, {"Negative", "Positive"});
  for (const char* name : {"v1.h5", "v2.h5"}) {
    const ExampleTable t = read_example_table({path(name)});
    EXPECT_EQ(t.labels, (std::vector<std::int64_t>{1, 1, -1})) << name;
    EXPECT_EQ(t.predictions, (std::vector<std::int64_t>{1, 0, 1})) << name;
    EXPECT_EQ(t.label_names, (std::vector<std::string>{"Negative", "Positive"})) << name;
    EXPECT_EQ(t.label_text(0), "Negative");
    EXPECT_FALSE(t.vocabulary());
  }
  write_predictions(path("v3.h5"), 3, {"Negative", "Positive"});
  try {
    read_example_table({path("v3.h5")});
    ADD_FAILURE() << "version 3 read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reads versions 1 to 2"), std::string::npos) << e.what();
  }
}

TEST_F(ExampleFiles, VocabularyTokensDecodedWithTheTokenizer) {
  write_predictions(path("v.h5"), 2, {});
  ExampleTable t = read_example_table({path("v.h5")});
  ASSERT_TRUE(t.vocabulary());
  EXPECT_EQ(t.label_text(1), "token 1") << "not decoded yet";
  t.predictions[2] = 69;  // "\n" in the test tokenizer
  t.labels[2] = 500;      // outside its vocabulary
  decode_tokens(t, testing::char_tokenizer(), "chars.json");
  EXPECT_EQ(t.label_text(1), "\"a\" (token 1)");
  EXPECT_EQ(t.label_text(0), "\"<unk>\" (token 0)");
  EXPECT_EQ(t.label_text(69), "\"\\n\" (token 69)");
  EXPECT_EQ(t.label_text(500), "token 500");
  EXPECT_EQ(t.label_text(-1), "-");
  EXPECT_EQ(t.tokens.tokenizer, "chars.json");
  EXPECT_NE(t.tokens.note.find("1 of 4 token ids (e.g. 500)"), std::string::npos) << t.tokens.note;
  const ExampleTable some = select_examples(t, {12}, "test");
  EXPECT_EQ(some.label_text(69), "\"\\n\" (token 69)") << "selection keeps the texts";
}

TEST_F(ExampleFiles, VocabularyTokenizerFromProvenanceOrNote) {
  { std::ofstream(path("chars.json")) << testing::char_tokenizer_json(); }
  // Recorded relative to another directory: found next to the file.
  write_predictions(path("v.h5"), 2, {}, {{"model", "no-such-model"}, {"tokenizer", "chars.json"}});
  ExampleTable t = read_example_table({path("v.h5")});
  decode_vocabulary(t);
  EXPECT_EQ(t.label_text(1), "\"a\" (token 1)");
  EXPECT_TRUE(t.tokens.note.empty()) << t.tokens.note;

  // No tokenizer recorded and the model is gone: "token N", and the note says why.
  write_predictions(path("w.h5"), 2, {}, {{"model", path("no-such-model")}, {"tokenizer", ""}});
  ExampleTable u = read_example_table({path("w.h5")});
  decode_vocabulary(u);
  EXPECT_EQ(u.label_text(1), "token 1");
  EXPECT_NE(u.tokens.note.find("tokenizer is unavailable"), std::string::npos) << u.tokens.note;
  EXPECT_NE(u.tokens.note.find("no-such-model"), std::string::npos) << u.tokens.note;

  // An explicit tokenizer wins; one that cannot be loaded is an error.
  decode_vocabulary(u, path("chars.json"));
  EXPECT_EQ(u.label_text(1), "\"a\" (token 1)");
  EXPECT_THROW(decode_vocabulary(u, path("none.json")), Error);

  // Label tasks are left alone.
  write_predictions(path("l.h5"), 2, {"x", "y"});
  ExampleTable l = read_example_table({path("l.h5")});
  decode_vocabulary(l, path("none.json"));
  EXPECT_EQ(l.label_text(1), "y");
}

SaeModel to_double(SaeModel s) {
  s.w_enc = s.w_enc.to(at::kDouble), s.b_enc = s.b_enc.to(at::kDouble);
  s.w_dec = s.w_dec.to(at::kDouble), s.b_dec = s.b_dec.to(at::kDouble);
  return s;
}

TEST(Sae, GradientsEqualFiniteDifferences) {
  at::manual_seed(5);
  const at::Tensor x = normalize_rows(at::randn({9, 7}, at::kDouble));
  SaeModel s = to_double(init_sae(x.to(at::kFloat), 12, 3, 1));
  s.b_enc = at::randn({12}, at::kDouble) * 0.1;
  s.w_dec = s.w_dec + 0.1 * at::randn({7, 12}, at::kDouble);
  s.b_dec = s.b_dec + 0.1 * at::randn({7}, at::kDouble);
  const SaeGradients g = sae_gradients(s, x);
  const double h = 1e-6;
  const auto check = [&](at::Tensor& p, const at::Tensor& grad, const char* name) {
    for (int64_t i = 0; i < p.numel(); i += 5) {
      double* v = p.data_ptr<double>() + i;
      const double keep = *v;
      *v = keep + h;
      const double up = sae_gradients(s, x).loss;
      *v = keep - h;
      const double down = sae_gradients(s, x).loss;
      *v = keep;
      EXPECT_NEAR(grad.flatten()[i].item<double>(), (up - down) / (2 * h), 1e-6)
          << name << " entry " << i;
    }
  };
  check(s.w_enc, g.w_enc, "w_enc");
  check(s.b_enc, g.b_enc, "b_enc");
  check(s.w_dec, g.w_dec, "w_dec");
  check(s.b_dec, g.b_dec, "b_dec");
}

TEST(Sae, KeepsKActiveLatentsAndLearnsPlantedSparseData) {
  const uint64_t seed = 21;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int64_t> atom(0, 23);
  std::uniform_real_distribution<float> coef(0.5f, 1.5f);
  const int64_t h = 20, atoms = 24, m = 1500;
  at::Tensor dict = at::empty({atoms, h}, at::kFloat);
  for (int64_t i = 0; i < atoms * h; ++i) dict.data_ptr<float>()[i] = normal(rng);
  dict = dict / dict.norm(2, {1}, true);
  at::Tensor x = at::zeros({m, h}, at::kFloat);
  for (int64_t i = 0; i < m; ++i)
    for (int q = 0; q < 3; ++q) x[i] += coef(rng) * dict[atom(rng)];
  x = normalize_rows(x);
  SaeOptions o;
  o.latents = 32;
  o.k = 4;
  o.steps = 400;
  o.batch_size = 256;
  o.lr = 3e-3;
  o.seed = seed;
  o.record_every = 50;
  const SaeTrainResult r = train_sae(x, o);
  ASSERT_GE(r.fvu.size(), 3u);
  EXPECT_LT(r.final_fvu, 0.5 * r.fvu.front())
      << "seed " << seed << ": FVU " << r.fvu.front() << " -> " << r.final_fvu;
  EXPECT_LT(r.fvu[r.fvu.size() / 2], r.fvu.front());
  const SaeCodes c = sae_encode(r.model, x);
  ASSERT_EQ(c.active.sizes(), (std::vector<int64_t>{m, 4}));
  // Exactly k distinct active latents per input; z is non-zero only there.
  const at::Tensor sorted = std::get<0>(c.active.sort(1));
  EXPECT_TRUE(sorted.slice(1, 1).ne(sorted.slice(1, 0, 3)).all().item<bool>());
  EXPECT_TRUE(c.codes.gt(0).sum(1).le(4).all().item<bool>());
  const at::Tensor mask = at::zeros({m, 32}, at::kBool).scatter_(1, c.active, true);
  EXPECT_TRUE(c.codes.masked_select(mask.logical_not()).eq(0).all().item<bool>());
  EXPECT_NEAR(r.model.w_enc.norm(2, {1}).sub(1).abs().max().item<float>(), 0.0f, 1e-5f);
  EXPECT_NEAR(r.model.w_dec.norm(2, {0}).sub(1).abs().max().item<float>(), 0.0f, 1e-5f);
}

TEST(Sae, DecoderStartsAsTheEncodersTranspose) {
  const at::Tensor x = normalize_rows(at::randn({10, 6}));
  const SaeModel s = init_sae(x, 8, 2, 4);
  EXPECT_TRUE(at::equal(s.w_dec, s.w_enc.t()));
  EXPECT_TRUE(at::allclose(s.b_dec, x.mean(0)));
}

}  // namespace
}  // namespace npeff::analysis
