// Reference values for models/centernet from TensorFlow.js itself (not gradfeat): loads the npm model's
// centernet.json + centernet.bin, resizes each photo with tf.image.resizeBilinear (as @vladmandic/human's
// src/object/centernet.ts does; align_corners=false, half_pixel_centers=false), runs the graph to the trunk's
// last map (tower_0/extern1/hard_swish/mul_1) and prints its global average (the feature gradfeat converts).
//   usage: NODE_PATH=<folder with @tensorflow/tfjs> node tfjs_reference.cjs MODEL_DIR SIZE OUT.txt IMG.u8:H:W ...
//   IMG.u8: raw RGB bytes, H x W x 3. With SIZE != 512 the placeholder's fixed 512x512 is relaxed to any size
//   (the trunk is fully convolutional). GF_TFJS_EXACT_SIXTH=1 replaces the float16 1/6 constants of the
//   hard_swish / hard_sigmoid activations (0.1666259765625) by 1/6 in float32, everything else unchanged.
// Writes OUT.txt: per image one line "name sum(map) f0 f1 ... f(C-1)" (%.9g), and prints a summary.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [dir, sizeArg, out, ...imgs] = process.argv.slice(2);
  const size = parseInt(sizeArg, 10);
  await tf.setBackend('cpu');
  const mj = JSON.parse(fs.readFileSync(path.join(dir, 'centernet.json'), 'utf8'));
  if (size !== 512) {
    for (const n of mj.modelTopology.node)
      if (n.op === 'Placeholder') n.attr.shape.shape.dim.forEach((d, i) => { if (i === 1 || i === 2) d.size = '-1'; });
    for (const k of Object.keys(mj.signature.inputs))
      mj.signature.inputs[k].tensorShape.dim.forEach((d, i) => { if (i === 1 || i === 2) d.size = '-1'; });
  }
  const bin = fs.readFileSync(path.join(dir, 'centernet.bin'));
  const specs = [].concat(...mj.weightsManifest.map((g) => g.weights));
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: mj.modelTopology, weightSpecs: specs,
    weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength), format: mj.format,
    generatedBy: mj.generatedBy, convertedBy: mj.convertedBy, signature: mj.signature,
  }));
  if (process.env.GF_TFJS_EXACT_SIXTH === '1') {
    const wm = model.executor.weightMap;
    let n = 0;
    for (const k of Object.keys(wm)) {
      const t = wm[k][0];
      if (t.size === 1 && t.dtype === 'float32' && Math.abs(t.dataSync()[0] * 6 - 1) < 1e-3) { wm[k] = [tf.scalar(1 / 6)]; n++; }
    }
    console.error('tfjs_reference: replaced ' + n + ' float16 1/6 constants by float32 1/6');
  }
  const lines = [];
  for (const spec of imgs) {
    const [file, h, w] = spec.split(':');
    const raw = fs.readFileSync(file);
    const x = tf.tensor(new Float32Array(raw), [1, +h, +w, 3]);
    const r = tf.image.resizeBilinear(x, [size, size]);
    const y = model.execute(r, ['tower_0/extern1/hard_swish/mul_1']);
    const s = y.sum().dataSync()[0];
    const f = Array.from(y.mean([1, 2]).dataSync());
    lines.push([path.basename(file, '.u8'), s.toPrecision(9)].concat(f.map((v) => v.toPrecision(9))).join(' '));
    console.log(`${path.basename(file)} ${h}x${w} -> ${size}: map ${y.shape} sum ${s.toFixed(4)} f[0..3] ${f.slice(0, 4).map((v) => v.toFixed(6)).join(' ')}`);
    tf.dispose([x, r, y]);
  }
  fs.writeFileSync(out, lines.join('\n') + '\n');
  console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}`);
}
main().catch((e) => { console.error(e); process.exit(1); });
