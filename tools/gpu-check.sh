#!/usr/bin/env bash
# The GPU check (issue 18): builds npeff on a lent, bare, offline GPU machine and runs
#   (a) the device suite tests/unit/test_backends.cpp (every op and stage on CPU and CUDA, stated
#       bounds) and test_projection_cuda;
#   (b) a random-weight SmolLM2-360M-shaped model made there by tools/gpu_reference.py
#       (transformers, seeded): npeff's logits and per-example gradients against PyTorch autograd
#       on CUDA, and `npeff model-info` on it;
#   (d) tools/gpu-pipeline.sh: every compute stage's subcommand with --device cuda against the
#       same command on the CPU (a tiny model of the repository);
#   (c) benchmarks at the paper's shapes, each with its floor from the same run (bench_device:
#       projection n = 3.15e8, d = 16,384, 2/16 rows; decompose 60,000 x 2 x 16,384, C = 512, every
#       storage/compute dtype; bench_compute_pefs: SST-2, the 360M model, all block weights,
#       d = 16,384; bench_per_example_grad: engine vs loop, B = 16).
# Each phase is timed and appended to $OUT/gpu-report.md and $OUT/gpu-report.json as soon as it
# ends, so a run cut short still returns what was done; phases are skipped when the time left
# (NPEFF_GPU_BUDGET_S, default 540 s from the start) is below their estimate. Nothing is
# downloaded or installed: what the image lacks comes from .gpu-bundle/ (tools/gpu-bundle.sh).
#
# Usage (device tool: carry [".gpu-bundle"], timeout_s 600):  tools/gpu-check.sh
#        here, before any lease:    tools/gpu-bundle.sh && tools/gpu-check.sh --rehearse
# --rehearse: the same script on this CPU machine, with the system's copies of the bundled
# packages hidden from the build (an overlay on /usr in a private mount namespace; needs root),
# Debian's LibTorch, CUDA phases replaced by their CPU forms at small sizes, so that a missing
# bundle piece or a broken phase shows up here rather than on the lease.
# Environment: OUT (report folder; default out/gpu-check), NPEFF_GPU_BUILD (build folder),
# NPEFF_GPU_BUDGET_S, NPEFF_GPU_WORK (large scratch files; default /tmp/npeff-gpu-check),
# NPEFF_GPU_JOBS, NPEFF_TORCH_PREFIX (LibTorch's CMake prefix), NPEFF_GPU_CUDA (ON|OFF: build
# the CUDA paths; default ON on the GPU, OFF in the rehearsal), NPEFF_GPU_CMAKE_ARGS (extra
# configure arguments). E.g. a compile-and-link rehearsal against pip's CUDA LibTorch unpacked
# in /tmp/torch (no GPU needed): NPEFF_TORCH_PREFIX=/tmp/torch/share/cmake NPEFF_GPU_CUDA=ON
# NPEFF_GPU_BUDGET_S=1 tools/gpu-check.sh --rehearse.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=gpu
[[ ${1:-} == --rehearse ]] && mode=rehearse
bundle=$root/.gpu-bundle
bp=$bundle/prefix/usr

if [[ $mode == rehearse && -z ${NPEFF_GPU_HIDDEN:-} ]]; then
  [[ -f $bundle/MANIFEST ]] || { echo "gpu-check: run tools/gpu-bundle.sh first" >&2; exit 2; }
  [[ $(id -u) == 0 ]] || { echo "gpu-check --rehearse: needs root (mount namespace)" >&2; exit 2; }
  exec unshare -m --propagation private env NPEFF_GPU_HIDDEN=1 bash "$0" "$@"
fi

# ---- settings ---------------------------------------------------------------------------------
OUT=${OUT:-$root/out/gpu-check}
mkdir -p "$OUT"
md=$OUT/gpu-report.md
js=$OUT/gpu-report.json
work=${NPEFF_GPU_WORK:-/tmp/npeff-gpu-check}
mkdir -p "$work"
budget=${NPEFF_GPU_BUDGET_S:-540}
[[ $mode == rehearse ]] && budget=${NPEFF_GPU_BUDGET_S:-3600}  # 2 cores: the build alone ~10 min
t_start=$(date +%s)
if [[ $mode == gpu ]]; then
  build=${NPEFF_GPU_BUILD:-$root/build-gpu}
  jobs=${NPEFF_GPU_JOBS:-$(nproc)}
else
  build=${NPEFF_GPU_BUILD:-$root/build-rehearse}
  jobs=${NPEFF_GPU_JOBS:-2}
