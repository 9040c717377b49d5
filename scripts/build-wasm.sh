#!/usr/bin/env bash
# Builds the web wallet's WebAssembly module (package protocol for the
# browser) and copies the matching wasm_exec.js, into server/web/assets/gen/
# where the authorizer binary embeds them. Run by `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=server/web/assets/gen
mkdir -p "$out"
GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o "$out/wallet.wasm.tmp" ./server/web/wasm
mv "$out/wallet.wasm.tmp" "$out/wallet.wasm"
cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$out/wasm_exec.js"
