// Mapping of non-SMMU IOMMU fault events into the SMMUv3 record format, so that one
// accounting serves every source. iommu:io_page_fault and intel_iommu:prq_report are turned
// into an F_TRANSLATION (0x10) event record, as an SMMU would have written it for an
// unmapped page:
//
//   evt0  ID 7:0 = 0x10, SSV 11, SSID 31:12 (the PASID, when one is present), SID 63:32
//   evt1  STAG 15:0 (PRI page-request group index), STALL 31 = 0, PnU 33, InD 34,
//         RnW 35 (1 = read), CLASS 41:40 = 0b10 (IN: the input address faulted)
//   evt2  InputAddr: the faulting IOVA / page address
//   evt3  0 (no IPA)
//
// SID is the PCI requester id (bus << 8 | device << 3 | function), with the PCI segment in
// bits 31:16; the "SMMU name" is the name of the IOMMU (Intel: "dmar0") or, where the event
// names none (io_page_fault), the faulting device.

export const F_TRANSLATION = 0x10;
const CLASS_IN = 2;

/** Writes a synthetic F_TRANSLATION record into dst[w..w+7] (already zeroed by the builder). */
export function writeTranslationFault(
  dst: Uint32Array,
  w: number,
  sid: number,
  ssv: boolean,
  ssid: number,
  read: boolean,
  exec: boolean,
  priv: boolean,
  stag: number,
  addrLo: number,
  addrHi: number,
): void {
  dst[w] = (F_TRANSLATION | (ssv ? 1 << 11 : 0) | (ssv ? (ssid & 0xfffff) << 12 : 0)) >>> 0;
  dst[w + 1] = sid >>> 0;
  dst[w + 2] = stag & 0xffff;
  dst[w + 3] = ((priv ? 1 << 1 : 0) | (exec ? 1 << 2 : 0) | (read ? 1 << 3 : 0) | (CLASS_IN << 8)) >>> 0;
  dst[w + 4] = addrLo >>> 0;
  dst[w + 5] = addrHi >>> 0;
}

/**
 * Stream id of a device name: "DDDD:BB:DD.F" (PCI) -> segment << 16 | requester id; any other
 * name -> 0 (platform devices have no requester id visible in the event).
 */
export function pciStreamId(device: string): number {
  const m = /^(?:([0-9a-fA-F]{4,}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/.exec(device);
  if (!m) return 0;
  const seg = m[1] ? Number.parseInt(m[1], 16) & 0xffff : 0;
  const rid = (Number.parseInt(m[2], 16) << 8) | ((Number.parseInt(m[3], 16) & 0x1f) << 3) | Number(m[4]);
  return ((seg << 16) | rid) >>> 0;
}
