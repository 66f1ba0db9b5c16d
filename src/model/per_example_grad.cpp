// Per-example gradient engine (include/npeff/model/per_example_grad.h).
#include "npeff/model/per_example_grad.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <unordered_map>

#include "npeff/core/error.h"
#include "npeff/core/log.h"

#include <chrono>

namespace npeff::model {

int64_t GradientBatch::num_groups() const {
  return group.empty() ? input_ids.size(0) : (group.back() + 1);
}

namespace {

std::string bias_weight_name(const std::string& bias) {
  return bias.substr(0, bias.size() - 4) + "weight";  // "...q_proj.bias" -> "...q_proj.weight"
}
bool is_bias(const std::string& name) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
}

// Records the input and output of every linear map / norm that a selected parameter belongs to.
class Recorder final : public ForwardCapture {
 public:
  Recorder(const CausalLM& model, const ParameterSelection& selection)
      : wanted_(model.parameters().size(), false) {
    for (const ParameterSlice& s : selection.slices()) {
      const std::string& name = s.name;
      wanted_[is_bias(name) ? model.find(bias_weight_name(name)) : s.index] = true;
    }
  }
  bool wants(int weight) const override { return wanted_[weight]; }
  void record(int weight, int bias, bool is_norm, const at::Tensor& input,
              const at::Tensor& output) override {
    site_of_weight_[weight] = sites_.size();
    sites_.push_back(Site{weight, bias, is_norm, input, output});
  }
  struct Site {
    int weight, bias;
    bool norm;
    at::Tensor input, output;
  };
  const std::vector<Site>& sites() const { return sites_; }
  size_t site_of(int weight) const {
    const auto it = site_of_weight_.find(weight);
    NPEFF_ASSERT(it != site_of_weight_.end(), "no captured site for parameter ", weight);
    return it->second;
  }

 private:
  std::vector<bool> wanted_;
  std::vector<Site> sites_;
  std::unordered_map<int, size_t> site_of_weight_;
};

at::Tensor group_index(const GradientBatch& batch, const at::Device& device) {
  std::vector<int64_t> g = batch.group;
  if (g.empty()) {
    g.resize(static_cast<size_t>(batch.input_ids.size(0)));
    for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<int64_t>(i);
  }
  return at::tensor(g, at::kLong).to(device);
}

void check_batch(const GradientBatch& b) {
  NPEFF_CHECK(b.input_ids.dim() == 2 && b.attention_mask.sizes() == b.input_ids.sizes(),
              "gradient batch: input_ids and attention_mask must be [batch, length]");
  const int64_t B = b.input_ids.size(0);
  NPEFF_CHECK(b.group.empty() || static_cast<int64_t>(b.group.size()) == B,
              "gradient batch: one group entry per row expected, found ", b.group.size(), " for ",
              B, " rows");
  for (size_t i = 0; i < b.group.size(); ++i) {
    NPEFF_CHECK(b.group[i] >= 0 &&
                    (i == 0 ? b.group[i] == 0
                            : (b.group[i] == b.group[i - 1] || b.group[i] == b.group[i - 1] + 1)),
                "gradient batch: groups must number rows 0, 0, 1, 2, 2, ... without gaps");
  }
  NPEFF_CHECK(b.group_ids.empty() || static_cast<int64_t>(b.group_ids.size()) == b.num_groups(),
              "gradient batch: group_ids must have one entry per group");
}

at::Tensor checked_objectives(const Objectives& objectives, const ModelOutputs& outputs,
                              const GradientBatch& batch) {
  at::Tensor obj = objectives(outputs, batch);
  NPEFF_CHECK(obj.dim() == 2 && obj.size(0) == batch.num_groups() && obj.size(1) > 0,
              "objectives must be [groups, k] = [", batch.num_groups(), ", k], found ",
              obj.sizes());
  return obj;
}
}  // namespace

