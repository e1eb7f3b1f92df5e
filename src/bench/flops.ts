/**
 * FLOPs of a frame model, counted from its ONNX graph: 2 x multiply-accumulates of every
 * convolution, per input pixel. Each tensor's spatial size is tracked relative to the input
 * frame (Resize and DepthToSpace enlarge it, strided convolutions shrink it), so networks that
 * convolve after upsampling (RRDBNet) are counted at the resolution they really run at.
 */
import type { OnnxGraph } from './onnx-graph.js';
import { intAttr, intsAttr } from '../models/onnx/tensor.js';

export interface FlopCount {
  /** Convolution FLOPs (2 per multiply-accumulate) for one input pixel. */
  convFlopsPerInputPixel: number;
  convCount: number;
  /** Weights and biases of the convolutions, plus PReLU slopes. */
  parameterCount: number;
}

export function countFlops(g: OnnxGraph): FlopCount {
  /** Area of each tensor relative to the input frame's (1 = same H x W). */
  const area = new Map<string, number>([[g.inputName, 1]]);
  const areaOf = (name: string | undefined) => (name ? area.get(name) : undefined);
  let flops = 0;
  let convCount = 0;
  let parameterCount = 0;
  for (const n of g.nodes) {
    const inputs = n.input ?? [];
    const known = inputs.map(areaOf).filter((a): a is number => a !== undefined);
    let a = known.length > 0 ? Math.max(...known) : undefined;
    switch (n.opType) {
      case 'Conv': {
        const w = g.inits.get(inputs[1] ?? '');
        if (!w || w.dims.length !== 4) throw new Error(`Conv ${n.name}: weight is not a 4-D initializer`);
        const [cout, cinPerGroup, kh, kw] = w.dims as [number, number, number, number];
        const [sh, sw] = intsAttr(n, 'strides', [1, 1]) as [number, number];
        a = (areaOf(inputs[0]) ?? 1) / (sh * sw);
        flops += 2 * cout * cinPerGroup * kh * kw * a;
        convCount++;
        parameterCount += cout * cinPerGroup * kh * kw + (inputs[2] ? cout : 0);
        break;
      }
      case 'PRelu':
        parameterCount += (g.inits.get(inputs[1] ?? '')?.dims ?? []).reduce((x, y) => x * y, 1);
        break;
      case 'Resize': {
        const scales = g.inits.get(inputs[2] ?? '')?.floats;
        if (scales && scales.length === 4) a = (areaOf(inputs[0]) ?? 1) * scales[2]! * scales[3]!;
        else throw new Error(`Resize ${n.name}: only constant scales are supported`);
        break;
      }
      case 'DepthToSpace': {
        const b = intAttr(n, 'blocksize', 1);
        a = (areaOf(inputs[0]) ?? 1) * b * b;
        break;
      }
      case 'SpaceToDepth': {
        const b = intAttr(n, 'blocksize', 1);
        a = (areaOf(inputs[0]) ?? 1) / (b * b);
        break;
      }
      default:
        break;
    }
    if (a !== undefined) for (const o of n.output ?? []) area.set(o, a);
  }
  return { convFlopsPerInputPixel: flops, convCount, parameterCount };
}
