// SMMUv3 event-queue record codec over the EventBlock word layout (8 x u32 per record:
// evt0.lo, evt0.hi, evt1.lo, evt1.hi, evt2.lo, evt2.hi, evt3.lo, evt3.hi).
//
// Bit positions checked against Linux v6.15 arm-smmu-v3.h (EVTQ_0_ID 7:0, EVTQ_0_SSV 11,
// EVTQ_0_SSID 31:12, EVTQ_0_SID 63:32, EVTQ_1_STAG 15:0, EVTQ_1_STALL 31, EVTQ_1_PnU 33,
// EVTQ_1_InD 34, EVTQ_1_RnW 35, EVTQ_1_S2 39, EVTQ_1_CLASS 41:40, EVTQ_1_TT_READ 44,
// EVTQ_2_ADDR 63:0, EVTQ_3_IPA 51:12, EVTQ_3_FETCH_ADDR 51:3) and arm-smmu-v3.c
// arm_smmu_decode_event(): IPA and FetchAddr are masks, not shifts; SSID is reported as 0
// (IOMMU_NO_PASID) when SSV=0; class_tt only for F_PERMISSION with CLASS=TT.
import {
  EVENT_INFO,
  EVT_C_BAD_SUBSTREAMID,
  EVT_F_PERMISSION,
  type EventInfo,
  FAULT_KIND_BY_ID,
} from './event-ids';

// Event IDs and their names are imported from './event-ids', not re-exported here: compiled to
// CommonJS, a re-export is a getter on every access, and in the model's and the aggregator's
// hot loops that getter was 3-4 % of the CPU profile.

// Positions within the u32 words. Word 1 of evt1 (evt1.hi) holds bits 63:32, so bit 33
// of evt1 is bit 1 of that word.
const SSV_BIT = 1 << 11;
const STALL_BIT = 0x80000000;
const PNU_BIT = 1 << 1; // evt1 bit 33
const IND_BIT = 1 << 2; // evt1 bit 34
const RNW_BIT = 1 << 3; // evt1 bit 35
const S2_BIT = 1 << 7; // evt1 bit 39
const CLASS_SHIFT = 8; // evt1 bits 41:40
const TTRNW_BIT = 1 << 12; // evt1 bit 44
const IPA_LO_MASK = 0xfffff000; // evt3 bits 31:12
const FETCH_LO_MASK = 0xfffffff8; // evt3 bits 31:3
const ADDR_HI_MASK = 0x000fffff; // evt3 bits 51:32

/** EVTQ_3_IPA as a 64-bit mask. */
export const IPA_MASK = 0x000f_ffff_ffff_f000n;
/** EVTQ_3_FETCH_ADDR as a 64-bit mask. */
export const FETCH_ADDR_MASK = 0x000f_ffff_ffff_fff8n;
/** EVTQ_1_CLASS values (Linux event_class_str). */
export const EVENT_CLASS = { CD: 0, TT: 1, IN: 2, RESERVED: 3 } as const;
export const EVENT_CLASS_NAMES: readonly string[] = [
  'CD fetch',
  'Stage 1 translation table fetch',
  'Input address caused fault',
  'Reserved',
];

// ---- Allocation-free accessors for hot loops (w = index of the record's first word) ----

export function eventId(words: Uint32Array, w: number): number {
  return eventIdOfWord0(words[w]);
}

/** FaultKind (0 translation, 1 access, 2 permission, 3 other). */
export function faultKind(words: Uint32Array, w: number): number {
  return FAULT_KIND_BY_ID[words[w] & 0xff];
}

export function streamId(words: Uint32Array, w: number): number {
  return words[w + 1];
}

/** The SubstreamID field is valid: SSV=1, or the event is C_BAD_SUBSTREAMID (no SSV). */
export function hasSubstream(words: Uint32Array, w: number): boolean {
  const lo = words[w];
  return (lo & SSV_BIT) !== 0 || (lo & 0xff) === EVT_C_BAD_SUBSTREAMID;
}

/** SubstreamID (PASID), or 0 when it is not valid (Linux: IOMMU_NO_PASID). */
export function substreamId(words: Uint32Array, w: number): number {
  return substreamIdOfWord0(words[w]);
}

/**
 * substreamId from the record's first word, for loops that read that word once (a typed-array
 * load is not shared across stores to other typed arrays, which might alias it).
 */
export function substreamIdOfWord0(lo: number): number {
  return (lo & SSV_BIT) !== 0 || (lo & 0xff) === EVT_C_BAD_SUBSTREAMID ? lo >>> 12 : 0;
}

/** eventId from the record's first word (see substreamIdOfWord0). */
export function eventIdOfWord0(lo: number): number {
  return lo & 0xff;
}

export function isStall(words: Uint32Array, w: number): boolean {
  return (words[w + 2] & STALL_BIT) !== 0;
}

export function stallTag(words: Uint32Array, w: number): number {
  return words[w + 2] & 0xffff;
}

/** RnW: true for a read, false for a write. */
export function isRead(words: Uint32Array, w: number): boolean {
  return (words[w + 3] & RNW_BIT) !== 0;
}