GradientResult per_example_gradients(const CausalLM& model, const ParameterSelection& selection,
                                     const GradientBatch& batch, const Objectives& objectives,
                                     const GradientConsumer& consumer) {
  check_batch(batch);
  torch::autograd::AutoGradMode grad_mode(true);
  using clock = std::chrono::steady_clock;
  const auto seconds = [](clock::time_point a) {
    return std::chrono::duration<double>(clock::now() - a).count();
  };
  const auto t0 = clock::now();
  Recorder recorder(model, selection);
  const ModelOutputs model_outputs(model,
                                   model.forward_hidden(batch.input_ids, batch.attention_mask,
                                                        &recorder, batch.layout_or_null()),
                                   &recorder);
  const at::Tensor obj = checked_objectives(objectives, model_outputs, batch);
  const int64_t k = obj.size(1), G = batch.num_groups();

  std::vector<at::Tensor> outputs;
  for (const auto& site : recorder.sites()) outputs.push_back(site.output);
  // dY[j][site]: gradient of sum_g objective[g, j] with respect to the site's output. Examples
  // do not interact in the forward pass, so row b of it is example b's own gradient.
  std::vector<std::vector<at::Tensor>> dY(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) {
    dY[j] = torch::autograd::grad({obj.select(1, j).sum()}, outputs, {},
                                  /*retain_graph=*/j + 1 < k, /*create_graph=*/false,
                                  /*allow_unused=*/true);
    for (size_t s = 0; s < outputs.size(); ++s) {
      if (!dY[j][s].defined()) dY[j][s] = at::zeros_like(outputs[s]);
    }
  }
  const double t_backward = seconds(t0);
  double t_consumer = 0;
  // Group of every token row, in the two layouts captures use: packed real tokens [N] (linear
  // maps and norms) and the padded [B * T] grid (the output head). Rows of a group are
  // consecutive in both, so each group is one contiguous segment.
  const at::Device dev = model_outputs.hidden().device();
  const at::Tensor row_group = group_index(batch, at::kCPU);
  const at::Tensor mask = batch.attention_mask.to(at::kCPU, at::kLong);
  const int64_t B = mask.size(0), T = mask.size(1);
  const at::Tensor padded_group = row_group.repeat_interleave(T);
  const at::Tensor packed_group = padded_group.masked_select(mask.reshape({-1}).to(at::kBool));
  const auto segments = [&](const at::Tensor& group_of_row) {
    const at::Tensor counts = at::bincount(group_of_row, {}, G);
    std::vector<int64_t> c(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + G);
    return c;
  };
  const std::vector<int64_t> packed_counts = segments(packed_group);
  const std::vector<int64_t> padded_counts = segments(padded_group);
  const at::Tensor packed_group_dev = packed_group.to(dev), padded_group_dev = padded_group.to(dev);
  for (const ParameterSlice& slice : selection.slices()) {
    const bool bias = is_bias(slice.name);
    const size_t s =
        recorder.site_of(bias ? model.find(bias_weight_name(slice.name)) : slice.index);
    const auto& site = recorder.sites()[s];
    // A per-head norm (q/k norms) is captured [N, heads, head_dim]: its weight gradient sums
    // over heads as well as tokens, so heads are folded into the product below.
    const bool per_head = site.norm && site.input.dim() == 3;
    const int64_t heads = per_head ? site.input.size(1) : 1;
    const at::Tensor X = site.input.reshape({-1, site.input.size(-1)}).to(at::kFloat);  // [R, in]
    const int64_t out = site.output.size(-1), R = X.size(0) / heads;
    std::vector<at::Tensor> per_j;
    for (int64_t j = 0; j < k; ++j) per_j.push_back(dY[j][s].reshape({R * heads, out}));
    const at::Tensor D = at::stack(per_j, 1).to(at::kFloat);  // [R * heads, k, out]
    const bool packed = R != B * T || packed_counts == padded_counts;
    NPEFF_ASSERT(R == (packed ? packed_group.size(0) : B * T), "captured rows ", R);
    const at::Tensor& group_of = packed ? packed_group_dev : padded_group_dev;
    at::Tensor grads;
    if (bias) {
      grads = at::zeros({G, k * out}, D.options()).index_add_(0, group_of, D.reshape({R, k * out}));
    } else if (site.norm) {
      const at::Tensor prod = (D * X.unsqueeze(1)).view({R, heads, k * out}).sum(1);
      grads = at::zeros({G, k * out}, D.options()).index_add_(0, group_of, prod);
    } else {
      // Per example: sum over its tokens of dY^T X, as one [k*out, T_g] x [T_g, in] product.
      grads = at::empty({G, k * out * X.size(1)}, D.options());
      const std::vector<int64_t>& counts = packed ? packed_counts : padded_counts;
      int64_t start = 0;
      for (int64_t g = 0; g < G; ++g) {
        const at::Tensor Dg = D.narrow(0, start, counts[g]).reshape({counts[g], k * out});
        at::Tensor dst = grads[g].view({k * out, X.size(1)});
        at::mm_out(dst, Dg.t(), X.narrow(0, start, counts[g]));
        start += counts[g];
      }
    }
    grads = grads.view({G, k, slice.numel});
    const auto tc = clock::now();
    consumer(slice, grads);
    t_consumer += seconds(tc);
  }
  GradientResult result{obj.detach(), t_backward, seconds(t0) - t_backward - t_consumer,
                        t_consumer};
  log::debug("per-example gradients: forward + ", k, " backward passes ", t_backward,
             " s, per-example contraction ", result.seconds_contraction, " s, consumer ",
             t_consumer, " s");
  return result;
}

