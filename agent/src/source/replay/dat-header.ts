// The metadata of a trace.dat (trace-cmd Documentation/trace-cmd/trace-cmd.dat.v6.5.txt and
// .v7.5.txt, checked against lib/trace-cmd/trace-input.c): the header_page and event format
// files the capture carries, the flyrecord buffers (top and instances) with their per-CPU data
// ranges, page size, clock and the time options. Version 6 is one sequential header; version 7
// is a chain of options sections pointing at sections that may be compressed. The kallsyms,
// printk and cmdlines blocks are skipped unread. Little-endian files only (as the page parser).
import { ByteCursor, DatError, type DatFile } from './dat-bytes';
import { type Compression, compressionKind, readBlock } from './dat-compress';

export interface DatCpu {
  cpu: number;
  offset: number;
  size: number;
}

export interface DatBuffer {
  /** Instance name; "" for the top buffer. */
  name: string;
  pageSize: number;
  /** v7: the CPU ranges hold compressed chunks. */
  compressed: boolean;
  cpus: DatCpu[];
  /** v7: file offset of the buffer's section (its flags tell whether it is compressed). */
  sectionAt?: number;
}

export interface DatInfo {
  version: 6 | 7;
  compression: Compression;
  headerPage: string;
  /** Event format files as ["system:event", text], name from each file's `name:` line. */
  formats: [string, string][];
  buffers: DatBuffer[];
  clock: string;
  /** The DATE option (trace time -> gettimeofday), ns; undefined when the file has none. */
  dateNs?: bigint;
  /** The OFFSET option, ns, added to every timestamp as `trace-cmd report` does. */
  offsetNs: bigint;
  /** Options this reader does not apply (e.g. TIME_SHIFT), for a warning. */
  ignored: string[];
}

const OPT = {
  DONE: 0,
  DATE: 1,
  BUFFER: 3,
  TRACECLOCK: 4,
  OFFSET: 7,
  TIME_SHIFT: 12,
  TSC2NSEC: 14,
  HEADER_INFO: 16,
  EVENT_FORMATS: 18,
  BUFFER_TEXT: 22,
} as const;

const SECTION_COMPRESSED = 1;
/** Bound on chained options sections / buffers, against loops in a garbled file. */
const MAX_SECTIONS = 4096;

export const MAGIC = Buffer.from([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]);

/** strtoll(s, NULL, 0) of an option string: decimal, 0x hex or 0 octal, optional sign. */
function cInteger(s: string, what: string): bigint {
  const m = /^\s*([+-]?)(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)/i.exec(s);
  if (!m) throw new DatError(`${what} option "${s}" is not a number`);
  const digits = m[2];
  const v = /^0[0-7]+$/.test(digits) ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  return m[1] === '-' ? -v : v;
}

export async function readDatInfo(file: DatFile): Promise<DatInfo> {
  const head = file.cursor(0, 512, 'file header');
  if (!head.bytes(MAGIC.length, 'magic').equals(MAGIC)) throw new DatError(`${file.path}: not a trace.dat`);
  const version = head.cstring('version');
  if (version !== '6' && version !== '7')
    throw new DatError(`${file.path}: trace.dat file version ${version} (versions 6 and 7 are read)`);
  if (head.bytes(1, 'endianness')[0] !== 0)
    throw new DatError(`${file.path}: big-endian trace.dat (little-endian captures only)`);
  head.skip(1, 'long size');
  const pageSize = head.u32('page size');
  const info: DatInfo = {
    version: version === '6' ? 6 : 7,
    compression: 'none',
    headerPage: '',
    formats: [],
    buffers: [],
    clock: 'local',
    offsetNs: 0n,
    ignored: [],
  };
  if (info.version === 6) readV6(file, head.pos, pageSize, info);
  else {
    info.compression = compressionKind(head.cstring('compression name'));
    head.cstring('compression version');
    await readV7(file, head.u64('first options offset'), info);
  }
  if (!info.headerPage) throw new DatError(`${file.path}: no header_page in the file`);
  return info;
}

/** Reads sequentially through the file: small fields read, big blocks skipped unread. */
class Walker {
  constructor(
    readonly file: DatFile,
    public pos: number,
  ) {}
  take(n: number, what: string): ByteCursor {
    const c = new ByteCursor(this.file.read(this.pos, n, what), this.pos, `${this.file.path}: ${what}`);
    this.pos += n;
    return c;
  }
  skip(n: number, what: string): void {
    this.file.check(this.pos, n, what);
    this.pos += n;
  }
  tag(expected: string, what: string): string {
    const s = this.take(expected.length, what).buf.toString('latin1');
    if (s !== expected)
      throw new DatError(`${this.file.path}: expected "${expected.replace('\0', '')}" at ${what}`);
    return s;
  }
}

