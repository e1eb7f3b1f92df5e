/**
 * An independent float32 forward pass of ESRGAN's RRDBNet and Real-ESRGAN's SRVGGNetCompact,
 * written directly on a state dict's own keys (all three RRDBNet key layouts) with plain loops:
 * conv2d, LeakyReLU, PReLU, concatenation, nearest upsampling, pixel (un)shuffle. It shares no
 * code with the ONNX graph builders or the architecture detection; it is slow, so it is run on
 * small crops.
 */
import type { StateDict } from '../../src/models/arch/state-dict.js';

export interface Chw {
  c: number;
  h: number;
  w: number;
  d: Float32Array;
}

export function fromRgb(data: Uint8Array, width: number, height: number): Chw {
  const d = new Float32Array(3 * width * height);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) d[c * width * height + i] = data[i * 3 + c]! / 255;
  return { c: 3, h: height, w: width, d };
}

/** Float CHW in 0..1 -> uint8 HWC exactly as the frame models round (clamp, round half to even). */
export function toRgb(x: Chw): Uint8Array {
  const out = new Uint8Array(x.h * x.w * 3);
  const plane = x.h * x.w;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(255, Math.max(0, x.d[c * plane + i]! * 255));
      const f = Math.floor(v);
      const r = v - f;
      out[i * 3 + c] = r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
    }
  }
  return out;
}

function conv2d(x: Chw, sd: StateDict, prefix: string): Chw {
  const wt = sd.get(`${prefix}.weight`);
  const bt = sd.get(`${prefix}.bias`);
  if (!wt) throw new Error(`reference: no ${prefix}.weight`);
  const [oc, ic, kh, kw] = wt.shape as [number, number, number, number];
  if (ic !== x.c) throw new Error(`reference: ${prefix} takes ${ic} channels, got ${x.c}`);
  const w = wt.values();
  const b = bt?.values();
  const { h, w: W } = x;
  const ph = (kh - 1) / 2;
  const pw = (kw - 1) / 2;
  const out = new Float32Array(oc * h * W);
  for (let o = 0; o < oc; o++) {
    const dst = out.subarray(o * h * W, (o + 1) * h * W);
    dst.fill(b ? b[o]! : 0);
    for (let i = 0; i < ic; i++) {
      const src = x.d.subarray(i * h * W, (i + 1) * h * W);
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++) {
          const k = w[((o * ic + i) * kh + ky) * kw + kx]!;
          const dy = ky - ph;
          const dx = kx - pw;
          for (let y = Math.max(0, -dy); y < Math.min(h, h - dy); y++) {
            const row = (y + dy) * W + dx;
            const drow = y * W;
            for (let xx = Math.max(0, -dx); xx < Math.min(W, W - dx); xx++) dst[drow + xx]! += k * src[row + xx]!;
          }
        }
      }
    }
  }
  return { c: oc, h, w: W, d: out };
}

const map = (x: Chw, f: (v: number, c: number) => number): Chw => {
  const d = new Float32Array(x.d.length);
  const plane = x.h * x.w;
  for (let i = 0; i < d.length; i++) d[i] = f(x.d[i]!, Math.floor(i / plane));
  return { ...x, d };
};
const lrelu = (x: Chw) => map(x, (v) => (v >= 0 ? v : 0.2 * v));
const add = (a: Chw, b: Chw, k = 1): Chw => ({ ...a, d: a.d.map((v, i) => v * k + b.d[i]!) });
const cat = (xs: Chw[]): Chw => {
  const d = new Float32Array(xs.reduce((n, x) => n + x.d.length, 0));
  let at = 0;
  for (const x of xs) {
    d.set(x.d, at);
    at += x.d.length;
  }
  return { c: xs.reduce((n, x) => n + x.c, 0), h: xs[0]!.h, w: xs[0]!.w, d };
};

function nearest(x: Chw, r: number): Chw {
  const h = x.h * r;
  const w = x.w * r;
  const d = new Float32Array(x.c * h * w);
  for (let c = 0; c < x.c; c++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
    d[(c * h + y) * w + xx] = x.d[(c * x.h + Math.floor(y / r)) * x.w + Math.floor(xx / r)]!;
  }
  return { c: x.c, h, w, d };
}

/** torch.nn.functional.pixel_shuffle. */
export function pixelShuffle(x: Chw, r: number): Chw {
  const c = x.c / (r * r);
  const h = x.h * r;
  const w = x.w * r;
  const d = new Float32Array(x.d.length);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) for (let y = 0; y < x.h; y++) for (let xx = 0; xx < x.w; xx++) {
    d[(ch * h + y * r + i) * w + xx * r + j] = x.d[((ch * r * r + i * r + j) * x.h + y) * x.w + xx]!;
  }
  return { c, h, w, d };
}

/** BasicSR's pixel_unshuffle: channel c*r*r + i*r + j holds pixel (y*r+i, x*r+j) of channel c. */
export function pixelUnshuffle(x: Chw, r: number): Chw {
  const h = x.h / r;
  const w = x.w / r;
  const d = new Float32Array(x.d.length);
  for (let ch = 0; ch < x.c; ch++) for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
    d[((ch * r * r + i * r + j) * h + y) * w + xx] = x.d[(ch * x.h + y * r + i) * x.w + xx * r + j]!;
  }
  return { c: x.c * r * r, h, w, d };
}

