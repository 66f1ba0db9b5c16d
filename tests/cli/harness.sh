# Shared by the command-line test scripts (sourced). Counts checks; `finish` prints
# "N passed, M failed" and returns non-zero on any failure.
passed=0
failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
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
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
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
