import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { TracefsError } from '../../agent/src/source/tracefs/errors';
import { decoderFamily, PRIMARY_EVENT } from '../../agent/src/source/tracefs/events/index';
import { pciStreamId } from '../../agent/src/source/tracefs/events/translation-fault';
import { type EventFormat, findField, parseEventFormat } from '../../agent/src/source/tracefs/format';
import { parseTraceLine } from '../../agent/src/source/tracefs/text-reader';
import { EventBlockBuilder, word64 } from '../../proto/event-block';
import { expectedName, expectedRecord, tracefsFixture } from '../support/uprobe-records';

const fmt = (name: string) => parseEventFormat(readFileSync(tracefsFixture(name), 'utf8'));

/** Builds a record payload laid out as `format` says: numbers, bigints and strings by field name. */
function record(format: EventFormat, values: Record<string, bigint | number | string>): Buffer {
  const fixed = Math.max(...format.fields.map((f) => f.offset + f.size));
  const strings = Object.values(values).filter((v) => typeof v === 'string') as string[];
  const buf = Buffer.alloc((fixed + strings.reduce((s, v) => s + v.length + 1, 0) + 3) & ~3);
  buf.writeUInt16LE(format.id, 0);
  let tail = fixed;
  for (const [name, v] of Object.entries(values)) {
    const f = findField(format, name);
    if (!f) throw new Error(`no field ${name}`);
    if (typeof v === 'string') {
      buf.write(`${v}\0`, tail, 'latin1');
      buf.writeUInt32LE(((v.length + 1) << 16) | tail, f.offset);
      tail += v.length + 1;
    } else if (f.size === 8) buf.writeBigUInt64LE(BigInt(v), f.offset);
    else buf.writeInt32LE(Number(v), f.offset);
  }
  return buf;
}

function decode(event: string, format: EventFormat, payload: Buffer, family = event) {
  const d = decoderFamily(family)?.create(format, event);
  assert.ok(d);
  const aligned = Buffer.from(new Uint8Array(payload)); // own, aligned ArrayBuffer
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.length >>> 2);
  const out = new EventBlockBuilder(4);
  out.setBase(1000n);
  const ok = d.decodeBinary(aligned, words, 0, aligned.length, out, 5);
  return { ok, block: out.finish() };
}

const words = (b: ReturnType<typeof decode>['block'], i = 0) => [0, 1, 2, 3].map((w) => word64(b, i, w));

