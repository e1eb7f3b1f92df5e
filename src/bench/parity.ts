/**
 * Proof that the PyTorch reference computes the same network as esrvid's ONNX model before either
 * is timed: the ONNX graph is given its float network output (before x255, clamping and rounding)
 * as an extra graph output, both runtimes upscale the same frame, and the float outputs are
 * compared.
 */
import onnxProto from 'onnx-proto';
import type { OnnxGraph } from './onnx-graph.js';

const { onnx } = onnxProto;

/** The tensor holding the network's float output: the input of the in-graph "x 255". */
export function networkOutputName(g: OnnxGraph): string {
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (n.opType !== 'Mul') continue;
    const k = g.inits.get(n.input?.[1] ?? '');
    if (k?.floats && k.floats.length === 1 && k.floats[0] === 255) return n.input![0]!;
  }
  throw new Error('no "x 255" node: not an esrvid frame model');
}

/** The model re-encoded with the network's float output as a second graph output. */
export function withNetworkOutput(g: OnnxGraph): { bytes: Uint8Array; name: string } {
  const name = networkOutputName(g);
  const outputs = (g.proto.graph!.output ??= []);
  // Added for the encode and taken off again: copying a 64 MB model just for this is wasteful.
  outputs.push(onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'n' }, { dimValue: 3 }, { dimParam: 'h' }, { dimParam: 'w' }] } } },
  }));
  try {
    return { bytes: onnx.ModelProto.encode(g.proto).finish(), name };
  } finally {
    outputs.pop();
  }
}

export interface ParityResult {
  maxAbs: number;
  meanAbs: number;
  /** Share of output samples that round to the same 8-bit value. */
  sameByte: number;
}

export function compareOutputs(a: Float32Array, b: Float32Array): ParityResult {
  if (a.length !== b.length) throw new Error(`outputs differ in size: ${a.length} vs ${b.length} values`);
  let maxAbs = 0;
  let sum = 0;
  let same = 0;
  const byte = (v: number) => Math.round(Math.min(255, Math.max(0, v * 255)));
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= maxAbs)) maxAbs = d; // NaN propagates as a failure
    sum += d;
    if (byte(a[i]!) === byte(b[i]!)) same++;
  }
  return { maxAbs, meanAbs: sum / a.length, sameByte: same / a.length };
}
