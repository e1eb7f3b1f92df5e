/**
 * The restricted pickle reader: plain containers and torch tensors load; every global outside the
 * allowlist, and every opcode that builds arbitrary objects, is refused before anything runs.
 *
 * The malicious pickles below are real exploits: each one is first given to Python's own
 * unpickler (python3 is on every machine this project runs on) in a scratch folder, where it
 * creates a marker file. That shows the payload is live; esrvid must then refuse the same bytes
 * and the marker must not appear.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/errors.js';
import { importModel } from '../../src/models/import.js';
import { localRegistryPath } from '../../src/models/local-registry.js';
import { readPth } from '../../src/models/pth/checkpoint.js';
import { PyTuple, unpickle } from '../../src/models/pth/pickle.js';
import { tempDir } from '../helpers/media.js';
import { legacyPth, makeSrvgg, PickleWriter, stateDictPickle, zipPth } from '../helpers/torch-files.js';

const scratch = tempDir('esrvid-pickle-');
afterAll(() => scratch.cleanup());

function refused(bytes: Uint8Array): ModelError {
  try {
    unpickle(bytes, { source: 'evil.pkl', persistentLoad: () => null });
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    expect((e as Error).message).not.toMatch(/\n/);
    return e as ModelError;
  }
  throw new Error('the pickle was accepted');
}

/**
 * Python's unpickler on the same bytes, in `cwd`, the way torch.load without weights_only uses
 * it (torch's own globals stubbed, as PyTorch is not installed): proves the payload runs there.
 */
function pythonLoads(bytes: Buffer, cwd: string): void {
  const file = join(cwd, 'payload.pkl');
  writeFileSync(file, bytes);
  const script = [
    'import pickle, sys',
    'class U(pickle.Unpickler):',
    '    def find_class(self, module, name):',
    '        if module.startswith("torch"): return lambda *a: None',
    '        return super().find_class(module, name)',
    '    def persistent_load(self, pid): return None',
    'try:',
    '    U(open(sys.argv[1], "rb")).load()',
    'except Exception:',
    '    pass',
  ].join('\n');
  execFileSync('python3', ['-c', script, file], { cwd, stdio: 'ignore' });
}

describe('plain values', () => {
  it('reads containers, numbers, strings and memo references as Python writes them', () => {
    // pickle.dumps({'a': [1, -2, 3.5, True, None], 'b': ('x', b'\x00\x01'), 'big': 2**70, 'same': <memo of the list>}, protocol=2)
    const p = new PickleWriter().op(0x7d).op(0x71, 0).mark()
      .str('a').op(0x5d).op(0x71, 1).mark().int(1).int(-2).op(0x47).raw(Buffer.from([0x40, 0x0c, 0, 0, 0, 0, 0, 0])).op(0x88).op(0x4e).op(0x65)
      .str('b').str('x').op(0x43, 2, 0, 1).op(0x86)
      .str('big').op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40)
      .str('same').op(0x68, 1)
      .op(0x75).stop();
    const { value } = unpickle(p, { source: 't' });
    const d = value as Map<string, unknown>;
    expect(d.get('a')).toEqual([1, -2, 3.5, true, null]);
    expect(d.get('same')).toBe(d.get('a'));
    expect((d.get('b') as PyTuple).items).toEqual(['x', new Uint8Array([0, 1])]);
    expect(d.get('big')).toBe(2n ** 70n);
  });

  it('a pickle Python wrote itself (protocol 4, framed, memoized) reads the same', () => {
    const hex = execFileSync('python3', ['-c', "import pickle,collections;print(pickle.dumps({'k':[1,2,(3,'s')],'f':1.25,'o':collections.OrderedDict([('z',None)])},protocol=4).hex())"]).toString().trim();
    const { value } = unpickle(Buffer.from(hex, 'hex'), { source: 'py' });
    const d = value as Map<string, unknown>;
    expect(d.get('f')).toBe(1.25);
    expect((d.get('k') as unknown[])[0]).toBe(1);
    expect(((d.get('k') as unknown[])[2] as PyTuple).items).toEqual([3, 's']);
    expect([...(d.get('o') as Map<string, unknown>)]).toEqual([['z', null]]);
  });

  it('a truncated pickle is one line naming the problem', () => {
    const p = stateDictPickle(makeSrvgg({ convs: 1, feat: 4, scale: 2 }));
    expect(refused(p.subarray(0, p.length - 40)).message).toMatch(/evil\.pkl: truncated pickle|stack underflow|no MARK/);
  });
});

