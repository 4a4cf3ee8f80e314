#!/bin/sh
# No function in src/ over MAX lines (issue 16): from its name's line to its closing brace, as
# universal-ctags sees it. Names each offender with its file, line and length. A missing or
# different ctags is a failure, not a check that quietly goes away (scripts/test.sh installs
# universal-ctags).
set -eu
src=$1
max=${2:-80}
if ! ctags --version 2>/dev/null | grep -q 'Universal Ctags'; then
    echo "funclen: universal-ctags is missing (ctags --version); install it: scripts/deps.sh universal-ctags" >&2
    exit 1
fi
tags=$(ctags -o - --languages=C --kinds-C=f --fields=+ne -R "$src")
if [ -z "$tags" ]; then
    echo "funclen: ctags found no function in $src" >&2
    exit 1
fi
printf '%s\n' "$tags" | awk -F'\t' -v max="$max" -v src="$src/" '
{
    line = end = 0
    for (i = 4; i <= NF; i++) {
        if ($i ~ /^line:/) line = substr($i, 6) + 0
        if ($i ~ /^end:/) end = substr($i, 5) + 0
    }
    if (!line || !end) { printf "funclen: no extent for %s in %s\n", $1, $2; bad++; next }
    n = end - line + 1
    file = $2
    sub("^" src, "src/", file)
    if (n > max) { printf "%s:%d: %s is %d lines (at most %d)\n", file, line, $1, n, max; bad++ }
}
END { if (bad) { printf "funclen: %d function(s) over %d lines: split them along what they do\n", bad, max; exit 1 } }'
