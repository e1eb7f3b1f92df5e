/**
 * Exports a frame model's weights for the PyTorch reference (scripts/bench-pytorch.py): the
 * architecture's hyper-parameters, recognised from the graph, and every convolution weight, bias
 * and PReLU slope in graph order, which is the order PyTorch registers the modules of
 * SRVGGNetCompact and RRDBNet. The format is a JSON header plus one raw float32 file, so the
 * Python side needs only torch.
 */
import type { OnnxGraph } from './onnx-graph.js';
import { floatAttr } from '../models/onnx/tensor.js';

export type Architecture =
  | { type: 'SRVGGNetCompact'; num_in_ch: number; num_out_ch: number; num_feat: number; num_conv: number; upscale: number }
  | { type: 'RRDBNet'; num_in_ch: number; num_out_ch: number; num_feat: number; num_block: number; num_grow_ch: number; scale: number; leaky_slope: number };

export interface WeightTensor {
  name: string;
  shape: number[];
  /** Offset in float32 elements into the .bin. */
  offset: number;
}

export interface TorchWeights {
  format: 'esrvid-bench-weights/1';
  architecture: Architecture;
  tensors: WeightTensor[];
}

export function exportTorchWeights(g: OnnxGraph): { header: TorchWeights; data: Float32Array } {
  const tensors: WeightTensor[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  const push = (name: string, shape: number[], data: Float32Array) => {
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`${name}: ${data.length} values for shape [${shape}]`);
    tensors.push({ name, shape, offset });
    chunks.push(data);
    offset += size;
  };
  const floats = (name: string | undefined) => {
    const t = name ? g.inits.get(name) : undefined;
    if (!t?.floats) throw new Error(`initializer ${name} is missing or not float32 (export from the fp32 model)`);
    return t;
  };
  const convs: number[][] = [];
  let prelus = 0;
  let resizes = 0;
  let depthToSpace = 0;
  let leakySlope: number | undefined;
  let concats = 0;
  for (const n of g.nodes) {
    const inputs = n.input ?? [];
    if (n.opType === 'Conv') {
      const w = floats(inputs[1]);
      push(`conv${convs.length}.weight`, w.dims, w.floats!);
      const b = inputs[2] ? floats(inputs[2]) : undefined;
      push(`conv${convs.length}.bias`, [w.dims[0]!], b ? b.floats! : new Float32Array(w.dims[0]!));
      convs.push(w.dims);
    } else if (n.opType === 'PRelu') {
      const s = floats(inputs[1]);
      push(`prelu${prelus++}.weight`, [s.floats!.length], s.floats!);
    } else if (n.opType === 'Resize') resizes++;
    else if (n.opType === 'DepthToSpace') depthToSpace++;
    else if (n.opType === 'Concat') concats++;
    else if (n.opType === 'LeakyRelu') leakySlope ??= floatAttr(n, 'alpha', 0.01);
  }
  const data = new Float32Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { header: { format: 'esrvid-bench-weights/1', architecture: recognise(convs, prelus, resizes, depthToSpace, concats, leakySlope), tensors }, data };
}

/** SRVGGNetCompact or RRDBNet hyper-parameters from the convolution shapes ([out, in, kh, kw]). */
export function recognise(convs: number[][], prelus: number, resizes: number, depthToSpace: number, concats: number, leakySlope?: number): Architecture {
  const first = convs[0];
  const last = convs[convs.length - 1];
  if (!first || !last) throw new Error('the graph has no convolutions');
  if (prelus > 0 && depthToSpace === 1 && prelus === convs.length - 1) {
    const upscale = Math.round(Math.sqrt(last[0]! / 3));
    if (upscale * upscale * 3 !== last[0]) throw new Error(`last convolution has ${last[0]} outputs, not 3 x scale^2`);
    return { type: 'SRVGGNetCompact', num_in_ch: first[1]!, num_out_ch: 3, num_feat: first[0]!, num_conv: convs.length - 2, upscale };
  }
  // RRDBNet: conv_first, 15 convolutions per RRDB block (3 RDBs x 5), conv_body, one conv per
  // x2 upsampling, conv_hr, conv_last.
  const blocks = (convs.length - 4 - resizes) / 15;
  if (prelus === 0 && concats > 0 && Number.isInteger(blocks) && blocks > 0) {
    return {
      type: 'RRDBNet', num_in_ch: first[1]!, num_out_ch: last[0]!, num_feat: first[0]!, num_block: blocks,
      num_grow_ch: convs[1]![0]!, scale: 2 ** resizes, leaky_slope: leakySlope ?? 0.2,
    };
  }
  throw new Error(`unrecognised architecture (${convs.length} convolutions, ${prelus} PReLU, ${resizes} Resize)`);
}
