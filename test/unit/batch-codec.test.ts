import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Long from 'long';
import * as protobuf from 'protobufjs';
import {
  BATCH_FIELDS,
  type Batch,
  BatchDecodeError,
  COLUMN_FIELDS,
  decodeBatch,
  encodeBatch,
  FIELD_CODING,
  u64Long,
  WORD_CODING,
} from '../../proto/batch-codec';
import { VarintRun } from '../../proto/batch-read';
import { EventBlockBuilder, timestampNs, word64 } from '../../proto/event-block';
import { FIELD_COLUMN_FIELDS } from '../../proto/field-columns';
import { LossReason, v1 } from '../../proto/index';
import { ByteWriter } from '../../proto/wire';
import { modelBatch } from '../support/batches';
import { repoRoot } from '../support/paths';
import { rng } from '../support/rng';

const M64 = (1n << 64n) - 1n;

function randomWord(r: () => number): bigint {
  const pick = r();
  if (pick < 0.1) return 0n;
  if (pick < 0.2) return M64;
  if (pick < 0.3) return 1n << 63n;
  return (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
}

function randomBatch(seed: number, n: number, smmus: string[]): Batch {
  const r = rng(seed);
  const b = new EventBlockBuilder(4);
  let ts = 1_790_000_000_000_000_000n;
  for (let i = 0; i < n; i++) {
    ts += BigInt(Math.floor((r() - 0.2) * 5_000_000)); // sometimes backwards
    b.push(ts, smmus[Math.floor(r() * smmus.length)], [
      randomWord(r),
      randomWord(r),
      randomWord(r),
      randomWord(r),
    ]);
  }
  return modelBatch('node-a', 7, b.finish(), {
    agentId: 'agent-1',
    epoch: 42,
    lost: new Map([[LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 3]]),
    createdUnixNs: 1_790_000_000_123_456_789n,
  });
}

/** The same batch built with the generated classes, coding columns with bigint arithmetic. */
function generatedEncoding(b: Batch): Uint8Array {
  const e = b.events;
  const cols = { ts: [] as Long[], x0: [] as Long[], x1: [] as Long[], d2: [] as Long[], x3: [] as Long[] };
  const prev = [0n, 0n, 0n, 0n];
  let prevTs = 0n;
  const L = (v: bigint, signed: boolean) =>
    Long.fromString((signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v)).toString(), !signed);
  for (let i = 0; i < e.count; i++) {
    const t = timestampNs(e, i);
    cols.ts.push(L(t - prevTs, true));
    prevTs = t;
    const w = [0, 1, 2, 3].map((k) => word64(e, i, k));
    cols.x0.push(L(w[0] ^ prev[0], false));
    cols.x1.push(L(w[1] ^ prev[1], false));
    cols.d2.push(L(w[2] - prev[2], true));
    cols.x3.push(L(w[3] ^ prev[3], false));
    for (let k = 0; k < 4; k++) prev[k] = w[k];
  }
  return v1.EventBatch.encode({
    agent: { host: b.host, agent_id: b.agentId, epoch: u64Long(b.epoch) },
    sequence: u64Long(b.sequence),
    source: { kind: b.sourceKind, event: b.sourceEvent },
    lost: [...b.lost].map(([reason, count]) => ({ reason, count })),
    events: {
      count: e.count,
      smmu_names: [...e.smmuNames],
      smmu_index: e.smmuNames.length > 1 ? [...e.smmuIndex] : [],
      timestamp_delta_ns: cols.ts,
      evt0_xor: cols.x0,
      evt1_xor: cols.x1,
      evt2_delta: cols.d2,
      evt3_xor: cols.x3,
    },
    created_unix_ns: Long.fromString(b.createdUnixNs.toString(), true),
  }).finish();
}

function assertSameEvents(a: Batch, b: Batch): void {
  assert.equal(b.events.count, a.events.count);
  for (let i = 0; i < a.events.count; i++) {
    assert.equal(timestampNs(b.events, i), timestampNs(a.events, i), `timestamp of event ${i}`);
    assert.equal(b.events.smmuNames[b.events.smmuIndex[i]], a.events.smmuNames[a.events.smmuIndex[i]]);
    for (let k = 0; k < 4; k++)
      assert.equal(word64(b.events, i, k), word64(a.events, i, k), `evt${k} of event ${i}`);
  }
}