describe('arm_smmu_v3:smmu_evtq_event decoder', () => {
  const evt = [0x0000_0042_0000_1810n, 0x8_8000_0007n, 0xffff_8000_1234_5000n, 0x1234_5000n];

  for (const [file, label] of [
    ['smmu_evtq_event.proposed.handmade.format', 'proposed tracepoint layout'],
    ['smmu_evtq_event.uprobe.format', 'uprobe stand-in layout'],
  ]) {
    it(`copies evt0..evt3 and the SMMU name (${label})`, () => {
      const f = fmt(file);
      const { ok, block } = decode(
        PRIMARY_EVENT,
        f,
        record(f, { evt0: evt[0], evt1: evt[1], evt2: evt[2], evt3: evt[3], iommu: 'arm-smmu-v3.0.auto' }),
      );
      assert.ok(ok);
      assert.equal(block.count, 1);
      assert.deepEqual(words(block), evt);
      assert.deepEqual(block.smmuNames, ['arm-smmu-v3.0.auto']);
      assert.equal(block.offsetNs[0], 5);
    });
  }

  it('reads the proposed print format and the uprobe print format', () => {
    const d = smmu();
    const out = new EventBlockBuilder(4);
    out.setBase(0n);
    assert.ok(
      d.decodeText(
        'arm-smmu-v3.0.auto evt: 0x0000004200001810 0x0000000880000007 0xffff800012345000 0x0000000012345000',
        out,
        1,
      ),
    );
    assert.ok(
      d.decodeText(
        '(0x55d0c0de11d0) evt0=0x4200001810 evt1=0x880000007 evt2=0xffff800012345000 evt3=0x12345000 iommu="smmu1"',
        out,
        2,
      ),
    );
    assert.equal(d.decodeText('something else entirely', out, 3), false);
    const b = out.finish();
    assert.equal(b.count, 2);
    assert.deepEqual(words(b, 0), evt);
    assert.deepEqual(words(b, 1), evt);
    assert.deepEqual(b.smmuNames, ['arm-smmu-v3.0.auto', 'smmu1']);
  });

  it('takes upper-case hex digits and refuses every byte that is not a hex digit', () => {
    const d = smmu();
    const out = new EventBlockBuilder(4);
    out.setBase(0n);
    const line = (w2: string) =>
      `smmu0 evt: 0x0000004200001810 0x0000000880000007 0x${w2} 0x0000000012345000`;
    assert.ok(d.decodeText(line('FFFF800012345000'), out, 0));
    assert.deepEqual(words(out.finish()), evt);
    // Bytes that differ from a digit by the 0x20 bit (0x10-0x19 are '0'-'9' | 0x20) and
    // neighbours of the digit ranges.
    for (const c of ['\x10', '\x19', '/', ':', '@', 'G', '`', 'g', ' '])
      assert.equal(d.decodeText(line(`ffff80001234500${c}`), out, 1), false, JSON.stringify(c));
    assert.equal(
      d.decodeText('(0x1) evt0=0x42000\x1810 evt1=0x1 evt2=0x1 evt3=0x1 iommu="smmu1"', out, 2),
      false,
    );
    assert.equal(out.finish().count, 0);
  });

  it('decodes every line of a trace_pipe text capture to the emitted records', () => {
    const d = smmu();
    const out = new EventBlockBuilder(32);
    out.setBase(0n);
    const lines = readFileSync(tracefsFixture('smmu-4k.trace.txt'), 'utf8').split('\n');
    let n = 0;
    for (const line of lines) {
      const p = parseTraceLine(line);
      if (!p) continue;
      assert.equal(p.event, 'smmu_evtq_event');
      assert.ok(d.decodeText(p.body, out, n++));
    }
    const b = out.finish();
    assert.equal(b.count, 20);
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(words(b, i), expectedRecord(i, 0x100n));
      assert.equal(b.smmuNames[b.smmuIndex[i]], expectedName(i, 'smmu0,arm-smmu-v3.1.auto,x'));
    }
  });

  it('refuses records whose string descriptor points outside the record', () => {
    const f = fmt('smmu_evtq_event.uprobe.format');
    const payload = record(f, { evt0: 1n, evt1: 2n, evt2: 3n, evt3: 4n, iommu: 'smmu0' });
    payload.writeUInt32LE((200 << 16) | 52, 48);
    const { ok, block } = decode(PRIMARY_EVENT, f, payload);
    assert.equal(ok, false);
    assert.equal(block.count, 0);
    assert.equal(decode(PRIMARY_EVENT, f, payload.subarray(0, 40)).ok, false);
  });

  it('names the missing field when a format does not fit', () => {
    const f = fmt('io_page_fault.format');
    assert.throws(
      () => decoderFamily(PRIMARY_EVENT)?.create(f, 'iommu:io_page_fault'),
      (e: unknown) => e instanceof TracefsError && e.code === 'BAD_FORMAT' && /no field evt0/.test(e.message),
    );
  });

  function smmu() {
    const d = decoderFamily(PRIMARY_EVENT)?.create(fmt('smmu_evtq_event.uprobe.format'), PRIMARY_EVENT);
    assert.ok(d);
    return d;
  }
});

// F_TRANSLATION (0x10), CLASS = IN (2 << 40), RnW bit 35, InD 34, PnU 33, SSV 11, SSID 31:12.
const CLASS_IN = 2n << 40n;

