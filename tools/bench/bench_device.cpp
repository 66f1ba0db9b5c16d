// Benchmarks at the paper's shapes through the public, device-generic entry points, each against
// a floor measured in the same run on the same device (tools/gpu-check.sh phase c):
//   projection  y = A x for rows x n inputs (paper: n = 3.15e8, SmolLM2-360M's block weights;
//               d = 16,384; 2 and 16 rows): input elements/s and the ratio to a device copy of
//               the same input (read + write); the transpose A^T y back to n entries, timed
//               at --transpose-n entries (0 = n; shorter lengths are extrapolated linearly,
//               both transposes being O(d + s) per chunk) and given as a ratio to the forward.
//   decompose   ms per step at m x r x d, C (paper: 60,000 x 2 x 16,384, C = 512; 310 ms on an
//               A6000) for each storage x compute dtype, against the step's two large products
//               (B = G H^T, E^T G) alone in the compute dtype.
// Usage: bench_device projection [--device cpu|cuda] [--n 315000000] [--d 16384] [--rows 2,16]
//                                [--transpose-n 0] [--reps 3]
//        bench_device decompose  [--device cpu|cuda] [--m 60000] [--r 2] [--d 16384] [--c 512]
//                                [--steps 3] [--storage fp32,fp16,bf16] [--compute fp32,tf32,bf16]
//        bench_device recover    [--device cpu|cuda] [--n 315000000] [--d 16384] [--k 500]
//                                [--final-stages 50] [--components 1]
//   recover     FPC (recover's solver, App. G) on a planted k-sparse u with h = A u / |A u|:
//               seconds per component, relative residual, error against the planted u, and the
//               share of the time spent in the projection's products (floor: one forward plus
//               one transpose, timed in the same run); device peak memory on CUDA.
// Prints a human line and a "RESULT {json}" line per measurement (gpu-check collects the latter).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "npeff/core/device.h"
#include "npeff/core/error.h"
#include "npeff/core/runtime.h"
#include "npeff/decomposition/decomposition.h"
#include "npeff/dist/communicator.h"
#include "npeff/projection/projection.h"
#include "npeff/recovery/recovery.h"

using namespace npeff;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
// Waits for the device's queued work: reading one element back synchronises the stream.
void sync(const at::Tensor& t) {
  if (t.is_cuda()) t.view(-1)[0].item<float>();
}
template <typename Fn>
double best_seconds(int reps, const at::Tensor& probe, Fn&& fn) {
  fn();  // warm-up (allocator, kernel loading)
  sync(probe);
  double best = 1e300;
  for (int k = 0; k < reps; ++k) {
    const double t0 = now();
    fn();
    sync(probe);
    best = std::min(best, now() - t0);
  }
  return best;
}
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}
void result(nlohmann::json j) {
  std::cout << "RESULT " << j.dump() << std::endl;
}

void bench_projection(std::map<std::string, std::string>& o, const c10::Device dev) {
  const int64_t n = std::stoll(o["n"]), d = std::stoll(o["d"]);
  const int64_t tn_opt = std::stoll(o["transpose-n"]);
  const int64_t tn = tn_opt > 0 ? std::min(n, tn_opt) : n;
  const int reps = std::stoi(o["reps"]);
  const projection::Projection p({7, d, 0, projection::Kind::kSparse});
  for (const std::string& rs : split(o["rows"])) {
    const int64_t rows = std::stoll(rs);
    at::Tensor x = at::empty({rows, n}, at::TensorOptions().device(dev)).normal_();
    at::Tensor out = at::zeros({rows, d}, x.options());
    const double fwd = best_seconds(reps, out, [&] {
      out.zero_();
      projection::project_accumulate(p, x, 0, out);
    });
    at::Tensor copy = at::empty_like(x);
    const double cp = best_seconds(reps, copy, [&] { copy.copy_(x); });
    copy.reset();
    at::Tensor back = at::empty({rows, tn}, x.options());
    const double tr =
        best_seconds(reps, back, [&] { projection::project_transpose_into(p, out, 0, back); });
    const double tr_full = tr * static_cast<double>(n) / static_cast<double>(tn);
    std::printf(
        "projection %s: %lld rows x n %lld -> d %lld: %.1f ms, %.3e input elements/s; "
        "copy %.1f ms (ratio %.2f); transpose %.1f ms at n %lld -> %.1f ms at n (x%.2f fwd)\n",
        dev.str().c_str(), static_cast<long long>(rows), static_cast<long long>(n),
        static_cast<long long>(d), 1e3 * fwd, rows * n / fwd, 1e3 * cp, fwd / cp, 1e3 * tr,
        static_cast<long long>(tn), 1e3 * tr_full, tr_full / fwd);
    result({{"bench", "projection"},
            {"device", dev.str()},
            {"rows", rows},
            {"n", n},
            {"d", d},
            {"forward_ms", 1e3 * fwd},
            {"elements_per_s", rows * n / fwd},
            {"copy_ms", 1e3 * cp},
            {"ratio_to_copy", fwd / cp},
            {"transpose_n", tn},
            {"transpose_ms", 1e3 * tr},
            {"transpose_ms_extrapolated", 1e3 * tr_full},
            {"transpose_over_forward", tr_full / fwd}});
  }
}

