#!/usr/bin/env bash
# The second expression judge of the benchmarks (benchmarks/judge_faceapi.py): face-api.js's expression model, whose
# weights ship inside the npm package @vladmandic/face-api (MIT). Unpacks it into .cache/faceapi/package/ (the judge
# looks there, or in $EVP_FACEAPI_MODEL). Needs npm and the npm registry; evp itself never needs it. With
# --reference, also installs tfjs 4.22 there so benchmarks/faceapi_reference.mjs can run face-api.js itself (the
# test that the torch port computes what face-api.js computes).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/faceapi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is not installed: the face-api.js judge is not available (its tests skip)" >&2
  exit 1
fi
mkdir -p "$dest"
if [ ! -s "$dest/package/model/face_expression_model.bin" ]; then
  (cd "$dest" && timeout 180 npm pack --silent @vladmandic/face-api@1.7.15 >/dev/null \
     && tar xzf vladmandic-face-api-1.7.15.tgz && rm -f vladmandic-face-api-1.7.15.tgz)
fi
if [ "${1:-}" = "--reference" ] && command -v node >/dev/null 2>&1 && [ ! -d "$dest/node_modules/@tensorflow/tfjs" ]; then
  (cd "$dest" && echo '{"private": true}' > package.json \
     && timeout 300 npm install --silent --no-audit --no-fund @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 \
     && mkdir -p node_modules/@vladmandic && ln -sfn ../../package node_modules/@vladmandic/face-api)
fi
echo "face-api.js expression model: $PWD/$dest/package/model"
