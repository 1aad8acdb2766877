#!/usr/bin/env bash
# The default models, from nothing: a synthetic corpus whose voices are espeak-ng's and Festival's (voices built from
# recordings of real people), prepared, paired, and both audio models trained on clean + augmented audio
# (noise, reverberation, telephone band, pitch, gain), then evaluated on held-out sentences and on real speech.
# Deterministic on CPU (fixed seeds, deterministic kernels, one thread per process); under an hour on 2 cores.
#
#   scripts/train_default_models.sh [workdir]
#
# Needs Festival and three of its voices (Debian/Ubuntu):
#   sudo apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
# and, for the real-speech benchmark at the end (skipped when missing):
#   sudo apt-get install pocketsphinx-testdata asterisk-core-sounds-en-wav alsa-utils
set -euo pipefail
work=${1:-./evp-default-models}
here=$(cd "$(dirname "$0")/.." && pwd)
export EVP_WORKSPACE="$work/workspace"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1  # the same arithmetic on every machine
mkdir -p "$work"
start=$SECONDS
step() { echo "[$(( SECONDS - start )) s] $*" >&2; }

step "corpus"
evp -q synth-corpus "$work/corpus" --actors 4 --sentences 12 --levels 1,3 --tts espeak,festival --seed 0 --jobs 2
step "prepare-dataset"
evp -q prepare-dataset "$work/corpus" --layout mead --jobs 2
step "build-pairs"
evp -q build-pairs --jobs 2
step "train disentangle"
evp -q train --stage disentangle --seed 0
step "train audio2lm"
evp -q train --stage audio2lm --seed 0
step "evaluate"
evp -q evaluate --json > "$work/evaluation.json"
evp -q evaluate
if [ -d /usr/share/pocketsphinx/test/data ] || [ -d /usr/share/asterisk/sounds ]; then
  step "real speech"
  python "$here/benchmarks/bench_real_speech.py" --workspace "$EVP_WORKSPACE" --json > "$work/real_speech.json"
  python "$here/benchmarks/bench_real_speech.py" --workspace "$EVP_WORKSPACE" | tail -n 14
fi
step "done: models in $EVP_WORKSPACE/models, evaluation in $work/evaluation.json"
