#!/usr/bin/env bash
# Installs what kforge needs on Debian (bookworm): a C compiler with OpenMP, cJSON, SQLite,
# libcurl, OpenBLAS (pthread flavour, so torch's BLAS is OpenBLAS too), OpenCL (ICD + PoCL)
# and Debian's python3-torch for the oracle. Installs only what is missing. Run as root.
set -euo pipefail
pkgs=(gcc make libc6-dev libcjson-dev libsqlite3-dev libcurl4-openssl-dev libopenblas-dev
      libopenblas0-pthread python3 python3-torch python3-numpy ocl-icd-opencl-dev
      opencl-headers pocl-opencl-icd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# torch must find OpenBLAS as libblas (Debian's alternatives pick the pthread OpenBLAS when it
# is installed); a generic reference BLAS would make the PyTorch baseline ~25x too slow.
if command -v update-alternatives >/dev/null; then
  cur=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
  case "$cur" in
    *openblas*|"") ;;
    *) echo "warning: libblas.so.3 is $cur, not OpenBLAS; the PyTorch baseline will be slow" >&2 ;;
  esac
fi
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "python3-torch is not importable by /usr/bin/python3" >&2; exit 1; }
echo "dependencies ok"
