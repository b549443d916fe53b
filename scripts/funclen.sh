#!/bin/sh
# Functions longer than N lines (default 80) in the daemon's C sources,
# longest first: "lines file:line name". Kernel style: the name starts a
# line and the body ends at the first "}" in column 0.
limit=${1:-80}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.." || exit 1
[ $# -gt 0 ] || set -- common/*.c backends/*.c machine/*.c fs/*.c run/*.c ocr/*.c
awk -v limit="$limit" '
FNR == 1 { name = "" }
/^[a-z_][a-z0-9_]*\(/ { name = $0; sub(/\(.*/, "", name); start = FNR; next }
/^}/ && name != "" {
	n = FNR - start + 1
	if (n > limit) printf "%5d %s:%d %s\n", n, FILENAME, start, name
	name = ""
}' "$@" 2>/dev/null | sort -rn
