// Parsers of the layout descriptions tracefs publishes: an event's `format` file and
// `events/header_page`. Pure functions of text; nothing about a layout is assumed, every
// offset and size comes from these files (an out-of-tree tracepoint such as the proposed
// arm_smmu_v3:smmu_evtq_event may lay its fields out differently from one kernel to the next).

export interface FormatField {
  /** Field name, e.g. "evt0", "iommu", "common_type". */
  readonly name: string;
  /** Declared C type without the name, e.g. "u64", "unsigned long", "char[]", "char[16]". */
  readonly type: string;
  /** Byte offset from the start of the record payload (the common_type field). */
  readonly offset: number;
  /** Size in bytes as declared (4 for __data_loc / __rel_loc descriptors). */
  readonly size: number;
  readonly signed: boolean;
  /** `__data_loc T[] name`: a u32 with the data's offset (bits 15:0, from the record start) and length (31:16). */
  readonly dataLoc: boolean;
  /** `__rel_loc T[] name`: like dataLoc, but the offset counts from the end of this field. */
  readonly relLoc: boolean;
  /** Fixed array length for `T name[N]`, undefined otherwise. */
  readonly arrayLength?: number;
  /** True for char arrays (fixed or dynamic): the field holds a NUL-terminated string. */
  readonly isString: boolean;
  /** True for the common_* fields shared by every event. */
  readonly common: boolean;
}

export interface EventFormat {
  /** Event name (without the group). */
  readonly name: string;
  /** Type id written into common_type of each record. */
  readonly id: number;
  readonly fields: readonly FormatField[];
  /** The `print fmt:` line, without the prefix. */
  readonly printFmt: string;
}

const FIELD_RE = /^\s*field:\s*(.+?);\s*offset:\s*(\d+);\s*size:\s*(\d+);\s*(?:signed:\s*(-?\d+);)?/;

/** Parses one `field:...;` line; undefined if the line is not a field line. */
export function parseFieldLine(line: string, common = false): FormatField | undefined {
  const m = FIELD_RE.exec(line);
  if (!m) return undefined;
  let decl = m[1].trim();
  const offset = Number(m[2]);
  const size = Number(m[3]);
  const signed = m[4] !== undefined && m[4] !== '0';
  let dataLoc = false;
  let relLoc = false;
  if (decl.startsWith('__data_loc ')) {
    dataLoc = true;
    decl = decl.slice('__data_loc '.length).trim();
  } else if (decl.startsWith('__rel_loc ')) {
    relLoc = true;
    decl = decl.slice('__rel_loc '.length).trim();
  }
  // The name is the last identifier; an array suffix may follow the name ("char comm[16]") or,
  // for dynamic arrays, the type ("char[] name").
  const nm = /([A-Za-z_][A-Za-z0-9_]*)\s*(\[\s*([^\]]*)\s*\])?\s*$/.exec(decl);
  if (!nm) return undefined;
  const name = nm[1];
  let type = decl.slice(0, nm.index).trim();
  let arrayLength: number | undefined;
  if (nm[2] !== undefined) {
    const n = Number(nm[3]);
    // "char buf[LEN]" with a macro left unexpanded: derive the length from size when possible.
    arrayLength = Number.isInteger(n) && nm[3] !== '' ? n : undefined;
    type = `${type}[${nm[3]}]`;
  }
  const elem = type.replace(/\[.*\]$/, '').trim();
  const isArray = type.endsWith(']');
  const isString = isArray && (elem === 'char' || elem === 'unsigned char' || elem === 'u8');
  if (isArray && arrayLength === undefined && !dataLoc && !relLoc) {
    const elemSize = elem.includes('char') || elem === 'u8' ? 1 : 0;
    if (elemSize) arrayLength = size / elemSize;
  }
  return { name, type, offset, size, signed, dataLoc, relLoc, arrayLength, isString, common };
}