fi
export NPEFF_SOURCE_DIR=$root NPEFF_SHARED_DIR=$bundle/shared CCACHE_DISABLE=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# ---- report -----------------------------------------------------------------------------------
elapsed() { echo $(($(date +%s) - t_start)); }
# json_add PHASE STATUS SECONDS SUMMARY [FILE...]: appends an entry to gpu-report.json (kept a
# valid JSON document after every phase); FILEs hold "RESULT {json}" lines or a JSON array.
json_add() {
  python3 - "$js" "$@" <<'EOF'
import json, sys, os
path, phase, status, seconds, summary, *files = sys.argv[1:]
doc = json.load(open(path)) if os.path.exists(path) else {"phases": []}
entry = {"phase": phase, "status": status, "seconds": int(seconds), "summary": summary, "results": []}
for f in files:
    if not os.path.exists(f):
        continue
    text = open(f).read()
    if text.lstrip().startswith("["):
        entry["results"] += json.loads(text)
    else:
        entry["results"] += [json.loads(l[7:]) for l in text.splitlines() if l.startswith("RESULT {")]
doc["phases"].append(entry)
json.dump(doc, open(path + ".tmp", "w"), indent=1)
os.replace(path + ".tmp", path)
EOF
}
# phase_end NAME STATUS START SUMMARY [LOG] [JSON-FILES...]: one section in the Markdown report.
phase_end() {
  local name=$1 status=$2 start=$3 summary=$4 log=${5:-}
  shift 5 2>/dev/null || shift $#
  local secs=$(($(date +%s) - start))
  {
    echo "## $name: $status (${secs} s; $(elapsed) s since start)"
    echo
    echo "$summary"
    echo
    if [[ -n $log && -s $log && ! $status =~ ^(ok|pass) ]]; then
      echo '```'
      tail -n 60 "$log"
      echo '```'
      echo
    fi
  } >>"$md"
  json_add "$name" "$status" "$secs" "$summary" "$@"
  echo "gpu-check: $name: $status (${secs} s)"
}
# have_time ESTIMATE: enough of the budget left for a phase estimated at ESTIMATE seconds?
have_time() { (($(elapsed) + $1 <= budget)); }
skip() { phase_end "$1" skipped "$(date +%s)" "$2" ""; }

# ---- rehearsal: hide the system's copies of the bundled packages -------------------------------
hide_system_packages() {
  # Whiteouts in an overlay over /usr for every file of these packages: the build must then find
  # everything in the bundle, and the binaries must load the bundle's libraries. Only this
  # process tree sees it (private mount namespace).
  # (Not libhdf5-hl-100: Debian's LibTorch needs it through libnetcdf, and the GPU's has none.)
  local hidden=(libhdf5-dev hdf5-helpers libhdf5-103-1 libhdf5-openmpi-dev libhdf5-mpi-dev libcli11-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
    nlohmann-json3-dev libgtest-dev libgmock-dev googletest libpcre2-dev libutf8proc-dev libutf8proc2 zlib1g-dev libsz2
    libaec0 libaec-dev pkgconf pkgconf-bin pkg-config libpkgconf3 libopenmpi-dev openmpi-bin
    mpi-default-dev mpi-default-bin)
  # Another LibTorch than Debian's: TorchConfig would find Debian's libtorch.so on the system
  # paths before its own (as libc10, see cmake/NpeffDependencies.cmake).
  [[ -n ${NPEFF_TORCH_PREFIX:-} ]] && hidden+=(libtorch-dev)
  local top=$work/overlay
  mkdir -p "$top"
  mount -t tmpfs tmpfs "$top" || return 1
  mkdir -p "$top/upper" "$top/work"
  local present=()
  for pkg in "${hidden[@]}"; do dpkg-query -W "$pkg" >/dev/null 2>&1 && present+=("$pkg"); done
  # One Python process for the ~10^4 whiteouts (a mknod per file from bash takes minutes).
  dpkg -L "${present[@]}" | python3 -c '
import os, stat, sys
upper = sys.argv[1]
for f in sys.stdin.read().splitlines():
    if not f.startswith(("/usr/", "/lib/")):
        continue
    rel = f if f.startswith("/lib/") else f[4:]  # merged /usr: /lib is /usr/lib
    p = "/usr" + rel
    if (os.path.isdir(p) and not os.path.islink(p)) or not os.path.lexists(p):
        continue
    os.makedirs(upper + os.path.dirname(rel), exist_ok=True)
    if not os.path.lexists(upper + rel):
        os.mknod(upper + rel, stat.S_IFCHR | 0o600, os.makedev(0, 0))
' "$top/upper" || return 1
  local n
  n=$(find "$top/upper" -type c | wc -l)
  mount -t overlay overlay -o "lowerdir=/usr,upperdir=$top/upper,workdir=$top/work" /usr || return 1
  echo "hid $n files of the system's copies of the bundled packages (overlay on /usr)"
}

