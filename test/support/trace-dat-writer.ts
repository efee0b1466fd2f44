// Small trace.dat files built from the repository's page fixtures, laid out as trace-cmd 3.1
// writes them (Documentation/trace-cmd/trace-cmd.dat.v6.5.txt, .v7.5.txt; trace-output.c and
// trace-compress.c): the seeds of the trace.dat fuzz and the zlib case the installed trace-cmd
// cannot write. Real files from trace-cmd itself are tested in trace-cmd-interop.test.ts.
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { compress as zstdCompress } from '@mongodb-js/zstd';
import { tracefsFixture } from './uprobe-records';

const MAGIC = Buffer.from([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]);

export interface DatSpec {
  version: 6 | 7;
  /** v7 only. */
  compression?: 'none' | 'zlib' | 'zstd';
  pageSize: number;
  headerPage: string;
  /** Event format files as [system, text]. */
  formats: [string, string][];
  /** Per CPU: its pages, concatenated. */
  cpus: Buffer[];
  /** Instance name of the buffer (v6: the top buffer is always used). */
  instance?: string;
}

/** A 4 KiB-page capture of the uprobe stand-in with these per-CPU pages (fixture layout files). */
export function fixtureDatSpec(cpus: Buffer[]): Omit<DatSpec, 'version'> {
  return {
    pageSize: 4096,
    headerPage: readFileSync(tracefsFixture('header_page.4k'), 'latin1'),
    formats: [['uprobes', readFileSync(tracefsFixture('smmu_evtq_event.uprobe.format'), 'latin1')]],
    cpus,
  };
}

const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
};
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
const u64 = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`, 'latin1');

function headerInfo(headerPage: string): Buffer {
  const hp = Buffer.from(headerPage, 'latin1');
  return Buffer.concat([cstr('header_page'), u64(hp.length), hp, cstr('header_event'), u64(0)]);
}

function eventFormats(formats: [string, string][]): Buffer {
  const parts = [u32(formats.length)];
  for (const [system, text] of formats)
    parts.push(cstr(system), u32(1), u64(text.length), Buffer.from(text, 'latin1'));
  return Buffer.concat(parts);
}

async function squeeze(kind: 'zlib' | 'zstd', data: Buffer): Promise<Buffer> {
  return kind === 'zlib' ? deflateSync(data) : await zstdCompress(data);
}

function option(id: number, data: Buffer): Buffer {
  return Buffer.concat([u16(id), u32(data.length), data]);
}

export async function writeTraceDat(spec: DatSpec): Promise<Buffer> {
  return spec.version === 6 ? writeV6(spec) : await writeV7(spec);
}

function writeV6(spec: DatSpec): Buffer {
  const head = Buffer.concat([
    MAGIC,
    cstr('6'),
    Buffer.from([0, 8]),
    u32(spec.pageSize),
    headerInfo(spec.headerPage),
    u32(0), // ftrace formats
    eventFormats(spec.formats),
    u32(0), // kallsyms
    u32(0), // printk
    u64(0), // cmdlines
    u32(spec.cpus.length),
    Buffer.from('options  \0', 'latin1'),
    option(4, cstr('[local] global')),
    u16(0),
    Buffer.from('flyrecord\0', 'latin1'),
  ]);
  let at = head.length + 16 * spec.cpus.length;
  const table: Buffer[] = [];
  for (const c of spec.cpus) {
    table.push(u64(at), u64(c.length));
    at += c.length;
  }
  return Buffer.concat([head, ...table, ...spec.cpus]);
}

async function writeV7(spec: DatSpec): Promise<Buffer> {
  const kind = spec.compression ?? 'none';
  const head = Buffer.concat([
    MAGIC,
    cstr('7'),
    Buffer.from([0, 8]),
    u32(spec.pageSize),
    cstr(kind),
    cstr('1'),
  ]);
  const out: Buffer[] = [head, Buffer.alloc(8)]; // first options offset, filled in below
  let at = head.length + 8;
  const add = (b: Buffer) => {
    const start = at;
    out.push(b);
    at += b.length;
    return start;
  };
  const section = async (id: number, body: Buffer) => {
    let data = body;
    if (kind !== 'none') {
      const z = await squeeze(kind, body);
      data = Buffer.concat([u32(z.length), u32(body.length), z]);
    }
    return add(Buffer.concat([u16(id), u16(kind === 'none' ? 0 : 1), u32(0), u64(data.length), data]));
  };
  const hi = await section(16, headerInfo(spec.headerPage));
  const ef = await section(18, eventFormats(spec.formats));
  const bufferAt = add(Buffer.concat([u16(3), u16(kind === 'none' ? 0 : 1), u32(0), u64(0)]));
  const table: Buffer[] = [];
  for (let cpu = 0; cpu < spec.cpus.length; cpu++) {
    let data = spec.cpus[cpu];
    let stated = data.length;
    if (kind !== 'none') {
      // Chunks of up to 10 pages (trace-cmd's PAGES_IN_CHUNK); the stated size leaves out the count.
      const chunks: Buffer[] = [];
      const step = 10 * spec.pageSize;
      for (let o = 0; o < data.length; o += step) {
        const raw = data.subarray(o, o + step);
        const z = await squeeze(kind, raw);
        chunks.push(u32(z.length), u32(raw.length), z);
      }
      data = Buffer.concat([u32(chunks.length / 3), ...chunks]);
      stated = data.length - 4;
    }
    table.push(u32(cpu), u64(add(data)), u64(stated));
  }
  const buffer = Buffer.concat([
    u64(bufferAt),
    cstr(spec.instance ?? ''),
    cstr('local'),
    u32(spec.pageSize),
    u32(spec.cpus.length),
    ...table,
  ]);
  const options = Buffer.concat([
    option(16, u64(hi)),
    option(18, u64(ef)),
    option(4, cstr('[local] global')),
    option(3, buffer),
    option(0, u64(0)),
  ]);
  out[1] = u64(await section(0, options));
  return Buffer.concat(out);
}
