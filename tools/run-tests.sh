#!/usr/bin/env bash
# The README's test command: installs the Debian packages npeff needs, builds everything
# (including the CUDA kernels when nvcc is present), runs the whole test suite, then rebuilds the
# command-line binary and the I/O tests with AddressSanitizer and runs those (broken-file
# handling must be clean under ASan). Usage: tools/run-tests.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

tools/install-deps.sh

echo "== build (Release) =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"

echo "== tests =="
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== AddressSanitizer: command-line tests, HDF5/inspect, GGUF, safetensors and tokenizer tests =="
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNPEFF_SANITIZE=address \
  -DNPEFF_WITH_CUDA=OFF -DNPEFF_BUILD_BENCH=OFF
cmake --build build-asan -j "$jobs" --target npeff make_test_files test_hdf5 test_schema_inspect \
  test_gguf test_gguf_malformed test_gguf_dequant test_safetensors test_tokenizer \
  test_tokenizer_errors test_tokenizer_fixtures test_model_errors
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
build-asan/tests/test_hdf5
build-asan/tests/test_schema_inspect
NPEFF_SOURCE_DIR=$PWD build-asan/tests/test_gguf
NPEFF_SOURCE_DIR=$PWD build-asan/tests/test_gguf_malformed
NPEFF_SOURCE_DIR=$PWD build-asan/tests/test_gguf_dequant
NPEFF_SOURCE_DIR=$PWD build-asan/tests/test_safetensors
NPEFF_SOURCE_DIR=$PWD build-asan/tests/test_tokenizer
NPEFF_SOURCE_DIR=$PWD build-asan/tests/test_tokenizer_errors
NPEFF_SOURCE_DIR=$PWD build-asan/tests/test_tokenizer_fixtures --gtest_filter='*EdgeCases*'
NPEFF_SOURCE_DIR=$PWD build-asan/tests/test_model_errors
bash tests/cli/test_cli.sh build-asan/npeff build-asan/tests/make_test_files
NPEFF_SOURCE_DIR=$PWD bash tests/cli/test_tokenize.sh build-asan/npeff
NPEFF_SOURCE_DIR=$PWD bash tests/cli/test_model_cli.sh build-asan/npeff
NPEFF_TEST_EXAMPLES=120 NPEFF_SOURCE_DIR=$PWD bash tests/cli/test_compute_pefs.sh build-asan/npeff
NPEFF_SOURCE_DIR=$PWD bash tests/cli/test_recover_perturb.sh build-asan/npeff
NPEFF_SOURCE_DIR=$PWD bash tests/cli/test_analysis.sh build-asan/npeff
NPEFF_SOURCE_DIR=$PWD bash tests/cli/test_ground_truth.sh build-asan/npeff

echo "== libFuzzer (clang): tokenizer, safetensors and GGUF loaders, ${NPEFF_FUZZ_SECONDS:-60} s each =="
CC=clang CXX=clang++ cmake -S tests/fuzz -B build-fuzz -G Ninja
cmake --build build-fuzz -j "$jobs"
# target:dictionary (tests/fuzz/DICTIONARY.dict); seeds in tests/fuzz/corpus/TARGET
for spec in tokenizer_json:tokenizer tokenizer_file:tokenizer safetensors:safetensors gguf:gguf; do
  target=${spec%%:*} dict=${spec#*:}
  work=$(mktemp -d)  # new inputs go here, not into the committed seed corpus
  build-fuzz/fuzz_$target -max_total_time="${NPEFF_FUZZ_SECONDS:-60}" -timeout=10 -rss_limit_mb=2048 \
    -dict="tests/fuzz/$dict.dict" -print_final_stats=1 "$work" "tests/fuzz/corpus/$target" 2>&1 | tail -4
  rm -rf "$work"
done
echo "run-tests: all passed"
