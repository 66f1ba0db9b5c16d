// NPEFF decomposition: Algorithm 1 / Appendix C of the paper with LibTorch ops (CPU and CUDA).
#include "npeff/decomposition/decomposition.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <algorithm>
#include <cmath>

#include "npeff/core/error.h"
#include "npeff/dist/communicator.h"

namespace npeff::decomposition {
namespace {

// Guards the multiplicative update against 0/0 for components that vanished entirely.
constexpr double kTiny = 1e-30;

// The Decomposer's own float32 products in TensorFloat-32 exactly when its compute dtype says
// so: cuBLAS's TF32 switch is process-wide, so it is set for the duration of a call (on for tf32,
// off otherwise, whatever another part of the process left) and restored after.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool on) : before_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuBLAS(on);
  }
  ~Tf32Scope() { at::globalContext().setAllowTF32CuBLAS(before_); }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool before_;
};

void check_pefs(const at::Tensor& pefs) {
  NPEFF_CHECK(pefs.defined() && pefs.dim() == 3, "PEFs must be a [m, r, n] tensor");
  NPEFF_CHECK(pefs.scalar_type() == at::kFloat, "PEFs must be float32, got ",
              c10::toString(pefs.scalar_type()));
}

// Gram matrices K_i = G_i G_i^T, [m, r, r], computed in float32 (no float64 copy of G: that
// would triple the peak memory) and returned as float64 for the norm sums.
at::Tensor grams(const at::Tensor& pefs) {
  return at::bmm(pefs, pefs.transpose(1, 2)).to(at::kDouble);
}

// B = G H^T as [m, r, C], N_ij = sum_k B_ikj^2 as [m, C], and M = (H H^T) o (H H^T). The product
// runs in G's dtype (float32 or bfloat16) and B is returned as float32.
struct Products {
  at::Tensor b, n, m;
};
Products products(const at::Tensor& g_flat, std::int64_t m, std::int64_t r, const at::Tensor& h) {
  at::Tensor b =
      at::mm(g_flat, h.to(g_flat.scalar_type()).t()).to(at::kFloat).view({m, r, h.size(0)});
  at::Tensor n = b.square().sum(1);
  at::Tensor hh = at::mm(h, h.t());
  return {b, n, hh.square()};
}

}  // namespace

at::Tensor normalize_pefs(at::Tensor& pefs) {
  check_pefs(pefs);
  const at::Tensor norms = grams(pefs).square().sum({1, 2}).sqrt();  // ||G^T G||_F = ||G G^T||_F
  const at::Tensor scale = at::where(norms > 0, norms.rsqrt(), at::zeros_like(norms));
  pefs.mul_(scale.to(at::kFloat).view({-1, 1, 1}));
  return norms.cpu();
}

double pef_sq_norm_sum(const at::Tensor& pefs) {
  check_pefs(pefs);
  return grams(pefs).square().sum().item<double>();
}

double npeff_loss(const at::Tensor& pefs, const at::Tensor& w, const at::Tensor& h) {
  return npeff_example_losses(pefs, w, h).sum().item<double>();
}

at::Tensor npeff_example_losses(const at::Tensor& pefs, const at::Tensor& w, const at::Tensor& h) {
  check_pefs(pefs);
  const std::int64_t m = pefs.size(0), r = pefs.size(1), n = pefs.size(2);
  NPEFF_CHECK(h.dim() == 2 && h.size(1) == n, "components have dimension ", h.sizes(),
              " but the PEFs have ", n);
  NPEFF_CHECK(w.dim() == 2 && w.size(0) == m && w.size(1) == h.size(0), "W has shape ", w.sizes(),
              ", expected [", m, ", ", h.size(0), "]");
  // float64 throughout: a good fit leaves a loss far below ||G_i^T G_i||^2, and the identity
  // subtracts terms of that size, so float32 products (relative error ~1e-7 * sqrt(n)) would
  // leave an absolute error larger than the loss itself. Blocks of examples bound the float64
  // copy of G to kBlockBytes.
  constexpr std::int64_t kBlockBytes = std::int64_t{64} << 20;
  const std::int64_t block = std::max<std::int64_t>(1, kBlockBytes / (r * n * 8));
  const at::Tensor hd = h.to(pefs.device(), at::kDouble);
  const at::Tensor wd = w.to(pefs.device(), at::kDouble);
  const at::Tensor hh2 = at::mm(hd, hd.t()).square();
  at::Tensor out = at::empty({m}, wd.options());
  for (std::int64_t b0 = 0; b0 < m; b0 += block) {
    const std::int64_t count = std::min(block, m - b0);
    out.narrow(0, b0, count)
        .copy_(example_losses_from_terms(example_loss_terms(pefs.narrow(0, b0, count), hd),
                                         wd.narrow(0, b0, count), hh2));
  }
  // Each term is a squared norm; rounding can still leave tiny negatives for exact fits.
  return out.clamp_min(0.0).cpu();
}

