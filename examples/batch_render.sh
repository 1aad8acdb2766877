#!/usr/bin/env bash
# Render one target video saying every speech clip in a folder (wav, mp3, m4a, flac, ogg, opus, aac), once per
# emotion; keeps going past failures and reports them at the end. Relies on evp's exit codes: 0 ok, 1 failed/bad
# input, 2 usage error.
#
#   examples/batch_render.sh speech_dir/ me.mp4 out_dir/ [emotions...]
set -uo pipefail
speech_dir=${1:?speech folder}; target=${2:?target video}; out_dir=${3:?output folder}; shift 3
emotions=("${@:-happy sad angry}")
export EVP_WORKSPACE=${EVP_WORKSPACE:-./evp-workspace}
mkdir -p "$out_dir"
failed=0
shopt -s nullglob nocaseglob
clips=("$speech_dir"/*.{wav,mp3,m4a,flac,ogg,opus,aac})
if [ ${#clips[@]} -eq 0 ]; then echo "no speech clips (wav, mp3, m4a, flac, ogg, opus, aac) in $speech_dir" >&2; exit 1; fi
for wav in "${clips[@]}"; do
  for emo in ${emotions[@]}; do
    name=$(basename "$wav"); out="$out_dir/${name%.*}-$emo.mp4"
    [ -s "$out" ] && continue                       # already made: re-running resumes
    evp -q render --audio "$wav" --emotion "$emo" --target "$target" --out "$out"
    rc=$?
    if [ $rc -eq 2 ]; then echo "usage error or stage not available; stopping" >&2; exit 2; fi
    if [ $rc -ne 0 ]; then echo "FAILED: $wav ($emo)" >&2; failed=$((failed + 1)); fi
  done
done
evp status
[ $failed -eq 0 ] || { echo "$failed renders failed" >&2; exit 1; }