/** 2^(32 - s) for page shifts s: a table load, where `**` would be a Math.pow per event. */
const HI_SCALE = Float64Array.from({ length: 64 }, (_, s) => 2 ** (32 - s));

/**
 * InputAddr >> pageShift as a number (exact for addresses below 2^(53 + pageShift)).
 */
export function inputPage(words: Uint32Array, w: number, pageShift: number): number {
  return words[w + 5] * HI_SCALE[pageShift] + (words[w + 4] >>> pageShift);
}

// ---- Full decode ----

function u64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/**
 * Every field Linux extracts from a record. Numeric fields are read eagerly; the 64-bit
 * ones are computed on access from the copied words, so decoding allocates one object.
 */
export class DecodedEvent {
  readonly id: number;
  readonly info: EventInfo;
  /** The raw SSV bit. */
  readonly ssv: boolean;
  /** SubstreamID as Linux reports it: 0 unless SSV=1, except C_BAD_SUBSTREAMID (always valid). */
  readonly ssid: number;
  /** evt0[31:12] whatever SSV says. */
  readonly rawSsid: number;
  readonly sid: number;
  readonly stag: number;
  readonly stall: boolean;
  readonly pnu: boolean;
  readonly ind: boolean;
  readonly rnw: boolean;
  readonly s2: boolean;
  readonly class: number;
  /** F_PERMISSION with CLASS=TT: the fault was on a translation-table access. */
  readonly classTt: boolean;
  readonly ttrnw: boolean;
  /** evt1[15:0] read as F_UUT's Reason (same bits as STAG). */
  readonly reason: number;
  private readonly w0: number;
  private readonly w1: number;
  private readonly w2: number;
  private readonly w3: number;
  private readonly w4: number;
  private readonly w5: number;
  private readonly w6: number;
  private readonly w7: number;

  constructor(words: Uint32Array, w: number) {
    const w0 = words[w];
    const w2 = words[w + 2];
    const w3 = words[w + 3];
    this.w0 = w0;
    this.w1 = words[w + 1];
    this.w2 = w2;
    this.w3 = w3;
    this.w4 = words[w + 4];
    this.w5 = words[w + 5];
    this.w6 = words[w + 6];
    this.w7 = words[w + 7];
    const id = w0 & 0xff;
    this.id = id;
    this.info = EVENT_INFO[id];
    this.ssv = (w0 & SSV_BIT) !== 0;
    this.rawSsid = w0 >>> 12;
    this.ssid = this.ssv || id === EVT_C_BAD_SUBSTREAMID ? this.rawSsid : 0;
    this.sid = this.w1;
    this.stag = w2 & 0xffff;
    this.reason = this.stag;
    this.stall = (w2 & STALL_BIT) !== 0;
    this.pnu = (w3 & PNU_BIT) !== 0;
    this.ind = (w3 & IND_BIT) !== 0;
    this.rnw = (w3 & RNW_BIT) !== 0;
    this.s2 = (w3 & S2_BIT) !== 0;
    this.class = (w3 >>> CLASS_SHIFT) & 3;
    this.ttrnw = (w3 & TTRNW_BIT) !== 0;
    this.classTt = id === EVT_F_PERMISSION && this.class === EVENT_CLASS.TT;
  }

  get name(): string {
    return this.info.name;
  }

  /** FaultKind of the event. */
  get kind(): number {
    return this.info.kind;
  }

  /** Field bits (see `Field`) this event defines; the others are decoded but meaningless. */
  get fields(): number {
    return this.info.fields;
  }

  /** InputAddr (evt2): the IOVA / process virtual address. */
  get inputAddr(): bigint {
    return u64(this.w4, this.w5);
  }

  /** evt3 & EVTQ_3_IPA (UNKNOWN for stage-1 faults). */
  get ipa(): bigint {
    return u64(this.w6 & IPA_LO_MASK, this.w7 & ADDR_HI_MASK);
  }

  /** evt3 & EVTQ_3_FETCH_ADDR (F_STE_FETCH, F_CD_FETCH, F_VMS_FETCH, F_WALK_EABT). */
  get fetchAddr(): bigint {
    return u64(this.w6 & FETCH_LO_MASK, this.w7 & ADDR_HI_MASK);
  }

  /** The four little-endian 64-bit words evt[0..3]. */
  get raw(): [bigint, bigint, bigint, bigint] {
    return [u64(this.w0, this.w1), u64(this.w2, this.w3), u64(this.w4, this.w5), u64(this.w6, this.w7)];
  }

  /** A copy of the eight u32 words. */
  rawWords(): Uint32Array {
    return Uint32Array.of(this.w0, this.w1, this.w2, this.w3, this.w4, this.w5, this.w6, this.w7);
  }
}

/** Decodes the record whose first word is words[wordIndex]. Reserved IDs decode too (info.defined false). */
export function decodeRecord(words: Uint32Array, wordIndex: number): DecodedEvent {
  return new DecodedEvent(words, wordIndex);
}

