#!/usr/bin/env bash
# Builds the release artifacts of callwatch into $DIST (default dist/):
#
#   callwatch-$V-linux-amd64-native        static, cgo-free, pure-Go backend only (-tags noort)
#   callwatch-$V-linux-arm64-native        the same for arm64
#   callwatch-$V-linux-amd64-ort           cgo, onnxruntime loaded at run time (dlopen) + pure-Go backend
#   callwatch-$V-linux-arm64-ort           the same for arm64 (cross-compiled with aarch64-linux-gnu-gcc)
#   callwatch-$V-linux-{amd64,arm64}-ort.tar.gz
#                                          the ort binary with libonnxruntime.so (onnxruntime $ORT_VERSION
#                                          for that arch, from the npm package onnxruntime-node) beside it,
#                                          README.md and ONNXRUNTIME.txt: unpack and run
#   SHA256SUMS                             sha256sum format, over every file above
#
# Every binary embeds the default model and is built with -trimpath, stripped
# (-s -w) and stamped with -X main.Version=$V. V is $VERSION, else
# `git describe --tags --always --dirty`.
#
# Environment: VERSION, DIST, GO (default go), CC_ARM64 (default
# aarch64-linux-gnu-gcc), ORT_BUNDLE=0 (skip the ort archives and the npm
# download), RELEASE_CACHE (where the extracted onnxruntime libraries are kept;
# default build/release-cache).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

GO="${GO:-go}"
DIST="${DIST:-dist}"
CC_ARM64="${CC_ARM64:-aarch64-linux-gnu-gcc}"
ORT_BUNDLE="${ORT_BUNDLE:-1}"
ORT_VERSION="${ORT_VERSION:-1.24.3}"
# sha256 of package/bin/napi-v6/linux/{x64,arm64}/libonnxruntime.so.1 in onnxruntime-node@1.24.3
# (x64: the same pin as scripts/setup-ort.sh).
ORT_SHA256_amd64="${ORT_SHA256_amd64:-92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682}"
ORT_SHA256_arm64="${ORT_SHA256_arm64:-33032cb5b91c12edbf028d7c69fa40a31848d66c0095448758af237d5e0b07db}"
RELEASE_CACHE="${RELEASE_CACHE:-$root/build/release-cache}"

say() { printf 'release: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
sum() { sha256sum "$1" | cut -d' ' -f1; }

VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || true)}"
[[ -n "$VERSION" ]] || die "no version: not a git checkout with history; set VERSION=..."
[[ "$VERSION" =~ ^[A-Za-z0-9._+-]+$ ]] || die "VERSION=$VERSION: use letters, digits and . _ + - only (it is part of file names)"

command -v "$CC_ARM64" >/dev/null 2>&1 || die "the arm64 onnxruntime binary needs cgo with a cross C compiler, and $CC_ARM64 is not installed; on Debian/Ubuntu: sudo apt-get install gcc-aarch64-linux-gnu (make release installs it), or set CC_ARM64 to another aarch64 linux gcc"
command -v gcc >/dev/null 2>&1 || die "the amd64 onnxruntime binary needs cgo and gcc is not installed; on Debian/Ubuntu: sudo apt-get install gcc"
[[ "$($GO env GOHOSTARCH)" == amd64 ]] || die "this script builds on a linux/amd64 host (host is $($GO env GOHOSTOS)/$($GO env GOHOSTARCH))"

mkdir -p "$DIST"
DIST="$(cd "$DIST" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ldflags="-s -w -X main.Version=$VERSION"
name() { printf 'callwatch-%s-linux-%s-%s' "$VERSION" "$1" "$2"; }

# $DIST holds one release: earlier outputs (any version) go, so that SHA256SUMS covers exactly what is there.
rm -f "$DIST"/callwatch-*-linux-* "$DIST/SHA256SUMS"

start=$SECONDS
for arch in amd64 arm64; do
  out="$DIST/$(name "$arch" native)"
  say "building $(basename "$out") (static, -tags noort)"
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" "$GO" build -trimpath -tags noort -ldflags "$ldflags" -o "$out" ./cmd/callwatch

  out="$DIST/$(name "$arch" ort)"
  cc=gcc
  [[ "$arch" == arm64 ]] && cc="$CC_ARM64"
  say "building $(basename "$out") (cgo, CC=$cc)"
  CGO_ENABLED=1 CC="$cc" GOOS=linux GOARCH="$arch" "$GO" build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/callwatch
