/**
 * A small, typed builder for the ONNX graphs esrvid emits. Converters (ncnn today, .pth later)
 * describe the network once in float; `serialize()` then writes it either as float32 or with
 * every float tensor in float16 (the GPU variant), so the two variants cannot drift apart.
 */
import onnxProto from 'onnx-proto';
import { encodeFloat16 } from './float16.js';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;

export type Precision = 'fp32' | 'fp16';
export const OPSET = 17;
const IR_VERSION = 8;

const DT = onnx.TensorProto.DataType;

/** Attributes that ONNX types as FLOAT even when their value happens to be whole. */
const FLOAT_ATTRS = new Set(['alpha', 'beta', 'cubic_coeff_a', 'extrapolation_value']);

type AttrValue = number | number[] | string | { computeType: true };

interface FloatInit {
  kind: 'float';
  name: string;
  dims: number[];
  data: Float32Array;
}
interface Int64Init {
  kind: 'int64';
  name: string;
  dims: number[];
  data: number[];
}

export interface ValueInfo {
  name: string;
  elemType: 'uint8' | 'float';
  /** Numbers are fixed sizes, strings symbolic (dynamic) ones. */
  shape: (number | string)[];
}

export class GraphBuilder {
  private readonly nodes: { op: string; inputs: string[]; outputs: string[]; attrs: Record<string, AttrValue>; name: string }[] = [];
  private readonly inits: (FloatInit | Int64Init)[] = [];
  private readonly names = new Set<string>();
  private counter = 0;
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly metadata: Record<string, string> = {};

  /** A fresh tensor name with a readable prefix. */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  /** Reserve a name chosen by the caller (e.g. ncnn blob names); it must not be taken. */
  claim(name: string): string {
    if (this.names.has(name)) throw new Error(`tensor name ${name} used twice`);
    this.names.add(name);
    return name;
  }

