/**
 * Which network a state dict belongs to, from its keys and shapes alone, with every
 * hyper-parameter inferred: ESRGAN's RRDBNet in its three key layouts and Real-ESRGAN's
 * SRVGGNetCompact. Each recognised layout is mapped onto one set of canonical layer names, so
 * the graph builders see one description. A state dict that matches no layout is refused with
 * what was recognised in it; one that nearly matches is refused naming the missing key or the
 * wrong shape.
 */
import { ModelError } from '../../errors.js';
import type { StateDict, StateTensor } from './state-dict.js';

/** A convolution's weight and bias keys in the state dict. */
export interface ConvKeys {
  weight: string;
  bias: string;
}

export interface RrdbNetArch {
  type: 'RRDBNet';
  /** esrgan: `model.0`, `model.1.sub.N.RDB1.conv1.0` (ESRGAN's first release, most community models);
   *  esrgan-trunk: `conv_first`, `RRDB_trunk.N.RDB1.conv1` (ESRGAN's later code);
   *  basicsr: `conv_first`, `body.N.rdb1.conv1`, `conv_up1` (BasicSR / Real-ESRGAN). */
  layout: 'esrgan' | 'esrgan-trunk' | 'basicsr';
  blocks: number;
  features: number;
  growth: number;
  inChannels: number;
  outChannels: number;
  /** Nearest x2 + conv stages. */
  upsamples: number;
  /** Pixel-unshuffle factor applied to the input first (BasicSR's x2 and x1 models): 1, 2 or 4. */
  unshuffle: number;
  scale: number;
  convs: {
    first: ConvKeys;
    /** [block][rdb 0..2][conv 0..4] */
    body: ConvKeys[][][];
    trunk: ConvKeys;
    ups: ConvKeys[];
    hr: ConvKeys;
    last: ConvKeys;
  };
}

export interface SrvggArch {
  type: 'SRVGGNetCompact';
  /** Convolutions between the first and the last, as in Real-ESRGAN's `num_conv`. */
  convs: number;
  features: number;
  inChannels: number;
  outChannels: number;
  scale: number;
  /** body.0, body.2, ... body.(2*convs+2). */
  convKeys: ConvKeys[];
  /** PReLU slopes after every convolution but the last. */
  preluKeys: string[];
}

export type Architecture = RrdbNetArch | SrvggArch;

/** One line for the registry and `models list`, in the registry's wording. */
export function describeArchitecture(a: Architecture): string {
  if (a.type === 'RRDBNet') {
    const unshuffle = a.unshuffle > 1 ? `, pixel-unshuffle /${a.unshuffle}` : '';
    return `RRDBNet (ESRGAN): ${a.blocks} RRDB blocks, ${a.features} features, growth ${a.growth}${unshuffle}, ${a.layout} layout`;
  }
  return `SRVGGNetCompact: ${a.convs} convolutions + PReLU, ${a.features} features, PixelShuffle x${a.scale} + nearest-upsampled input`;
}

/** Every tensor the architecture uses (for the parameter count and the unused-key check). */
export function usedKeys(a: Architecture): string[] {
  const conv = (c: ConvKeys) => [c.weight, c.bias];
  if (a.type === 'SRVGGNetCompact') return [...a.convKeys.flatMap(conv), ...a.preluKeys];
  const c = a.convs;
  return [c.first, ...c.body.flat(2), c.trunk, ...c.ups, c.hr, c.last].flatMap(conv);
}

export function parameterCount(a: Architecture, sd: StateDict): number {
  return usedKeys(a).reduce((n, k) => n + sd.get(k)!.shape.reduce((x, y) => x * y, 1), 0);
}

/** Recognises the architecture, or throws a one-line ModelError saying why not. */
export function detectArchitecture(sd: StateDict, source: string): Architecture {
  let arch: Architecture | undefined;
  if (sd.has('model.0.weight') && sd.has('model.1.sub.0.RDB1.conv1.0.weight')) arch = detectRrdb(sd, source, 'esrgan');
  else if (sd.has('conv_first.weight') && sd.has('RRDB_trunk.0.RDB1.conv1.weight')) arch = detectRrdb(sd, source, 'esrgan-trunk');
  else if (sd.has('conv_first.weight') && sd.has('body.0.rdb1.conv1.weight')) arch = detectRrdb(sd, source, 'basicsr');
  else if (sd.has('body.0.weight') && [...sd.keys()].every((k) => /^body\.\d+\.(weight|bias)$/.test(k))) arch = detectSrvgg(sd, source);
  if (!arch) throw new ModelError(`${source}: unknown architecture: ${recognised(sd)}`, 'esrvid converts RRDBNet (ESRGAN, Real-ESRGAN) and SRVGGNetCompact checkpoints');
  const used = new Set(usedKeys(arch));
  const extra = [...sd.keys()].filter((k) => !used.has(k));
  if (extra.length > 0) {
    throw new ModelError(`${source}: looks like ${arch.type} but has ${extra.length} tensors that are not part of it (${extra.slice(0, 4).join(', ')}${extra.length > 4 ? ', ...' : ''})`,
      'a variant esrvid does not know; refusing rather than guessing');
  }
  return arch;
}

