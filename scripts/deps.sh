#!/usr/bin/env bash
# Installs the Debian packages ntc needs, if any are missing. As root it runs apt-get;
# otherwise it prints the exact command to run and exits non-zero.
set -euo pipefail
# clang, libomp-dev and libclang-rt-dev (libFuzzer) build only the fuzz targets (make fuzz);
# libopenmpi-dev and openmpi-bin: data-parallel training under mpirun (train/dist.h).
need=(g++ make libopenblas-openmp-dev libhwy-dev libstb-dev libgtest-dev zlib1g-dev nlohmann-json3-dev pkgconf python3-numpy clang libomp-dev libclang-rt-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${need[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present (${need[*]})"
  exit 0
fi
echo "deps: missing: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  echo "deps: installed ${missing[*]}"
else
  echo "deps: run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
