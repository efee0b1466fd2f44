// arm_smmu_v3:smmu_evtq_event: one SMMUv3 event-queue record per trace record, copied as is.
//
// The tracepoint is a proposed patch (posted June 2026), not in mainline: `__string(iommu)`
// (dev_name of the SMMU) and `u64 evt0..evt3`, printed as
// "%s evt: 0x%016llx 0x%016llx 0x%016llx 0x%016llx". Offsets come from the format file, so a
// probe event with the same field names (e.g. a uprobe with evt0..evt3 and a string `iommu`)
// decodes the same way; its print format "evt0=0x.. ... iommu=\"..\"" is understood as well.
import type { EventBlockBuilder } from '../../../../../proto/event-block';
import type { EventFormat } from '../format';
import type { DecoderFamily, RecordDecoder } from './decoder';
import {
  badFormat,
  copyU64,
  NameCache,
  type StringField,
  stringField,
  stringRange,
  type U64Field,
  u64Field,
} from './fields';

class SmmuEvtqDecoder implements RecordDecoder {
  private readonly evt: readonly U64Field[];
  private readonly name: StringField;
  private readonly minLen: number;
  private readonly names = new NameCache<undefined>(() => undefined);
  private readonly range = { start: 0, end: 0 };
  private readonly words = new Uint32Array(8);
  private readonly nameKey: Buffer;

  constructor(
    format: EventFormat,
    readonly event: string,
  ) {
    this.evt = [0, 1, 2, 3].map((i) => u64Field(format, event, `evt${i}`));
    const str =
      format.fields.find((f) => f.name === 'iommu') ?? format.fields.find((f) => !f.common && f.isString);
    if (!str) throw badFormat(event, 'no string field naming the SMMU (iommu)');
    this.name = stringField(format, event, str.name);
    this.nameKey = Buffer.from(str.name);
    this.minLen = Math.max(...this.evt.map((f) => f.offset + 8), this.name.offset + this.name.size);
  }

  decodeBinary(
    bytes: Buffer,
    words: Uint32Array,
    off: number,
    len: number,
    out: EventBlockBuilder,
    offsetNs: number,
  ): boolean {
    if (len < this.minLen || !stringRange(bytes, off, len, this.name, this.range)) return false;
    this.names.lookup(bytes, this.range.start, this.range.end);
    const w = out.appendOffset(offsetNs, out.smmuId(this.names.name));
    const dst = out.wordArray;
    const e = this.evt;
    copyU64(bytes, words, off, e[0], dst, w);
    copyU64(bytes, words, off, e[1], dst, w + 2);
    copyU64(bytes, words, off, e[2], dst, w + 4);
    copyU64(bytes, words, off, e[3], dst, w + 6);
    return true;
  }

  decodeText(body: string, out: EventBlockBuilder, offsetNs: number): boolean {
    const b = Buffer.from(body, 'utf8');
    return this.decodeTextBytes(b, 0, b.length, out, offsetNs);
  }

