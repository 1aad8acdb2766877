#!/usr/bin/env bash
# Every stage that works today, end to end on the synthetic corpus: generate, prepare, pair, train both models,
# evaluate on held-out sentences, and draw one landmark preview per emotion. About 10 minutes on a 2-core CPU.
# Re-running reuses the corpus, features and pairs (training starts afresh; `--resume` continues instead).
# Stops at the first failing step (evp exits non-zero).
#
#   examples/train_on_synthetic.sh [workdir] [speech.wav]
set -euo pipefail
work=${1:-./evp-synthetic}  # not ./evp-demo: that is evp demo's folder
speech=${2:-}
export EVP_WORKSPACE="$work/workspace"
mkdir -p "$work"

evp synth-corpus "$work/corpus" --actors 2 --sentences 12 --levels 1,3 --jobs 2
evp prepare-dataset "$work/corpus" --layout mead --jobs 2
evp build-pairs
evp train --stage disentangle          # holds out the last 2 sentences
evp train --stage audio2lm
evp evaluate --json > "$work/evaluation.json"
evp evaluate

# A speech clip for the previews: the one given, else a held-out clip of the corpus.
if [ -z "$speech" ]; then speech=$(ls "$work"/corpus/M001/audio/neutral/level_1/*.wav | tail -n 1); fi
for emotion in angry contempt disgusted fear happy neutral sad surprised; do
  evp -q preview-landmarks --audio "$speech" --emotion "$emotion" --out "$work/preview-$emotion.mp4"
done
evp status
echo "previews in $work/preview-*.mp4, metrics in $work/evaluation.json"
