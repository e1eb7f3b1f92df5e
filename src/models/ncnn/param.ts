/**
 * Parser for ncnn's text graph format (.param).
 *
 *   7767517
 *   <layer_count> <blob_count>
 *   <Type> <Name> <n_in> <n_out> <in blobs...> <out blobs...> k=v k=v ...
 *
 * Keys are integers. A key <= -23300 marks an array: `-23310=2,0.1,0.2` is key 10 with [0.1, 0.2]
 * (count first). Values are ints or floats; we keep them as numbers.
 */
import { ModelError } from '../../errors.js';

export const NCNN_MAGIC = 7767517;

export type ParamValue = number | number[];

export interface NcnnLayer {
  type: string;
  name: string;
  inputs: string[];
  outputs: string[];
  params: Map<number, ParamValue>;
  /** 1-based line number in the .param file, for error messages. */
  line: number;
}

export interface NcnnGraph {
  layers: NcnnLayer[];
  blobCount: number;
}

export function parseParam(text: string, file = '.param'): NcnnGraph {
  const lines = text.split(/\r?\n/);
  const fail = (line: number, what: string): never => {
    throw new ModelError(`${file}:${line}: ${what}`);
  };
  if (Number(lines[0]?.trim()) !== NCNN_MAGIC) {
    fail(1, `not an ncnn param file (magic is "${lines[0]?.trim() ?? ''}", expected ${NCNN_MAGIC})`);
  }
  const counts = (lines[1] ?? '').trim().split(/\s+/).map(Number);
  const [layerCount, blobCount] = counts;
  if (counts.length !== 2 || !Number.isInteger(layerCount) || !Number.isInteger(blobCount)) {
    fail(2, 'expected "<layer_count> <blob_count>"');
  }

  const layers: NcnnLayer[] = [];
  for (let i = 2; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    const lineNo = i + 1;
    const tok = raw.split(/\s+/);
    const [type, name, nInStr, nOutStr] = tok;
    const nIn = Number(nInStr);
    const nOut = Number(nOutStr);
    if (!type || !name || !Number.isInteger(nIn) || !Number.isInteger(nOut) || nIn < 0 || nOut < 0) {
      fail(lineNo, 'malformed layer line');
    }
    if (tok.length < 4 + nIn + nOut) fail(lineNo, `layer ${name} lists fewer blobs than ${nIn}+${nOut}`);
    const inputs = tok.slice(4, 4 + nIn);
    const outputs = tok.slice(4 + nIn, 4 + nIn + nOut);
    const params = new Map<number, ParamValue>();
    for (const kv of tok.slice(4 + nIn + nOut)) {
      const eq = kv.indexOf('=');
      const key = Number(kv.slice(0, eq));
      if (eq <= 0 || !Number.isInteger(key)) fail(lineNo, `layer ${name}: bad parameter "${kv}"`);
      const value = kv.slice(eq + 1);
      if (key <= -23300) {
        const parts = value.split(',').map(Number);
        const count = parts[0]!;
        const items = parts.slice(1);
        if (!Number.isInteger(count) || items.length !== count || items.some(Number.isNaN)) {
          fail(lineNo, `layer ${name}: array parameter "${kv}" does not hold ${count} numbers`);
        }
        params.set(-key - 23300, items);
      } else {
        const n = Number(value);
        if (Number.isNaN(n)) fail(lineNo, `layer ${name}: parameter ${key} is not a number ("${value}")`);
        params.set(key, n);
      }
    }
    layers.push({ type: type!, name: name!, inputs, outputs, params, line: lineNo });
  }
  if (layers.length !== layerCount) {
    fail(2, `header says ${layerCount} layers but the file has ${layers.length}`);
  }
  return { layers, blobCount: blobCount! };
}

/** Reads an integer parameter with a default. */
export function intParam(layer: NcnnLayer, key: number, fallback: number): number {
  const v = layer.params.get(key);
  if (v === undefined) return fallback;
  if (Array.isArray(v)) throw new ModelError(`layer ${layer.name} (${layer.type}): parameter ${key} should be a number, not an array`);
  return v;
}

export function floatParam(layer: NcnnLayer, key: number, fallback: number): number {
  return intParam(layer, key, fallback);
}

export function arrayParam(layer: NcnnLayer, key: number): number[] | undefined {
  const v = layer.params.get(key);
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}