# ---- runtime libraries: the bundle's, only where the machine lacks a soname --------------------
fill_libraries() {
  local fill=$work/libs so path found
  rm -rf "$fill"
  mkdir -p "$fill"
  local cache
  cache=$(ldconfig -p 2>/dev/null || true)
  while read -r kind so; do
    [[ $kind == soname ]] || continue
    found=""
    # ldconfig's cache may name files that are gone (the rehearsal's overlay): check each path.
    for path in $(awk -v s="$so" '$1 == s {print $NF}' <<<"$cache") \
                /lib/x86_64-linux-gnu/$so /usr/lib/x86_64-linux-gnu/$so /lib64/$so /usr/lib64/$so; do
      [[ -e $path ]] && { found=$path; break; }
    done
    [[ -z $found ]] && ln -sf "$bp/lib/x86_64-linux-gnu/$so" "$fill/$so"
  done <"$bundle/MANIFEST"
  export LD_LIBRARY_PATH=$fill${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  local missing
  missing=$(ldd "$bp/lib/x86_64-linux-gnu/libhdf5_serial.so.103" "$bp/lib/x86_64-linux-gnu/libspdlog.so.1.10" \
            "$bp/bin/pkgconf" 2>&1 | grep 'not found' | sort -u)
  echo "bundle libraries used (the machine lacks them): $(ls "$fill" | tr '\n' ' ')"
  [[ -z $missing ]] || { echo "still unresolved: $missing"; return 1; }
}

# ---- phases -------------------------------------------------------------------------------------
{
  echo "# npeff GPU check ($mode), $(date -u +'%Y-%m-%d %H:%M UTC')"
  echo
  echo "- commit: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified tree)')"
  echo "- device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'no GPU (nvidia-smi absent)')"
  echo "- CPU cores: $(nproc); build jobs: $jobs; budget: $budget s"
  echo "- nvcc: $(nvcc --version 2>/dev/null | tail -1 || /usr/local/cuda/bin/nvcc --version 2>/dev/null | tail -1 || echo none)"
  echo "- cmake: $(cmake --version | head -1); compiler: $(c++ --version | head -1)"
  echo
} >"$md"
rm -f "$js"

t=$(date +%s)
log=$OUT/build.log
: >"$log"
status=ok
if [[ $mode == rehearse ]]; then
  hide_system_packages >>"$log" 2>&1 || status=failed
fi
if [[ -n ${NPEFF_TORCH_PREFIX:-} ]]; then
  torch_prefix=$NPEFF_TORCH_PREFIX
elif [[ $mode == gpu ]]; then
  torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>>"$log")
  # pip's CUDA wheels: the nvidia-* libraries at link and run time.
  nvlibs=$(python3 -c 'import nvidia, os; print(":".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, "lib"))))' 2>/dev/null || true)
  [[ -n $nvlibs ]] && export LD_LIBRARY_PATH=$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
  torch_prefix=/usr  # Debian's LibTorch
fi
echo "torch: ${torch_prefix:-none} ($(python3 -c 'import torch;print(torch.__version__, torch.version.cuda)' 2>/dev/null))" >>"$log"
fill_libraries >>"$log" 2>&1 || status=failed
cuda=OFF
[[ $mode == gpu ]] && cuda=ON
cuda=${NPEFF_GPU_CUDA:-$cuda}
targets=(npeff test_backends bench_device bench_compute_pefs bench_per_example_grad)
[[ $cuda == ON ]] && targets+=(test_projection_cuda)
if [[ $status == ok ]]; then
  # A cache from another configuration would keep what it found (e.g. the system's HDF5):
  # start it afresh; the object files stay and are rebuilt only where flags changed.
  rm -f "$build/CMakeCache.txt"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$bp" -DPKG_CONFIG_EXECUTABLE="$bp/bin/pkgconf" \
    -DNPEFF_WITH_MPI=OFF -DNPEFF_WITH_CUDA=$cuda -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DTORCH_CUDA_ARCH_LIST=9.0 ${NPEFF_GPU_CMAKE_ARGS:-} >>"$log" 2>&1 || status=failed
fi
found=$(grep -E '^hid |^bundle libraries|Found (Torch|HDF5|nlohmann|GTest|PkgConfig|libpcre2|ZLIB|CUDA)|^-- npeff ' "$log" |
        sed 's/^/    /')
