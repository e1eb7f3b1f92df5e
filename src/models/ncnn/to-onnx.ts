/**
 * ncnn (.param + .bin) -> ONNX. Walks the layers in file order (ncnn requires producers before
 * consumers), reads each layer's weights from the .bin in that same order, and emits the
 * equivalent ONNX ops inside esrvid's uint8 frame wrapper. Every layer type the Real-ESRGAN
 * models use is supported; anything else is refused with the layer's name and line.
 */
import { ModelError } from '../../errors.js';
import { buildFrameModel, type GraphBuilder } from '../onnx/graph-builder.js';
import { arrayParam, floatParam, intParam, parseParam, type NcnnGraph, type NcnnLayer } from './param.js';
import { WeightReader } from './weights.js';

export const SUPPORTED_LAYERS = ['Input', 'Convolution', 'PReLU', 'Split', 'Concat', 'Eltwise', 'BinaryOp', 'Interp', 'PixelShuffle'] as const;

export interface ConvertOptions {
  paramFile?: string;
  binFile?: string;
}

export interface ConvertedModel {
  graph: GraphBuilder;
  layerCount: number;
  parameterCount: number;
}

export function convertNcnn(paramText: string, bin: Uint8Array, opts: ConvertOptions = {}): ConvertedModel {
  const paramFile = opts.paramFile ?? '.param';
  const parsed = parseParam(paramText, paramFile);
  const reader = new WeightReader(bin, opts.binFile ?? '.bin');
  let parameterCount = 0;
  const graph = buildFrameModel((g, input) => {
    const out = emitLayers(g, parsed, reader, input, paramFile, (n) => (parameterCount += n));
    reader.assertFullyRead();
    return out;
  });
  return { graph, layerCount: parsed.layers.length, parameterCount };
}