/** Reflection padding at the bottom and right up to a multiple of m (numpy/torch "reflect"). */
export function reflectPadTo(x: Chw, m: number): Chw {
  const h = Math.ceil(x.h / m) * m;
  const w = Math.ceil(x.w / m) * m;
  const ref = (i: number, n: number) => (i < n ? i : 2 * (n - 1) - i);
  const d = new Float32Array(x.c * h * w);
  for (let c = 0; c < x.c; c++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
    d[(c * h + y) * w + xx] = x.d[(c * x.h + ref(y, x.h)) * x.w + ref(xx, x.w)]!;
  }
  return { c: x.c, h, w, d };
}

function cropTo(x: Chw, h: number, w: number): Chw {
  const d = new Float32Array(x.c * h * w);
  for (let c = 0; c < x.c; c++) for (let y = 0; y < h; y++) d.set(x.d.subarray((c * x.h + y) * x.w, (c * x.h + y) * x.w + w), (c * h + y) * w);
  return { c: x.c, h, w, d };
}

/** SRVGGNetCompact: body.0 conv, PReLU, ..., last conv; pixel shuffle; plus the nearest-upsampled input. */
export function forwardSrvgg(sd: StateDict, x: Chw): Chw {
  let last = 0;
  for (const k of sd.keys()) last = Math.max(last, Number(k.split('.')[1]));
  let y = x;
  for (let i = 0; i <= last; i += 2) {
    y = conv2d(y, sd, `body.${i}`);
    if (i < last) {
      const slopes = sd.get(`body.${i + 1}.weight`)!.values();
      y = map(y, (v, c) => (v >= 0 ? v : v * (slopes.length === 1 ? slopes[0]! : slopes[c]!)));
    }
  }
  const r = Math.round(Math.sqrt(y.c / x.c));
  return add(pixelShuffle(y, r), nearest(x, r));
}

/** RRDBNet in any of its three key layouts, with BasicSR's pixel-unshuffle for x2/x1 models. */
export function forwardRrdb(sd: StateDict, x: Chw): Chw {
  const old = sd.has('model.0.weight');
  const trunkLayout = sd.has('RRDB_trunk.0.RDB1.conv1.weight');
  const rdbConv = (b: number, r: number, c: number) =>
    old ? `model.1.sub.${b}.RDB${r}.conv${c}.0` : trunkLayout ? `RRDB_trunk.${b}.RDB${r}.conv${c}` : `body.${b}.rdb${r}.conv${c}`;
  let blocks = 0;
  while (sd.has(`${rdbConv(blocks, 1, 1)}.weight`)) blocks++;
  let ups: string[];
  let hr: string;
  let last: string;
  if (old) {
    const idx = [...sd.keys()].map((k) => /^model\.(\d+)\.weight$/.exec(k)).filter((m) => m && Number(m[1]) >= 2).map((m) => Number(m![1])).sort((a, b) => a - b);
    last = `model.${idx.pop()}`;
    hr = `model.${idx.pop()}`;
    ups = idx.map((i) => `model.${i}`);
  } else {
    const p = trunkLayout ? 'upconv' : 'conv_up';
    ups = [];
    while (sd.has(`${p}${ups.length + 1}.weight`)) ups.push(`${p}${ups.length + 1}`);
    hr = trunkLayout ? 'HRconv' : 'conv_hr';
    last = 'conv_last';
  }
  const first = old ? 'model.0' : 'conv_first';
  const unshuffle = Math.round(Math.sqrt(sd.get(`${first}.weight`)!.shape[1]! / 3));
  let input = x;
  if (unshuffle > 1) input = pixelUnshuffle(reflectPadTo(x, unshuffle), unshuffle);
  const feat = conv2d(input, sd, first);
  let trunk = feat;
  for (let b = 0; b < blocks; b++) {
    let y = trunk;
    for (let r = 1; r <= 3; r++) {
      const xs = [y];
      for (let c = 1; c <= 4; c++) xs.push(lrelu(conv2d(cat(xs), sd, rdbConv(b, r, c))));
      y = add(conv2d(cat(xs), sd, rdbConv(b, r, 5)), y, 0.2);
    }
    trunk = add(y, trunk, 0.2);
  }
  const trunkConv = old ? `model.1.sub.${blocks}` : trunkLayout ? 'trunk_conv' : 'conv_body';
  let up = add(feat, conv2d(trunk, sd, trunkConv));
  for (const u of ups) up = lrelu(conv2d(nearest(up, 2), sd, u));
  const out = conv2d(lrelu(conv2d(up, sd, hr)), sd, last);
  const scale = 2 ** ups.length / unshuffle;
  return unshuffle > 1 ? cropTo(out, x.h * scale, x.w * scale) : out;
}

export function forward(sd: StateDict, x: Chw): Chw {
  return sd.has('body.0.weight') && !sd.has('conv_first.weight') ? forwardSrvgg(sd, x) : forwardRrdb(sd, x);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