  floatInit(prefix: string, dims: number[], data: Float32Array | number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`initializer ${prefix}: ${data.length} values for shape [${dims}]`);
    const name = this.fresh(prefix);
    this.inits.push({ kind: 'float', name, dims, data: Float32Array.from(data) });
    return name;
  }

  scalar(prefix: string, value: number): string {
    return this.floatInit(prefix, [], [value]);
  }

  int64Init(prefix: string, data: number[]): string {
    const name = this.fresh(prefix);
    this.inits.push({ kind: 'int64', name, dims: [data.length], data });
    return name;
  }

  /** Adds a node; returns its (first) output name. */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs, outputs: [out], attrs, name: `${op}_${this.nodes.length}` });
    return out;
  }

  // ---- the operations ESRGAN-family networks need ----

  conv(x: string, weight: Float32Array, bias: Float32Array | undefined, o: {
    outChannels: number; inChannels: number; kernel: [number, number]; stride?: [number, number];
    dilation?: [number, number]; pads?: [number, number, number, number]; group?: number;
  }, output?: string): string {
    const [kh, kw] = o.kernel;
    const group = o.group ?? 1;
    const w = this.floatInit('w', [o.outChannels, o.inChannels / group, kh, kw], weight);
    const inputs = [x, w];
    if (bias) inputs.push(this.floatInit('b', [o.outChannels], bias));
    return this.node('Conv', inputs, {
      kernel_shape: [kh, kw],
      strides: o.stride ?? [1, 1],
      dilations: o.dilation ?? [1, 1],
      pads: o.pads ?? [0, 0, 0, 0],
      group,
    }, output);
  }

  prelu(x: string, slopes: Float32Array, output?: string): string {
    // One slope per channel broadcasts over H and W as [C,1,1]; a single slope as a scalar.
    const dims = slopes.length === 1 ? [1] : [slopes.length, 1, 1];
    return this.node('PRelu', [x, this.floatInit('slope', dims, slopes)], {}, output);
  }

  leakyRelu(x: string, alpha: number, output?: string): string {
    return this.node('LeakyRelu', [x], { alpha }, output);
  }

  /** Nearest or linear resize by integer-or-float factors on H and W (NCHW). */
  resize(x: string, mode: 'nearest' | 'linear' | 'cubic', scaleH: number, scaleW: number, alignCorners = false, output?: string): string {
    const scales = this.floatInit('scales', [4], [1, 1, scaleH, scaleW]);
    const attrs: Record<string, AttrValue> = {
      mode,
      coordinate_transformation_mode: mode === 'nearest' ? 'asymmetric' : alignCorners ? 'align_corners' : 'half_pixel',
    };
    if (mode === 'nearest') attrs.nearest_mode = 'floor';
    if (mode === 'cubic') attrs.cubic_coeff_a = -0.75;
    // Resize's scales input must stay float32 even in the fp16 variant.
    this.float32Only.add(scales);
    return this.node('Resize', [x, '', scales], attrs, output);
  }

  private readonly float32Only = new Set<string>();

  cast(x: string, to: 'uint8' | 'float'): string {
    return this.node('Cast', [x], { to: to === 'uint8' ? DT.UINT8 : { computeType: true } });
  }

  serialize(precision: Precision, producer = 'esrvid'): Uint8Array {
    const floatType = precision === 'fp16' ? DT.FLOAT16 : DT.FLOAT;
    const attr = (name: string, v: AttrValue): IAttributeProto => {
      const A = onnx.AttributeProto.AttributeType;
      if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
      if (typeof v === 'object' && !Array.isArray(v)) return { name, type: A.INT, i: floatType };
      if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
      if (!FLOAT_ATTRS.has(name)) return { name, type: A.INT, i: v };
      return { name, type: A.FLOAT, f: v };
    };
    const nodes: INodeProto[] = this.nodes.map((n) => ({
      opType: n.op,
      name: n.name,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs).map(([k, v]) => attr(k, v)),
    }));
    const initializer: ITensorProto[] = this.inits.map((t) => {
      if (t.kind === 'int64') return { name: t.name, dims: t.dims, dataType: DT.INT64, int64Data: t.data };
      if (precision === 'fp16' && !this.float32Only.has(t.name)) {
        return { name: t.name, dims: t.dims, dataType: DT.FLOAT16, rawData: encodeFloat16(t.data) };
      }
      return { name: t.name, dims: t.dims, dataType: DT.FLOAT, rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
    });
    const valueInfo = (v: ValueInfo) => ({
      name: v.name,
      type: {
        tensorType: {
          elemType: v.elemType === 'uint8' ? DT.UINT8 : floatType,
          shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
        },
      },
    });
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: producer,
      graph: {
        name: 'esrvid',
        node: nodes,
        initializer,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
      metadataProps: Object.entries(this.metadata).map(([key, value]) => ({ key, value })),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/**
 * Wraps a float NCHW network in esrvid's frame I/O: uint8 RGB frames in NHWC (exactly what
 * ffmpeg's rgb24 rawvideo is) in and out, so JavaScript never touches a pixel. The network sees
 * RGB in 0..1, like the original; its output is scaled, clamped and rounded to 8 bits in-graph.
 * `body` receives the normalized input tensor name and returns the network's output name.
 */
export function buildFrameModel(body: (g: GraphBuilder, input: string) => string): GraphBuilder {
  const g = new GraphBuilder();
  const frames = g.claim('frames');
  g.inputs.push({ name: 'frames', elemType: 'uint8', shape: ['batch', 'height', 'width', 3] });
  // Transposing uint8 moves a quarter of the bytes that transposing float would.
  const nchw8 = g.node('Transpose', [frames], { perm: [0, 3, 1, 2] });
  const nchw = g.cast(nchw8, 'float');
  const unit = g.node('Mul', [nchw, g.scalar('inv255', 1 / 255)]);
  const net = body(g, unit);
  const scaled = g.node('Mul', [net, g.scalar('k255', 255)]);
  const clipped = g.node('Clip', [scaled, g.scalar('lo', 0), g.scalar('hi', 255)]);
  const rounded = g.node('Round', [clipped]);
  const out8 = g.cast(rounded, 'uint8');
  g.claim('upscaled');
  g.node('Transpose', [out8], { perm: [0, 2, 3, 1] }, 'upscaled');
  g.outputs.push({ name: 'upscaled', elemType: 'uint8', shape: ['batch', 'out_height', 'out_width', 3] });
  return g;
}