describe('malicious pickles are refused before anything runs', () => {
  const marker = (name: string) => join(scratch.dir, name);
  const cases: [string, (m: string) => Buffer, RegExp][] = [
    ['os.system via GLOBAL + REDUCE', (m) => new PickleWriter().global('os', 'system').str(`touch ${m}`).op(0x85).reduce().stop(), /references os\.system/],
    ['posix.system (what os.system pickles as on Linux)', (m) => new PickleWriter().global('posix', 'system').str(`touch ${m}`).op(0x85).reduce().stop(), /references posix\.system/],
    ['builtins.eval', (m) => new PickleWriter().global('builtins', 'eval').str(`__import__('os').system('touch ${m}')`).op(0x85).reduce().stop(), /references builtins\.eval/],
    ['subprocess.check_call via STACK_GLOBAL (protocol 4)', (m) => new PickleWriter().str('subprocess').str('check_call').op(0x93)
      .op(0x5d).mark().str('touch').str(m).op(0x65).op(0x85).reduce().stop(), /references subprocess\.check_call/],
    ['os.system via INST (protocol 0 opcode)', (m) => new PickleWriter().mark().str(`touch ${m}`).raw('ios\nsystem\n').stop(), /creates an arbitrary object/],
    ['a payload hidden after a valid tensor, inside a state dict', (m) => stateDictPickle(makeSrvgg({ convs: 1, feat: 4, scale: 2 }), {
      wrap: 'params', extra: (p) => p.str('x').global('os', 'system').str(`touch ${m}`).op(0x85).reduce(),
    }), /references os\.system/],
  ];

  it.each(cases)('%s', (label, make, message) => {
    const name = label.replace(/\W+/g, '-');
    const live = make(marker(`python-${name}`));
    pythonLoads(live, scratch.dir);
    expect(existsSync(marker(`python-${name}`)), 'control: Python executes this pickle').toBe(true);

    const bytes = make(marker(`esrvid-${name}`));
    expect(refused(bytes).message).toMatch(message);
    expect(existsSync(marker(`esrvid-${name}`))).toBe(false);
  });

  it('a global that only sounds like torch is refused too', () => {
    for (const [m, n] of [['torch', 'load'], ['torch.storage', '_load_from_bytes'], ['torch._utils', '_rebuild_from_type'], ['numpy.core.multiarray', '_reconstruct'], ['_codecs', 'encode']]) {
      expect(refused(new PickleWriter().global(m!, n!).stop()).message).toMatch(new RegExp(`references ${m!.replace(/\./g, '\\.')}\\.${n}`));
    }
  });

  it('opcodes that build objects from classes or the extension registry are refused', () => {
    expect(refused(new PickleWriter().global('collections', 'OrderedDict').op(0x29).op(0x81).stop()).message).toMatch(/creates an arbitrary object/);
    expect(refused(new PickleWriter().op(0x82, 1).stop()).message).toMatch(/extension registry/);
    // An allowed global cannot be abused as a callable for something else.
    expect(refused(new PickleWriter().global('torch', 'FloatStorage').str('x').op(0x85).reduce().stop()).message).toMatch(/cannot be called/);
  });

  it('a malicious .pth (zip and legacy layouts) is refused by `models import`, leaving nothing', async () => {
    const { dir, cleanup } = tempDir('esrvid-evil-import-');
    try {
      const sd = makeSrvgg({ convs: 1, feat: 4, scale: 2 });
      const m1 = marker('import-zip');
      const evil = stateDictPickle(sd, { wrap: 'params', extra: (p) => p.str('x').global('os', 'system').str(`touch ${m1}`).op(0x85).reduce() });
      writeFileSync(join(dir, 'evil.pth'), zipPth(sd, { pickle: evil }));
      await expect(importModel(join(dir, 'evil.pth'), { dir: join(dir, 'models') })).rejects.toThrow(/evil\.pth:archive\/data\.pkl: refusing to load: the pickle references os\.system/);

      // Legacy layout: the payload is the system-info pickle, read before the state dict.
      const m2 = marker('import-legacy');
      const good = legacyPth(sd);
      const payload = new PickleWriter().global('os', 'system').str(`touch ${m2}`).op(0x85).reduce().stop();
      const sysStart = good.indexOf(Buffer.from('protocol_version')) - 9; // PROTO, EMPTY_DICT, MARK, BINUNICODE + length
      writeFileSync(join(dir, 'evil-legacy.pth'), Buffer.concat([good.subarray(0, sysStart), payload]));
      await expect(importModel(join(dir, 'evil-legacy.pth'), { dir: join(dir, 'models') })).rejects.toThrow(/refusing to load: the pickle references os\.system/);

      expect(existsSync(m1)).toBe(false);
      expect(existsSync(m2)).toBe(false);
      expect(existsSync(localRegistryPath(join(dir, 'models')))).toBe(false);
      expect(existsSync(join(dir, 'models')) ? readdirSync(join(dir, 'models')) : []).toEqual([]);
    } finally {
      cleanup();
    }
  });

  it('the same checkpoint without the payload loads (the refusal is the payload, not the file)', async () => {
    const sd = makeSrvgg({ convs: 1, feat: 4, scale: 2 });
    const ck = await readPth(zipPth(sd, { wrap: 'params' }), 'ok.pth');
    expect([...ck.tensors.keys()]).toEqual(Object.keys(sd));
  });
});
