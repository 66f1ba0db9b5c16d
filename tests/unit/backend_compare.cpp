// Backends, metrics and the report of the device test suite (see backend_compare.h).
#include "unit/backend_compare.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "npeff/core/runtime.h"

namespace npeff::testing::backends {
namespace {

struct Row {
  std::string op, shape, backend, path, metric, status, why;
  double error = 0, bound = 0;
};
std::vector<Row>& rows() {
  static std::vector<Row> r;
  return r;
}

std::string format(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v == 0 ? "0" : "%.2e", v);
  return buf;
}

// Prints the table after the last test and writes the Markdown and JSON reports.
class Report : public ::testing::Environment {
 public:
  void TearDown() override {
    if (rows().empty()) return;
    std::ostringstream md;
    md << "| op | shape | backend | path | metric | error | bound | status |\n"
          "|---|---|---|---|---|---|---|---|\n";
    nlohmann::json js = nlohmann::json::array();
    int failed = 0;
    for (const Row& r : rows()) {
      const bool na = r.status == "n/a";
      md << "| " << r.op << " | " << r.shape << " | " << r.backend << " | " << r.path << " | "
         << (na ? "" : r.metric) << " | " << (na ? "" : format(r.error)) << " | "
         << (na ? "" : format(r.bound)) << " | " << r.status << (na ? ": " + r.why : "") << " |\n";
      js.push_back({{"op", r.op},
                    {"shape", r.shape},
                    {"backend", r.backend},
                    {"path", r.path},
                    {"metric", r.metric},
                    {"error", std::isfinite(r.error) ? r.error : -1.0},
                    {"bound", r.bound},
                    {"status", r.status},
                    {"why", r.why}});
      failed += r.status == "FAIL";
    }
    std::cout << "\n[ backends ] " << rows().size() << " comparisons, " << failed << " failed\n"
              << md.str();
    if (const char* p = std::getenv("NPEFF_BACKENDS_MD")) std::ofstream(p) << md.str();
    if (const char* p = std::getenv("NPEFF_BACKENDS_JSON")) std::ofstream(p) << js.dump(1) << "\n";
  }
};
[[maybe_unused]] ::testing::Environment* const report_env =
    ::testing::AddGlobalTestEnvironment(new Report);

Backend make_second() {
  const char* e = std::getenv("NPEFF_BACKEND");
  const std::string want = e ? e : "auto";
  if (want == "cuda" || (want == "auto" && cuda_available())) {
    if (!cuda_available()) {
      std::cerr << "NPEFF_BACKEND=cuda but this binary cannot use a GPU\n";
      std::exit(2);
    }
    return {"cuda", c10::Device(c10::kCUDA, 0), 0, 0};
  }
  if (want != "cpu2" && want != "auto") {
    std::cerr << "NPEFF_BACKEND must be auto, cuda or cpu2, got " << want << "\n";
    std::exit(2);
  }
  // One thread and uneven blocks: every float reduction of the reference runs in another order.
  return {"cpu2", c10::Device(c10::kCPU), 1, 7};
}

}  // namespace

const Backend& reference() {
  static const Backend b{"cpu", c10::Device(c10::kCPU), 0, 0};
  return b;
}
const Backend& second() {
  static const Backend b = make_second();
  return b;
}
const Backend& cpu_only_second() {
  static const Backend b{"cpu (1 thread)", c10::Device(c10::kCPU), 1, 7};
  return b;
}

OnBackend::OnBackend(const Backend& b) : saved_(num_threads()) {
  set_num_threads(b.threads);
}
OnBackend::~OnBackend() {
  set_num_threads(saved_);
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kMaxAbs:
      return "max abs";
    case Metric::kScaled:
      return "max abs / max |ref|";
    case Metric::kNmse:
      return "NMSE";
  }
  return "?";
}

double error(Metric m, const at::Tensor& ref_in, const at::Tensor& got_in) {
  const at::Tensor ref = ref_in.detach().cpu().to(at::kDouble);
  const at::Tensor got = got_in.detach().cpu().to(at::kDouble);
  if (ref.numel() == 0) return 0;
  const at::Tensor diff = got - ref;
  switch (m) {
    case Metric::kMaxAbs:
      return diff.abs().max().item<double>();
    case Metric::kScaled: {
      const double scale = ref.abs().max().item<double>();
      return diff.abs().max().item<double>() / (scale > 0 ? scale : 1.0);
    }
    case Metric::kNmse: {
      const double denom = ref.square().sum().item<double>();
      return diff.square().sum().item<double>() / (denom > 0 ? denom : 1.0);
    }
  }
  return NAN;
}

void check(const std::string& op, const std::string& shape, const Backend& backend,
           const at::Tensor& ref, const at::Tensor& got, const Bounds& bounds, Path path) {
  const Bound& b = bounds.on(backend);
  Row r{op,
        shape,
        backend.name,
        path == Path::kDevice ? "device" : "CPU only",
        metric_name(b.metric),
        "",
        bounds.why};
  r.bound = b.value;
  if (!ref.defined() || !got.defined() || ref.sizes() != got.sizes()) {
    r.error = NAN;
    r.status = "FAIL";
    r.why = "shapes differ";
    ADD_FAILURE() << op << " " << shape << ": shapes differ";
  } else {
    r.error = error(b.metric, ref, got);
    r.status = r.error <= b.value ? "pass" : "FAIL";  // NaN fails
    EXPECT_LE(r.error, b.value) << op << " [" << shape << "] on " << backend.name << ": "
                                << metric_name(b.metric) << " (" << bounds.why << ")";
  }
  rows().push_back(r);
}

void not_applicable(const std::string& op, const std::string& shape, const Backend& backend,
                    const std::string& why) {
  rows().push_back({op, shape, backend.name, "", "", "n/a", why});
}

}  // namespace npeff::testing::backends
