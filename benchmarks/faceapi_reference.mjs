// Reference for benchmarks/judge_faceapi.py: face-api.js's own FaceExpressionNet (tfjs 4.22, cpu backend) on the
// raw face crops in a float32 file (N crops of H x W x 3, RGB 0..255), printed as JSON (face-api's class order). Run
// in a folder holding node_modules/@vladmandic/face-api and @tensorflow/tfjs (scripts/get_faceapi_judge.sh
// --reference makes .cache/faceapi one):
//   cd .cache/faceapi && node ../../benchmarks/faceapi_reference.mjs package/model crops.f32 H W N
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';
const require = createRequire(path.resolve('package.json'));  // resolve from the working folder
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const [modelDir, file, H, W, N] = process.argv.slice(2);
await tf.setBackend('cpu');
const manifest = JSON.parse(fs.readFileSync(path.join(modelDir, 'face_expression_model-weights_manifest.json')));
const specs = manifest.flatMap((g) => g.weights);
const buf = Buffer.concat(manifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(modelDir, p)))));
const weightMap = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), specs);
const net = new faceapi.FaceExpressionNet();
net.loadFromWeightMap(weightMap);
const raw = fs.readFileSync(file);
const data = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
const h = +H, w = +W, n = +N, out = [];
for (let i = 0; i < n; i++) {
  const t = tf.tensor3d(data.slice(i * h * w * 3, (i + 1) * h * w * 3), [h, w, 3]);
  const e = await net.predictExpressions(t);
  out.push(faceapi.FACE_EXPRESSION_LABELS.map((k) => e[k]));
  t.dispose();
}
console.log(JSON.stringify(out));
