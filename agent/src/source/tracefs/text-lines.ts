// Byte-level parser of trace_pipe / `trace` text, shared by the live text reader and replay.
// No strings or regular expressions per line: the hot path compares bytes and accumulates
// numbers, and hands the event body to the decoder as a byte range.
//
// Line layout (default trace_options; the tgid and irq-info columns are optional):
//   "  <comm>-<pid>  (<tgid>) [<cpu>] <flags> <secs>.<frac>: <event>: <body>"
// Also: "CPU:<n> [LOST <count> EVENTS]" (counted as overrun), lines starting with "#" (the
// `trace` file's header, "##### CPU n buffer started ####": skipped, not counted), empty
// lines; CRLF line ends. Any other line is counted as a malformed record, with the reason
// logged once per kind. A line longer than the buffer is counted and skipped to its end.

import type { LossCounter } from './losses';
import type { DecodeTarget } from './reader';

const NL = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const HASH = 0x23;
const COLON = 0x3a;
const DOT = 0x2e;
const LB = 0x5b;
const RB = 0x5d;
const D0 = 0x30;
const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];
const LOST_PREFIX = Buffer.from('CPU:');
const LOST_MID = Buffer.from(' [LOST ');
const LOST_END = Buffer.from(' EVENTS]');

/** Where parsed lines go. */
export interface TextSink {
  readonly targets: readonly DecodeTarget[];
  readonly losses: LossCounter;
  warnOnce(key: string, msg: string): void;
  /** A target for an event name not in `targets` (replay: names known only from the text). */
  resolve?(name: string): DecodeTarget | undefined;
}

/** One event line's fields, as byte positions into the line's buffer. */
export interface LineFields {
  cpu: number;
  /** Whole seconds of the timestamp. */
  secs: number;
  /** Sub-second part in ns. */
  nanos: number;
  eventStart: number;
  eventEnd: number;
  bodyStart: number;
  bodyEnd: number;
}

function isSpace(c: number): boolean {
  return c === SP || c === TAB;
}

function isDigit(c: number): boolean {
  return c >= D0 && c <= D0 + 9;
}

/**
 * Splits an event line b[start, end) (no line end) into `out`; false when it is not one.
 * The comm may contain anything, so the line is anchored on the first "[<digits>] " field.
 */
export function splitLine(b: Uint8Array, start: number, end: number, out: LineFields): boolean {
  let i = start;
  for (; i < end; i++) {
    if (b[i] !== LB || i === start || !isSpace(b[i - 1])) continue;
    let k = i + 1;
    let cpu = 0;
    while (k < end && isDigit(b[k]) && k - i <= 6) cpu = cpu * 10 + b[k++] - D0;
    if (k > i + 1 && k < end && b[k] === RB && k + 1 < end && isSpace(b[k + 1])) {
      out.cpu = cpu;
      i = k + 1;
      break;
    }
  }
  if (i >= end) return false;
  // Up to two tokens: optional irq-info flags, then "<secs>[.<frac>]:".
  for (let token = 0; token < 2; token++) {
    while (i < end && isSpace(b[i])) i++;
    const t = i;
    while (i < end && !isSpace(b[i])) i++;
    if (i > t + 1 && b[i - 1] === COLON && parseTimestamp(b, t, i - 1, out)) break;
    if (token === 1) return false;
  }
  while (i < end && isSpace(b[i])) i++;
  out.eventStart = i;
  while (i < end && b[i] !== COLON && !isSpace(b[i])) i++;
  if (i === out.eventStart || i >= end || b[i] !== COLON) return false;
  out.eventEnd = i++;
  if (i < end && b[i] === SP) i++;
  out.bodyStart = i;
  out.bodyEnd = end;
  return true;
}

/** "<secs>[.<frac>]" (any number of fraction digits, ns kept) into out.secs / out.nanos. */
function parseTimestamp(b: Uint8Array, start: number, end: number, out: LineFields): boolean {
  let i = start;
  let secs = 0;
  while (i < end && isDigit(b[i])) secs = secs * 10 + b[i++] - D0;
  if (i === start || i - start > 15) return false;
  let nanos = 0;
  if (i < end) {
    if (b[i] !== DOT || i + 1 === end) return false;
    // Digits past the ninth (below 1 ns) are checked and dropped.
    const first = ++i;
    for (; i < end; i++) {
      if (!isDigit(b[i])) return false;
      if (i - first < 9) nanos = nanos * 10 + b[i] - D0;
    }
    nanos *= POW10[Math.max(0, 9 - (i - first))];
  }
  out.secs = secs;
  out.nanos = nanos;
  return true;
}