void bench_decompose(std::map<std::string, std::string>& o, const c10::Device dev) {
  using decomposition::ComputeDtype;
  const int64_t m = std::stoll(o["m"]), r = std::stoll(o["r"]), d = std::stoll(o["d"]),
                c = std::stoll(o["c"]);
  const int steps = std::stoi(o["steps"]);
  at::Tensor g = at::empty({m, r, d}, at::TensorOptions().device(dev)).normal_();
  decomposition::normalize_pefs(g);
  const at::Tensor gf = g.view({m * r, d});
  const at::Tensor h = at::randn({c, d}, g.options()), e = at::randn({m * r, c}, g.options());
  for (const std::string& storage : split(o["storage"])) {
    const at::ScalarType st = storage == "fp16"   ? at::kHalf
                              : storage == "bf16" ? at::kBFloat16
                                                  : at::kFloat;
    const at::Tensor gs = st == at::kFloat ? g : g.to(st);
    for (const std::string& compute : split(o["compute"])) {
      const ComputeDtype dt = decomposition::parse_compute_dtype(compute);
      if (dt == ComputeDtype::kTf32 && !dev.is_cuda()) continue;
      double step_s = 0;
      {
        decomposition::Decomposer dec =
            st == at::kFloat ? decomposition::Decomposer(gs, c)
                             : decomposition::Decomposer(decomposition::memory_source(gs), c,
                                                         dist::world(), -1, 0);
        dec.set_compute_dtype(dt);
        dec.initialize(0);
        step_s = best_seconds(1, dec.w(),
                              [&] {
                                for (int s = 0; s < steps; ++s) dec.step(true, 1e-4);
                              }) /
                 steps;
      }
      // The products alone in the step's precision (the Decomposer sets TF32 only in its calls).
      at::globalContext().setAllowTF32CuBLAS(dt == ComputeDtype::kTf32);
      const at::ScalarType ct = dt == ComputeDtype::kBf16 ? at::kBFloat16 : at::kFloat;
      const at::Tensor gc = gf.to(ct), hc = h.to(ct), ec = e.to(ct);
      const double gemm_s = best_seconds(2, hc, [&] {
        at::Tensor b = at::mm(gc, hc.t());
        at::Tensor t2 = at::mm(ec.t(), gc);
      });
      const double tflops = 4.0 * m * r * d * c / gemm_s / 1e12;
      std::printf(
          "decompose %s: %lld x %lld x %lld, C %lld, storage %s, compute %s: %.1f ms/step; "
          "two products alone %.1f ms (%.3g TFLOP/s); step / products %.2f\n",
          dev.str().c_str(), static_cast<long long>(m), static_cast<long long>(r),
          static_cast<long long>(d), static_cast<long long>(c), storage.c_str(), compute.c_str(),
          1e3 * step_s, 1e3 * gemm_s, tflops, step_s / gemm_s);
      result({{"bench", "decompose"},
              {"device", dev.str()},
              {"m", m},
              {"r", r},
              {"d", d},
              {"C", c},
              {"storage", storage},
              {"compute", compute},
              {"step_ms", 1e3 * step_s},
              {"products_ms", 1e3 * gemm_s},
              {"products_tflops", tflops},
              {"ratio_to_products", step_s / gemm_s}});
    }
  }
  at::globalContext().setAllowTF32CuBLAS(false);
}