LossTerms example_loss_terms(const at::Tensor& g, const at::Tensor& h64) {
  const std::int64_t k = g.size(0), r = g.size(1), n = g.size(2);
  const at::Tensor g64 = g.to(at::kDouble);
  return {at::bmm(g64, g64.transpose(1, 2)).square().sum({1, 2}),
          at::mm(g64.reshape({k * r, n}), h64.t()).view({k, r, -1}).square().sum(1)};
}

at::Tensor example_losses_from_terms(const LossTerms& t, const at::Tensor& w64,
                                     const at::Tensor& m64) {
  return t.g_sq - 2 * (w64 * t.n).sum(1) + (w64 * at::mm(w64, m64)).sum(1);
}

namespace {

class MemorySource : public PefSource {
 public:
  explicit MemorySource(at::Tensor pefs) : pefs_(std::move(pefs)) {
    NPEFF_CHECK(pefs_.defined() && pefs_.dim() == 3, "PEFs must be a [m, r, n] tensor");
    const auto t = pefs_.scalar_type();
    NPEFF_CHECK(t == at::kFloat || t == at::kHalf || t == at::kBFloat16,
                "PEFs must be float32, float16 or bfloat16, got ", c10::toString(t));
  }
  std::int64_t examples() const override { return pefs_.size(0); }
  std::int64_t rank() const override { return pefs_.size(1); }
  std::int64_t dim() const override { return pefs_.size(2); }
  c10::Device device() const override { return pefs_.device(); }
  at::Tensor block(std::int64_t first, std::int64_t count) override {
    return pefs_.narrow(0, first, count).to(at::kFloat);  // a view when already float32
  }

 private:
  at::Tensor pefs_;
};

}  // namespace

ComputeDtype parse_compute_dtype(const std::string& text) {
  if (text == "fp32") return ComputeDtype::kFp32;
  if (text == "tf32") return ComputeDtype::kTf32;
  if (text == "bf16") return ComputeDtype::kBf16;
  NPEFF_FAIL("unknown --compute-dtype '", text, "': expected fp32, tf32 or bf16");
}

std::unique_ptr<PefSource> memory_source(at::Tensor pefs) {
  return std::make_unique<MemorySource>(std::move(pefs));
}

Decomposer::Decomposer(at::Tensor pefs, std::int64_t components)
    : Decomposer(std::move(pefs), components, dist::world(), -1, 0) {}

Decomposer::Decomposer(at::Tensor pefs, std::int64_t components, dist::Communicator& comm,
                       std::int64_t total_examples, std::int64_t first)
    : Decomposer((check_pefs(pefs), memory_source(std::move(pefs))), components, comm,
                 total_examples, first) {}

Decomposer::Decomposer(std::unique_ptr<PefSource> source, std::int64_t components,
                       dist::Communicator& comm, std::int64_t total_examples, std::int64_t first)
    : source_(std::move(source)) {
  m_ = source_->examples();
  r_ = source_->rank();
  n_ = source_->dim();
  c_ = components;
  comm_ = comm.size() > 1 && total_examples >= 0 ? &comm : nullptr;
  total_ = comm_ != nullptr ? total_examples : m_;
  first_ = comm_ != nullptr ? first : 0;
  NPEFF_CHECK(c_ > 0, "the number of components must be positive, got ", c_);
  NPEFF_CHECK(c_ <= total_, "the number of components (", c_, ") exceeds the number of examples (",
              total_, ")");
  NPEFF_ASSERT(first_ >= 0 && first_ + m_ <= total_, "bad partition");
  // sum_i ||G_i^T G_i||^2 in blocks of at most 64 MiB of float32 (a float16/bfloat16 source is
  // upcast block by block), whatever block size the caller sets later: a whole-data block would
  // be a float32 copy of all the PEFs.
  double local_sq = source_->known_sq_norm_sum();
  if (local_sq < 0) {
    local_sq = 0;
    block_examples_ = std::max<std::int64_t>(1, (std::int64_t{64} << 20) / (r_ * n_ * 4));
    for_each_block([&](std::int64_t, std::int64_t count, const at::Tensor& g) {
      local_sq += pef_sq_norm_sum(g.to(at::kFloat).view({count, r_, n_}));
    });
    block_examples_ = 0;
  }
  at::Tensor sq = at::full({1}, local_sq, at::kDouble);
  if (comm_ != nullptr) comm_->allreduce_sum(sq);
  g_sq_norm_ = sq.item<double>();
}

