#!/usr/bin/env bash
# tools/check-cli-conventions passes on the binary, and fails when the vocabulary lacks a flag
# the binary has or gives a short option two meanings (so the check itself can fail).
# Usage: test_cli_conventions.sh NPEFF_BINARY
set -u
npeff=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/tests/cli/harness.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
check="$root/tools/check-cli-conventions"
vocab="$root/docs/cli-vocabulary.md"
expect 0 "every subcommand follows docs/cli-vocabulary.md" ' 0 failed$' -- bash "$check" "$npeff" "$vocab"
grep -v '^| `--pefs`' "$vocab" > "$work/no-pefs.md"
expect 1 "a flag missing from the vocabulary fails" '--pefs is not in the vocabulary' -- bash "$check" "$npeff" "$work/no-pefs.md"
sed 's/^| `--decomposition` | `-D` |/| `--decomposition` | `-d` |/' "$vocab" > "$work/short-d.md"
expect 1 "a short option other than the vocabulary's fails" "-D for --decomposition, the vocabulary gives '-d'" -- bash "$check" "$npeff" "$work/short-d.md"
# A fake binary whose two subcommands give -x two meanings.
cat > "$work/fake" <<'FAKE'
#!/usr/bin/env bash
case "$*" in
  --help) printf 'Usage: fake\nOptions:\n  -h,--help  help\nSubcommands:\n  one  first\n  two  second\n' ;;
  "one --help") printf 'Options:\n  -h,--help  help\n  -p,--pefs TEXT  files\n' ;;
  "two --help") printf 'Options:\n  -h,--help  help\n  -p,--prompt TEXT  text\n' ;;
esac
FAKE
chmod +x "$work/fake"
sed 's/^| `--prompt` | |/| `--prompt` | `-p` |/' "$vocab" > "$work/two-p.md"
expect 1 "a short option with two meanings fails" '-p means --pefs in npeff one but --prompt in npeff two' -- bash "$check" "$work/fake" "$work/two-p.md"
finish
