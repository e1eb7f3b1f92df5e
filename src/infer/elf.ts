/**
 * Reads which shared libraries an ELF file needs (its DT_NEEDED entries) and where it asks the
 * loader to look (DT_RUNPATH/DT_RPATH), without loading it: `ldd` would run the dynamic loader
 * on a 230 MB provider library and is not installed everywhere. Only the headers, the dynamic
 * section and its string table are read, so this is quick on any file size.
 */
import { open } from 'node:fs/promises';

export interface ElfDynamic {
  /** Sonames from DT_NEEDED, in file order. */
  needed: string[];
  /** DT_RUNPATH (or DT_RPATH when there is no RUNPATH) split on ':', `$ORIGIN` left as is. */
  runpath: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

/**
 * The dynamic section of a 64-bit little-endian ELF file (x86-64, aarch64); undefined for
 * anything else (not ELF, 32-bit, big-endian, static, truncated).
 */
export async function readElfDynamic(path: string): Promise<ElfDynamic | undefined> {
  const fh = await open(path, 'r');
  try {
    const read = async (offset: number, length: number): Promise<Buffer | undefined> => {
      if (!(length > 0 && length < 1 << 26)) return undefined;
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return bytesRead === length ? buf : undefined;
    };
    const header = await read(0, 64);
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if (!header || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return undefined;
    const phoff = Number(header.readBigUInt64LE(0x20));
    const phentsize = header.readUInt16LE(0x36);
    const phnum = header.readUInt16LE(0x38);
    if (phentsize < 56 || phnum === 0) return undefined;
    const table = await read(phoff, phentsize * phnum);
    if (!table) return undefined;
    const loads: { offset: bigint; vaddr: bigint; filesz: bigint }[] = [];
    let dynamic: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const p = i * phentsize;
      const type = table.readUInt32LE(p);
      const offset = table.readBigUInt64LE(p + 8);
      const vaddr = table.readBigUInt64LE(p + 16);
      const filesz = table.readBigUInt64LE(p + 32);
      if (type === PT_LOAD) loads.push({ offset, vaddr, filesz });
      if (type === PT_DYNAMIC) dynamic = { offset: Number(offset), size: Number(filesz) };
    }
    if (!dynamic) return undefined;
    const dyn = await read(dynamic.offset, dynamic.size);
    if (!dyn) return undefined;
    const neededOffsets: bigint[] = [];
    let strtab: bigint | undefined;
    let strsz: bigint | undefined;
    let runpathAt: bigint | undefined;
    let rpathAt: bigint | undefined;
    for (let p = 0; p + 16 <= dyn.length; p += 16) {
      const tag = dyn.readBigInt64LE(p);
      const val = dyn.readBigUInt64LE(p + 8);
      if (tag === DT_NULL) break;
      if (tag === DT_NEEDED) neededOffsets.push(val);
      else if (tag === DT_STRTAB) strtab = val;
      else if (tag === DT_STRSZ) strsz = val;
      else if (tag === DT_RUNPATH) runpathAt = val;
      else if (tag === DT_RPATH) rpathAt = val;
    }
    if (strtab === undefined || strsz === undefined) return undefined;
    // DT_STRTAB is an address in memory: find the loaded segment that holds it.
    const seg = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.filesz);
    if (!seg) return undefined;
    const strings = await read(Number(strtab - seg.vaddr + seg.offset), Number(strsz));
    if (!strings) return undefined;
    const str = (at: bigint) => {
      const start = Number(at);
      const end = strings.indexOf(0, start);
      return strings.toString('utf8', start, end < 0 ? strings.length : end);
    };
    const path = runpathAt ?? rpathAt;
    return {
      needed: neededOffsets.map(str),
      runpath: path === undefined ? [] : str(path).split(':').filter(Boolean),
    };
  } finally {
    await fh.close();
  }
}
