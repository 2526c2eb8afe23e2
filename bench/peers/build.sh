#!/bin/sh
# build.sh - builds the tokio and Go peers of the weft benchmarks, offline.
#
# Usage: bench/peers/build.sh
#
# Environment:
#   WEFT_PEERS_OUT       output directory for the binaries (default bench/peers/out)
#   CARGO, GO            the tools to use (default: cargo and go from PATH)
#   WEFT_CARGO_REGISTRY  directory of unpacked crates (default /usr/share/cargo/registry,
#                        filled by Debian's librust-*-dev packages)
#
# Prints "<binary>=<path>" for tokio-bench, tokio-echo, tokio-wake, tokio-rpc,
# go-bench, go-echo, go-wake and go-rpc on stdout; everything else goes to
# stderr. Safe to run repeatedly.

set -eu

die() {
    echo "build.sh: $*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
out=${WEFT_PEERS_OUT:-$here/out}
cargo=${CARGO:-cargo}
go=${GO:-go}
registry=${WEFT_CARGO_REGISTRY:-/usr/share/cargo/registry}

command -v "$cargo" >/dev/null 2>&1 ||
    die "cargo not found; install Debian's cargo (apt-get install cargo) or set CARGO"
command -v "$go" >/dev/null 2>&1 ||
    die "go not found; install Debian's golang-go (apt-get install golang-go) or set GO"
for crate in tokio-1 tokio-util-0.7; do
    ls -d "$registry/$crate".* >/dev/null 2>&1 ||
        die "no $crate.* crate in $registry; install librust-tokio-dev and librust-tokio-util-dev"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)

# tokio/.cargo/config.toml points cargo at Debian's registry as a directory
# source. Cargo insists on a .cargo-checksum.json in every crate directory of
# such a source; if some are missing, or another registry was asked for, build
# a private copy of the registry under target/ (symlinks, plus empty checksum
# files where the originals lack them) and point cargo there instead.
tokio_dir=$here/tokio
target=$tokio_dir/target
set -- # extra cargo arguments
missing=
for crate in "$registry"/*/; do
    [ -e "$crate.cargo-checksum.json" ] || missing=yes
done
if [ -n "$missing" ]; then
    vendor=$target/vendor
    echo "build.sh: some crates in $registry lack .cargo-checksum.json;" \
        "using a shadow copy in $vendor" >&2
    rm -rf "$vendor"
    mkdir -p "$vendor"
    for crate in "$registry"/*/; do
        crate=${crate%/}
        copy=$vendor/${crate##*/}
        mkdir "$copy"
        for entry in "$crate"/* "$crate"/.[!.]*; do
            if [ -e "$entry" ]; then ln -s "$entry" "$copy/"; fi
        done
        [ -e "$copy/.cargo-checksum.json" ] ||
            echo '{"files":{},"package":null}' >"$copy/.cargo-checksum.json"
    done
    set -- --config "source.debian-packages.directory=\"$vendor\""
elif [ "$registry" != /usr/share/cargo/registry ]; then
    set -- --config "source.debian-packages.directory=\"$registry\""
fi

# The lock file only records what the local registry offers; drop it so that
# a registry update or a switch of source never leaves a stale one behind.
rm -f "$tokio_dir/Cargo.lock"
(cd "$tokio_dir" && "$cargo" build --release --offline --target-dir "$target" "$@") >&2 ||
    die "cargo build of $tokio_dir failed"
for bin in tokio-bench tokio-echo tokio-wake tokio-rpc; do
    cp -f "$target/release/$bin" "$out/$bin"
done

(cd "$here/go" && GOFLAGS=-mod=mod GOPROXY=off "$go" build -o "$out/" ./cmd/go-bench ./cmd/go-echo \
    ./cmd/go-wake ./cmd/go-rpc) >&2 ||
    die "go build of $here/go failed"

for bin in tokio-bench tokio-echo tokio-wake tokio-rpc go-bench go-echo go-wake go-rpc; do
    echo "$bin=$out/$bin"
done