function startsWith(b: Uint8Array, start: number, end: number, lit: Uint8Array): boolean {
  if (end - start < lit.length) return false;
  for (let k = 0; k < lit.length; k++) if (b[start + k] !== lit[k]) return false;
  return true;
}

/** The count of a "CPU:<n> [LOST <count> EVENTS]" line, or -1. */
export function lostCount(b: Uint8Array, start: number, end: number): number {
  if (!startsWith(b, start, end, LOST_PREFIX)) return -1;
  let i = start + LOST_PREFIX.length;
  const cpu = i;
  while (i < end && isDigit(b[i])) i++;
  if (i === cpu || !startsWith(b, i, end, LOST_MID)) return -1;
  i += LOST_MID.length;
  const n0 = i;
  let n = 0;
  while (i < end && isDigit(b[i]) && i - n0 < 15) n = n * 10 + b[i++] - D0;
  if (i === n0 || !startsWith(b, i, end, LOST_END)) return -1;
  return n;
}

/**
 * Parses text into the sink's targets. Time: a line's trace-clock time t maps to the offset
 * t + clockOffsetNs - baseNs of the targets' builders, computed from seconds and ns as
 * numbers (no BigInt per line).
 */
export class TraceTextParser {
  private readonly names: Buffer[];
  private readonly targets: DecodeTarget[];
  private readonly unknown = new Set<string>();
  private readonly f: LineFields = {
    cpu: 0,
    secs: 0,
    nanos: 0,
    eventStart: 0,
    eventEnd: 0,
    bodyStart: 0,
    bodyEnd: 0,
  };
  private baseSecs = 0;
  private baseNanos = 0;

  constructor(private readonly sink: TextSink) {
    this.targets = [...sink.targets];
    this.names = this.targets.map((t) => Buffer.from(t.event.slice(t.event.indexOf(':') + 1)));
  }

  /** Trace-clock ns of the last event line in b[start, end) (a file's tail), or -1n. */
  lastTime(b: Buffer, start: number, end: number): bigint {
    let last = -1n;
    let s = start;
    for (let i = start; i < end; i++) {
      if (b[i] !== NL) continue;
      if (splitLine(b, s, i, this.f)) last = BigInt(this.f.secs) * 1_000_000_000n + BigInt(this.f.nanos);
      s = i + 1;
    }
    if (s < end && splitLine(b, s, end, this.f))
      last = BigInt(this.f.secs) * 1_000_000_000n + BigInt(this.f.nanos);
    return last;
  }

  /** Whole seconds of the first event line in b[start, end) (a time base for it), or -1. */
  firstSeconds(b: Buffer, start: number, end: number): number {
    let s = start;
    for (let i = start; i < end; i++) {
      if (b[i] !== NL) continue;
      if (splitLine(b, s, i, this.f)) return this.f.secs;
      s = i + 1;
    }
    return -1;
  }

  /** Sets the time base: trace-clock ns that map to offset 0 (baseNs - clockOffsetNs). */
  setBase(traceNs: bigint): void {
    this.baseSecs = Number(traceNs / 1_000_000_000n);
    this.baseNanos = Number(traceNs % 1_000_000_000n);
  }

  /**
   * Parses the complete lines of b[start, end); returns [records decoded, end of the last
   * complete line] (the rest is an unfinished line for the caller to carry over).
   */
  parse(b: Buffer, start: number, end: number): [number, number] {
    let records = 0;
    let s = start;
    // Line ends found by the native memchr of indexOf, not a byte loop (a line is ~170 bytes).
    for (let i = b.indexOf(NL, s); i >= 0 && i < end; i = b.indexOf(NL, s)) {
      records += this.line(b, s, i);
      s = i + 1;
    }
    return [records, s];
  }

