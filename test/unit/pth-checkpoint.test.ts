/**
 * .pth loading: both layouts torch.save writes, float16 and strided storages, the state dict
 * found inside trainers' wrappers, and one-line errors for damaged files.
 */
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { readPth } from '../../src/models/pth/checkpoint.js';
import { legacyPth, makeSrvgg, PickleWriter, storedZip, zipPth, type FakeStateDict } from '../helpers/torch-files.js';

const sd: FakeStateDict = {
  'a.weight': { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
  'a.bias': { shape: [2], data: new Float32Array([-0.5, 0.25]) },
};

async function fails(bytes: Uint8Array): Promise<string> {
  try {
    await readPth(bytes, 'bad.pth');
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    const line = (e as ModelError).oneLine();
    expect(line).not.toMatch(/\n/);
    return line;
  }
  throw new Error('the checkpoint loaded');
}

describe('.pth layouts', () => {
  it('zip layout, float32', async () => {
    const ck = await readPth(zipPth(sd), 'x.pth');
    expect(ck.format).toBe('pth-zip');
    expect(ck.container).toBe('');
    expect(ck.tensors.get('a.weight')!.shape).toEqual([2, 3]);
    expect([...ck.tensors.get('a.weight')!.values()]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...ck.tensors.get('a.bias')!.values()]).toEqual([-0.5, 0.25]);
  });

  it('zip layout, float16 storages', async () => {
    const ck = await readPth(zipPth(sd, { dtype: 'float16' }), 'x.pth');
    expect(ck.tensors.get('a.weight')!.dtype).toBe('float16');
    expect([...ck.tensors.get('a.bias')!.values()]).toEqual([-0.5, 0.25]);
  });

  it('legacy layout (before PyTorch 1.6)', async () => {
    const ck = await readPth(legacyPth(sd), 'x.pth');
    expect(ck.format).toBe('pth-legacy');
    expect([...ck.tensors.get('a.weight')!.values()]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('BasicSR wrappers: params_ema is preferred over params', async () => {
    const p = new PickleWriter().op(0x7d).mark()
      .str('params').orderedDict().mark().str('w').tensor({ key: '0', numel: 2, shape: [2] }).op(0x75)
      .str('params_ema').orderedDict().mark().str('w').tensor({ key: '1', numel: 2, shape: [2] }).op(0x75)
      .op(0x75).stop();
    const bytes = storedZip([['m/data.pkl', p], ['m/data/0', Buffer.from(new Float32Array([1, 1]).buffer)], ['m/data/1', Buffer.from(new Float32Array([2, 2]).buffer)]]);
    const ck = await readPth(bytes, 'x.pth');
    expect(ck.container).toBe('params_ema');
    expect([...ck.tensors.get('w')!.values()]).toEqual([2, 2]);
  });

  it('DataParallel\'s module. prefix is removed', async () => {
    const p = new PickleWriter().orderedDict().mark().str('module.w').tensor({ key: '0', numel: 2, shape: [2] }).op(0x75).stop();
    const ck = await readPth(storedZip([['m/data.pkl', p], ['m/data/0', Buffer.from(new Float32Array([3, 4]).buffer)]]), 'x.pth');
    expect([...ck.tensors.keys()]).toEqual(['w']);
  });

  it('a strided view (a transposed tensor, an offset into a shared storage)', async () => {
    const p = new PickleWriter().orderedDict().mark()
      .str('t').tensor({ key: '0', numel: 7, offset: 1, shape: [3, 2], stride: [1, 3] })
      .str('u').tensor({ key: '0', numel: 7, offset: 0, shape: [1], stride: [1] })
      .op(0x75).stop();
    const storage = Buffer.from(new Float32Array([9, 1, 2, 3, 4, 5, 6]).buffer);
    const ck = await readPth(storedZip([['m/data.pkl', p], ['m/data/0', storage]]), 'x.pth');
    // storage[1 + i*1 + j*3]: rows [1,4], [2,5], [3,6]
    expect([...ck.tensors.get('t')!.values()]).toEqual([1, 4, 2, 5, 3, 6]);
    expect([...ck.tensors.get('u')!.values()]).toEqual([9]);
  });
});

describe('damaged checkpoints are refused with one line', () => {
  const good = zipPth(makeSrvgg({ convs: 1, feat: 4, scale: 2 }));

  it('a truncated zip', async () => {
    expect(await fails(good.subarray(0, Math.floor(good.length / 2)))).toMatch(/^bad\.pth: damaged or truncated zip archive \(.*\); /);
  });

  it('a storage missing from the archive', async () => {
    expect(await fails(zipPth(sd, { dropStorage: 1 }))).toMatch(/bad\.pth: storage 1 \(2 float32 values\) is missing from the archive/);
  });

  it('a storage whose size does not match the pickle', async () => {
    expect(await fails(zipPth(sd, { storageBytes: (i, b) => (i === 0 ? b.subarray(0, 20) : b) }))).toMatch(/storage archive\/data\/0 holds 20 bytes, but the pickle describes 6 float32 values \(24 bytes\)/);
  });

  it('a storage with flipped bits (CRC-32)', async () => {
    const bad = Buffer.from(good);
    const at = bad.indexOf(Buffer.from('archive/data/0')) + 'archive/data/0'.length + 5;
    bad[at] ^= 0xff;
    expect(await fails(bad)).toMatch(/archive\/data\/0 fails its CRC-32 check/);
  });

  it('a tensor that reaches past its storage', async () => {
    const p = new PickleWriter().orderedDict().mark().str('w').tensor({ key: '0', numel: 4, shape: [2, 3] }).op(0x75).stop();
    expect(await fails(storedZip([['m/data.pkl', p], ['m/data/0', Buffer.alloc(16)]]))).toMatch(/tensor w \[2,3\] reaches element 5 of a storage of 4 elements/);
  });

  it('no data.pkl; a big-endian archive; no state dict; not a checkpoint', async () => {
    expect(await fails(storedZip([['m/other', Buffer.alloc(4)]]))).toMatch(/expected one <name>\/data\.pkl in the archive, found none/);
    expect(await fails(storedZip([['m/data.pkl', new PickleWriter().op(0x7d).stop()], ['m/byteorder', Buffer.from('big')]]))).toMatch(/big-endian/);
    expect(await fails(storedZip([['m/data.pkl', new PickleWriter().op(0x7d).str('epoch').int(3).op(0x73).stop()]]))).toMatch(/no state dict \(a dict of tensors\) found; the checkpoint holds a dict with keys epoch/);
    expect(await fails(Buffer.from('hello world'))).toMatch(/not a PyTorch checkpoint/);
  });

  it('legacy layout: truncated storages, leftovers, wrong element counts', async () => {
    const legacy = legacyPth(sd);
    expect(await fails(legacy.subarray(0, legacy.length - 3))).toMatch(/truncated: storage 1 needs 8 bytes at offset \d+, only 5 left/);
    expect(await fails(Buffer.concat([legacy, Buffer.alloc(4)]))).toMatch(/4 bytes left over after the last storage/);
    const wrongCount = Buffer.from(legacy);
    wrongCount.writeBigInt64LE(7n, legacy.length - 8 - 8 - 24 - 8); // storage 0's element count
    expect(await fails(wrongCount)).toMatch(/storage 0 holds 7 values, but the pickle describes 6/);
  });
});