describe('iommu:io_page_fault decoder (synthetic F_TRANSLATION)', () => {
  const f = fmt('io_page_fault.format');

  it('maps a write fault of a PCI device', () => {
    const { ok, block } = decode(
      'iommu:io_page_fault',
      f,
      record(f, { device: '0000:03:00.1', driver: 'nvme', iova: 0xdead_b000n, flags: 1 }),
    );
    assert.ok(ok);
    assert.deepEqual(words(block), [0x10n | (0x0301n << 32n), CLASS_IN, 0xdead_b000n, 0n]);
    assert.deepEqual(block.smmuNames, ['0000:03:00.1']);
  });

  it('maps a read fault (RnW) and a platform device (SID 0); reads the text form', () => {
    const { block } = decode(
      'iommu:io_page_fault',
      f,
      record(f, { device: 'ff200000.dma', driver: 'pl330', iova: 0x1000n, flags: 0 }),
    );
    assert.deepEqual(words(block), [0x10n, CLASS_IN | (1n << 35n), 0x1000n, 0n]);
    const d = decoderFamily('iommu:io_page_fault')?.create(f, 'iommu:io_page_fault');
    const out = new EventBlockBuilder(2);
    out.setBase(0n);
    assert.ok(d?.decodeText('IOMMU:nvme 0001:03:00.1 iova=0x00000000deadb000 flags=0x0001', out, 0));
    const b = out.finish();
    assert.deepEqual(words(b), [0x10n | (0x1_0301n << 32n), CLASS_IN, 0xdead_b000n, 0n]);
    assert.deepEqual(b.smmuNames, ['0001:03:00.1']);
  });
});

describe('intel_iommu:prq_report decoder (synthetic F_TRANSLATION)', () => {
  const f = fmt('prq_report.handmade.format');
  // rid 0x1234 (bus 0x12, dev 6, fn 4), PASID 5 present, exec + priv; read, last, group 0x1a.
  const dw0 = (0x1234n << 16n) | (1n << 8n) | (5n << 32n) | (1n << 52n) | (1n << 53n);
  const dw1 = 1n | 4n | (0x1an << 3n) | 0x7f_1234_5000n;
  const expected = [
    0x10n | (1n << 11n) | (5n << 12n) | (0x1234n << 32n),
    0x1an | (1n << 33n) | (1n << 34n) | (1n << 35n) | CLASS_IN,
    0x7f_1234_5000n,
    0n,
  ];

  it('maps rid, PASID, exec/priv, read and the page address', () => {
    const { ok, block } = decode(
      'intel_iommu:prq_report',
      f,
      record(f, { dw0, dw1, dw2: 0n, dw3: 0n, seq: 3, iommu: 'dmar1', dev: '0000:12:06.4', buff: '' }),
    );
    assert.ok(ok);
    assert.deepEqual(words(block), expected);
    assert.deepEqual(block.smmuNames, ['dmar1']);
  });

  it('a write without PASID clears RnW and SSV', () => {
    const { block } = decode(
      'intel_iommu:prq_report',
      f,
      record(f, { dw0: 0x0008n << 16n, dw1: 2n | 0x4000n, iommu: 'dmar0', dev: 'x', buff: '' }),
    );
    assert.deepEqual(words(block), [0x10n | (0x8n << 32n), CLASS_IN, 0x4000n, 0n]);
  });

  it('reads the decoded text form', () => {
    const d = decoderFamily('intel_iommu:prq_report')?.create(f, 'intel_iommu:prq_report');
    const out = new EventBlockBuilder(2);
    out.setBase(0n);
    assert.ok(
      d?.decodeText(
        'dmar1/0000:12:06.4 seq# 3: rid=0x1234 addr=0x7f12345 r-xpl pasid=0x5 index=0x1a',
        out,
        0,
      ),
    );
    const b = out.finish();
    assert.deepEqual(words(b), expected);
    assert.deepEqual(b.smmuNames, ['dmar1']);
  });
});

describe('PCI stream ids', () => {
  it('turns PCI device names into segment << 16 | requester id', () => {
    assert.equal(pciStreamId('0000:00:1f.3'), 0xfb);
    assert.equal(pciStreamId('0000:03:00.1'), 0x301);
    assert.equal(pciStreamId('0002:81:1f.7'), 0x2_81ff);
    assert.equal(pciStreamId('03:00.1'), 0x301);
    assert.equal(pciStreamId('arm-smmu-v3.0.auto'), 0);
  });
});
