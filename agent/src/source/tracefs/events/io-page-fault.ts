// iommu:io_page_fault (include/trace/events/iommu.h; every architecture, emitted by
// report_iommu_fault(), which SMMUv3 SVA faults do not go through): `__string device`,
// `__string driver`, `u64 iova`, `int flags` (bit 0 = write), printed as
// "IOMMU:%s %s iova=0x%016llx flags=0x%04x" (driver, device).
//
// Mapped to a synthetic F_TRANSLATION record (see translation-fault.ts): SMMU name = the
// device name, SID = its PCI requester id (0 for non-PCI devices), no PASID, RnW = !write,
// InputAddr = iova.
import type { EventBlockBuilder } from '../../../../../proto/event-block';
import type { EventFormat, FormatField } from '../format';
import type { DecoderFamily, RecordDecoder } from './decoder';
import {
  intField,
  NameCache,
  parseHex64,
  readInt,
  type StringField,
  stringField,
  stringRange,
  type U64Field,
  u64Field,
} from './fields';
import { pciStreamId, writeTranslationFault } from './translation-fault';

const TEXT = /^IOMMU:(\S*) (\S+) iova=(0x[0-9a-fA-F]+) flags=(0x[0-9a-fA-F]+)/;
const IOMMU_FAULT_WRITE = 1;

class IoPageFaultDecoder implements RecordDecoder {
  private readonly device: StringField;
  private readonly iova: U64Field;
  private readonly flags: FormatField;
  private readonly minLen: number;
  private readonly devices = new NameCache<number>(pciStreamId);
  private readonly range = { start: 0, end: 0 };
  private readonly hex = { lo: 0, hi: 0 };

  constructor(
    format: EventFormat,
    readonly event: string,
  ) {
    this.device = stringField(format, event, 'device');
    this.iova = u64Field(format, event, 'iova');
    this.flags = intField(format, event, 'flags');
    this.minLen = Math.max(this.device.offset + 4, this.iova.offset + 8, this.flags.offset + this.flags.size);
  }

  decodeBinary(
    bytes: Buffer,
    words: Uint32Array,
    off: number,
    len: number,
    out: EventBlockBuilder,
    offsetNs: number,
  ): boolean {
    if (len < this.minLen || !stringRange(bytes, off, len, this.device, this.range)) return false;
    this.devices.lookup(bytes, this.range.start, this.range.end);
    const flags = readInt(bytes, off + this.flags.offset, this.flags);
    let lo: number;
    let hi: number;
    if (this.iova.word >= 0) {
      lo = words[(off >>> 2) + this.iova.word];
      hi = words[(off >>> 2) + this.iova.word + 1];
    } else {
      lo = bytes.readUInt32LE(off + this.iova.offset);
      hi = bytes.readUInt32LE(off + this.iova.offset + 4);
    }
    this.append(out, offsetNs, flags, lo, hi);
    return true;
  }

  decodeText(body: string, out: EventBlockBuilder, offsetNs: number): boolean {
    const m = TEXT.exec(body);
    if (!m || !parseHex64(m[3], this.hex)) return false;
    const flags = Number.parseInt(m[4].slice(2), 16);
    this.devices.lookupString(m[2]);
    this.append(out, offsetNs, flags, this.hex.lo, this.hex.hi);
    return true;
  }

  private append(out: EventBlockBuilder, offsetNs: number, flags: number, lo: number, hi: number): void {
    const w = out.appendOffset(offsetNs, out.smmuId(this.devices.name));
    const write = (flags & IOMMU_FAULT_WRITE) !== 0;
    writeTranslationFault(out.wordArray, w, this.devices.value, false, 0, !write, false, false, 0, lo, hi);
  }
}

export const ioPageFault: DecoderFamily = {
  event: 'iommu:io_page_fault',
  kernelSupport:
    'CONFIG_IOMMU_API (the iommu trace events); only IOMMU drivers that call report_iommu_fault() emit it',
  create: (format, event) => new IoPageFaultDecoder(format, event),
};