void Decomposer::set_block_examples(std::int64_t examples) {
  NPEFF_CHECK(examples >= 0, "block size must be >= 0 (0: all examples at once)");
  block_examples_ = examples;
}

template <typename Fn>
void Decomposer::for_each_block(Fn&& fn) {
  const std::int64_t bs = block_examples_ > 0 ? block_examples_ : std::max<std::int64_t>(m_, 1);
  const auto dtype = dtype_ == ComputeDtype::kBf16 ? at::kBFloat16 : at::kFloat;
  for (std::int64_t b0 = 0; b0 < m_; b0 += bs) {
    const std::int64_t count = std::min(bs, m_ - b0);
    fn(b0, count, source_->block(b0, count).reshape({count * r_, n_}).to(dtype));
  }
}

void Decomposer::initialize(std::uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const c10::Device device = source_->device();
  // Appendix C.4: W ~ U[0, 1]; H ~ N(0, sd = sqrt(2) / sqrt(C n)) so that the initial
  // reconstructions have roughly unit Frobenius norm, like the normalised PEFs. Every process
  // draws the full W and keeps its rows, so the partition does not change the draw.
  w_ = at::rand({total_, c_}, gen, at::kFloat).narrow(0, first_, m_).contiguous().to(device);
  h_ = (at::randn({c_, n_}, gen, at::kFloat) * std::sqrt(2.0 / (static_cast<double>(c_) * n_)))
           .to(device);
}

void Decomposer::set_state(const at::Tensor& w, const at::Tensor& h) {
  NPEFF_CHECK(w.dim() == 2 && w.size(0) == m_ && w.size(1) == c_, "W has shape ", w.sizes(),
              ", expected [", m_, ", ", c_, "]");
  NPEFF_CHECK(h.dim() == 2 && h.size(0) == c_ && h.size(1) == n_, "H has shape ", h.sizes(),
              ", expected [", c_, ", ", n_, "]");
  w_ = w.to(source_->device(), at::kFloat).contiguous();
  h_ = h.to(source_->device(), at::kFloat).contiguous();
}

void Decomposer::set_compute_dtype(ComputeDtype dtype) {
  if (dtype == ComputeDtype::kTf32) {
    NPEFF_CHECK(source_->device().is_cuda(),
                "--compute-dtype tf32 needs --device cuda "
                "(TensorFloat-32 is a GPU tensor-core format)");
  }
  dtype_ = dtype;
}

