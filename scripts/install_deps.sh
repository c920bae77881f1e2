#!/usr/bin/env bash
# Installs the Debian 12 packages polymoe builds and tests with (run as root, or with sudo).
# Skips apt entirely when every package is already installed, so reruns are fast and offline.
set -euo pipefail
PKGS=(cmake ninja-build g++ git pkg-config libdnnl-dev nlohmann-json3-dev libcli11-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev clang-format libutf8proc-dev libyaml-cpp-dev
      libzstd-dev zlib1g-dev libminizip-dev libxml2-dev chromium clang libfuzzer-14-dev
      ocl-icd-opencl-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
