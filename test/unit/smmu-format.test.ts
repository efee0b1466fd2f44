import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatEventLine, formatKernelLog, formatSummary, formatTraceLine } from '../../common/smmu/format';
import { EventBlockBuilder } from '../../proto/event-block';
import { GOLDEN_VECTORS } from '../fixtures/smmu/golden-vectors';

function vector(name: string, nth = 0) {
  const v = GOLDEN_VECTORS.filter((g) => g.expect.name === name)[nth];
  const words = new Uint32Array(8);
  v.evt.forEach((x, k) => {
    words[2 * k] = Number(x & 0xffffffffn);
    words[2 * k + 1] = Number(x >> 32n);
  });
  return words;
}

test('kernel log of a stalled F_TRANSLATION matches arm_smmu_dump_event', () => {
  assert.deepEqual(formatKernelLog(vector('F_TRANSLATION'), 0), [
    'event 0x10 received:',
    '\t0x0000010000005810',
    '\t0x0000020880001234',
    '\t0x0000ffffa1234040',
    '\t0x0000000000000000',
    'event: F_TRANSLATION client: (unassigned sid) sid: 0x100 ssid: 0x5 iova: 0xffffa1234040 ipa: 0',
    'unpriv data read s1 "Input address caused fault" stall stag: 0x1234',
  ]);
});

test('kernel log: table-walk permission fault, fetch faults, events Linux does not name', () => {
  const perm = formatKernelLog(vector('F_PERMISSION'), 0, { client: '0000:01:02.0' });
  assert.equal(
    perm[5],
    'event: F_PERMISSION client: 0000:01:02.0 sid: 0x10 ssid: 0x20 iova: 0xaaaabbbbc000 ipa: 0',
  );
  assert.equal(perm[6], 'unpriv data write s1 "Stage 1 translation table fetch" ttd_read stall stag: 0');
  const addrSize = formatKernelLog(vector('F_ADDR_SIZE'), 0);
  assert.equal(addrSize[6], 'priv inst write s2 "CD fetch" stag: 0');
  assert.deepEqual(formatKernelLog(vector('F_CD_FETCH'), 0).slice(5), [
    'event: F_CD_FETCH client: (unassigned sid) sid: 0x110 ssid: 0x42 fetch_addr: 0x8080001080',
  ]);
  assert.deepEqual(formatKernelLog(vector('F_WALK_EABT'), 0).slice(5), [
    'event: UNKNOWN client: (unassigned sid) sid: 0x108 ssid: 0x3',
  ]);
  assert.deepEqual(formatKernelLog(vector('C_BAD_STREAMID'), 0).slice(5), [
    'event: C_BAD_STREAMID client: (unassigned sid) sid: 0xff08 ssid: 0',
  ]);
});

test('one-line form joins the raw words and the decoded fields, with architecture names', () => {
  assert.equal(
    formatEventLine(vector('F_WALK_EABT'), 0),
    'event 0x0b received: 0x000001080000380b 0x0000010800000000 0x00009945a3adc000 0x0000008100000008 | event: F_WALK_EABT client: (unassigned sid) sid: 0x108 ssid: 0x3',
  );
  assert.equal(
    formatEventLine(vector('F_WALK_EABT'), 0, { linuxNames: true }).includes('event: UNKNOWN '),
    true,
  );
  assert.equal(
    formatSummary(vector('F_TRANSLATION'), 0),
    'F_TRANSLATION sid=0x100 ssid=0x5 read addr=0xffffa1234040 stall stag=0x1234',
  );
  assert.equal(formatSummary(vector('C_BAD_SUBSTREAMID'), 0), 'C_BAD_SUBSTREAMID sid=0x208 ssid=0xfffff');
});

test('trace line: timestamp in s.us, event, SMMU name and the four words', () => {
  const b = new EventBlockBuilder();
  b.push(1_700_000_000_123_456_789n, 'arm-smmu-v3.1.auto', [
    0x0000010000005810n,
    0x0000020880001234n,
    0xffffa1234040n,
    0n,
  ]);
  const block = b.finish();
  assert.equal(
    formatTraceLine(block, 0, { event: 'model:smmu_evtq_event' }),
    '1700000000.123456: model:smmu_evtq_event: arm-smmu-v3.1.auto evt: 0x0000010000005810 0x0000020880001234 0x0000ffffa1234040 0x0000000000000000',
  );
  assert.match(
    formatTraceLine(block, 0, { decode: true }),
    /: smmu_evtq_event: .* {2}# F_TRANSLATION sid=0x100 ssid=0x5 read/,
  );
});