test('round trip keeps every word, timestamp and SMMU name exactly (both codings)', () => {
  for (const [seed, n, smmus, coding] of [
    [1, 1, ['arm-smmu-v3.0.auto'], WORD_CODING],
    [2, 500, ['arm-smmu-v3.0.auto'], WORD_CODING],
    [3, 777, ['smmu0', 'smmu1', 'smmu2'], WORD_CODING],
    [1, 1, ['arm-smmu-v3.0.auto'], FIELD_CODING],
    [2, 500, ['arm-smmu-v3.0.auto'], FIELD_CODING],
    [3, 777, ['smmu0', 'smmu1', 'smmu2'], FIELD_CODING],
  ] as const) {
    const b = randomBatch(seed, n, [...smmus]);
    const d = decodeBatch(encodeBatch(b, coding));
    assert.deepEqual(
      [d.host, d.agentId, d.epoch, d.sequence, d.sourceKind, d.sourceEvent],
      [b.host, b.agentId, b.epoch, b.sequence, b.sourceKind, b.sourceEvent],
    );
    assert.deepEqual([...d.lost], [...b.lost]);
    assert.equal(d.createdUnixNs, b.createdUnixNs);
    assertSameEvents(b, d);
  }
});

test('word coding: encoder output is byte-identical to the generated protobufjs encoder', () => {
  for (const [seed, smmus] of [
    [11, ['arm-smmu-v3.0.auto']],
    [12, ['a', 'b']],
  ] as const) {
    const b = randomBatch(seed, 300, [...smmus]);
    assert.deepEqual(Buffer.from(encodeBatch(b, WORD_CODING)), Buffer.from(generatedEncoding(b)));
  }
});

test('the generated decoder reads what the fast encoder wrote', () => {
  const b = randomBatch(21, 50, ['x']);
  const g = v1.EventBatch.decode(encodeBatch(b, WORD_CODING));
  assert.equal(g.agent?.host, 'node-a');
  assert.equal(Long.fromValue(g.sequence).toNumber(), 7);
  assert.equal(g.events?.count, 50);
  const first = Long.fromValue(g.events?.evt0_xor?.[0] ?? 0)
    .toUnsigned()
    .toString();
  assert.equal(first, word64(b.events, 0, 0).toString());
});

test('an empty batch (losses only) round-trips', () => {
  const b: Batch = {
    ...randomBatch(5, 0, ['x']),
    lost: new Map([[LossReason.LOSS_REASON_SPOOL_FULL, 1000]]),
  };
  const d = decodeBatch(encodeBatch(b));
  assert.equal(d.events.count, 0);
  assert.equal(d.lost.get(LossReason.LOSS_REASON_SPOOL_FULL), 1000);
});

test('a replacement for a damaged batch: byte-identical to the generated encoder, read back by both', () => {
  const b: Batch = {
    ...randomBatch(6, 0, ['x']),
    lost: new Map([[LossReason.LOSS_REASON_SPOOL_CORRUPT, 4096]]),
    createdUnixNs: 0n,
    replacesDamaged: true,
  };
  const bytes = encodeBatch(b);
  const generated = v1.EventBatch.encode({
    agent: { host: b.host, agent_id: b.agentId, epoch: u64Long(b.epoch) },
    sequence: u64Long(b.sequence),
    source: { kind: b.sourceKind, event: b.sourceEvent },
    lost: [{ reason: LossReason.LOSS_REASON_SPOOL_CORRUPT, count: 4096 }],
    replaces_damaged: true,
  }).finish();
  assert.deepEqual(Buffer.from(bytes), Buffer.from(generated));
  assert.equal(decodeBatch(bytes).replacesDamaged, true);
  assert.equal(v1.EventBatch.decode(bytes).replaces_damaged, true);
  assert.equal(decodeBatch(encodeBatch({ ...b, replacesDamaged: false })).replacesDamaged, undefined);
  // Any non-zero varint is true, as protobuf reads a bool.
  const two = Buffer.from(bytes);
  two[two.length - 1] = 2;
  assert.equal(decodeBatch(two).replacesDamaged, true);
});