  /** Parses one line b[start, end) without its "\n"; returns the records decoded (0 or 1). */
  line(b: Buffer, start: number, end: number): number {
    if (end > start && b[end - 1] === CR) end--;
    let i = start;
    while (i < end && isSpace(b[i])) i++;
    if (i === end || b[i] === HASH) return 0;
    const sink = this.sink;
    const f = this.f;
    if (!splitLine(b, i, end, f)) {
      const lost = lostCount(b, i, end);
      if (lost >= 0) sink.losses.addMissed(lost);
      else this.malformed('text-line', 'unparsable trace text line', b, start, end);
      return 0;
    }
    const t = this.target(b, f.eventStart, f.eventEnd);
    if (t === undefined) {
      const name = b.toString('latin1', f.eventStart, f.eventEnd);
      this.malformed(`text-event:${name}`, `line of unexpected event ${name}`, b, start, end);
      return 0;
    }
    const offset = (f.secs - this.baseSecs) * 1e9 + (f.nanos - this.baseNanos);
    const d = t.decoder;
    const ok = d.decodeTextBytes
      ? d.decodeTextBytes(b, f.bodyStart, f.bodyEnd, t.staging.builder, offset)
      : d.decodeText(b.toString('utf8', f.bodyStart, f.bodyEnd), t.staging.builder, offset);
    if (ok) return 1;
    this.malformed(`text-bad:${t.event}`, `malformed ${t.event} line`, b, start, end);
    return 0;
  }

  private target(b: Buffer, start: number, end: number): DecodeTarget | undefined {
    const names = this.names;
    outer: for (let k = 0; k < names.length; k++) {
      const n = names[k];
      if (n.length !== end - start) continue;
      for (let j = 0; j < n.length; j++) if (n[j] !== b[start + j]) continue outer;
      return this.targets[k];
    }
    if (!this.sink.resolve) return undefined;
    const name = b.toString('latin1', start, end);
    if (this.unknown.has(name)) return undefined;
    const t = this.sink.resolve(name);
    if (!t) {
      this.unknown.add(name);
      return undefined;
    }
    this.targets.push(t);
    this.names.push(Buffer.from(name, 'latin1'));
    return t;
  }

  /** Counts a line that is not a record, saying why once per kind. */
  malformed(key: string, why: string, b: Buffer, start: number, end: number): void {
    this.sink.losses.addMalformed();
    const text = b.toString('utf8', start, Math.min(end, start + 200));
    this.sink.warnOnce(key, `${why}: counted as malformed and skipped: ${text}`);
  }
}

/**
 * Carries unfinished lines between reads: read into `space()`, then `parse` consumes the
 * complete lines and keeps the rest at the buffer's start. A line that fills the whole
 * buffer is counted (malformed) and skipped up to its end.
 */
export class LineBuffer {
  readonly buf: Buffer;
  /** Bytes of an unfinished line at buf[0, carry). */
  carry = 0;
  private skipping = false;

  constructor(
    private readonly parser: TraceTextParser,
    size = 1 << 18,
  ) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Free space after the carried bytes. */
  get free(): number {
    return this.buf.length - this.carry;
  }

  /** Parses after `n` new bytes were read to buf[carry, carry + n); returns records. */
  parse(n: number): number {
    const b = this.buf;
    let end = this.carry + n;
    let start = 0;
    if (this.skipping) {
      const nl = b.indexOf(NL, this.carry);
      if (nl < 0 || nl >= end) {
        this.carry = 0;
        return 0;
      }
      this.skipping = false;
      start = nl + 1;
    }
    const [records, rest] = this.parser.parse(b, start, end);
    end = Math.min(end, b.length);
    if (rest === 0 && end === b.length) {
      this.parser.malformed('text-long', `line longer than ${b.length} bytes`, b, 0, 200);
      this.skipping = true;
      this.carry = 0;
      return records;
    }
    b.copy(b, 0, rest, end);
    this.carry = end - rest;
    return records;
  }

  /** At the end of the input: a last line without "\n" is parsed (a cut-off one is counted). */
  finish(): number {
    const n = this.carry;
    this.carry = 0;
    if (n === 0 || this.skipping) return 0;
    return this.parser.line(this.buf, 0, n);
  }
}
