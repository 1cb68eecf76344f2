#!/usr/bin/env bash
# Renders a `ticketing simulate --report` page to PNG in headless Chromium: what a reader's
# browser shows, with no script and nothing fetched (the page is self-contained).
#
#   scripts/report-screenshot.sh REPORT OUT.png [--size WxH] [--chart KIND [--strategy S] [--op OP]]
#
# REPORT is the report's directory or its index.html. Without --chart, the top of the page is
# rendered at --size (default 1400x2000: the operations table is about 1,330 px wide). With
# --chart, only the first chart of that kind (latency-over-time, throughput-over-time,
# percentiles, outcomes, users-over-time, comparison), optionally of one strategy and
# operation, is rendered at its own size.
#
# Installs Debian's `chromium` with apt-get when it is missing (needs root).
set -euo pipefail

usage() {
    sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
report=$1
out=$2
shift 2
size=1400x2000
kind=
strategy=
op=
while [ $# -gt 0 ]; do
    case $1 in
        --size) size=${2:?--size needs WxH}; shift 2 ;;
        --chart) kind=${2:?--chart needs a kind}; shift 2 ;;
        --strategy) strategy=${2:?--strategy needs a name}; shift 2 ;;
        --op) op=${2:?--op needs an operation}; shift 2 ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[ -d "$report" ] && report=$report/index.html
[ -f "$report" ] || { echo "no report at $report" >&2; exit 1; }
[[ $size =~ ^[0-9]+x[0-9]+$ ]] || { echo "--size must look like 1400x2000, not $size" >&2; exit 2; }

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "installing chromium (apt-get)…" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    browser=$(command -v chromium)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
page=$report
if [ -n "$kind" ]; then
    # The chart's <figure>, alone on a page of its own size: SVG charts carry their width and
    # height, so the window fits the chart exactly.
    attrs="data-kind=\"$kind\""
    [ -n "$strategy" ] && attrs="$attrs data-strategy=\"$strategy\""
    [ -n "$op" ] && attrs="$attrs data-op=\"$op\""
    figure=$(ATTRS="$attrs" perl -0777 -ne 'print $1 if /(<figure class="chart" \Q$ENV{ATTRS}\E[^>]*>.*?<\/figure>)/s' "$report")
    [ -n "$figure" ] || { echo "no chart with $attrs in $report" >&2; exit 1; }
    width=$(printf '%s' "$figure" | perl -ne 'if (/<svg[^>]*width="(\d+)"/) { print $1; exit }')
    height=$(printf '%s' "$figure" | perl -ne 'if (/<svg[^>]*height="(\d+)"/) { print $1; exit }')
    size="${width}x${height}"
    page=$tmp/chart.html
    printf '<!doctype html><html><head><meta charset="utf-8"><style>body{margin:0}figure{margin:0}</style></head><body>%s</body></html>\n' "$figure" >"$page"
fi

"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$tmp/profile" --window-size="${size/x/,}" \
    --screenshot="$(realpath -m "$out")" "file://$(realpath "$page")" 2>"$tmp/log" || {
    cat "$tmp/log" >&2
    exit 1
}
[ -s "$out" ] || { echo "chromium wrote no image; its log:" >&2; cat "$tmp/log" >&2; exit 1; }
echo "$out ($size)"
