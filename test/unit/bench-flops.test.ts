import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { countFlops } from '../../src/bench/flops.js';
import { decodeModel } from '../../src/bench/onnx-graph.js';
import { compareOutputs, networkOutputName, withNetworkOutput } from '../../src/bench/parity.js';
import { exportTorchWeights, recognise } from '../../src/bench/torch-weights.js';
import { buildFrameModel } from '../../src/models/onnx/graph-builder.js';
import { pullModel } from '../../src/models/pull.js';
import { onnxPath } from '../../src/models/store.js';

const seq = (n: number, from = 0) => Float32Array.from({ length: n }, (_, i) => from + i);

/** A two-feature SRVGGNetCompact in miniature: conv+PReLU, conv+PReLU, conv to 3*2*2, x2. */
function tinyCompact() {
  return buildFrameModel((g, x) => {
    let h = g.prelu(g.conv(x, seq(4 * 3 * 9), seq(4), { outChannels: 4, inChannels: 3, kernel: [3, 3], pads: [1, 1, 1, 1] }), seq(4, 100));
    h = g.prelu(g.conv(h, seq(4 * 4 * 9, 1000), seq(4, 2000), { outChannels: 4, inChannels: 4, kernel: [3, 3], pads: [1, 1, 1, 1] }), seq(4, 200));
    h = g.conv(h, seq(12 * 4 * 9, 3000), seq(12, 4000), { outChannels: 12, inChannels: 4, kernel: [3, 3], pads: [1, 1, 1, 1] });
    const up = g.node('DepthToSpace', [h], { blocksize: 2, mode: 'CRD' });
    return g.node('Add', [up, g.resize(x, 'nearest', 2, 2)]);
  });
}

describe('FLOP counting from the ONNX graph', () => {
  it('counts 2 x MACs of every convolution per input pixel', () => {
    const c = countFlops(decodeModel(tinyCompact().serialize('fp32')));
    expect(c.convFlopsPerInputPixel).toBe(2 * (4 * 3 * 9 + 4 * 4 * 9 + 12 * 4 * 9));
    expect(c.convCount).toBe(3);
    expect(c.parameterCount).toBe(4 * 3 * 9 + 4 + 4 + 4 * 4 * 9 + 4 + 4 + 12 * 4 * 9 + 12);
  });

  it('counts convolutions after upsampling at their larger size, strided ones at their smaller', () => {
    const g = buildFrameModel((b, x) => {
      let h = b.conv(x, seq(4 * 3 * 9), undefined, { outChannels: 4, inChannels: 3, kernel: [3, 3], pads: [1, 1, 1, 1] });
      h = b.conv(b.resize(h, 'nearest', 2, 2), seq(4 * 4 * 9), undefined, { outChannels: 4, inChannels: 4, kernel: [3, 3], pads: [1, 1, 1, 1] });
      h = b.conv(b.resize(h, 'nearest', 2, 2), seq(4 * 4 * 9), undefined, { outChannels: 4, inChannels: 4, kernel: [3, 3], pads: [1, 1, 1, 1] });
      return b.conv(h, seq(3 * 4), undefined, { outChannels: 3, inChannels: 4, kernel: [1, 1], stride: [2, 2] });
    });
    const c = countFlops(decodeModel(g.serialize('fp32')));
    expect(c.convFlopsPerInputPixel).toBe(2 * (4 * 3 * 9 * 1 + 4 * 4 * 9 * 4 + 4 * 4 * 9 * 16 + 3 * 4 * 1 * 4));
  });

  it('the fp16 variant counts the same', () => {
    const g = tinyCompact();
    expect(countFlops(decodeModel(g.serialize('fp16')))).toEqual(countFlops(decodeModel(g.serialize('fp32'))));
  });

  const general = onnxPath('realesr-general-x4v3');
  it('realesr-general-x4v3: 2.42 M FLOPs per input pixel, as the issue measured', async () => {
    await pullModel('realesr-general-x4v3');
    const g = decodeModel(readFileSync(general));
    expect(countFlops(g)).toEqual({ convFlopsPerInputPixel: 2 * (64 * 3 * 9 + 32 * 64 * 64 * 9 + 48 * 64 * 9), convCount: 34, parameterCount: 1_213_296 });
    expect(exportTorchWeights(g).header.architecture).toEqual({ type: 'SRVGGNetCompact', num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_conv: 32, upscale: 4 });
  });

  const x4plus = onnxPath('realesrgan-x4plus');
  it('realesrgan-x4plus: convolutions after each upsampling counted at 4x and 16x the area', async () => {
    await pullModel('realesrgan-x4plus');
    const g = decodeModel(readFileSync(x4plus));
    // conv_first, 23 RRDB x 3 RDB x 5 convs (growth 32), conv_body at 1x; conv_up1 at 4x; conv_up2, conv_hr, conv_last at 16x.
    const rdb = 32 * 64 + 32 * 96 + 32 * 128 + 32 * 160 + 64 * 192;
    const macs = 9 * (64 * 3 + 23 * 3 * rdb + 64 * 64 + 4 * 64 * 64 + 16 * (64 * 64 + 64 * 64 + 3 * 64));
    expect(countFlops(g).convFlopsPerInputPixel).toBe(2 * macs);
    expect(exportTorchWeights(g).header.architecture).toMatchObject({ type: 'RRDBNet', num_block: 23, num_feat: 64, num_grow_ch: 32, scale: 4, num_out_ch: 3 });
  });
});

