// SMMUv3 event-queue event IDs (record word 0, bits 7:0): names, fault kinds and which record
// fields each event defines.
//
// Checked against Linux v6.15 (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h EVT_ID_* and
// arm-smmu-v3.c event_str[], introduced by commits 43ca55f5555b "Introduce struct
// arm_smmu_event" and d814b70b9b90 "Log better event records"); the IDs Linux does not name
// come from the Arm SMMUv3 architecture specification (IHI0070, chapter 7.3).

export const EVT_F_UUT = 0x01;
export const EVT_C_BAD_STREAMID = 0x02;
export const EVT_F_STE_FETCH = 0x03;
export const EVT_C_BAD_STE = 0x04;
export const EVT_F_BAD_ATS_TREQ = 0x05;
export const EVT_F_STREAM_DISABLED = 0x06;
export const EVT_F_TRANSL_FORBIDDEN = 0x07;
export const EVT_C_BAD_SUBSTREAMID = 0x08;
export const EVT_F_CD_FETCH = 0x09;
export const EVT_C_BAD_CD = 0x0a;
export const EVT_F_WALK_EABT = 0x0b;
export const EVT_F_TRANSLATION = 0x10;
export const EVT_F_ADDR_SIZE = 0x11;
export const EVT_F_ACCESS = 0x12;
export const EVT_F_PERMISSION = 0x13;
export const EVT_F_TLB_CONFLICT = 0x20;
export const EVT_F_CFG_CONFLICT = 0x21;
export const EVT_E_PAGE_REQUEST = 0x24;
export const EVT_F_VMS_FETCH = 0x25;
export const EVT_IMPDEF_FIRST = 0xe0;
export const EVT_IMPDEF_LAST = 0xef;

/** Fault kinds the accounting counts separately. Numeric so hot loops can index arrays. */
export const FaultKind = {
  /** F_TRANSLATION: no valid mapping (the common SVA page fault). */
  Translation: 0,
  /** F_ACCESS: access flag clear and hardware AF update off. */
  Access: 1,
  /** F_PERMISSION: e.g. a write to a read-only or clean page. */
  Permission: 2,
  /** Everything else (configuration errors, aborts, F_ADDR_SIZE, IMPDEF, unknown). */
  Other: 3,
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];
export const FAULT_KIND_COUNT = 4;
export const FAULT_KIND_NAMES: readonly string[] = ['translation', 'access', 'permission', 'other'];

/** Bits of `EventInfo.fields`: which decoded fields an event defines. */
export const Field = {
  Sid: 1 << 0,
  /** SSV and SubstreamID (C_BAD_SUBSTREAMID: SubstreamID without SSV). */
  Ssid: 1 << 1,
  Stag: 1 << 2,
  Stall: 1 << 3,
  PnU: 1 << 4,
  InD: 1 << 5,
  RnW: 1 << 6,
  S2: 1 << 7,
  Class: 1 << 8,
  /** TTRnW: only for F_PERMISSION with CLASS = TT (Linux: class_tt). */
  TtRnW: 1 << 9,
  InputAddr: 1 << 10,
  Ipa: 1 << 11,
  FetchAddr: 1 << 12,
  /** evt1[15:0] is a Reason code (F_UUT) rather than a stall tag. */
  Reason: 1 << 13,
} as const;

export interface EventInfo {
  readonly id: number;
  /** Architecture name, e.g. "F_TRANSLATION"; "IMPDEF_0xe3"; "UNKNOWN_0x42" for reserved IDs. */
  readonly name: string;
  /** The ID is defined by the architecture (named or IMPDEF). */
  readonly defined: boolean;
  /** Linux v6.15 has a name for it; the others it logs as "UNKNOWN". */
  readonly linuxNamed: boolean;
  readonly kind: FaultKind;
  /** Field bits (see `Field`) the record of this event defines. */
  readonly fields: number;
}

const F = Field;
const ADDR_FAULT =
  F.Sid | F.Ssid | F.Stag | F.Stall | F.PnU | F.InD | F.RnW | F.S2 | F.Class | F.InputAddr | F.Ipa;

