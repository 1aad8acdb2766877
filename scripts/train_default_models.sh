#!/usr/bin/env bash
# The default models, from nothing: the synthetic corpus (2 espeak actors x 8 emotions x levels 1, 3 x 12 sentences),
# prepared, paired, and both audio models trained with the defaults (content path on clean + 2 augmented copies of
# every clip: noise, reverberation, 8 kHz / telephone band, pitch, gain; per-utterance CMVN), then evaluated on
# held-out sentences and on real speech. Deterministic on CPU (fixed seeds, deterministic kernels, one thread per
# process); about 25-35 minutes on a busy 2-core machine.
#
#   scripts/train_default_models.sh [workdir]
#   TTS=espeak,festival ACTORS=4 scripts/train_default_models.sh [workdir]   # with Festival's voices (see README)
#
# TTS=espeak,festival needs Festival and its voices: sudo apt-get install festival festvox-kallpc16k
# festvox-kdlpc16k festvox-us-slt-hts (measured: no better on real speech, emotion accuracy 48 %; README "Real speech").
# For the real-speech benchmark at the end (skipped when missing):
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
evp -q synth-corpus "$work/corpus" --actors "${ACTORS:-2}" --sentences 12 --levels 1,3 --tts "${TTS:-espeak}" --seed 0 \
  --jobs 2
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
