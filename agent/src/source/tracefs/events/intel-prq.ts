// intel_iommu:prq_report (drivers/iommu/intel/trace.h): one PCIe page request seen by the
// VT-d page request queue. Fields `u64 dw0..dw3`, `unsigned long seq`, strings `iommu`,
// `dev` and a dynamic `buff`; printed as "%s/%s seq# %ld: rid=0x%llx addr=0x%llx %c%c%c%c%c
// pasid=0x%llx index=0x%llx" (iommu, dev, then the decoded descriptor).
//
// Descriptor bits (struct page_req_dsc, drivers/iommu/intel/prq.c):
//   dw0: type 7:0, pasid_present 8, priv_data_present 9, rid 31:16, pasid 51:32,
//        exe_req 52, pm_req (privileged) 53
//   dw1: rd_req 0, wr_req 1, lpig (last page in group) 2, prg_index 11:3, addr 63:12
//
// Mapped to a synthetic F_TRANSLATION record (see translation-fault.ts): SMMU name = the
// IOMMU ("dmar0"), SID = rid, SSV/SSID = pasid_present/pasid, RnW = !wr_req, InD = exe_req,
// PnU = pm_req, STAG = prg_index, InputAddr = dw1 with bits 11:0 cleared. The text form
// prints no pasid_present bit: there SSV is taken as pasid != 0.
import type { EventBlockBuilder } from '../../../../../proto/event-block';
import type { EventFormat } from '../format';
import type { DecoderFamily, RecordDecoder } from './decoder';
import { NameCache, type StringField, stringField, stringRange, type U64Field, u64Field } from './fields';
import { writeTranslationFault } from './translation-fault';

const TEXT =
  /^(\S+?)\/(\S*) seq# -?\d+: rid=0x([0-9a-fA-F]+) addr=0x([0-9a-fA-F]+) ([r-])([w-])([x-])([p-])([l-]) pasid=0x([0-9a-fA-F]+) index=0x([0-9a-fA-F]+)/;

class IntelPrqDecoder implements RecordDecoder {
  private readonly dw0: U64Field;
  private readonly dw1: U64Field;
  private readonly iommu: StringField;
  private readonly minLen: number;
  private readonly names = new NameCache<undefined>(() => undefined);
  private readonly range = { start: 0, end: 0 };

  constructor(
    format: EventFormat,
    readonly event: string,
  ) {
    this.dw0 = u64Field(format, event, 'dw0');
    this.dw1 = u64Field(format, event, 'dw1');
    this.iommu = stringField(format, event, 'iommu');
    this.minLen = Math.max(this.dw0.offset + 8, this.dw1.offset + 8, this.iommu.offset + 4);
  }

  decodeBinary(
    bytes: Buffer,
    words: Uint32Array,
    off: number,
    len: number,
    out: EventBlockBuilder,
    offsetNs: number,
  ): boolean {
    if (len < this.minLen || !stringRange(bytes, off, len, this.iommu, this.range)) return false;
    this.names.lookup(bytes, this.range.start, this.range.end);
    const d0lo = wordOf(bytes, words, off, this.dw0, 0);
    const d0hi = wordOf(bytes, words, off, this.dw0, 1);
    const d1lo = wordOf(bytes, words, off, this.dw1, 0);
    const d1hi = wordOf(bytes, words, off, this.dw1, 1);
    const w = out.appendOffset(offsetNs, out.smmuId(this.names.name));
    writeTranslationFault(
      out.wordArray,
      w,
      d0lo >>> 16, // rid
      (d0lo & (1 << 8)) !== 0, // pasid present
      d0hi & 0xfffff, // pasid 51:32
      (d1lo & 2) === 0, // read unless write requested
      (d0hi & (1 << 20)) !== 0, // exe_req, bit 52
      (d0hi & (1 << 21)) !== 0, // pm_req, bit 53
      (d1lo >>> 3) & 0x1ff, // prg_index
      (d1lo & ~0xfff) >>> 0,
      d1hi,
    );
    return true;
  }

  decodeText(body: string, out: EventBlockBuilder, offsetNs: number): boolean {
    const m = TEXT.exec(body);
    if (!m) return false;
    const page = BigInt(`0x${m[4]}`) << 12n;
    const pasid = Number.parseInt(m[10], 16);
    this.names.lookupString(m[1]);
    const w = out.appendOffset(offsetNs, out.smmuId(this.names.name));
    writeTranslationFault(
      out.wordArray,
      w,
      Number.parseInt(m[3], 16),
      pasid !== 0,
      pasid,
      m[6] !== 'w',
      m[7] === 'x',
      m[8] === 'p',
      Number.parseInt(m[11], 16),
      Number(page & 0xffffffffn),
      Number((page >> 32n) & 0xffffffffn),
    );
    return true;
  }
}

/** Low (half 0) or high (half 1) u32 of a u64 field of the record at `off`. */
function wordOf(bytes: Buffer, words: Uint32Array, off: number, f: U64Field, half: 0 | 1): number {
  return f.word >= 0 ? words[(off >>> 2) + f.word + half] : bytes.readUInt32LE(off + f.offset + 4 * half);
}

export const intelPrq: DecoderFamily = {
  event: 'intel_iommu:prq_report',
  kernelSupport:
    'CONFIG_INTEL_IOMMU (the intel_iommu trace events) and CONFIG_INTEL_IOMMU_SVM for page requests ' +
    'to be reported (an Intel VT-d IOMMU in scalable mode with PRI-capable devices)',
  create: (format, event) => new IntelPrqDecoder(format, event),
};
