#!/usr/bin/env bash
# Fails when ctest skipped a test that the list of expected skips does not allow, so that a check
# the machine can run never passes by being skipped (tools/run-tests.sh, hence CI, runs this).
#   tools/check-skips.sh JUNIT.xml     JUNIT.xml from `ctest --output-junit`: every test whose
#                                      status is not "run"/"fail" (skipped: SKIP_RETURN_CODE 77 of
#                                      a tests/cli script, GTEST_SKIP; disabled) must match the list;
#                                      prints each unexpected skip with its reason, exits 1.
#   tools/check-skips.sh --allows NAME exits 0 when the list allows test NAME to be skipped.
# The list: $NPEFF_EXPECTED_SKIPS, default .ci/expected-skips (CI's machine); one bash glob per
# line matched against ctest test names, '#' starts a comment.
set -euo pipefail
list=${NPEFF_EXPECTED_SKIPS:-$(dirname "$0")/../.ci/expected-skips}
[[ -r $list ]] || { echo "check-skips: cannot read the expected-skips list $list" >&2; exit 2; }
patterns=()
while IFS= read -r line || [[ -n $line ]]; do
  line=${line%%#*}
  line=${line//[[:space:]]/}
  [[ -n $line ]] && patterns+=("$line")
done < "$list"
allowed() {
  local p
  for p in "${patterns[@]}"; do
    # shellcheck disable=SC2053  # the pattern is a glob on purpose
    [[ $1 == $p ]] && return 0
  done
  return 1
}

if [[ ${1:-} == --allows ]]; then
  allowed "$2"
  exit
fi
junit=${1:?usage: tools/check-skips.sh JUNIT.xml | --allows NAME}
[[ -s $junit ]] || { echo "check-skips: no ctest JUnit file $junit" >&2; exit 2; }
# One line per test that did not run: NAME<TAB>STATUS<TAB>reason (the script's "SKIP: ..."
# lines, or GoogleTest's message after "Skipped"). CTest writes each <testcase ...> on one line.
not_run=$(awk '
  function attr(s, a,   m) {
    if (match(s, a "=\"[^\"]*\"")) { m = substr(s, RSTART + length(a) + 2, RLENGTH - length(a) - 3); return m }
    return ""
  }
  function unescape(s) {
    gsub(/&lt;/, "<", s); gsub(/&gt;/, ">", s); gsub(/&quot;/, "\"", s); gsub(/&apos;/, "'\''", s)
    gsub(/&amp;/, "\\&", s); return s
  }
  function flush() {
    if (name != "" && status != "run" && status != "fail") print unescape(name) "\t" status "\t" unescape(reason)
    name = ""
  }
  /<testcase / { flush(); name = attr($0, "name"); status = attr($0, "status"); reason = ""; after_skipped = 0; next }
  /<\/testcase>/ { flush(); next }
  {
    line = $0; sub(/.*<system-out>/, "", line)
    if (after_skipped && line != "") { reason = reason (reason == "" ? "" : "; ") line; after_skipped = 0 }
    if (line ~ /^SKIP: /) reason = reason (reason == "" ? "" : "; ") substr(line, 7)
    if (line ~ /: Skipped$/) after_skipped = 1
  }
  END { flush() }
' "$junit")

unexpected=0 expected=0
while IFS=$'\t' read -r name status reason; do
  [[ -n $name ]] || continue
  if allowed "$name"; then
    expected=$((expected + 1))
  else
    unexpected=$((unexpected + 1))
    echo "check-skips: UNEXPECTED SKIP: $name ($status)${reason:+: $reason}"
  fi
done <<< "$not_run"
echo "check-skips: $expected expected skip(s) (listed in $list), $unexpected unexpected"
if [[ $unexpected -gt 0 ]]; then
  echo "check-skips: this machine is expected to run those tests (install what the reason names," \
    "see tools/install-deps.sh); a machine that lacks it on purpose lists its skips in a file" \
    "named by NPEFF_EXPECTED_SKIPS" >&2
  exit 1
fi