const shapeText = (t: StateTensor | undefined) => (t ? `[${t.shape.join(',')}]` : 'missing');

function expectShape(sd: StateDict, source: string, arch: string, key: string, shape: number[], why: string): void {
  const t = sd.get(key);
  if (!t) throw new ModelError(`${source}: ${arch}: missing tensor ${key}`, 'the checkpoint is incomplete');
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ModelError(`${source}: ${arch}: ${key} has shape ${shapeText(t)}, expected [${shape.join(',')}] (${why})`);
  }
}

function conv(sd: StateDict, source: string, arch: string, prefix: string, out: number, inp: number, why: string): ConvKeys {
  const keys = { weight: `${prefix}.weight`, bias: `${prefix}.bias` };
  expectShape(sd, source, arch, keys.weight, [out, inp, 3, 3], why);
  expectShape(sd, source, arch, keys.bias, [out], why);
  return keys;
}

/** Consecutive indices 0..n-1 present for `key(i)`. */
function countSeries(sd: StateDict, key: (i: number) => string): number {
  let n = 0;
  while (sd.has(key(n))) n++;
  return n;
}

function detectRrdb(sd: StateDict, source: string, layout: RrdbNetArch['layout']): RrdbNetArch {
  const label = `RRDBNet (${layout} layout)`;
  const names = {
    esrgan: {
      first: 'model.0',
      rdb: (b: number, r: number, c: number) => `model.1.sub.${b}.RDB${r}.conv${c}.0`,
      trunk: (n: number) => `model.1.sub.${n}`,
    },
    'esrgan-trunk': {
      first: 'conv_first',
      rdb: (b: number, r: number, c: number) => `RRDB_trunk.${b}.RDB${r}.conv${c}`,
      trunk: () => 'trunk_conv',
    },
    basicsr: {
      first: 'conv_first',
      rdb: (b: number, r: number, c: number) => `body.${b}.rdb${r}.conv${c}`,
      trunk: () => 'conv_body',
    },
  }[layout];
  const first = sd.get(`${names.first}.weight`)!;
  if (first.shape.length !== 4) throw new ModelError(`${source}: ${label}: ${names.first}.weight has shape ${shapeText(first)}, expected a 4-d convolution weight`);
  const features = first.shape[0]!;
  const firstIn = first.shape[1]!;
  const blocks = countSeries(sd, (b) => `${names.rdb(b, 1, 1)}.weight`);
  const growthT = sd.get(`${names.rdb(0, 1, 1)}.weight`)!;
  const growth = growthT.shape[0]!;

  // The upsampling stages and the two final convolutions.
  let ups: string[];
  let hr: string;
  let last: string;
  if (layout === 'esrgan') {
    // model.2.. : [Upsample, conv, LeakyReLU] per x2 stage at 3k, then HR conv at 3n+2, last at 3n+4.
    const idx = [...sd.keys()].map((k) => /^model\.(\d+)\.weight$/.exec(k)).filter((m) => m && Number(m[1]) >= 2).map((m) => Number(m![1])).sort((a, b) => a - b);
    const lastIdx = idx[idx.length - 1];
    const n = lastIdx === undefined ? -1 : (lastIdx - 4) / 3;
    const expected = Number.isInteger(n) && n >= 0 ? [...Array.from({ length: n }, (_, k) => 3 * (k + 1)), 3 * n + 2, 3 * n + 4] : [];
    if (expected.length === 0 || expected.join() !== idx.join()) {
      throw new ModelError(`${source}: ${label}: cannot infer the scale from the layers after the RRDB trunk (model.${idx.join(', model.') || '(none)'}); expected upsampling convs at model.3, model.6, ... then the HR and last convs`);
    }
    ups = expected.slice(0, n).map((i) => `model.${i}`);
    hr = `model.${3 * n + 2}`;
    last = `model.${3 * n + 4}`;
  } else {
    const prefix = layout === 'basicsr' ? 'conv_up' : 'upconv';
    const n = countSeries(sd, (i) => `${prefix}${i + 1}.weight`);
    ups = Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
    hr = layout === 'basicsr' ? 'conv_hr' : 'HRconv';
    last = 'conv_last';
  }
  const lastW = sd.get(`${last}.weight`);
  if (!lastW || lastW.shape.length !== 4) throw new ModelError(`${source}: ${label}: missing tensor ${last}.weight`, 'the checkpoint is incomplete');
  const outChannels = lastW.shape[0]!;
  const unshuffle = firstIn === outChannels ? 1 : firstIn === outChannels * 4 ? 2 : firstIn === outChannels * 16 ? 4 : 0;
  if (unshuffle === 0) {
    throw new ModelError(`${source}: ${label}: cannot infer the input: ${names.first} takes ${firstIn} channels and ${last} gives ${outChannels}, which is neither the same nor a pixel-unshuffled (x4 or x16) count`);
  }
  const inChannels = firstIn / (unshuffle * unshuffle);
  const scale = 2 ** ups.length / unshuffle;
  if (!Number.isInteger(scale) || scale < 1 || scale > 8) {
    throw new ModelError(`${source}: ${label}: cannot infer a scale: ${ups.length} x2 upsampling stages after a pixel-unshuffle by ${unshuffle} give x${scale}; esrvid supports x1, x2, x4 and x8`);
  }
  if (inChannels !== 3 || outChannels !== 3) {
    throw new ModelError(`${source}: ${label}: takes ${inChannels} and gives ${outChannels} channels; esrvid upscales RGB frames (3 channels)`);
  }

  const body: ConvKeys[][][] = [];
  for (let b = 0; b < blocks; b++) {
    const rdbs: ConvKeys[][] = [];
    for (let r = 1; r <= 3; r++) {
      const convs: ConvKeys[] = [];
      for (let c = 1; c <= 5; c++) {
        const out = c === 5 ? features : growth;
        convs.push(conv(sd, source, label, names.rdb(b, r, c), out, features + (c - 1) * growth,
          `block ${b}, dense block ${r}, conv ${c} with ${features} features and growth ${growth}`));
      }
      rdbs.push(convs);
    }
    body.push(rdbs);
  }
  const ff = `${features} features`;
  return {
    type: 'RRDBNet',
    layout,
    blocks,
    features,
    growth,
    inChannels,
    outChannels,
    upsamples: ups.length,
    unshuffle,
    scale,
    convs: {
      first: conv(sd, source, label, names.first, features, firstIn, `${inChannels} input channels${unshuffle > 1 ? ` unshuffled by ${unshuffle}` : ''}, ${ff}`),
      body,
      trunk: conv(sd, source, label, names.trunk(blocks), features, features, `the trunk conv after ${blocks} blocks, ${ff}`),
      ups: ups.map((u) => conv(sd, source, label, u, features, features, `an upsampling conv, ${ff}`)),
      hr: conv(sd, source, label, hr, features, features, `the HR conv, ${ff}`),
      last: conv(sd, source, label, last, outChannels, features, `the last conv, ${ff}`),
    },
  };
}

