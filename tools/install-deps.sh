#!/usr/bin/env bash
# Installs every Debian package npeff's build, tests and benchmarks need (Debian 12+).
# Idempotent; run as root or with sudo available. Usage: tools/install-deps.sh
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache git pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU); GPU users build against pip torch instead
  libopenblas0-pthread    # a fast BLAS for LibTorch (Debian otherwise picks the reference BLAS)
  libhdf5-dev hdf5-tools  # HDF5 C library; h5dump/h5ls for users
  libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev libpcre2-dev
  libutf8proc-dev         # Unicode normalization for the tokenizers (NFC, NFKC, lowercase, ...)
  libopenmpi-dev openmpi-bin  # multi-process decompose (mpirun / srun)
  zlib1g-dev              # gzipped test fixtures
  clang libclang-rt-dev   # libFuzzer for the tokenizer/GGUF loader fuzzers (tests/fuzz)
  chromium                # headless rendering of tune-report pages (tests, tools/render-report.sh)
  jq                      # tools/pipeline.sh and tools/reproduce read the JSON summaries
  qemu-user binutils      # tests/cli/test_portable_build.sh: the default build runs on a Haswell CPU
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
