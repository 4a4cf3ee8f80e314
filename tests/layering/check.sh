#!/usr/bin/env bash
# The layers of src/ are enforced by the build: a file of a layer is compiled with the include
# directories of its own layer and the layers below it, nothing else. This test compiles, with
# exactly the include directories the build gives each layer (from CMake, in layer order):
#   - every header of its own layer and of the layer below: must compile;
#   - every header of every layer above, as "x.h" and as "layer/x.h": must fail, with the
#     compiler's "No such file" for that header (not some other error).
# and checks that no source includes through a path ("../x.h", "/abs/x.h"), which would step
# around the include directories.
#   tests/layering/check.sh CC SRCDIR LAYER=DIR:DIR... (lowest layer first)
set -uo pipefail
cc=$1 src=$2
shift 2
names=() dirs=()
for spec in "$@"; do
    names+=("${spec%%=*}")
    dirs+=("${spec#*=}")
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
compile() {  # LAYER-INDEX INCLUDE-LINE: the compiler's exit status; its messages in $work/out
    local flags=() d
    IFS=':' read -ra ds <<<"${dirs[$1]}"
    for d in "${ds[@]}"; do flags+=("-I$d"); done
    # a source's own folder is searched first for "x.h"; it is among the layer's directories
    printf '#include "%s"\n' "$2" >"$work/probe.c"
    "$cc" -std=gnu11 -D_GNU_SOURCE -DPVH_VERSION='"probe"' -fsyntax-only "${flags[@]}" \
        "$work/probe.c" >"$work/out" 2>&1
}
for ((i = 0; i < ${#names[@]}; i++)); do
    layer=${names[$i]}
    [ -n "$(ls "$src/$layer"/*.h 2>/dev/null)" ] || { fail "layer $layer has no headers"; continue; }
    for ((j = 0; j < ${#names[@]}; j++)); do
        for h in "$src/${names[$j]}"/*.h; do
            [ -e "$h" ] || continue
            hdr=$(basename "$h")
            if [ "$j" -lt $((i - 1)) ]; then
                continue
            elif [ "$j" -le "$i" ]; then
                if compile "$i" "$hdr"; then passed=$((passed + 1)); else
                    fail "$layer cannot include ${names[$j]}'s $hdr:"; cat "$work/out"
                fi
            else
                for form in "$hdr" "${names[$j]}/$hdr"; do
                    if compile "$i" "$form"; then
                        fail "$layer includes \"$form\" of the higher layer ${names[$j]}, and it compiles"
                    elif grep -q "$form: No such file" "$work/out"; then
                        passed=$((passed + 1))
                    else
                        fail "$layer including \"$form\" failed for another reason:"; cat "$work/out"
                    fi
                done
            fi
        done
    done
done
if bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(\.\.|/)' "$src"); then
    fail "includes through a path step around the layers:"; echo "$bad"
else
    passed=$((passed + 1))
fi
echo "layering: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
