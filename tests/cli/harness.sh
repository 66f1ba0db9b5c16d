# Shared by the command-line test scripts (sourced). Counts checks; `finish` prints
# "N passed, M failed, K skipped" and returns 1 on any failure, else 77 (ctest's
# SKIP_RETURN_CODE, tests/CMakeLists.txt) when a part could not run, else 0. A script that
# cannot run a part calls `skip REASON` (or `need TOOL... -- REASON`) and carries on with the
# rest, so a skipped part never hides a failure elsewhere and never passes as "all ok".
passed=0
failed=0
skipped=()
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
skip() { echo "SKIP: $1"; skipped+=("$1"); }
# need TOOL... -- WHAT: true when every TOOL is on PATH; otherwise records the skip of WHAT
# (naming the missing tools) and returns 1.
need() {
  local missing=()
  while [[ $# -gt 0 && $1 != -- ]]; do command -v "$1" > /dev/null 2>&1 || missing+=("$1"); shift; done
  shift
  [[ ${#missing[@]} -eq 0 ]] && return 0
  skip "$* not tested: ${missing[*]} not installed (tools/install-deps.sh installs it)"
  return 1
}
# expect CODE DESCRIPTION PATTERN -- command...: checks the exit code and that stdout+stderr
# matches the extended regex PATTERN ('' = anything).
expect() {
  local code=$1 what=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc -ne $code ]]; then bad "$what: exit $rc, expected $code"; echo "$out" | tail -20; return; fi
  if [[ -n $pattern ]] && ! grep -Eq -- "$pattern" <<<"$out"; then
    bad "$what: output does not match /$pattern/"; echo "$out" | tail -20; return
  fi
  ok "$what"
}
finish() {
  echo "$passed passed, $failed failed, ${#skipped[@]} skipped"
  [[ $failed -eq 0 ]] || return 1
  if [[ ${#skipped[@]} -gt 0 ]]; then
    printf 'skipped (exit 77): %s\n' "${skipped[@]}"
    return 77
  fi
  return 0
}
# write_char_tokenizer FILE: a character-level tokenizer.json whose ids fit the tiny models'
# 96-token vocabulary (as tests/unit/task_fixtures.h).
write_char_tokenizer() {
  local chars='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :.,?!' i
  {
    printf '{"model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "merges": [], "vocab": {"<unk>": 0'
    for ((i = 0; i < ${#chars}; i++)); do printf ', "%s": %d' "${chars:i:1}" $((i + 1)); done
    printf ', "\\n": %d}}}\n' $((${#chars} + 1))
  } > "$1"
}
# write_toy_task ROWS [SUFFIX]: chars.json (write_char_tokenizer), data.tsv with ROWS two-word
# reviews (+ SUFFIX) labelled by parity, and task.json (a label-tokens SST-2 look-alike) in $PWD.
write_toy_task() {
  local rows=$1 suffix=${2:-} i
  local words=(good bad fine dull great awful fun sad nice poor)
  write_char_tokenizer chars.json
  {
    echo -e "sentence\tlabel"
    for ((i = 0; i < rows; i++)); do echo -e "${words[i % 10]} ${words[(i * 7 + 3) % 10]}$suffix\t$((i % 2))"; done
  } > data.tsv
  cat > task.json <<JSON
{"name": "toy", "kind": "label-tokens", "labels": ["Negative", "Positive"], "label_prefix": "",
 "template": "Review: {text}\nSentiment:",
 "data": {"format": "tsv", "path": "$PWD/data.tsv", "fields": {"text": "sentence"}, "label_field": "label",
          "label_names": {"0": "Negative", "1": "Positive"}}}
JSON
}
