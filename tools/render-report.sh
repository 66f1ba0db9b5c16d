#!/usr/bin/env bash
# Renders a tune-report page (OUT/index.html, or any local HTML file) in headless Chromium with
# the network blocked, and prints the DOM after its scripts ran (--dom) and/or writes a PNG
# screenshot (--screenshot FILE, --size WxH, default 1400x2400).
# Usage: tools/render-report.sh REPORT_DIR_OR_HTML [--dom] [--screenshot OUT.png] [--size WxH]
set -euo pipefail
page=${1:?usage: render-report.sh REPORT_DIR_OR_HTML [--dom] [--screenshot OUT.png] [--size WxH]}
shift
[[ -d $page ]] && page=$page/index.html
[[ -f $page ]] || { echo "render-report: $page: no such file" >&2; exit 2; }
dom=0 shot="" size=1400,2400
while (($#)); do
  case $1 in
    --dom) dom=1 ;;
    --screenshot) shot=$(realpath -m "$2"); shift ;;
    --size) size=${2/x/,}; shift ;;
    *) echo "render-report: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n $browser ]] || { echo "render-report: no chromium found (apt-get install chromium)" >&2; exit 3; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --disable-gpu --no-first-run --disable-extensions --user-data-dir="$profile"
  --disable-background-networking --disable-sync --proxy-server=127.0.0.1:9
  --host-resolver-rules="MAP * ~NOTFOUND" --virtual-time-budget=5000)
[[ $(id -u) -eq 0 ]] && flags+=(--no-sandbox)  # Chromium refuses root without it
url="file://$(realpath "$page")"
if [[ -n $shot ]]; then
  "$browser" "${flags[@]}" --window-size="$size" --screenshot="$shot" "$url" > /dev/null 2>&1
  [[ -s $shot ]] || { echo "render-report: no screenshot written" >&2; exit 1; }
  echo "$shot"
fi
if ((dom)); then
  "$browser" "${flags[@]}" --dump-dom "$url" 2> /dev/null
fi
