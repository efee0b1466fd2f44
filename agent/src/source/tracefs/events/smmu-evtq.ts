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
  parseHex64,
  type StringField,
  stringField,
  stringRange,
  type U64Field,
  u64Field,
} from './fields';

const PROPOSED_TEXT = /^(\S*) evt: (0x[0-9a-fA-F]+) (0x[0-9a-fA-F]+) (0x[0-9a-fA-F]+) (0x[0-9a-fA-F]+)\s*$/;
const KEY_VALUE = /(\w+)=("[^"]*"|\S+)/g;

class SmmuEvtqDecoder implements RecordDecoder {
  private readonly evt: readonly U64Field[];
  private readonly name: StringField;
  private readonly minLen: number;
  private readonly names = new NameCache<undefined>(() => undefined);
  private readonly range = { start: 0, end: 0 };
  private readonly hex = { lo: 0, hi: 0 };

  constructor(
    format: EventFormat,
    readonly event: string,
  ) {
    this.evt = [0, 1, 2, 3].map((i) => u64Field(format, event, `evt${i}`));
    const str =
      format.fields.find((f) => f.name === 'iommu') ?? format.fields.find((f) => !f.common && f.isString);
    if (!str) throw badFormat(event, 'no string field naming the SMMU (iommu)');
    this.name = stringField(format, event, str.name);
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
    let name: string | undefined;
    const hex: (string | undefined)[] = [undefined, undefined, undefined, undefined];
    const m = PROPOSED_TEXT.exec(body);
    if (m) {
      name = m[1];
      for (let i = 0; i < 4; i++) hex[i] = m[i + 2];
    } else {
      for (const kv of body.matchAll(KEY_VALUE)) {
        const k = kv[1];
        const v = kv[2];
        if (k === this.name.name) name = v.startsWith('"') ? v.slice(1, -1) : v;
        else if (k.length === 4 && k.startsWith('evt') && k[3] >= '0' && k[3] <= '3') hex[Number(k[3])] = v;
      }
    }
    if (name === undefined || hex.some((h) => h === undefined)) return false;
    const words = new Uint32Array(8);
    for (let i = 0; i < 4; i++) {
      if (!parseHex64(hex[i] as string, this.hex)) return false;
      words[2 * i] = this.hex.lo;
      words[2 * i + 1] = this.hex.hi;
    }
    this.names.lookupString(name);
    const w = out.appendOffset(offsetNs, out.smmuId(this.names.name));
    out.wordArray.set(words, w);
    return true;
  }
}

export const smmuEvtq: DecoderFamily = {
  event: 'arm_smmu_v3:smmu_evtq_event',
  kernelSupport:
    'the arm_smmu_v3:smmu_evtq_event tracepoint, from the proposed arm-smmu-v3 tracepoint patch ' +
    '(posted June 2026, not in mainline): a kernel with that patch applied and CONFIG_ARM_SMMU_V3',
  create: (format, event) => new SmmuEvtqDecoder(format, event),
};