void Decomposer::step(bool update_w, double lr, double* loss) {
  NPEFF_ASSERT(w_.defined() && h_.defined(), "step() before initialize()");
  const Tf32Scope tf32(dtype_ == ComputeDtype::kTf32);
  const at::Tensor hh = at::mm(h_, h_.t());
  const at::Tensor hh2 = hh.square();  // (H H^T) o (H H^T)
  at::Tensor t2 = at::zeros_like(h_);
  at::Tensor parts = at::zeros({2}, at::kDouble);  // sum W o N, sum W o (W M) over examples
  // One pass over the examples: B = G H^T, the W update (C.1; B and N do not change with W),
  // and the accumulation of E^T G (C.2).
  for_each_block([&](std::int64_t b0, std::int64_t count, const at::Tensor& g) {
    const at::Tensor b = at::mm(g, h_.to(g.scalar_type()).t()).to(at::kFloat).view({count, r_, c_});
    const at::Tensor n = b.square().sum(1);
    at::Tensor w = w_.narrow(0, b0, count);
    if (loss != nullptr) {
      const at::Tensor wd = w.to(at::kDouble);
      parts[0] += (wd * n.to(at::kDouble)).sum().cpu();
      parts[1] += (wd * at::mm(wd, hh2.to(at::kDouble))).sum().cpu();
    }
    if (update_w) w.copy_(w * n / at::mm(w, hh2).clamp_min(kTiny));
    const at::Tensor e = (b * w.unsqueeze(1)).reshape({count * r_, c_});
    t2.add_(at::mm(e.t().to(g.scalar_type()), g).to(at::kFloat));
  });
  if (loss != nullptr) {
    if (comm_ != nullptr) comm_->allreduce_sum(parts);
    *loss = g_sq_norm_ - 2 * parts[0].item<double>() + parts[1].item<double>();
  }
  // C.2: grad = T1 + T2 with T1 = 4 ((W^T W) o (H H^T)) H and T2 = -4 E^T G.
  at::Tensor grad = at::mm(at::mm(w_.t(), w_) * hh, h_).mul_(4.0).sub_(t2.mul_(4.0));
  if (comm_ != nullptr) comm_->allreduce_sum(grad);  // the one all-reduce per step (C.3)
  h_ = h_ - grad * lr;
}

double Decomposer::loss() {
  const Tf32Scope tf32(dtype_ == ComputeDtype::kTf32);
  const at::Tensor hh2 = at::mm(h_, h_.t()).square().to(at::kDouble);
  at::Tensor parts = at::zeros({2}, at::kDouble);
  for_each_block([&](std::int64_t b0, std::int64_t count, const at::Tensor& g) {
    const at::Tensor b = at::mm(g, h_.to(g.scalar_type()).t()).to(at::kFloat).view({count, r_, c_});
    const at::Tensor wd = w_.narrow(0, b0, count).to(at::kDouble);
    parts[0] += (wd * b.square().sum(1).to(at::kDouble)).sum().cpu();
    parts[1] += (wd * at::mm(wd, hh2)).sum().cpu();
  });
  if (comm_ != nullptr) comm_->allreduce_sum(parts);
  return g_sq_norm_ - 2 * parts[0].item<double>() + parts[1].item<double>();
}

void Decomposer::update_coefficients() {
  const Tf32Scope tf32(dtype_ == ComputeDtype::kTf32);
  const at::Tensor hh2 = at::mm(h_, h_.t()).square();
  for_each_block([&](std::int64_t b0, std::int64_t count, const at::Tensor& g) {
    const at::Tensor b = at::mm(g, h_.to(g.scalar_type()).t()).to(at::kFloat).view({count, r_, c_});
    at::Tensor w = w_.narrow(0, b0, count);
    w.copy_(w * b.square().sum(1) / at::mm(w, hh2).clamp_min(kTiny));
  });
}

void Decomposer::normalize_components() {
  const at::Tensor sq = h_.square().sum(1);  // ||h_j||^2 = ||h_j h_j^T||_F
  const at::Tensor safe = at::where(sq > 0, sq, at::ones_like(sq));
  h_ = h_ / safe.sqrt().unsqueeze(1);
  w_ = w_ * safe.unsqueeze(0);
}

at::Tensor fit_coefficients(const at::Tensor& pefs, const at::Tensor& h, std::int64_t steps,
                            std::uint64_t seed) {
  check_pefs(pefs);
  NPEFF_CHECK(h.dim() == 2 && h.size(1) == pefs.size(2), "components have dimension ", h.size(1),
              " but the PEFs have ", pefs.size(2));
  NPEFF_CHECK(steps >= 0, "steps must be >= 0");
  const std::int64_t m = pefs.size(0), r = pefs.size(1);
  const at::Tensor hd = h.to(pefs.options());
  // H is fixed, so N and M are computed once; each step is a multiplicative update.
  const Products p = products(pefs.reshape({m * r, pefs.size(2)}), m, r, hd);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor w = at::rand({m, h.size(0)}, gen, at::kFloat).to(pefs.device());
  for (std::int64_t t = 0; t < steps; ++t) w = w * p.n / at::mm(w, p.m).clamp_min(kTiny);
  return w;
}

}  // namespace npeff::decomposition