void bench_recover(std::map<std::string, std::string>& o, const c10::Device dev) {
  const int64_t n = std::stoll(o["n"]), d = std::stoll(o["d"]), k = std::stoll(o["k"]);
  const int64_t components = std::stoll(o["components"]);
  const projection::Projection p({7, d, 0, projection::Kind::kSparse});
  const at::TensorOptions opts = at::TensorOptions().device(dev).dtype(at::kFloat);
  double products_s = 0;
  int64_t products = 0;
  const auto timed = [&](auto&& fn) {
    const double t0 = now();
    at::Tensor out = fn();
    sync(out);
    products_s += now() - t0;
    ++products;
    return out;
  };
  const auto forward = [&](const at::Tensor& u) {
    return timed([&] { return projection::project(p, u.view({1, n})).view({d}); });
  };
  const auto adjoint = [&](const at::Tensor& y) {
    return timed([&] { return projection::project_transpose(p, y.view({1, d}), 0, n).view({n}); });
  };
  recovery::FpcOptions fo;
  fo.final_iterations = std::stoll(o["final-stages"]);
  for (int64_t comp = 0; comp < components; ++comp) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(100 + comp);
    // k draws with replacement (a permutation of n = 3e8 would take seconds): ~k nonzeros.
    const at::Tensor where = at::randint(0, n, {k}, gen, at::kLong);
    at::Tensor truth = at::zeros({n}, opts);
    truth.index_put_({where.to(dev)}, at::randn({k}, gen, at::kFloat).to(dev));
    const at::Tensor b = projection::project(p, truth.view({1, n})).view({d});
    const double scale = 1.0 / b.norm().item<double>();
    truth.mul_(scale);
    const at::Tensor h = b * scale;
    // The floor: one forward and one transpose, as FPC calls them.
    const double floor_s = best_seconds(2, h, [&] {
      at::Tensor y = projection::project(p, truth.view({1, n}));
      at::Tensor x = projection::project_transpose(p, y, 0, n);
      sync(x);
    });
    products_s = 0;
    products = 0;
    reset_peak_device_memory(dev);
    const double t0 = now();
    const recovery::FpcResult r = recovery::fpc(forward, adjoint, h, n, fo);
    sync(r.u);
    const double total = now() - t0;
    const int64_t peak = peak_device_memory(dev);
    const double err = (r.u - truth).norm().item<double>() / truth.norm().item<double>();
    const int64_t nnz = r.u.ne(0).sum().item<int64_t>();
    std::printf(
        "recover %s: n %lld, d %lld, planted k %lld: %.1f s/component, relative residual %.2e, "
        "|u - u*| / |u*| %.2e, nnz %lld, %lld shrinkage steps; %lld products %.1f s (%.0f%% of "
        "the time), one forward + transpose %.3f s (x%.1f of it per component)%s\n",
        dev.str().c_str(), static_cast<long long>(n), static_cast<long long>(d),
        static_cast<long long>(k), total, r.relative_residual, err, static_cast<long long>(nnz),
        static_cast<long long>(r.iterations), static_cast<long long>(products), products_s,
        100 * products_s / total, floor_s, total / floor_s,
        peak >= 0 ? (", device peak " + std::to_string(peak >> 20) + " MiB").c_str() : "");
    result({{"bench", "recover"},
            {"device", dev.str()},
            {"n", n},
            {"d", d},
            {"k", k},
            {"seconds", total},
            {"relative_residual", r.relative_residual},
            {"error_vs_planted", err},
            {"nnz", nnz},
            {"shrinkage_steps", r.iterations},
            {"products", products},
            {"products_seconds", products_s},
            {"products_share", products_s / total},
            {"forward_plus_transpose_seconds", floor_s},
            {"ratio_to_floor", total / floor_s},
            {"device_peak_bytes", peak}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  tune_openmp_wait_policy(argv);
  if (argc < 2) {
    std::cerr << "usage: bench_device projection|decompose|recover [--option value]...\n";
    return 2;
  }
  const std::string what = argv[1];
  std::map<std::string, std::string> o = {{"device", "cpu"},
                                          {"n", "315000000"},
                                          {"d", "16384"},
                                          {"rows", "2,16"},
                                          {"transpose-n", "0"},
                                          {"reps", "3"},
                                          {"m", "60000"},
                                          {"r", "2"},
                                          {"c", "512"},
                                          {"steps", "3"},
                                          {"storage", "fp32,fp16,bf16"},
                                          {"compute", "fp32,tf32,bf16"},
                                          {"threads", "0"},
                                          {"k", "500"},
                                          {"final-stages", "50"},
                                          {"components", "1"}};
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string key = std::string(argv[i]).substr(2);
    if (std::string(argv[i]).rfind("--", 0) != 0 || !o.count(key)) {
      std::cerr << "bench_device: unknown option " << argv[i] << "\n";
      return 2;
    }
    o[key] = argv[i + 1];
  }
  try {
    set_num_threads(std::stoi(o["threads"]));
    const c10::Device dev = select_device(o["device"]);
    at::NoGradGuard no_grad;
    if (what == "projection") {
      bench_projection(o, dev);
    } else if (what == "decompose") {
      bench_decompose(o, dev);
    } else if (what == "recover") {
      bench_recover(o, dev);
    } else {
      std::cerr << "bench_device: unknown benchmark " << what << "\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_device: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