// [id, name, linuxNamed, fields]. Fields follow IHI0070 7.3; where unsure (the conflict
// events), only the fields every event carries are claimed.
const DEFINED: ReadonlyArray<readonly [number, string, boolean, number]> = [
  [EVT_F_UUT, 'F_UUT', false, F.Sid | F.Ssid | F.PnU | F.InD | F.RnW | F.InputAddr | F.Reason],
  [EVT_C_BAD_STREAMID, 'C_BAD_STREAMID', true, F.Sid | F.Ssid],
  [EVT_F_STE_FETCH, 'F_STE_FETCH', true, F.Sid | F.Ssid | F.FetchAddr],
  [EVT_C_BAD_STE, 'C_BAD_STE', true, F.Sid | F.Ssid],
  [EVT_F_BAD_ATS_TREQ, 'F_BAD_ATS_TREQ', false, F.Sid | F.Ssid | F.PnU | F.InD | F.RnW | F.InputAddr],
  [EVT_F_STREAM_DISABLED, 'F_STREAM_DISABLED', true, F.Sid],
  [EVT_F_TRANSL_FORBIDDEN, 'F_TRANSL_FORBIDDEN', false, F.Sid | F.RnW | F.InputAddr],
  [EVT_C_BAD_SUBSTREAMID, 'C_BAD_SUBSTREAMID', true, F.Sid | F.Ssid],
  [EVT_F_CD_FETCH, 'F_CD_FETCH', true, F.Sid | F.Ssid | F.FetchAddr],
  [EVT_C_BAD_CD, 'C_BAD_CD', true, F.Sid | F.Ssid],
  [
    EVT_F_WALK_EABT,
    'F_WALK_EABT',
    false,
    F.Sid | F.Ssid | F.PnU | F.InD | F.RnW | F.S2 | F.Class | F.InputAddr | F.FetchAddr,
  ],
  [EVT_F_TRANSLATION, 'F_TRANSLATION', true, ADDR_FAULT],
  [EVT_F_ADDR_SIZE, 'F_ADDR_SIZE', true, ADDR_FAULT],
  [EVT_F_ACCESS, 'F_ACCESS', true, ADDR_FAULT],
  [EVT_F_PERMISSION, 'F_PERMISSION', true, ADDR_FAULT | F.TtRnW],
  [EVT_F_TLB_CONFLICT, 'F_TLB_CONFLICT', false, F.Sid | F.Ssid | F.S2 | F.InputAddr],
  [EVT_F_CFG_CONFLICT, 'F_CFG_CONFLICT', false, F.Sid | F.Ssid],
  [EVT_E_PAGE_REQUEST, 'E_PAGE_REQUEST', false, F.Sid | F.Ssid | F.PnU | F.InD | F.RnW | F.InputAddr],
  [EVT_F_VMS_FETCH, 'F_VMS_FETCH', true, F.Sid | F.Ssid | F.FetchAddr],
];

function hex2(id: number): string {
  return `0x${id.toString(16).padStart(2, '0')}`;
}

function kindOf(id: number): FaultKind {
  if (id === EVT_F_TRANSLATION) return FaultKind.Translation;
  if (id === EVT_F_ACCESS) return FaultKind.Access;
  if (id === EVT_F_PERMISSION) return FaultKind.Permission;
  return FaultKind.Other;
}

function buildTable(): EventInfo[] {
  const table: EventInfo[] = [];
  for (let id = 0; id < 256; id++) {
    const impdef = id >= EVT_IMPDEF_FIRST && id <= EVT_IMPDEF_LAST;
    table.push({
      id,
      name: impdef ? `IMPDEF_${hex2(id)}` : `UNKNOWN_${hex2(id)}`,
      defined: impdef,
      linuxNamed: false,
      kind: FaultKind.Other,
      fields: impdef ? F.Sid : 0,
    });
  }
  for (const [id, name, linuxNamed, fields] of DEFINED) {
    table[id] = { id, name, defined: true, linuxNamed, kind: kindOf(id), fields };
  }
  return table;
}

/** Indexed by event ID (0..255). */
export const EVENT_INFO: readonly EventInfo[] = buildTable();

/** Fault kind per event ID, for hot loops. */
export const FAULT_KIND_BY_ID: Uint8Array = Uint8Array.from(EVENT_INFO, (e) => e.kind);

/** Event IDs the architecture defines (excluding IMPDEF), ascending. */
export const DEFINED_EVENT_IDS: readonly number[] = DEFINED.map((d) => d[0]).sort((a, b) => a - b);

/** Event name by ID ("UNKNOWN_0x42" for reserved IDs). */
export function eventName(id: number): string {
  return EVENT_INFO[id & 0xff].name;
}

/** The name Linux logs for an ID: its event_str[] entry, else "UNKNOWN". */
export function linuxEventName(id: number): string {
  const info = EVENT_INFO[id & 0xff];
  return info.linuxNamed ? info.name : 'UNKNOWN';
}

/** Event ID by architecture name (also "IMPDEF_0xe0".."IMPDEF_0xef"), or undefined. */
export function eventIdByName(name: string): number | undefined {
  const info = EVENT_INFO.find((e) => e.defined && e.name === name);
  return info?.id;
}

/** Only these four can stall (STALL=1) and be resolved by the IOPF handler. */
export function canStall(id: number): boolean {
  return id >= EVT_F_TRANSLATION && id <= EVT_F_PERMISSION;
}
