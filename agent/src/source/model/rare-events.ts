// Records of the configuration and abort events the model emits at configured rates. Rare
// by design, so they are built through the checked encoder rather than the hot path.
import { EVENT_CLASS, type EventFields, encodeRecordInto } from '../../../../common/smmu/record';
import type { RareEventName } from './config';
import type { Rng } from './rng';
import type { ModelDevice, ModelProcess } from './topology';

export interface RareEventContext {
  rng: Rng;
  pageShift: number;
  /** First PASID no process is bound to (C_BAD_SUBSTREAMID reports stale or bogus ones). */
  unboundPasid: number;
  /** Allocates the next stall tag of the device's SMMU. */
  nextStag(smmu: number): number;
}

/** Where firmware put the stream table, CD tables and VMS in the simulated physical memory. */
const STRTAB_BASE = 0x80_4000_0000n;
const CDTAB_BASE = 0x80_8000_0000n;
const PGTABLE_BASE = 0x81_0000_0000n;
const VMS_BASE = 0x80_2000_0000n;
/** How many PASIDs above the bound ones C_BAD_SUBSTREAMID draws from. */
export const STALE_PASIDS = 4;

function someAddress(proc: ModelProcess, ctx: RareEventContext): bigint {
  const m = proc.mappings[ctx.rng.int(proc.mappings.length)];
  const page = m.basePage + ctx.rng.int(m.pages);
  return (BigInt(page) << BigInt(ctx.pageShift)) | BigInt(ctx.rng.int(1 << ctx.pageShift) & ~63);
}

/** Fields of one `name` event caused by `dev` working for `proc`. */
export function rareEventFields(
  name: RareEventName,
  dev: ModelDevice,
  proc: ModelProcess,
  ctx: RareEventContext,
): EventFields {
  const rng = ctx.rng;
  const sid = dev.sid;
  const ssid = proc.pasid;
  const rnw = rng.float() < 0.5;
  switch (name) {
    case 'F_UUT':
      return {
        id: 0x01,
        sid,
        ssv: true,
        ssid,
        rnw,
        inputAddr: someAddress(proc, ctx),
        reason: 1 << rng.int(4),
      };
    case 'C_BAD_STREAMID':
      // A requester ID no stream table entry covers (a hot-plugged or misbehaving function).
      return { id: 0x02, sid: 0xff00 | (rng.int(2) << 3) };
    case 'F_STE_FETCH':
      return { id: 0x03, sid, fetchAddr: STRTAB_BASE + BigInt(sid) * 64n };
    case 'C_BAD_STE':
      return { id: 0x04, sid };
    case 'F_BAD_ATS_TREQ':
      return { id: 0x05, sid, ssv: true, ssid, rnw, inputAddr: someAddress(proc, ctx) };
    case 'F_STREAM_DISABLED':
      return { id: 0x06, sid };
    case 'F_TRANSL_FORBIDDEN':
      return { id: 0x07, sid, rnw, inputAddr: someAddress(proc, ctx) };
    case 'C_BAD_SUBSTREAMID':
      // No SSV field: the SubstreamID (a PASID of an exited process) is always valid.
      return { id: 0x08, sid, ssid: ctx.unboundPasid + rng.int(STALE_PASIDS) };
    case 'F_CD_FETCH':
      return { id: 0x09, sid, ssv: true, ssid, fetchAddr: CDTAB_BASE + BigInt(ssid) * 64n };
    case 'C_BAD_CD':
      return { id: 0x0a, sid, ssv: true, ssid };
    case 'F_WALK_EABT':
      return {
        id: 0x0b,
        sid,
        ssv: true,
        ssid,
        rnw,
        class: EVENT_CLASS.TT,
        inputAddr: someAddress(proc, ctx),
        fetchAddr: PGTABLE_BASE + BigInt(rng.int(1 << 20)) * 8n,
      };
    case 'F_ADDR_SIZE': {
      // An address above the 48-bit input range.
      const addr = (1n << 48n) | someAddress(proc, ctx);
      return dev.stall
        ? {
            id: 0x11,
            sid,
            ssv: true,
            ssid,
            rnw,
            class: EVENT_CLASS.IN,
            inputAddr: addr,
            stall: true,
            stag: ctx.nextStag(dev.smmu),
          }
        : { id: 0x11, sid, ssv: true, ssid, rnw, class: EVENT_CLASS.IN, inputAddr: addr };
    }
    case 'F_TLB_CONFLICT':
      return { id: 0x20, sid, ssv: true, ssid, inputAddr: someAddress(proc, ctx) };
    case 'F_CFG_CONFLICT':
      return { id: 0x21, sid, ssv: true, ssid };
    case 'F_VMS_FETCH':
      return { id: 0x25, sid, fetchAddr: VMS_BASE + BigInt(rng.int(1 << 16)) * 64n };
    case 'IMPDEF':
      return { id: 0xe0 + rng.int(16), sid };
  }
}

/** Writes a `name` record at words[w..w+8). */
export function writeRareEvent(
  name: RareEventName,
  words: Uint32Array,
  w: number,
  dev: ModelDevice,
  proc: ModelProcess,
  ctx: RareEventContext,
): void {
  encodeRecordInto(words, w, rareEventFields(name, dev, proc, ctx));
}