/** Parses the `format` file of one trace event. Throws on text that is not a format file. */
export function parseEventFormat(text: string): EventFormat {
  let name: string | undefined;
  let id: number | undefined;
  let printFmt = '';
  const fields: FormatField[] = [];
  // The common fields come first, separated from the event's own fields by a blank line.
  let inCommon = true;
  let seenField = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('name:')) name = line.slice(5).trim();
    else if (line.startsWith('ID:')) id = Number(line.slice(3).trim());
    else if (line.startsWith('print fmt:')) printFmt = line.slice(10).trim();
    else if (line.trim() === '') {
      if (seenField) inCommon = false;
    } else {
      const f = parseFieldLine(line, inCommon);
      if (f) {
        fields.push(f.name.startsWith('common_') ? { ...f, common: true } : f);
        seenField = true;
      }
    }
  }
  if (name === undefined || id === undefined || !Number.isInteger(id) || fields.length === 0) {
    throw new Error('not an event format file (needs name:, ID: and field: lines)');
  }
  return { name, id, fields, printFmt };
}

/** The field called `name`, or undefined. */
export function findField(format: EventFormat, name: string): FormatField | undefined {
  return format.fields.find((f) => f.name === name);
}

/**
 * Layout of a ring-buffer sub-buffer ("page"), from `events/header_page`:
 *
 *   field: u64 timestamp;  offset:0;  size:8;
 *   field: local_t commit; offset:8;  size:8;   (4 on 32-bit kernels)
 *   field: int overwrite;  offset:8;  size:1;   (a flag bit inside commit, historical)
 *   field: char data;      offset:16; size:4080; (sub-buffer size minus header)
 */
export interface PageLayout {
  readonly timestampOffset: number;
  readonly timestampSize: number;
  readonly commitOffset: number;
  /** 8 on 64-bit kernels, 4 on 32-bit ones; also the size of the stored missed-events count. */
  readonly commitSize: number;
  readonly dataOffset: number;
  /** Bytes of record data a sub-buffer can hold. */
  readonly dataSize: number;
  /** Whole sub-buffer: dataOffset + dataSize. */
  readonly subbufSize: number;
}

/** Largest sub-buffer accepted (the kernel allows up to 1 MiB or so; captures may claim more). */
export const MAX_SUBBUF_BYTES = 16 << 20;

/** Parses `events/header_page`. */
export function parseHeaderPage(text: string): PageLayout {
  const byName = new Map<string, FormatField>();
  for (const line of text.split('\n')) {
    const f = parseFieldLine(line);
    if (f) byName.set(f.name, f);
  }
  const ts = byName.get('timestamp');
  const commit = byName.get('commit');
  const data = byName.get('data');
  if (!ts || !commit || !data) throw new Error('header_page lacks timestamp, commit or data');
  if (ts.size !== 8) throw new Error(`header_page: timestamp size ${ts.size}, expected 8`);
  if (commit.size !== 4 && commit.size !== 8) throw new Error(`header_page: commit size ${commit.size}`);
  // The page parser reads these as aligned u32 words inside the header it skips.
  if ([ts.offset, commit.offset, data.offset].some((o) => o % 4 !== 0 || o > 64))
    throw new Error('header_page: timestamp, commit and data must be 4-byte aligned in the first 64 bytes');
  if (data.size > MAX_SUBBUF_BYTES) throw new Error(`header_page: data size ${data.size} too large`);
  if (data.offset < ts.offset + 8 || data.offset < commit.offset + commit.size)
    throw new Error('header_page: data overlaps the timestamp or commit field');
  return withDataSize(
    {
      timestampOffset: ts.offset,
      timestampSize: ts.size,
      commitOffset: commit.offset,
      commitSize: commit.size,
      dataOffset: data.offset,
      dataSize: data.size,
      subbufSize: data.offset + data.size,
    },
    data.offset + data.size,
  );
}

/** The same layout for another sub-buffer size (buffer_subbuf_size_kb, or a read's length). */
export function withDataSize(layout: PageLayout, subbufSize: number): PageLayout {
  if (subbufSize <= layout.dataOffset) throw new Error(`sub-buffer size ${subbufSize} too small`);
  if (subbufSize > MAX_SUBBUF_BYTES) throw new Error(`sub-buffer size ${subbufSize} too large`);
  return { ...layout, subbufSize, dataSize: subbufSize - layout.dataOffset };
}