done
say "built 4 binaries in $((SECONDS - start))s"

# ortlib ARCH prints the path of the verified libonnxruntime.so.1 for ARCH,
# taken from the npm package onnxruntime-node (npm pack: no install scripts
# run) and kept in $RELEASE_CACHE.
ortlib() {
  local arch="$1" dir want lib
  case "$arch" in amd64) dir=x64 want="$ORT_SHA256_amd64" ;; arm64) dir=arm64 want="$ORT_SHA256_arm64" ;; esac
  lib="$RELEASE_CACHE/onnxruntime-$ORT_VERSION/$arch/libonnxruntime.so.1"
  if [[ -f "$lib" && "$(sum "$lib")" == "$want" ]]; then
    printf '%s\n' "$lib"
    return
  fi
  if [[ ! -f "$work/onnxruntime-node.tgz" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is not installed: it fetches libonnxruntime for the ort archives (Debian: apt-get install -y nodejs npm), or set ORT_BUNDLE=0 to skip those archives"
    say "fetching onnxruntime-node@$ORT_VERSION with npm pack (no install scripts run)"
    (cd "$work" && npm pack --silent --prefer-offline "onnxruntime-node@$ORT_VERSION" >/dev/null) \
      || die "npm pack onnxruntime-node@$ORT_VERSION failed; check that the npm registry is reachable (npm config get registry), or set ORT_BUNDLE=0"
    mv "$work"/onnxruntime-node-*.tgz "$work/onnxruntime-node.tgz"
  fi
  local member="package/bin/napi-v6/linux/$dir/libonnxruntime.so.1"
  tar -xzf "$work/onnxruntime-node.tgz" -C "$work" "$member" || die "$member not found in onnxruntime-node@$ORT_VERSION"
  local got
  got="$(sum "$work/$member")"
  [[ "$got" == "$want" ]] || die "checksum mismatch for $member: got $got, want $want; not shipping it"
  mkdir -p "$(dirname "$lib")"
  install -m 0644 "$work/$member" "$lib.partial.$$"
  mv -f "$lib.partial.$$" "$lib"
  printf '%s\n' "$lib"
}

if [[ "$ORT_BUNDLE" != 0 ]]; then
  for arch in amd64 arm64; do
    base="$(name "$arch" ort)"
    lib="$(ortlib "$arch")"
    npmdir=x64
    [[ "$arch" == arm64 ]] && npmdir=arm64
    stage="$work/$base"
    mkdir -p "$stage"
    install -m 0755 "$DIST/$base" "$stage/callwatch"
    install -m 0644 "$lib" "$stage/libonnxruntime.so"
    [[ -f README.md ]] && install -m 0644 README.md "$stage/README.md"
    for f in LICENSE LICENSE.md LICENSE.txt NOTICE; do [[ -f "$f" ]] && install -m 0644 "$f" "$stage/$f"; done
    cat >"$stage/ONNXRUNTIME.txt" <<EOF
libonnxruntime.so is onnxruntime $ORT_VERSION for linux/$arch (MIT License, Copyright (c) Microsoft
Corporation), unchanged from the npm package onnxruntime-node@$ORT_VERSION
(package/bin/napi-v6/linux/$npmdir/libonnxruntime.so.1, sha256 $(sum "$lib")).
callwatch finds it next to its executable; it needs glibc and libstdc++.
Another copy (onnxruntime >= 1.24): callwatch --ort-library FILE, or CALLWATCH_ORT_LIBRARY=FILE.
EOF
    say "packing $base.tar.gz"
    tar -C "$work" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf - "$base" | gzip -n >"$DIST/$base.tar.gz"
  done
fi

(
  cd "$DIST"
  files=()
  for f in callwatch-"$VERSION"-linux-*; do files+=("$f"); done
  sha256sum "${files[@]}" >SHA256SUMS
)
say "wrote $DIST:"
(cd "$DIST" && ls -l callwatch-"$VERSION"-linux-* SHA256SUMS | awk '{printf "  %10d  %s\n", $5, $9}') >&2