function emitLayers(
  g: GraphBuilder,
  parsed: NcnnGraph,
  reader: WeightReader,
  input: string,
  paramFile: string,
  countParams: (n: number) => void,
): string {
  /** ncnn blob name -> ONNX tensor name. Split outputs alias their input. */
  const blobs = new Map<string, string>();
  const consumed = new Set<string>();
  const where = (l: NcnnLayer) => `${paramFile}:${l.line}: layer ${l.name} (${l.type})`;
  const fail = (l: NcnnLayer, what: string): never => {
    throw new ModelError(`${where(l)}: ${what}`);
  };
  const inputOf = (l: NcnnLayer, i: number): string => {
    const blob = l.inputs[i]!;
    const t = blobs.get(blob);
    if (t === undefined) fail(l, `input blob "${blob}" is not produced by any earlier layer`);
    consumed.add(blob);
    return t!;
  };
  const define = (l: NcnnLayer, blob: string, tensor: string) => {
    if (blobs.has(blob)) fail(l, `blob "${blob}" is produced twice`);
    blobs.set(blob, tensor);
  };
  const expectArity = (l: NcnnLayer, nIn: number | 'many', nOut: number | 'many') => {
    if ((nIn !== 'many' && l.inputs.length !== nIn) || (nIn === 'many' && l.inputs.length < 2)) {
      fail(l, `expected ${nIn === 'many' ? '2 or more' : nIn} inputs, found ${l.inputs.length}`);
    }
    if ((nOut !== 'many' && l.outputs.length !== nOut) || (nOut === 'many' && l.outputs.length < 1)) {
      fail(l, `expected ${nOut} outputs, found ${l.outputs.length}`);
    }
  };
  /** ncnn addresses a blob as C,H,W with no batch axis; ONNX has N first. */
  const onnxAxis = (l: NcnnLayer, ncnnAxis: number) => {
    const a = ncnnAxis < 0 ? ncnnAxis + 3 : ncnnAxis;
    if (a < 0 || a > 2) fail(l, `axis ${ncnnAxis} is out of range for a C,H,W blob`);
    return a + 1;
  };
  let sawInput = false;

  for (const l of parsed.layers) {
    switch (l.type) {
      case 'Input': {
        expectArity(l, 0, 1);
        if (sawInput) fail(l, 'a second Input layer; esrvid models take exactly one frame input');
        sawInput = true;
        define(l, l.outputs[0]!, input);
        break;
      }
      case 'Split': {
        if (l.inputs.length !== 1 || l.outputs.length < 1) fail(l, 'expected 1 input and at least 1 output');
        const x = inputOf(l, 0);
        for (const o of l.outputs) define(l, o, x);
        break;
      }
      case 'Convolution': {
        expectArity(l, 1, 1);
        const outChannels = intParam(l, 0, 0);
        const kw = intParam(l, 1, 0);
        const kh = intParam(l, 11, kw);
        const dw = intParam(l, 2, 1);
        const dh = intParam(l, 12, dw);
        const sw = intParam(l, 3, 1);
        const sh = intParam(l, 13, sw);
        const padL = intParam(l, 4, 0);
        const padT = intParam(l, 14, padL);
        const padR = intParam(l, 15, padL);
        const padB = intParam(l, 16, padT);
        const biasTerm = intParam(l, 5, 0);
        const weightSize = intParam(l, 6, 0);
        const int8 = intParam(l, 8, 0);
        const activation = intParam(l, 9, 0);
        const actParams = arrayParam(l, 10) ?? [];
        if (outChannels <= 0 || kw <= 0 || kh <= 0) fail(l, `num_output (0=) and kernel (1=) must be positive`);
        if ([padL, padT, padR, padB].some((p) => p < 0)) fail(l, 'negative ("same") padding is not supported');
        if (int8 !== 0) fail(l, 'int8-quantized convolutions are not supported');
        if (intParam(l, 18, 0) !== 0) fail(l, 'a non-zero pad value (18=) is not supported');
        const perInput = outChannels * kh * kw;
        if (weightSize <= 0 || weightSize % perInput !== 0) {
          fail(l, `weight_data_size ${weightSize} is not a multiple of num_output*kernel_h*kernel_w = ${perInput}`);
        }
        const inChannels = weightSize / perInput;
        const weight = reader.readTagged(weightSize, l.name, 'weights');
        const bias = biasTerm ? reader.readRaw(outChannels, l.name, 'bias') : undefined;
        countParams(weightSize + (bias ? outChannels : 0));
        const conv = g.conv(inputOf(l, 0), weight, bias, {
          outChannels, inChannels, kernel: [kh, kw], stride: [sh, sw], dilation: [dh, dw], pads: [padT, padL, padB, padR],
        });
        define(l, l.outputs[0]!, emitActivation(g, l, conv, activation, actParams, fail));
        break;
      }
      case 'PReLU': {
        expectArity(l, 1, 1);
        const n = intParam(l, 0, 0);
        if (n <= 0) fail(l, 'num_slope (0=) must be positive');
        const slopes = reader.readRaw(n, l.name, 'slopes');
        countParams(n);
        define(l, l.outputs[0]!, g.prelu(inputOf(l, 0), slopes));
        break;
      }
      case 'Concat': {
        if (l.inputs.length < 1 || l.outputs.length !== 1) fail(l, 'expected at least 1 input and 1 output');
        const axis = onnxAxis(l, intParam(l, 0, 0));
        define(l, l.outputs[0]!, g.node('Concat', l.inputs.map((_, i) => inputOf(l, i)), { axis }));
        break;
      }
      case 'Eltwise': {
        expectArity(l, 'many', 1);
        const op = intParam(l, 0, 1);
        const coeffs = arrayParam(l, 1);
        const xs = l.inputs.map((_, i) => inputOf(l, i));
        if (coeffs && coeffs.length !== xs.length) fail(l, `${coeffs.length} coefficients for ${xs.length} inputs`);
        let out: string;
        if (op === 0) out = xs.reduce((a, b) => g.node('Mul', [a, b]));
        else if (op === 2) out = g.node('Max', xs);
        else if (op === 1) {
          // ncnn's weighted sum: sum_i coeff_i * x_i (ESRGAN's residual scaling 0.2*x + y).
          const terms = xs.map((x, i) => {
            const c = coeffs?.[i] ?? 1;
            return c === 1 ? x : g.node('Mul', [x, g.scalar('coeff', c)]);
          });
          out = terms.reduce((a, b) => g.node('Add', [a, b]));
        } else out = fail(l, `unknown Eltwise operation ${op}`);
        define(l, l.outputs[0]!, out);
        break;
      }
      case 'BinaryOp': {
        const op = intParam(l, 0, 0);
        const withScalar = intParam(l, 1, 0) !== 0;
        expectArity(l, withScalar ? 1 : 2, 1);
        const a = inputOf(l, 0);
        const b = withScalar ? g.scalar('b', floatParam(l, 2, 0)) : inputOf(l, 1);
        const ops: Record<number, [string, boolean]> = {
          0: ['Add', false], 1: ['Sub', false], 2: ['Mul', false], 3: ['Div', false],
          4: ['Max', false], 5: ['Min', false], 6: ['Pow', false], 7: ['Sub', true], 8: ['Div', true],
        };
        const spec = ops[op];
        if (!spec) fail(l, `unknown BinaryOp operation ${op}`);
        const [onnxOp, reversed] = spec!;
        define(l, l.outputs[0]!, g.node(onnxOp, reversed ? [b, a] : [a, b]));
        break;
      }
      case 'Interp': {
        expectArity(l, 1, 1);
        const type = intParam(l, 0, 0);
        const mode = ({ 1: 'nearest', 2: 'linear', 3: 'cubic' } as const)[type as 1 | 2 | 3];
        if (!mode) fail(l, `resize_type ${type} is not supported (1 nearest, 2 bilinear, 3 bicubic)`);
        if (intParam(l, 3, 0) !== 0 || intParam(l, 4, 0) !== 0 || intParam(l, 5, 0) !== 0) {
          fail(l, 'a fixed output size is not supported; esrvid models must resize by a scale factor');
        }
        const hs = floatParam(l, 1, 1);
        const ws = floatParam(l, 2, 1);
        if (!(hs > 0 && ws > 0)) fail(l, `scales must be positive, got ${hs}x${ws}`);
        define(l, l.outputs[0]!, g.resize(inputOf(l, 0), mode!, hs, ws, intParam(l, 6, 0) !== 0));
        break;
      }
      case 'PixelShuffle': {
        expectArity(l, 1, 1);
        const r = intParam(l, 0, 1);
        const m = intParam(l, 1, 0);
        if (r < 1) fail(l, `upscale_factor ${r} must be >= 1`);
        if (m !== 0 && m !== 1) fail(l, `unknown PixelShuffle mode ${m}`);
        // ncnn mode 0 is torch.pixel_shuffle, which is ONNX's column-row-depth (CRD) order.
        define(l, l.outputs[0]!, g.node('DepthToSpace', [inputOf(l, 0)], { blocksize: r, mode: m === 0 ? 'CRD' : 'DCR' }));
        break;
      }
      default:
        fail(l, `unsupported layer type; esrvid converts ${SUPPORTED_LAYERS.join(', ')}`);
    }
  }
  if (!sawInput) throw new ModelError(`${paramFile}: the graph has no Input layer`);
  const sinks = [...blobs.keys()].filter((b) => !consumed.has(b));
  if (sinks.length !== 1) {
    throw new ModelError(`${paramFile}: expected exactly one output blob, found ${sinks.length} (${sinks.slice(0, 5).join(', ')})`);
  }
  return blobs.get(sinks[0]!)!;
}

function emitActivation(
  g: GraphBuilder,
  l: NcnnLayer,
  x: string,
  type: number,
  params: number[],
  fail: (l: NcnnLayer, what: string) => never,
): string {
  switch (type) {
    case 0:
      return x;
    case 1:
      return g.node('Relu', [x]);
    case 2:
      return g.leakyRelu(x, params[0] ?? 0);
    case 3:
      return g.node('Clip', [x, g.scalar('min', params[0] ?? -Infinity), g.scalar('max', params[1] ?? Infinity)]);
    case 4:
      return g.node('Sigmoid', [x]);
    default:
      return fail(l, `fused activation type ${type} is not supported (0 none, 1 ReLU, 2 LeakyReLU, 3 Clip, 4 Sigmoid)`);
  }
}