  /**
   * The proposed print format "%s evt: 0x%016llx 0x%016llx 0x%016llx 0x%016llx", exactly (16
   * hex digits per word, nothing after), or a probe's "key=value" form, where the words are
   * printed "0x%Lx" (1 to 16 digits) and the name as "<field>=\"%s\"".
   */
  decodeTextBytes(b: Buffer, start: number, end: number, out: EventBlockBuilder, offsetNs: number): boolean {
    const words = this.words;
    let nameStart = start;
    let nameEnd = start;
    while (nameEnd < end && b[nameEnd] !== SP) nameEnd++;
    if (matchAt(b, nameEnd, end, EVT_SEP)) {
      let i = nameEnd + EVT_SEP.length;
      if (end - i !== 4 * 18 + 3) return false;
      for (let k = 0; k < 4; k++, i += 19) {
        if (b[i] !== D0 || b[i + 1] !== LX || (k < 3 && b[i + 18] !== SP)) return false;
        if (!hexWord(b, i + 2, i + 18, words, 2 * k)) return false;
      }
    } else {
      // key=value tokens; other keys (a probe's other fields) are ignored.
      let seen = 0;
      nameStart = nameEnd = -1;
      let i = start;
      while (i < end) {
        while (i < end && b[i] === SP) i++;
        const t = i;
        while (i < end && b[i] !== SP && b[i] !== EQ) i++;
        if (i === end || b[i] === SP) continue; // a token without "=", e.g. "(0x55d0c0de11d0)"
        const eq = i++;
        if (b[i] === QUOTE) {
          let q = i + 1;
          while (q < end && b[q] !== QUOTE) q++;
          if (q >= end) return false;
          if (matchAt(b, t, eq, this.nameKey) && eq - t === this.nameKey.length) {
            nameStart = i + 1;
            nameEnd = q;
          }
          i = q + 1;
          continue;
        }
        const v = i;
        while (i < end && b[i] !== SP) i++;
        if (eq - t === 4 && matchAt(b, t, eq, EVT_KEY) && b[t + 3] >= D0 && b[t + 3] <= D0 + 3) {
          const k = b[t + 3] - D0;
          if (i - v < 3 || i - v > 18 || b[v] !== D0 || b[v + 1] !== LX) return false;
          if (!hexWord(b, v + 2, i, words, 2 * k)) return false;
          seen |= 1 << k;
        }
      }
      if (seen !== 15 || nameStart < 0) return false;
    }
    this.names.lookup(b, nameStart, nameEnd);
    const w = out.appendOffset(offsetNs, out.smmuId(this.names.name));
    // Eight stores, not TypedArray.set: its call costs more than the copy.
    const dst = out.wordArray;
    for (let k = 0; k < 8; k++) dst[w + k] = words[k];
    return true;
  }
}

const SP = 0x20;
const EQ = 0x3d;
const QUOTE = 0x22;
const D0 = 0x30;
const LX = 0x78;
const EVT_SEP = Buffer.from(' evt: ');
const EVT_KEY = Buffer.from('evt');

function matchAt(b: Uint8Array, at: number, end: number, lit: Uint8Array): boolean {
  if (end - at < lit.length) return false;
  for (let k = 0; k < lit.length; k++) if (b[at + k] !== lit[k]) return false;
  return true;
}

/** Hex digit values by byte, -1 for any other byte. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[0-9a-fA-F]/.test(ch)) HEX[c] = Number.parseInt(ch, 16);
}

/** 1-16 hex digits b[start, end) into words[at] (low half) and words[at + 1] (high half). */
function hexWord(b: Uint8Array, start: number, end: number, words: Uint32Array, at: number): boolean {
  // The low half is the last 8 digits, the high half those before.
  const mid = Math.max(start, end - 8);
  const hi = hexDigits(b, start, mid);
  const lo = hexDigits(b, mid, end);
  if (hi < 0 || lo < 0) return false;
  words[at] = lo;
  words[at + 1] = hi;
  return true;
}

/** The value of 0-8 hex digits b[start, end), or -1 if a byte is not one. */
function hexDigits(b: Uint8Array, start: number, end: number): number {
  let v = 0;
  let bad = 0;
  for (let i = start; i < end; i++) {
    const d = HEX[b[i]];
    bad |= d;
    v = (v << 4) | d; // int32 shifts: the eighth digit's bits wrap into the sign, undone by >>> 0
  }
  return bad < 0 ? -1 : v >>> 0;
}

export const smmuEvtq: DecoderFamily = {
  event: 'arm_smmu_v3:smmu_evtq_event',
  kernelSupport:
    'the arm_smmu_v3:smmu_evtq_event tracepoint, from the proposed arm-smmu-v3 tracepoint patch ' +
    '(posted June 2026, not in mainline): a kernel with that patch applied and CONFIG_ARM_SMMU_V3',
  create: (format, event) => new SmmuEvtqDecoder(format, event),
};