function readHeaderInfo(c: ByteCursor, info: DatInfo): void {
  if (c.bytes(12, 'header_page tag').toString('latin1') !== 'header_page\0')
    throw new DatError('header info: no "header_page" tag');
  info.headerPage = c.bytes(c.u64('header_page size'), 'header_page').toString('latin1');
}

function readEventFormats(c: ByteCursor, info: DatInfo): void {
  const systems = c.u32('system count');
  for (let s = 0; s < systems; s++) {
    const system = c.cstring('system name');
    const count = c.u32('event count');
    for (let e = 0; e < count; e++) {
      const text = c.bytes(c.u64('format size'), `format of ${system}`).toString('latin1');
      const name = /^name:\s*(\S+)/m.exec(text)?.[1] ?? '?';
      info.formats.push([`${system}:${name}`, text]);
    }
  }
}

/** Applies one option; v6 BUFFER options leave their data offset in `v6Pending`. */
function applyOption(id: number, data: ByteCursor, info: DatInfo, v6Pending: number[]): void {
  const str = () => data.buf.toString('latin1').replace(/\0[\s\S]*$/, '');
  switch (id) {
    case OPT.DATE:
      info.dateNs = cInteger(str(), 'DATE') * 1000n; // stored in µs
      break;
    case OPT.OFFSET:
      info.offsetNs += cInteger(str(), 'OFFSET');
      break;
    case OPT.TRACECLOCK:
      // "[local] global counter ...": the selected clock is in brackets.
      info.clock = /\[([^\]]+)\]/.exec(str())?.[1] ?? info.clock;
      break;
    case OPT.TSC2NSEC:
      throw new DatError('captures in TSC units (TSC2NSEC option, x86-tsc clock) are not read');
    case OPT.TIME_SHIFT:
      info.ignored.push('TIME_SHIFT (guest/host time sync)');
      break;
    case OPT.BUFFER_TEXT:
      info.ignored.push('BUFFER_TEXT (latency-format text buffer)');
      break;
    case OPT.BUFFER: {
      const offset = data.u64('buffer offset');
      const name = data.cstring('buffer name');
      if (info.version === 6) {
        v6Pending.push(offset);
        info.buffers.push({ name, pageSize: 0, compressed: false, cpus: [] });
        break;
      }
      data.cstring('buffer clock');
      const pageSize = data.u32('buffer page size');
      const n = data.u32('buffer CPU count');
      const cpus: DatCpu[] = [];
      for (let i = 0; i < n; i++)
        cpus.push({
          cpu: data.u32('CPU id'),
          offset: data.u64('CPU data offset'),
          size: data.u64('CPU data size'),
        });
      info.buffers.push({ name, pageSize, compressed: false, cpus, sectionAt: offset });
      break;
    }
  }
}

function readV6(file: DatFile, at: number, pageSize: number, info: DatInfo): void {
  const w = new Walker(file, at);
  w.tag('header_page\0', 'header_page tag');
  info.headerPage = w.take(w.take(8, 'header_page size').u64('size'), 'header_page').buf.toString('latin1');
  w.tag('header_event\0', 'header_event tag');
  w.skip(w.take(8, 'header_event size').u64('size'), 'header_event');
  const ftrace = w.take(4, 'ftrace format count').u32('count');
  for (let i = 0; i < ftrace; i++) w.skip(w.take(8, 'ftrace format size').u64('size'), 'ftrace format');
  const systemsAt = w.pos;
  const systems = w.take(4, 'system count').u32('count');
  for (let s = 0; s < systems; s++) {
    // The system name: read a bounded window and find its NUL.
    const name = file.cursor(w.pos, 4096, 'system name').cstring('system name');
    w.skip(name.length + 1, 'system name');
    const count = w.take(4, 'event count').u32('count');
    for (let e = 0; e < count; e++) w.skip(w.take(8, 'format size').u64('size'), 'event format');
  }
  readEventFormats(
    new ByteCursor(file.read(systemsAt, w.pos - systemsAt, 'event formats'), systemsAt, file.path),
    info,
  );
  w.skip(w.take(4, 'kallsyms size').u32('size'), 'kallsyms');
  w.skip(w.take(4, 'printk size').u32('size'), 'printk formats');
  w.skip(w.take(8, 'cmdlines size').u64('size'), 'cmdlines');
  const cpus = w.take(4, 'CPU count').u32('count');
  const pending: number[] = [];
  const top: DatBuffer = { name: '', pageSize, compressed: false, cpus: [] };
  readV6Flyrecord(w, cpus, top, info, pending);
  const instances = info.buffers.splice(0);
  info.buffers.push(top);
  for (let i = 0; i < instances.length && i < MAX_SECTIONS; i++) {
    const b = { ...instances[i], pageSize };
    readV6Flyrecord(new Walker(file, pending[i]), cpus, b, info, []);
    info.buffers.push(b);
  }
}