test('field numbers and types of the codec match the .proto', () => {
  const root = new protobuf.Root().loadSync(join(repoRoot(), 'proto/smmu/telemetry/v1/telemetry.proto'), {
    keepCase: true,
  });
  const batch = root.lookupType('smmu.telemetry.v1.EventBatch');
  for (const [name, id] of Object.entries(BATCH_FIELDS))
    assert.equal(batch.fields[name]?.id, id, `EventBatch.${name}`);
  const cols = root.lookupType('smmu.telemetry.v1.EventColumns');
  for (const [name, id] of Object.entries(COLUMN_FIELDS))
    assert.equal(cols.fields[name]?.id, id, `EventColumns.${name}`);
  const types = Object.fromEntries(
    Object.values(cols.fields).map((f) => [f.name, `${f.repeated ? 'repeated ' : ''}${f.type}`]),
  );
  assert.deepEqual(types, {
    count: 'uint32',
    smmu_names: 'repeated string',
    smmu_index: 'repeated uint32',
    timestamp_delta_ns: 'repeated sint64',
    evt0_xor: 'repeated uint64',
    evt1_xor: 'repeated uint64',
    evt2_delta: 'repeated sint64',
    evt3_xor: 'repeated uint64',
    coding: 'uint32',
    timestamp_ns: 'sint64',
    timestamp_unit_ns: 'uint64',
    timestamp_delta_units: 'repeated sint64',
    stream_smmu: 'repeated uint32',
    stream_word0_hi: 'repeated uint32',
    stream_ssid: 'repeated uint32',
    stream_index: 'repeated uint32',
    shape_word0_lo: 'repeated uint32',
    shape_word1_hi: 'repeated uint64',
    shape_index: 'repeated uint32',
    stag: 'repeated uint32',
    addr_page_delta: 'repeated sint64',
    addr_offset: 'repeated uint32',
    evt3_delta: 'repeated sint64',
  });
  for (const [name, id] of Object.entries(FIELD_COLUMN_FIELDS))
    assert.equal(cols.fields[name]?.id, id, `EventColumns.${name}`);
});

for (const coding of [WORD_CODING, FIELD_CODING] as const)
  test(`malformed input gives BatchDecodeError with a reason, never a crash (coding ${coding})`, () => {
    const b = randomBatch(31, 40, ['x', 'y']);
    const good = encodeBatch(b, coding);
    // A cut at a field boundary of the envelope can leave a valid, shorter message (protobuf has
    // no end marker; gRPC framing guards against that). A cut inside the events field cannot.
    const noEvents = { ...b, events: new EventBlockBuilder(1).finish() };
    const eventsStart = encodeBatch({ ...noEvents, createdUnixNs: 0n }).length;
    const eventsEnd = good.length - (encodeBatch(noEvents).length - eventsStart);
    for (let cut = 1; cut < good.length; cut++) {
      const inside = cut > eventsStart && cut < eventsEnd;
      try {
        decodeBatch(good.subarray(0, cut));
        assert.ok(!inside, `a cut at ${cut}, inside the events, was not detected`);
      } catch (err) {
        assert.ok(err instanceof BatchDecodeError, `truncated at ${cut}: ${(err as Error).stack}`);
      }
    }
    const r = rng(99);
    for (let i = 0; i < 2000; i++) {
      const junk = new Uint8Array(1 + Math.floor(r() * 200)).map(() => Math.floor(r() * 256));
      try {
        decodeBatch(junk);
      } catch (err) {
        assert.ok(err instanceof BatchDecodeError, `random input ${i}: ${(err as Error).stack}`);
      }
    }
    assert.throws(() => decodeBatch(good, { maxEvents: 39 }), /40 events exceed the limit of 39/);
    const noHost = encodeBatch({ ...randomBatch(3, 2, ['x']), host: '' });
    assert.throws(() => decodeBatch(noHost), /without agent host/);
  });