GradientResult per_example_gradients_loop(const CausalLM& model,
                                          const ParameterSelection& selection,
                                          const GradientBatch& batch, const Objectives& objectives,
                                          const GradientConsumer& consumer) {
  check_batch(batch);
  torch::autograd::AutoGradMode grad_mode(true);
  const int64_t G = batch.num_groups(), B = batch.input_ids.size(0);
  const at::Tensor ids = batch.input_ids.to(at::kCPU, at::kLong);
  const at::Tensor mask = batch.attention_mask.to(at::kCPU, at::kLong);
  std::vector<at::Tensor> leaves;
  for (const ParameterSlice& s : selection.slices()) {
    leaves.push_back(model.parameters()[s.index].tensor);
    leaves.back().set_requires_grad(true);
  }
  std::vector<std::vector<at::Tensor>> per_slice(selection.slices().size());
  std::vector<at::Tensor> all_obj;
  int64_t row = 0;
  for (int64_t g = 0; g < G; ++g) {
    std::vector<int64_t> rows;
    while (row < B && (batch.group.empty() ? row == g : batch.group[row] == g))
      rows.push_back(row++);
    // The example's rows alone, real tokens only (right-padded among themselves).
    int64_t len = 0;
    for (int64_t r : rows) len = std::max(len, mask[r].sum().item<int64_t>());
    at::Tensor sub_ids = at::zeros({static_cast<int64_t>(rows.size()), len}, at::kLong);
    at::Tensor sub_mask = at::zeros_like(sub_ids);
    for (size_t i = 0; i < rows.size(); ++i) {
      const at::Tensor real = ids[rows[i]].masked_select(mask[rows[i]].to(at::kBool));
      sub_ids[i].narrow(0, 0, real.size(0)).copy_(real);
      sub_mask[i].narrow(0, 0, real.size(0)).fill_(1);
    }
    GradientBatch sub;
    sub.input_ids = sub_ids;
    sub.attention_mask = sub_mask;
    sub.group.assign(rows.size(), 0);
    sub.group_ids = {batch.group_id(g)};
    if (batch.layout_or_null() != nullptr) {
      NPEFF_CHECK(rows.size() == 1, "a token layout needs one row per example");
      const int64_t r = rows[0];
      sub.layout.positions = batch.layout.positions[r].narrow(0, 0, len).unsqueeze(0);
      sub.layout.allowed = batch.layout.allowed[r].narrow(0, 0, len).narrow(1, 0, len).unsqueeze(0);
    }
    const ModelOutputs outputs(
        model, model.forward_hidden(sub_ids, sub_mask, nullptr, sub.layout_or_null()), nullptr);
    const at::Tensor obj = checked_objectives(objectives, outputs, sub);
    all_obj.push_back(obj.detach());
    std::vector<std::vector<at::Tensor>> grads_j;
    for (int64_t j = 0; j < obj.size(1); ++j) {
      grads_j.push_back(torch::autograd::grad({obj[0][j]}, leaves, {}, /*retain_graph=*/true,
                                              /*create_graph=*/false, /*allow_unused=*/true));
    }
    for (size_t s = 0; s < leaves.size(); ++s) {
      std::vector<at::Tensor> per_j;
      for (const auto& gj : grads_j) {
        per_j.push_back(gj[s].defined() ? gj[s].to(at::kFloat).reshape({-1})
                                        : at::zeros({leaves[s].numel()}));
      }
      per_slice[s].push_back(at::stack(per_j, 0));  // [k, numel]
    }
  }
  for (at::Tensor& leaf : leaves) leaf.set_requires_grad(false);
  for (size_t s = 0; s < per_slice.size(); ++s)
    consumer(selection.slices()[s], at::stack(per_slice[s], 0));
  return GradientResult{at::cat(all_obj, 0)};
}

at::Tensor ModelOutputs::logits_at(const at::Tensor& rows, const at::Tensor& positions) const {
  const int64_t T = hidden_.size(1);
  const at::Tensor index = rows.to(at::kLong) * T + positions.to(at::kLong);
  if (capture_ && capture_->wants(model_.output_head_index())) {
    // A selected (untied) output head is captured over the whole [B, T] layout, once.
    return all_logits().reshape({-1, all_logits().size(2)}).index_select(0, index);
  }
  return model_.output_logits(hidden_.reshape({-1, hidden_.size(2)}).index_select(0, index));
}

at::Tensor ModelOutputs::all_logits() const {
  if (!all_.defined()) all_ = model_.output_logits(hidden_, capture_);
  return all_;
}

at::Tensor last_token_positions(const at::Tensor& attention_mask) {
  const at::Tensor m = attention_mask.to(at::kLong);
  const at::Tensor t = at::arange(m.size(1), m.options());
  return (m * t.unsqueeze(0)).amax(1);
}

Objectives last_token_log_prob_objectives(const at::Tensor& targets) {
  return [targets](const ModelOutputs& out, const GradientBatch& batch) {
    const int64_t B = batch.input_ids.size(0);
    NPEFF_CHECK(batch.num_groups() == B, "last_token_log_prob_objectives: one row per example");
    const at::Device dev = out.hidden().device();
    const at::Tensor pos = last_token_positions(batch.attention_mask).to(dev);
    const at::Tensor last = out.logits_at(at::arange(B, pos.options()), pos);  // [B, V]
    std::vector<int64_t> ids;
    for (int64_t g = 0; g < batch.num_groups(); ++g) ids.push_back(batch.group_id(g));
    const at::Tensor t = targets.index_select(0, at::tensor(ids, at::kLong)).to(dev);
    return at::log_softmax(last, -1).gather(1, t);
  };
}

}  // namespace npeff::model