// ---- Encode ----

/** Record fields for encodeRecord; absent ones are 0/false. */
export interface EventFields {
  id: number;
  sid?: number;
  ssv?: boolean;
  /** Written to evt0[31:12] whatever ssv says (decoders report it only when valid). */
  ssid?: number;
  stag?: number;
  /** F_UUT's Reason: the same bits as stag; give one of them. */
  reason?: number;
  stall?: boolean;
  pnu?: boolean;
  ind?: boolean;
  rnw?: boolean;
  s2?: boolean;
  class?: number;
  ttrnw?: boolean;
  inputAddr?: bigint;
  /** Must lie within IPA_MASK. */
  ipa?: bigint;
  /** Must lie within FETCH_ADDR_MASK. */
  fetchAddr?: bigint;
}

function checkInt(name: string, v: number | undefined, max: number): number {
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${name} must be an integer in 0..0x${max.toString(16)} (got ${v})`);
  }
  return v;
}

function checkMasked(name: string, v: bigint | undefined, mask: bigint): bigint {
  if (v === undefined) return 0n;
  if (v < 0n || (v & ~mask) !== 0n) {
    throw new RangeError(`${name} 0x${v.toString(16)} has bits outside 0x${mask.toString(16)}`);
  }
  return v;
}

/** Writes a record into words[w..w+8). Throws RangeError on out-of-range field values. */
export function encodeRecordInto(out: Uint32Array, w: number, f: EventFields): void {
  const id = checkInt('id', f.id, 0xff);
  const sid = checkInt('sid', f.sid, 0xffffffff);
  const ssid = checkInt('ssid', f.ssid, 0xfffff);
  const stag = checkInt('stag', f.stag, 0xffff);
  const reason = checkInt('reason', f.reason, 0xffff);
  if (f.stag !== undefined && f.reason !== undefined && stag !== reason) {
    throw new RangeError('stag and reason share evt1[15:0]: give one of them');
  }
  const cls = checkInt('class', f.class, 3);
  const addr = checkMasked('inputAddr', f.inputAddr, 0xffff_ffff_ffff_ffffn);
  const ipa = checkMasked('ipa', f.ipa, IPA_MASK);
  const fetch = checkMasked('fetchAddr', f.fetchAddr, FETCH_ADDR_MASK);
  if (ipa !== 0n && fetch !== 0n && ((ipa ^ fetch) & IPA_MASK) !== 0n) {
    throw new RangeError('ipa and fetchAddr share evt3[51:12] and disagree: give one of them');
  }
  const evt3 = ipa | fetch;
  out[w] = (id | (f.ssv ? SSV_BIT : 0) | (ssid << 12)) >>> 0;
  out[w + 1] = sid;
  out[w + 2] = (stag | reason | (f.stall ? STALL_BIT : 0)) >>> 0;
  out[w + 3] =
    (f.pnu ? PNU_BIT : 0) |
    (f.ind ? IND_BIT : 0) |
    (f.rnw ? RNW_BIT : 0) |
    (f.s2 ? S2_BIT : 0) |
    (cls << CLASS_SHIFT) |
    (f.ttrnw ? TTRNW_BIT : 0);
  out[w + 4] = Number(addr & 0xffffffffn);
  out[w + 5] = Number(addr >> 32n);
  out[w + 6] = Number(evt3 & 0xffffffffn);
  out[w + 7] = Number(evt3 >> 32n);
}

/** Encodes one record as eight u32 words. */
export function encodeRecord(f: EventFields): Uint32Array {
  const out = new Uint32Array(8);
  encodeRecordInto(out, 0, f);
  return out;
}

/** evt0.lo from its fields, for writers that fill words directly (no checks). */
export function evt0Lo(id: number, ssv: boolean, ssid: number): number {
  return ((id & 0xff) | (ssv ? SSV_BIT : 0) | ((ssid & 0xfffff) << 12)) >>> 0;
}

/** evt1.hi from its fields, for writers that fill words directly (no checks). */
export function evt1Hi(
  pnu: boolean,
  ind: boolean,
  rnw: boolean,
  s2: boolean,
  cls: number,
  ttrnw: boolean,
): number {
  return (
    (pnu ? PNU_BIT : 0) |
    (ind ? IND_BIT : 0) |
    (rnw ? RNW_BIT : 0) |
    (s2 ? S2_BIT : 0) |
    ((cls & 3) << CLASS_SHIFT) |
    (ttrnw ? TTRNW_BIT : 0)
  );
}

/** Bit constants for direct word writers (the model). */
export const RECORD_BITS = {
  SSV: SSV_BIT,
  STALL: STALL_BIT,
  PNU: PNU_BIT,
  IND: IND_BIT,
  RNW: RNW_BIT,
  S2: S2_BIT,
  CLASS_SHIFT,
  TTRNW: TTRNW_BIT,
  IPA_LO: IPA_LO_MASK,
  FETCH_LO: FETCH_LO_MASK,
  ADDR_HI: ADDR_HI_MASK,
} as const;