test('a column shorter than count is rejected', () => {
  const b = randomBatch(41, 3, ['x']);
  const g = v1.EventBatch.decode(encodeBatch(b, WORD_CODING));
  const ev = g.events!;
  ev.evt2_delta = (ev.evt2_delta ?? []).slice(0, 2);
  assert.throws(() => decodeBatch(v1.EventBatch.encode(g).finish()), /evt2_delta has 2 elements, count is 3/);
});

/** The error message of decoding `bytes`, or undefined when it decodes. */
function decodeError(bytes: Uint8Array, structureOnly: boolean): string | undefined {
  try {
    decodeBatch(bytes, { maxEvents: 1 << 20, structureOnly });
    return undefined;
  } catch (err) {
    assert.ok(err instanceof BatchDecodeError, (err as Error).stack);
    return err.message;
  }
}

for (const coding of [WORD_CODING, FIELD_CODING] as const)
  test(`the structure-only check accepts and rejects exactly what a full decode does (coding ${coding})`, () => {
    const b = randomBatch(51, 60, ['x', 'y', 'z']);
    const good = encodeBatch(b, coding);
    const checked = decodeBatch(good, { maxEvents: 1 << 20, structureOnly: true });
    assert.equal(checked.events.count, 60);
    const full = decodeBatch(good);
    assert.deepEqual(checked.events.smmuNames, full.events.smmuNames);
    assert.deepEqual({ ...checked, events: undefined }, { ...full, events: undefined });
    const variants: Uint8Array[] = [];
    for (let cut = 1; cut < good.length; cut++) variants.push(good.subarray(0, cut));
    const r = rng(7);
    for (let i = 0; i < 3000; i++) {
      const v = good.slice();
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) v[Math.floor(r() * v.length)] = Math.floor(r() * 256);
      variants.push(v);
    }
    for (let i = 0; i < 1000; i++)
      variants.push(new Uint8Array(1 + Math.floor(r() * 200)).map(() => Math.floor(r() * 256)));
    const g = v1.EventBatch.decode(good);
    const short = g.events as NonNullable<typeof g.events>;
    short.evt3_xor = (short.evt3_xor ?? []).slice(0, 59);
    variants.push(v1.EventBatch.encode(g).finish());
    let rejected = 0;
    for (const [i, v] of variants.entries()) {
      const full = decodeError(v, false);
      const structure = decodeError(v, true);
      assert.equal(
        structure === undefined,
        full === undefined,
        `variant ${i}: full "${full}", structure-only "${structure}"`,
      );
      if (full !== undefined) rejected++;
    }
    assert.ok(rejected > 1000, `only ${rejected} of ${variants.length} variants were malformed`);
  });

test('a run reads one-byte and longer varints alike, and refuses more or fewer elements than expected', () => {
  const values: [number, number][] = [
    [0, 0],
    [0x7f, 0],
    [0x80, 0],
    [0xffffffff, 0],
    [5, 1],
    [0xffffffff, 0xffffffff],
    [1, 0],
  ];
  const w = new ByteWriter();
  for (const [lo, hi] of values) w.varint64(lo, hi);
  const bytes = w.finish();
  const run = new VarintRun('f');
  const read = (expected: number) => {
    run.reset().add(0, bytes.length);
    run.seal(bytes);
    run.expect(expected, 'count');
    const got: [number, number][] = [];
    for (let i = 0; i < expected; i++) got.push([run.next(), run.hi]);
    run.end();
    return got;
  };
  assert.deepEqual(read(values.length), values);
  assert.equal(run.count(), values.length);
  assert.throws(
    () => read(values.length - 1),
    (err) => err instanceof BatchDecodeError && err.message === 'f has 7 elements, count is 6',
  );
  assert.throws(
    () => read(values.length + 1),
    (err) => err instanceof BatchDecodeError && err.message === 'f has 7 elements, count is 8',
  );
  // A varint cut by the field's end is truncated, even when the buffer goes on.
  run.reset().add(0, 3);
  assert.throws(() => run.seal(bytes), /f: truncated varint/);
});
