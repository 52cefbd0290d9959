#!/usr/bin/env bash
# Installs the onnxruntime shared library (linux x64) into .ort/ from the npm
# package onnxruntime-node. Debian has no onnxruntime package, and `npm
# install onnxruntime-node` runs a CUDA download that fails offline, so we
# `npm pack` the tarball (no install scripts run) and extract one file.
# Idempotent: a present library with the pinned checksum is left alone.
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.24.3}"
# sha256 of package/bin/napi-v6/linux/x64/libonnxruntime.so.1 in onnxruntime-node@1.24.3.
ORT_SHA256="${ORT_SHA256:-92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${ORT_DIR:-$root/.ort}"
lib="$dest/libonnxruntime.so.$ORT_VERSION"

say() { printf 'setup-ort: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) die "only linux x86_64 is supported by this script (found $(uname -s)-$(uname -m)); install onnxruntime >= 1.24 yourself and set CALLWATCH_ORT_LIBRARY to the .so path" ;;
esac

sum() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$lib" ]]; then
  if [[ "$(sum "$lib")" == "$ORT_SHA256" ]]; then
    ln -sf "$(basename "$lib")" "$dest/libonnxruntime.so"
    say "onnxruntime $ORT_VERSION already installed at $lib"
    exit 0
  fi
  say "existing $lib has the wrong checksum; reinstalling"
  rm -f "$lib"
fi

command -v npm >/dev/null 2>&1 || die "npm is not installed; install Node.js and npm (Debian: apt-get install -y nodejs npm) and run this script again"
command -v tar >/dev/null 2>&1 || die "tar is not installed"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say "fetching onnxruntime-node@$ORT_VERSION with npm pack (no install scripts run)"
(cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null) \
  || die "npm pack onnxruntime-node@$ORT_VERSION failed; check that the npm registry is reachable (npm config get registry)"
tarball="$(ls "$tmp"/onnxruntime-node-*.tgz 2>/dev/null | head -1)"
[[ -n "$tarball" ]] || die "npm pack produced no tarball"
member="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
tar -xzf "$tarball" -C "$tmp" "$member" || die "$member not found in $(basename "$tarball")"
got="$(sum "$tmp/$member")"
if [[ "$got" != "$ORT_SHA256" ]]; then
  die "checksum mismatch for $member: got $got, want $ORT_SHA256; the package may have changed or been tampered with — not installing"
fi
mkdir -p "$dest"
install -m 0644 "$tmp/$member" "$lib.partial"
mv -f "$lib.partial" "$lib"
ln -sf "$(basename "$lib")" "$dest/libonnxruntime.so"
say "installed onnxruntime $ORT_VERSION at $lib"