function detectSrvgg(sd: StateDict, source: string): SrvggArch {
  const label = 'SRVGGNetCompact';
  const indices = [...new Set([...sd.keys()].map((k) => Number(k.split('.')[1])))].sort((a, b) => a - b);
  const lastIdx = indices[indices.length - 1]!;
  const first = sd.get('body.0.weight')!;
  if (first.shape.length !== 4) throw new ModelError(`${source}: ${label}: body.0.weight has shape ${shapeText(first)}, expected a convolution weight`);
  const features = first.shape[0]!;
  const inChannels = first.shape[1]!;
  if (!sd.has('body.1.weight')) {
    throw new ModelError(`${source}: ${label}: body.1 has no weights, so its activation is ReLU or LeakyReLU, and the state dict cannot tell which`,
      'only the PReLU variant (Real-ESRGAN\'s default) can be imported');
  }
  if (lastIdx % 2 !== 0 || lastIdx < 2) {
    throw new ModelError(`${source}: ${label}: the last layer is body.${lastIdx}; expected a convolution at an even index after conv/PReLU pairs`);
  }
  const lastW = sd.get(`body.${lastIdx}.weight`);
  const lastOut = lastW?.shape[0] ?? 0;
  const scale = Math.round(Math.sqrt(lastOut / inChannels));
  if (!lastW || lastW.shape.length !== 4 || scale < 1 || scale * scale * inChannels !== lastOut) {
    throw new ModelError(`${source}: ${label}: cannot infer the scale: the last conv body.${lastIdx} gives ${lastOut} channels, not ${inChannels} x a square number (PixelShuffle)`);
  }
  if (inChannels !== 3) throw new ModelError(`${source}: ${label}: takes ${inChannels} channels; esrvid upscales RGB frames (3 channels)`);
  const convKeys: ConvKeys[] = [];
  const preluKeys: string[] = [];
  for (let i = 0; i <= lastIdx; i += 2) {
    const isFirst = i === 0;
    const isLast = i === lastIdx;
    convKeys.push(conv(sd, source, label, `body.${i}`, isLast ? lastOut : features, isFirst ? inChannels : features,
      isFirst ? `the first conv, ${inChannels} channels in` : isLast ? `the last conv, ${inChannels} x ${scale}x${scale} channels out` : `${features} features`));
    if (!isLast) {
      const key = `body.${i + 1}.weight`;
      const t = sd.get(key);
      if (!t) throw new ModelError(`${source}: ${label}: missing tensor ${key} (the PReLU after body.${i})`, 'the checkpoint is incomplete');
      if (t.shape.length !== 1 || (t.shape[0] !== features && t.shape[0] !== 1)) {
        throw new ModelError(`${source}: ${label}: ${key} has shape ${shapeText(t)}, expected [${features}] or [1] (PReLU slopes)`);
      }
      preluKeys.push(key);
    }
  }
  return { type: 'SRVGGNetCompact', convs: lastIdx / 2 - 1, features, inChannels, outChannels: inChannels, scale, convKeys, preluKeys };
}