phase_end "configure" "$status" "$t" "LibTorch at \`$torch_prefix\`; bundle $(du -sh "$bundle" | cut -f1); CUDA $cuda
$found" "$log"
[[ $status == ok ]] || exit 1

t=$(date +%s)
log=$OUT/build.log
lock=()
[[ $mode == rehearse ]] && lock=(flock /tmp/npeff-build.lock)
# -k 0: one broken target does not stop the others; the phases below skip what is missing.
"${lock[@]}" cmake --build "$build" -j "$jobs" --target "${targets[@]}" -- -k 0 >>"$log" 2>&1
status=ok
built=()
for x in "${targets[@]}"; do
  f=$(find "$build" -name "$x" -type f -perm -u+x 2>/dev/null | head -1)
  [[ -n $f ]] && built+=("$x") || status=partial
done
phase_end "build" "$status" "$t" "targets: ${targets[*]}; built: ${built[*]} (-j $jobs, no ccache)" "$log"
bin() { find "$build" -name "$1" -type f -perm -u+x 2>/dev/null | head -1; }

# (a) device tests
t=$(date +%s)
if have_time 60 && [[ -n $(bin test_backends) ]]; then
  log=$OUT/backends.log
  NPEFF_BACKEND=$([[ $mode == gpu ]] && echo cuda || echo cpu2) \
    NPEFF_BACKENDS_MD=$work/backends.md NPEFF_BACKENDS_JSON=$work/backends.json \
    timeout 240 "$(bin test_backends)" --gtest_filter='-ReferenceModel.*' >"$log" 2>&1
  rc=$?
  if [[ $mode == gpu && -n $(bin test_projection_cuda) ]]; then
    echo "== test_projection_cuda" >>"$log"
    timeout 120 "$(bin test_projection_cuda)" >>"$log" 2>&1 || rc=$((rc ? rc : 1))
  fi
  {
    [[ -s $work/backends.md ]] && cat "$work/backends.md"
    echo
  } >"$work/backends-table.md"
  phase_end "a. device tests" "$([[ $rc == 0 ]] && echo pass || echo "FAIL (rc $rc)")" "$t" \
    "$(cat "$work/backends-table.md")" "$([[ $rc == 0 ]] || echo "$log")" "$work/backends.json"
else
  skip "a. device tests" "not enough time left or test_backends not built"
fi

# (b) npeff against PyTorch autograd on a random SmolLM2-360M-shaped model
t=$(date +%s)
ref=$work/ref-model
rm -rf "$ref"  # never a model from an earlier run
shape=smollm2-360m
pydev=cuda
if [[ $mode == rehearse ]]; then shape=tiny pydev=cpu; fi
py=python3
[[ $mode == rehearse && -x $root/.venv-gpucheck/bin/python ]] && py=$root/.venv-gpucheck/bin/python
if ! "$py" -c 'import torch, transformers, safetensors' 2>/dev/null; then
  skip "b. reference model" "$py lacks torch/transformers/safetensors"
elif have_time 90 && [[ -n $(bin test_backends) ]]; then
  log=$OUT/reference.log
  timeout 180 "$py" tools/gpu_reference.py --out "$ref" --shape $shape \
    --device $pydev >"$log" 2>&1
  rc=$?
  if [[ $rc == 0 ]]; then
    echo "== npeff model-info" >>"$log"
    timeout 60 "$(bin npeff)" model-info --model "$ref" --tokenizer "$bundle/smollm2/vocab.gguf" --json \
      >>"$log" 2>&1 || rc=1
    echo "== test_backends ReferenceModel" >>"$log"
    NPEFF_BACKEND=$([[ $mode == gpu ]] && echo cuda || echo cpu2) NPEFF_REFERENCE_DIR=$ref \
      NPEFF_BACKENDS_MD=$work/reference.md NPEFF_BACKENDS_JSON=$work/reference.json \
      timeout 180 "$(bin test_backends)" --gtest_filter='ReferenceModel.*' >>"$log" 2>&1 || rc=1
  fi
  phase_end "b. reference model ($shape, torch on $pydev)" "$([[ $rc == 0 ]] && echo pass || echo FAIL)" \
    "$t" "$(cat "$work/reference.md" 2>/dev/null)" "$log" "$work/reference.json"
else
  skip "b. reference model" "not enough time left or test_backends not built"
fi

