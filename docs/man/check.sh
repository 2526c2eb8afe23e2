#!/bin/sh
# docs/man/check.sh - checks the section-3 man pages against the public headers.
#
#   sh docs/man/check.sh [SOURCE_ROOT]
#
# (a) Every public name in include/weft/*.h and include/weft/sync/*.h has a
#     page docs/man/<name>.3:
#     each function declared WEFT_EXTERN, each static inline weft_* function,
#     and each function-like WEFT_* macro (names starting weft__/WEFT__ are
#     internals, not API, and need none).
# (b) Every page in docs/man is listed in docs/man/meson.build (so it is
#     installed).
# (c) Every page is either a link page (a single ".so man3/<page>.3" line
#     whose target exists and is not itself a link) or formats without a
#     single warning under groff -man -ww (mandoc -T lint when groff is
#     missing). With neither formatter installed the test is skipped (77).
#
# Exit status: 0 all good, 1 something is missing or warns, 77 skipped.
set -u

root=${1:-$(dirname "$0")/../..}
man="$root/docs/man"
inc="$root/include/weft"
LC_ALL=C
export LC_ALL

fail=0
tmp=${TMPDIR:-/tmp}/weft-mancheck.$$
trap 'rm -f "$tmp".*' EXIT INT TERM

if [ ! -d "$inc" ] || [ ! -d "$man" ]; then
    echo "check.sh: no $inc or $man" >&2
    exit 1
fi

# ---- (a) a page for every public name -------------------------------------
# Join each header into one line per statement, then pick the names.
for h in "$inc"/*.h "$inc"/sync/*.h; do
    tr '\n' ' ' < "$h" | tr ';' '\n'
done > "$tmp.stmts"
{
    grep 'WEFT_EXTERN' "$tmp.stmts" | sed 's/.*WEFT_EXTERN//' \
        | sed -n 's/^[^(]*[^a-zA-Z0-9_]\(weft_[a-zA-Z0-9_]*\)[ ]*(.*/\1/p'
    grep -h '^static inline' "$inc"/*.h "$inc"/sync/*.h \
        | sed -n 's/^[^(]*[^a-zA-Z0-9_]\(weft_[a-zA-Z0-9_]*\)[ ]*(.*/\1/p'
    grep -h '^#define WEFT_[A-Z0-9_]*(' "$inc"/*.h "$inc"/sync/*.h \
        | sed 's/^#define \(WEFT_[A-Z0-9_]*\)(.*/\1/'
} | grep -v -e '^weft__' -e '^WEFT__' | sort -u > "$tmp.names"

nnames=0
while read -r name; do
    nnames=$((nnames + 1))
    if [ ! -f "$man/$name.3" ]; then
        echo "missing page: docs/man/$name.3"
        fail=1
    fi
done < "$tmp.names"

# ---- (b) every page is installed -------------------------------------------
for page in "$man"/*.3 "$man"/*.7; do
    [ -f "$page" ] || continue
    base=${page##*/}
    if ! grep -q "^  '$base',\$" "$man/meson.build"; then
        echo "$base: not listed in docs/man/meson.build (it would not be installed)"
        fail=1
    fi
done

# ---- (c) every page formats cleanly ---------------------------------------
if command -v groff >/dev/null 2>&1; then
    fmt=groff
elif command -v mandoc >/dev/null 2>&1; then
    fmt=mandoc
else
    if [ "$fail" -ne 0 ]; then
        echo "check.sh: FAILED (pages not format-checked: no groff or mandoc)"
        exit 1
    fi
    echo "check.sh: neither groff nor mandoc is installed: skipping the format check"
    exit 77
fi

npages=0
nlinks=0
for page in "$man"/*.3 "$man"/*.7; do
    [ -f "$page" ] || continue
    base=${page##*/}
    first=$(sed -n '1p' "$page")
    case $first in
    .so\ *)
        nlinks=$((nlinks + 1))
        target=${first#.so }
        if [ "$(wc -l < "$page")" -ne 1 ]; then
            echo "$base: a link page must be the one .so line"
            fail=1
        fi
        case $target in
        man3/*.3|man7/*.7) ;;
        *) echo "$base: link target '$target' is not man3/NAME.3 or man7/NAME.7"
           fail=1; continue ;;
        esac
        if [ ! -f "$man/${target#*/}" ]; then
            echo "$base: link target $target does not exist"
            fail=1
        elif sed -n '1p' "$man/${target#*/}" | grep -q '^\.so '; then
            echo "$base: link target $target is itself a link"
            fail=1
        fi
        continue
        ;;
    esac
    npages=$((npages + 1))
    if ! grep -q '^\.TH ' "$page"; then
        echo "$base: no .TH line"
        fail=1
    fi
    for sec in NAME SYNOPSIS DESCRIPTION; do
        case $base in *.7) [ "$sec" = SYNOPSIS ] && continue ;; esac
        if ! grep -q "^\.SH $sec\$" "$page"; then
            echo "$base: no $sec section"
            fail=1
        fi
    done
    if grep -n '\.\./shared\|/work/' "$page" >/dev/null; then
        echo "$base: refers to a path outside the repository"
        fail=1
    fi
    if [ "$fmt" = groff ]; then
        groff -man -ww -z "$page" > "$tmp.out" 2>&1
    else
        mandoc -T lint -W warning "$page" > "$tmp.out" 2>&1
    fi
    if [ -s "$tmp.out" ]; then
        echo "$base: $fmt warns:"
        sed 's/^/    /' "$tmp.out"
        fail=1
    fi
done

echo "check.sh: $nnames public names, $npages pages, $nlinks link pages ($fmt)"
if [ "$fail" -ne 0 ]; then
    echo "check.sh: FAILED"
    exit 1
fi
echo "check.sh: all pages present and clean"
exit 0