/** "options  \0" (options) "flyrecord\0" then per CPU u64 offset, u64 size. */
function readV6Flyrecord(w: Walker, cpus: number, into: DatBuffer, info: DatInfo, pending: number[]): void {
  let kind = w.take(10, 'data kind').buf.toString('latin1');
  if (kind === 'options  \0') {
    for (let i = 0; ; i++) {
      if (i > MAX_SECTIONS) throw new DatError(`${w.file.path}: too many options`);
      const id = w.take(2, 'option id').u16('option id');
      if (id === OPT.DONE) break;
      const size = w.take(4, 'option size').u32('option size');
      applyOption(id, w.take(size, `option ${id}`), info, pending);
    }
    kind = w.take(10, 'data kind').buf.toString('latin1');
  }
  if (kind === 'latency  \0')
    throw new DatError(`${w.file.path}: a latency-format (text) trace.dat has no records`);
  if (kind !== 'flyrecord\0')
    throw new DatError(`${w.file.path}: expected "flyrecord" at offset ${w.pos - 10}`);
  const c = w.take(16 * cpus, 'CPU data table');
  for (let cpu = 0; cpu < cpus; cpu++)
    into.cpus.push({ cpu, offset: c.u64('CPU data offset'), size: c.u64('CPU data size') });
}

/** A v7 section: header (u16 id, u16 flags, u32 description, u64 size), body inflated if flagged. */
async function section(
  file: DatFile,
  offset: number,
  id: number,
  info: DatInfo,
): Promise<[ByteCursor, number]> {
  const h = file.cursor(offset, 16, `section ${id} header`);
  const got = h.u16('section id');
  const flags = h.u16('section flags');
  h.u32('section description');
  const size = h.u64('section size');
  if (got !== id) throw new DatError(`${file.path}: section at offset ${offset} is ${got}, expected ${id}`);
  const body = file.cursor(offset + 16, size, `section ${id}`);
  if (!(flags & SECTION_COMPRESSED)) return [body, flags];
  return [await readBlock(info.compression, body, `${file.path}: section ${id}`), flags];
}

async function readV7(file: DatFile, first: number, info: DatInfo): Promise<void> {
  const seen = new Set<number>();
  const sections: [number, number][] = [];
  for (let at = first; at !== 0; ) {
    if (seen.has(at) || seen.size >= MAX_SECTIONS) throw new DatError(`${file.path}: options sections loop`);
    seen.add(at);
    const [c] = await section(file, at, OPT.DONE, info);
    at = 0;
    for (;;) {
      const id = c.u16('option id');
      const data = c.bytes(c.u32('option size'), `option ${id}`);
      const opt = new ByteCursor(data, -1, `${file.path}: option ${id}`);
      if (id === OPT.DONE) {
        at = opt.u64('next options offset');
        break;
      }
      if (id === OPT.HEADER_INFO || id === OPT.EVENT_FORMATS) sections.push([id, opt.u64('section offset')]);
      else applyOption(id, opt, info, []);
    }
  }
  for (const [id, offset] of sections) {
    const [c] = await section(file, offset, id, info);
    if (id === OPT.HEADER_INFO) readHeaderInfo(c, info);
    else readEventFormats(c, info);
  }
  for (const b of info.buffers) {
    if (b.cpus.length === 0 || b.sectionAt === undefined) continue;
    // Only the header: the body is the CPU data itself, read page by page later.
    const h = file.cursor(b.sectionAt, 16, 'buffer section header');
    const id = h.u16('section id');
    if (id !== OPT.BUFFER)
      throw new DatError(`${file.path}: buffer section at offset ${b.sectionAt} has id ${id}`);
    b.compressed = (h.u16('section flags') & SECTION_COMPRESSED) !== 0;
  }
}