describe('weights for the PyTorch reference', () => {
  it('exports conv weights, biases and PReLU slopes in graph order with float offsets', () => {
    const { header, data } = exportTorchWeights(decodeModel(tinyCompact().serialize('fp32')));
    expect(header.architecture).toEqual({ type: 'SRVGGNetCompact', num_in_ch: 3, num_out_ch: 3, num_feat: 4, num_conv: 1, upscale: 2 });
    expect(header.tensors.map((t) => `${t.name}[${t.shape.join(',')}]@${t.offset}`)).toEqual([
      'conv0.weight[4,3,3,3]@0', 'conv0.bias[4]@108', 'prelu0.weight[4]@112',
      'conv1.weight[4,4,3,3]@116', 'conv1.bias[4]@260', 'prelu1.weight[4]@264',
      'conv2.weight[12,4,3,3]@268', 'conv2.bias[12]@700',
    ]);
    expect(data.length).toBe(712);
    expect(Array.from(data.subarray(112, 116))).toEqual([100, 101, 102, 103]);
    expect(Array.from(data.subarray(116, 118))).toEqual([1000, 1001]);
  });

  it('recognises RRDBNet from its convolution shapes', () => {
    const rdb = [[32, 64], [32, 96], [32, 128], [32, 160], [64, 192]];
    // 1 + 2 blocks x 15 + conv_body + 2 upsampling convs + conv_hr + conv_last
    const shapes = [[64, 3], ...Array.from({ length: 30 }, (_, i) => rdb[i % 5]!), [64, 64], [64, 64], [64, 64], [64, 64], [3, 64]].map((s) => [...s, 3, 3]);
    expect(recognise(shapes, 0, 2, 0, 40, 0.2)).toEqual({
      type: 'RRDBNet', num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_block: 2, num_grow_ch: 32, scale: 4, leaky_slope: 0.2,
    });
    expect(() => recognise([[8, 3, 3, 3], [3, 8, 3, 3]], 0, 0, 0, 0)).toThrow(/unrecognised architecture/);
  });
});

describe('parity check plumbing', () => {
  it('exposes the float network output (the input of x255) without changing the model', () => {
    const g = decodeModel(tinyCompact().serialize('fp32'));
    const name = networkOutputName(g);
    expect(g.nodes.find((n) => n.output?.[0] === name)?.opType).toBe('Add');
    const { bytes } = withNetworkOutput(g);
    const outputs = decodeModel(bytes).proto.graph!.output!.map((o) => o.name);
    expect(outputs).toEqual(['upscaled', name]);
    expect(g.proto.graph!.output!.map((o) => o.name)).toEqual(['upscaled']);
  });

  it('compares float outputs: max and mean difference, share of equal 8-bit values', () => {
    const r = compareOutputs(Float32Array.from([0, 0.5, 1, 0.2]), Float32Array.from([0, 0.5 + 1e-6, 1.1, 0.2 + 0.01]));
    expect(r.maxAbs).toBeCloseTo(0.1, 6);
    expect(r.meanAbs).toBeCloseTo((1e-6 + 0.1 + 0.01) / 4, 6);
    expect(r.sameByte).toBe(0.75); // 1.1 clamps to 255 like 1.0; 0.21 rounds two levels above 0.2
    expect(compareOutputs(Float32Array.from([Number.NaN]), Float32Array.from([0])).maxAbs).toBeNaN();
    expect(() => compareOutputs(new Float32Array(2), new Float32Array(3))).toThrow(/differ in size/);
  });
});