/** Families whose key signatures are well known, to name what an unsupported checkpoint is. */
const SIGNATURES: [RegExp, string][] = [
  [/^residual_layer\.\d+\.residual_layer\.\d+\.layer\.\d+\.fn\.to_qkv|^residual_layer\.\d+\.esa\.conv1/, 'OmniSR (omni-scale attention)'],
  [/\.attn\.relative_position_bias_table$/, 'a Swin transformer (SwinIR, HAT or similar)'],
  [/^layers\.\d+\.residual_group\.blocks\./, 'SwinIR'],
  [/^block_1\.c1_r\./, 'SPAN'],
  [/^unet1\.conv1\.conv\.0\./, 'Real-CUGAN'],
  [/^(layers|feats)\.\d+\..*\.(attn|attention)\./, 'a transformer'],
];

/** A one-line summary of what a state dict contains, for the unknown-architecture error. */
export function recognised(sd: StateDict): string {
  const keys = [...sd.keys()];
  const family = SIGNATURES.find(([re]) => keys.some((k) => re.test(k)))?.[1];
  const groups = new Map<string, number>();
  for (const k of keys) {
    const g = k.split('.')[0]!;
    groups.set(g, (groups.get(g) ?? 0) + 1);
  }
  const convs = keys.filter((k) => sd.get(k)!.shape.length === 4);
  const shape = (k: string) => sd.get(k)!.shape;
  const convText = (k: string) => `${k} ${shape(k)[1]}->${shape(k)[0]} ${shape(k)[2]}x${shape(k)[3]}`;
  // The conv that reads the RGB image, and the last one that could feed a PixelShuffle to RGB.
  const inputConv = convs.find((k) => shape(k)[1] === 3);
  const shuffle = (k: string) => Math.sqrt(shape(k)[0]! / 3);
  const outputConv = convs.filter((k) => Number.isInteger(shuffle(k)) && shuffle(k) >= 1).pop();
  const parts = [
    `${keys.length} tensors in ${groups.size} top-level groups (${[...groups].slice(0, 6).map(([g, n]) => `${g} x${n}`).join(', ')}${groups.size > 6 ? ', ...' : ''})`,
    `${convs.length} convolutions`,
  ];
  if (inputConv) parts.push(`input conv ${convText(inputConv)}`);
  if (outputConv) parts.push(`output conv ${convText(outputConv)}${shuffle(outputConv) > 1 ? ` (PixelShuffle x${shuffle(outputConv)} to RGB?)` : ''}`);
  const attention = keys.filter((k) => /qkv|attn|attention|rel_pos|relative_position/.test(k)).length;
  if (attention > 0) parts.push(`${attention} attention tensors`);
  const norms = keys.filter((k) => /norm/.test(k)).length;
  if (norms > 0) parts.push(`${norms} normalisation tensors`);
  if (keys.some((k) => /RDB|rdb/.test(k))) parts.push('RRDB blocks, but not in a known RRDBNet layout');
  parts.push(family ? `it looks like ${family}, which is not an ESRGAN-family network` : 'no RRDBNet or SRVGGNetCompact layout');
  return parts.join('; ');
}
