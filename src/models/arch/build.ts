/**
 * ONNX graphs for the recognised architectures, written from the architecture's definition
 * (BasicSR's rrdbnet_arch.py and srvgg_arch.py) onto GraphBuilder, inside esrvid's uint8 frame
 * wrapper, so the float32 and float16 files come from one description as for ncnn models.
 */
import { buildFrameModel, type GraphBuilder } from '../onnx/graph-builder.js';
import { describeArchitecture, detectArchitecture, parameterCount, type Architecture, type ConvKeys, type RrdbNetArch, type SrvggArch } from './detect.js';
import type { StateDict } from './state-dict.js';

/** ESRGAN's LeakyReLU slope and residual scaling. */
const LEAKY_SLOPE = 0.2;
const RESIDUAL_SCALE = 0.2;

export interface BuiltModel {
  graph: GraphBuilder;
  arch: Architecture;
  architecture: string;
  scale: number;
  parameterCount: number;
}

export function buildFromStateDict(sd: StateDict, source: string): BuiltModel {
  const arch = detectArchitecture(sd, source);
  const graph = buildFrameModel((g, input) => emitNetwork(g, input, arch, sd));
  return { graph, arch, architecture: describeArchitecture(arch), scale: arch.scale, parameterCount: parameterCount(arch, sd) };
}

/** The network on a float NCHW tensor in 0..1; returns its output tensor's name. */
export function emitNetwork(g: GraphBuilder, input: string, arch: Architecture, sd: StateDict): string {
  return arch.type === 'RRDBNet' ? emitRrdbNet(g, input, arch, sd) : emitSrvgg(g, input, arch, sd);
}

function conv3x3(g: GraphBuilder, sd: StateDict, x: string, keys: ConvKeys, weight?: Float32Array): string {
  const w = sd.get(keys.weight)!;
  const [out, inp] = w.shape as [number, number];
  return g.conv(x, weight ?? w.values(), sd.get(keys.bias)!.values(), { outChannels: out, inChannels: inp, kernel: [3, 3], pads: [1, 1, 1, 1] });
}

function emitRrdbNet(g: GraphBuilder, input: string, a: RrdbNetArch, sd: StateDict): string {
  const lrelu = (x: string) => g.leakyRelu(x, LEAKY_SLOPE);
  const c = a.convs;
  let x = input;
  let firstWeight: Float32Array | undefined;
  let crop: ((out: string) => string) | undefined;
  if (a.unshuffle > 1) {
    ({ padded: x, crop } = padToMultiple(g, x, a.unshuffle, a.scale));
    x = g.node('SpaceToDepth', [x], { blocksize: a.unshuffle });
    firstWeight = unshuffleOrder(sd.get(c.first.weight)!.values(), a.features, a.inChannels, a.unshuffle);
  }
  const feat = conv3x3(g, sd, x, c.first, firstWeight);
  let trunk = feat;
  for (const block of c.body) {
    const blockIn = trunk;
    let y = blockIn;
    for (const rdb of block) {
      const rdbIn = y;
      const parts = [rdbIn];
      let x5 = '';
      rdb.forEach((keys, i) => {
        const cat = parts.length === 1 ? parts[0]! : g.node('Concat', [...parts], { axis: 1 });
        const out = conv3x3(g, sd, cat, keys);
        if (i < 4) parts.push(lrelu(out));
        else x5 = out;
      });
      y = residual(g, x5, rdbIn);
    }
    trunk = residual(g, y, blockIn);
  }
  let up = g.node('Add', [feat, conv3x3(g, sd, trunk, c.trunk)]);
  for (const keys of c.ups) up = lrelu(conv3x3(g, sd, g.resize(up, 'nearest', 2, 2), keys));
  const out = conv3x3(g, sd, lrelu(conv3x3(g, sd, up, c.hr)), c.last);
  return crop ? crop(out) : out;
}

/** y * 0.2 + x: the residual scaling of ESRGAN's dense and RRDB blocks. */
function residual(g: GraphBuilder, y: string, x: string): string {
  return g.node('Add', [g.node('Mul', [y, g.scalar('res_scale', RESIDUAL_SCALE)]), x]);
}

/**
 * torch's pixel_unshuffle orders output channels c*s*s + i*s + j; ONNX SpaceToDepth orders them
 * (i*s + j)*C + c. Permuting the first convolution's input channels once makes the two agree.
 */
export function unshuffleOrder(w: Float32Array, out: number, channels: number, s: number): Float32Array {
  const inp = channels * s * s;
  const k = 9;
  const r = new Float32Array(w.length);
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < channels; c++) {
      for (let i = 0; i < s; i++) {
        for (let j = 0; j < s; j++) {
          const from = (o * inp + c * s * s + i * s + j) * k;
          const to = (o * inp + (i * s + j) * channels + c) * k;
          r.set(w.subarray(from, from + k), to);
        }
      }
    }
  }
  return r;
}

/**
 * Pads H and W up to a multiple of `s` by reflection (as Real-ESRGAN's inference does before a
 * pixel-unshuffle) and returns a crop of the output back to the input size times `scale`.
 */
function padToMultiple(g: GraphBuilder, x: string, s: number, scale: number): { padded: string; crop: (out: string) => string } {
  const hw = g.node('Gather', [g.node('Shape', [x]), g.int64Init('hw_axes', [2, 3])], { axis: 0 });
  const ss = g.int64Init('block', [s, s]);
  const pad = g.node('Mod', [g.node('Sub', [ss, g.node('Mod', [hw, ss])]), ss]);
  const pads = g.node('Concat', [g.int64Init('pad_begin', [0, 0, 0, 0, 0, 0]), pad], { axis: 0 });
  const padded = g.node('Pad', [x, pads], { mode: 'reflect' });
  const crop = (out: string) => {
    const ends = g.node('Mul', [hw, g.int64Init('scale', [scale, scale])]);
    return g.node('Slice', [out, g.int64Init('starts', [0, 0]), ends, g.int64Init('axes', [2, 3])]);
  };
  return { padded, crop };
}

function emitSrvgg(g: GraphBuilder, input: string, a: SrvggArch, sd: StateDict): string {
  let x = input;
  a.convKeys.forEach((keys, i) => {
    x = conv3x3(g, sd, x, keys);
    if (i < a.preluKeys.length) x = g.prelu(x, sd.get(a.preluKeys[i]!)!.values());
  });
  if (a.scale === 1) return g.node('Add', [x, input]);
  // torch.pixel_shuffle is DepthToSpace in CRD order; the input, nearest-upsampled, is added back.
  const shuffled = g.node('DepthToSpace', [x], { blocksize: a.scale, mode: 'CRD' });
  return g.node('Add', [shuffled, g.resize(input, 'nearest', a.scale, a.scale)]);
}