# (d) every compute stage's subcommand on the device against the CPU (tools/gpu-pipeline.sh)
t=$(date +%s)
if have_time 60 && [[ -n $(bin npeff) ]]; then
  log=$OUT/pipeline.log
  timeout 240 tools/gpu-pipeline.sh "$(bin npeff)" "$([[ $mode == gpu ]] && echo cuda || echo cpu)" \
    >"$work/pipeline.out" 2>"$log"
  rc=$?
  grep '^RESULT ' "$work/pipeline.out" >"$work/pipeline.results"
  phase_end "d. subcommands on the device vs the CPU" "$([[ $rc == 0 ]] && echo pass || echo "FAIL (rc $rc)")" \
    "$t" "$(grep '^|' "$work/pipeline.out")" "$log" "$work/pipeline.results"
else
  skip "d. subcommands on the device" "not enough time left or npeff not built"
fi

# (c) benchmarks at the paper's shapes (rehearsal: the same commands at CPU sizes)
dev=cuda
proj=(--n 315000000 --d 16384 --rows 2,16)
proj50=(--n 50000000 --d 16384 --rows 1,2,16)  # issue 17: transpose <= 2x forward at n = 5e7
deco=(--m 60000 --r 2 --d 16384 --c 512 --steps 3)
pefs=(--model "$ref" --tokenizer "$bundle/smollm2/vocab.gguf" --task "$bundle/tasks/sst2.json"
      --pef exact --proj-dim 16384 --batch 8 --batches 2)
grad=(--model "$ref" --tokenizer "$bundle/smollm2/vocab.gguf" --batch 16 --k 2 --repeats 2
      --texts "$bundle/shared/data/sst2/validation.tsv")
if [[ $mode == rehearse ]]; then
  dev=cpu
  proj=(--n 2000000 --d 1024 --rows 2,16 --reps 2)
  proj50=(--n 500000 --d 16384 --rows 1,2 --reps 2)
  deco=(--m 2000 --r 2 --d 1024 --c 32 --steps 2)
  pefs=("${pefs[@]/16384/1024}")  # the tiny reference model of phase b, SmolLM2's tokenizer
fi
bench() {  # bench NAME ESTIMATE TIMEOUT COMMAND...: one phase per benchmark
  local name=$1 est=$2 limit=$3
  shift 3
  local t0 log rc
  t0=$(date +%s)
  if ! have_time "$est"; then skip "$name" "not enough time left (estimate $est s)"; return; fi
  if [[ -z $(bin "$1") ]]; then skip "$name" "$1 not built"; return; fi
  log=$work/bench-$1.log
  local exe
  exe=$(bin "$1")
  shift
  timeout "$limit" "$exe" "$@" >"$log" 2>&1
  rc=$?
  cat "$log" >>"$OUT/bench.log"
  # The human lines are the result: in the report whatever the status; RESULT lines go to JSON.
  phase_end "$name" "$([[ $rc == 0 ]] && echo ok || echo "FAIL (rc $rc)")" "$t0" \
    "\`$(basename "$exe") $*\`
\`\`\`
$(grep -v '^RESULT ' "$log" | tail -n 40)
\`\`\`" "" "$log"
}
: >"$OUT/bench.log"
bench "c1. projection" 40 120 bench_device projection --device $dev "${proj[@]}"
bench "c1b. projection, n = 5e7" 20 60 bench_device projection --device $dev "${proj50[@]}"
bench "c2. decompose" 60 150 bench_device decompose --device $dev "${deco[@]}"
c34=""
if [[ ! -f $ref/config.json ]]; then
  # Phase b made no model (no transformers, or it failed): the same benchmarks on stories260K
  # (llama2.c, 512-token vocabulary: SST-2's labels share a first token, so TriviaQA, vocab task).
  stories=$bundle/shared/models/stories260K/stories260K.bin
  pefs=(--model "$stories" --task "$bundle/tasks/triviaqa.json" --pef expectation --eps 16
        --proj-dim 4096 --batch 8 --batches 2)
  grad=(--model "$stories" --batch 16 --k 2 --repeats 2 --texts "$bundle/shared/data/sst2/validation.tsv")
  c34=" (fallback: stories260K, phase b made no model)"
fi
bench "c3. compute-pefs$c34" 45 120 bench_compute_pefs --device $dev "${pefs[@]}"
bench "c4. per-example engine vs loop$c34" 45 120 bench_per_example_grad --device $dev "${grad[@]}"
rec=(--n 315000000 --d 16384 --k 500)
[[ $mode == rehearse ]] && rec=(--n 200000 --d 1024 --k 20)
bench "c5. recover (FPC, planted u)" 60 150 bench_device recover --device $dev "${rec[@]}"
echo "## total: $(elapsed) s" >>"$md"
echo "gpu-check: report in $md ($(elapsed) s)"
grep -qE '^## .*: (FAIL|failed)' "$md" && exit 1
exit 0
