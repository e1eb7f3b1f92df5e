/**
 * A minimal 64-bit shared object (headers, one PT_LOAD, a dynamic section with DT_NEEDED and
 * DT_RUNPATH, its string table) for tests of the library probe: it has the layout the real
 * CUDA provider has where it matters, without 230 MB of code. `readelf -d` reads it too.
 */
export function fakeSharedObject(needed: readonly string[], runpath?: string): Buffer {
  const base = 0x1000n; // load address, so offsets and addresses differ as in real files
  const names = ['', ...needed, ...(runpath ? [runpath] : [])];
  const offsets: number[] = [];
  let strtab = Buffer.alloc(0);
  for (const n of names) {
    offsets.push(strtab.length);
    strtab = Buffer.concat([strtab, Buffer.from(`${n}\0`, 'utf8')]);
  }
  const strOff = 64 + 2 * 56;
  const dynOff = Math.ceil((strOff + strtab.length) / 8) * 8;
  const entries: [bigint, bigint][] = needed.map((_, i) => [1n, BigInt(offsets[i + 1]!)]);
  if (runpath) entries.push([29n, BigInt(offsets.at(-1)!)]);
  entries.push([5n, base + BigInt(strOff)], [10n, BigInt(strtab.length)], [0n, 0n]);
  const size = dynOff + entries.length * 16;
  const b = Buffer.alloc(size);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // 64-bit
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(3, 0x10); // ET_DYN
  b.writeUInt16LE(62, 0x12); // x86-64
  b.writeUInt32LE(1, 0x14);
  b.writeBigUInt64LE(64n, 0x20); // program headers right after the header
  b.writeUInt16LE(64, 0x34);
  b.writeUInt16LE(56, 0x36);
  b.writeUInt16LE(2, 0x38);
  b.writeUInt16LE(64, 0x3a);
  const phdr = (at: number, type: number, offset: number, filesz: number) => {
    b.writeUInt32LE(type, at);
    b.writeUInt32LE(type === 1 ? 5 : 6, at + 4);
    b.writeBigUInt64LE(BigInt(offset), at + 8);
    b.writeBigUInt64LE(base + BigInt(offset), at + 16);
    b.writeBigUInt64LE(base + BigInt(offset), at + 24);
    b.writeBigUInt64LE(BigInt(filesz), at + 32);
    b.writeBigUInt64LE(BigInt(filesz), at + 40);
    b.writeBigUInt64LE(type === 1 ? 0x1000n : 8n, at + 48);
  };
  phdr(64, 1, 0, size); // PT_LOAD: the whole file
  phdr(64 + 56, 2, dynOff, entries.length * 16); // PT_DYNAMIC
  strtab.copy(b, strOff);
  entries.forEach(([tag, val], i) => {
    b.writeBigInt64LE(tag, dynOff + i * 16);
    b.writeBigUInt64LE(val, dynOff + i * 16 + 8);
  });
  return b;
}
