#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages blockq needs, only those missing.
#   tools/deps.sh          what the library, tests, benchmarks and the tool need
#   tools/deps.sh --ci     also clang/libFuzzer and the aarch64 cross toolchain + qemu
set -euo pipefail
pkgs=(cmake ninja-build g++ git libgtest-dev googletest libbenchmark-dev libboost-dev
      nlohmann-json3-dev libcli11-dev libre2-dev pkg-config libeigen3-dev)
# node and npm: the tests' independent GGUF reader (@huggingface/gguf); a node
# of another origin (nvm, NodeSource) counts as present.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  pkgs+=(nodejs npm)
fi
if [[ "${1:-}" == "--ci" ]]; then
  pkgs+=(clang libclang-rt-14-dev g++-aarch64-linux-gnu qemu-user)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "blockq: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
