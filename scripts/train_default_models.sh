#!/usr/bin/env bash
# Reproduce the default models shipped in evpcli/data/models/ from nothing, then export them there with their
# manifest (scripts/make_default_models.py). Deterministic on a CPU: the same corpus bytes, features, pairs and
# training runs (seed 0) every time, one thread per process. About 25 minutes on 2 CPU cores. The recipe: the synthetic
# corpus (2 espeak actors x 8 emotions x levels 1, 3 x 12 sentences), prepared, paired, both audio models trained with
# the defaults (content path on clean + 2 augmented copies of every clip: noise, reverberation, 8 kHz / telephone
# band, pitch, gain; per-utterance CMVN). With the real speech of docs/real-speech.md installed
# (sudo apt-get install pocketsphinx-testdata asterisk-core-sounds-en-wav alsa-utils) it also runs that benchmark.
#
#   scripts/train_default_models.sh [WORKDIR] [--first-epoch]
#
# WORKDIR (default ./evp-default-models) gets the corpus and the workspace. --first-epoch stops after the first
# disentanglement epoch (tests/test_default_models.py compares its loss with the manifest's). EVP and PYTHON
# name the commands to run (default: evp and python of the current environment).
#
# The recipe is the block below: change it here (and only here) to change what ships, then re-run this script and
# commit evpcli/data/models/. The manifest records the corpus settings, every config and the evaluation numbers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-./evp-default-models}
mode=${2:-}
EVP=${EVP:-evp}
PYTHON=${PYTHON:-python}
export EVP_WORKSPACE="$work/workspace"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1  # the same arithmetic on every machine
mkdir -p "$work"
evp() { command $EVP --device cpu "$@"; }  # every step on the CPU (deterministic)

# ---- the recipe -------------------------------------------------------------------------------------------------
evp synth-corpus "$work/corpus" --actors 2 --sentences 12 --levels 1,3 --seed 0 --jobs 2
evp prepare-dataset "$work/corpus" --layout mead --jobs 2
evp build-pairs --jobs 2
if [ "$mode" = "--first-epoch" ]; then
  evp train --stage disentangle --epochs 1 --json > "$work/first-epoch.json"
  exit 0
fi
evp train --stage disentangle          # holds out 2 sentence ids (the evaluation's unseen ones; the manifest names them)
evp train --stage audio2lm
# ---- end of the recipe ------------------------------------------------------------------------------------------

$PYTHON "$root/scripts/make_default_models.py" "$EVP_WORKSPACE" --recipe "scripts/train_default_models.sh"
echo "exported to $root/evpcli/data/models (manifest.json has the numbers); the workspace is $EVP_WORKSPACE"
if [ -d /usr/share/pocketsphinx/test/data ] || [ -d /usr/share/asterisk/sounds ]; then
  $PYTHON "$root/benchmarks/bench_real_speech.py" --workspace "$EVP_WORKSPACE" --json > "$work/real_speech.json"
  $PYTHON "$root/benchmarks/bench_real_speech.py" --workspace "$EVP_WORKSPACE" | tail -n 14
fi
