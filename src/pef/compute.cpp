#include "npeff/pef/compute.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>

#include "npeff/core/error.h"
#include "npeff/task/predict.h"
#include "npeff/task/task_batch.h"

namespace npeff::pef {

const char* pef_kind_name(PefKind kind) {
  switch (kind) {
    case PefKind::kExact:
      return "exact";
    case PefKind::kExpectation:
      return "expectation";
    case PefKind::kGradient:
      return "gradient";
  }
  return "?";
}

PefKind parse_pef_kind(const std::string& text) {
  if (text == "exact") return PefKind::kExact;
  if (text == "expectation") return PefKind::kExpectation;
  if (text == "gradient") return PefKind::kGradient;
  NPEFF_FAIL("unknown PEF kind '", text, "': expected exact, expectation or gradient");
}

PefComputer::PefComputer(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                         task::Task task, model::ParameterSelection selection,
                         const projection::Projection& projection, PefOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      task_(std::move(task)),
      selection_(std::move(selection)),
      projection_(projection),
      options_(options) {
  if (task_.kind != task::TaskKind::kVocab) labels_ = task::label_token_ids(task_, tokenizer_);
  categories_ = task_.kind == task::TaskKind::kVocab ? model_.config().vocab_size
                                                     : static_cast<int64_t>(labels_.size());
  NPEFF_CHECK(options_.top_k >= 0 && options_.svd_rank >= 0 && options_.eps >= 0,
              "--top-classes, --svd-rank and --eps must not be negative");
  NPEFF_CHECK(task_.kind != task::TaskKind::kVocab ||
                  (options_.vocab_top > 0 && options_.vocab_top <= categories_),
              "--vocab-top must lie in [1, ", categories_, "]");
  switch (options_.kind) {
    case PefKind::kExact:
      NPEFF_CHECK(task_.kind != task::TaskKind::kVocab || options_.top_k > 0,
                  "--pef exact over a vocabulary of ", categories_,
                  " tokens would need one gradient row per token: give --top-classes K, or use "
                  "--pef expectation --eps K");
      NPEFF_CHECK(options_.top_k <= categories_, "--top-classes ", options_.top_k, " exceeds the ",
                  categories_, " categories of task ", task_.name);
      break;
    case PefKind::kExpectation: {
      NPEFF_CHECK(options_.eps > 0, "--pef expectation needs --eps K (rows, > 0)");
      NPEFF_CHECK(options_.top_k == 0, "--top-classes applies to --pef exact only");
      // A [K, r]: the dense npeff projection over category indices, entries +-1/sqrt(K).
      const projection::Projection a(
          {options_.eps_seed, options_.eps, 1, projection::Kind::kDense});
      eps_matrix_ =
          projection::project_transpose(a, at::eye(options_.eps, at::kFloat), 0, categories_)
              .to(model_.device());
      break;
    }
    case PefKind::kGradient:
      NPEFF_CHECK(options_.top_k == 0 && options_.eps == 0,
                  "--top-classes and --eps do not apply to --pef gradient");
      break;
  }
  NPEFF_CHECK(selection_.total() > 0, "no parameters selected");
}

int64_t PefComputer::rows() const {
  switch (options_.kind) {
    case PefKind::kExact:
      return options_.top_k > 0 ? options_.top_k : categories_;
    case PefKind::kExpectation:
      return options_.eps;
    case PefKind::kGradient:
      return 1;
  }
  return 0;
}

int64_t PefComputer::rank() const {
  return options_.svd_rank > 0 ? std::min(options_.svd_rank, rows()) : rows();
}

int64_t PefComputer::probs_width() const {
  return task_.kind == task::TaskKind::kVocab ? options_.vocab_top : categories_;
}

model::Objectives PefComputer::objectives(at::Tensor* log_probs, at::Tensor* hidden,
                                          const task::TaskBatch& tb) const {
  return
      [this, log_probs, hidden, &tb](const model::ModelOutputs& out, const model::GradientBatch&) {
        const at::Tensor lp = task::class_log_probs(task_, labels_, tb, out);  // [G, r]
        *log_probs = lp.detach();
        if (hidden != nullptr) *hidden = task::final_prompt_hidden(tb, out);
        const at::Tensor sqrt_p = at::exp(0.5 * lp.detach());
        switch (options_.kind) {
          case PefKind::kExact:
            if (options_.top_k > 0) {
              const at::Tensor idx = std::get<1>(lp.detach().topk(options_.top_k, 1));
              return sqrt_p.gather(1, idx) * lp.gather(1, idx);
            }
            return sqrt_p * lp;
          case PefKind::kExpectation:
            return at::matmul(sqrt_p * lp, eps_matrix_.t());  // rows of A q
          case PefKind::kGradient:
            return lp.gather(1, lp.detach().argmax(1, /*keepdim=*/true));
        }
        return at::Tensor();
      };
}

at::Tensor svd_reduce(const at::Tensor& g, int64_t rank) {
  if (rank <= 0 || rank >= g.size(1)) return g;
  // G = U S V^T; the top-R rows of S V^T = U^T G keep G^T G's top-R spectrum exactly.
  const at::Tensor gd = g.to(at::kDouble);
  const auto [u, s, vh] = at::linalg_svd(gd, /*full_matrices=*/false);
  return (s.narrow(1, 0, rank).unsqueeze(2) * vh.narrow(1, 0, rank)).to(g.scalar_type());
}

PefBatch PefComputer::compute(const std::vector<task::Example>& examples) const {
  using clock = std::chrono::steady_clock;
  const auto since = [](clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  const auto t0 = clock::now();
  double t_projection = 0;
  const task::TaskBatch tb = task::make_task_batch(task_, tokenizer_, labels_, examples,
                                                   model_.config().max_position_embeddings);
  const int64_t G = static_cast<int64_t>(examples.size()), k = rows(), d = projection_.dim();
  const at::Device dev = model_.device();
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(dev);
  at::Tensor projected = at::zeros({G * k, d}, f32);
  at::Tensor gram = at::zeros({G, k, k}, f32.dtype(at::kDouble));
  at::Tensor log_probs, hidden;
  const model::GradientResult engine = model::per_example_gradients(
      model_, selection_, tb.batch,
      objectives(&log_probs, options_.activations ? &hidden : nullptr, tb),
      [&](const model::ParameterSlice& slice, const at::Tensor& grads) {
        // grads [G, k, numel]: slices arrive in selection order, i.e.
        // ascending offsets, which is the order project_accumulate needs
        // to reproduce a whole-vector projection.
        const auto tp = clock::now();
        projection::project_accumulate(projection_, grads.reshape({G * k, slice.numel}),
                                       slice.offset, projected);
        t_projection += since(tp);
        gram += at::bmm(grads, grads.transpose(1, 2)).to(at::kDouble);
      });
  PefBatch out;
  at::Tensor g = svd_reduce(projected.view({G, k, d}), rank());
  // ||G^T G||_F = ||G G^T||_F, from the small Gram matrix.
  const at::Tensor gg = at::bmm(g.to(at::kDouble), g.to(at::kDouble).transpose(1, 2));
  out.raw_norms = gg.square().sum({1, 2}).sqrt().cpu();
  out.param_norms = gram.square().sum({1, 2}).sqrt().cpu();
  const at::Tensor scale =
      at::where(out.raw_norms > 0, out.raw_norms.rsqrt(), at::zeros_like(out.raw_norms));
  out.pefs = (g.cpu().to(at::kDouble) * scale.view({G, 1, 1})).to(at::kFloat).contiguous();
  const at::Tensor p = at::exp(log_probs).cpu();
  if (task_.kind == task::TaskKind::kVocab) {
    const auto top = p.topk(options_.vocab_top, 1);
    out.probs = std::get<0>(top).contiguous();
    out.top_ids = std::get<1>(top).contiguous();
    out.prediction = out.top_ids.select(1, 0).contiguous();
  } else {
    out.probs = p.contiguous();
    out.prediction = p.argmax(1).contiguous();
  }
  if (hidden.defined()) out.activations = hidden.cpu().contiguous();
  out.timings = {engine.seconds_forward_backward, engine.seconds_contraction, t_projection,
                 since(t0)};
  return out;
}

}  // namespace npeff::pef
