// EventColumns coding 2 (field columns): the fast encoder against a bigint reference of the
// formulas in telemetry.proto, a golden vector, round trips, and what readers of coding 0 do.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Long from 'long';
import {
  BATCH_FIELDS,
  type Batch,
  decodeBatch,
  encodeBatch,
  encodeColumns,
  FIELD_CODING,
  u64Long,
  WORD_CODING,
} from '../../proto/batch-codec';
import { type EventBlock, EventBlockBuilder, timestampNs, word64 } from '../../proto/event-block';
import { v1 } from '../../proto/index';
import { ByteReader, ByteWriter, WIRE_LEN, WIRE_VARINT } from '../../proto/wire';
import { modelBatch } from '../support/batches';
import { modelEvents } from '../support/model-stream';
import { rng } from '../support/rng';

const M64 = (1n << 64n) - 1n;

/** Events with SMMU-like fields (few streams and shapes, stalls, page walks) and, mixed in, random words. */
function events(seed: number, n: number, smmus: string[], tsStep = 1): EventBlock {
  const r = rng(seed);
  const b = new EventBlockBuilder(4);
  let ts = 1_790_000_000_000_000_000n;
  const big = () => (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
  let addr = 0x7f00_0000_0000n;
  let stag = 0xfff0n;
  for (let i = 0; i < n; i++) {
    ts += BigInt(Math.floor((r() - 0.2) * 5000)) * BigInt(tsStep); // sometimes backwards
    const wild = r() < 0.15;
    const sid = BigInt(0x100 + Math.floor(r() * 4));
    const ssid = BigInt(Math.floor(r() * 3));
    const stall = r() < 0.3;
    if (stall) stag = (stag + 1n) & 0xffffn;
    addr += r() < 0.7 ? 0x1000n : BigInt(Math.floor(r() * 2 ** 40)) - 2n ** 39n;
    const w = wild
      ? ([big(), r() < 0.5 ? M64 : big(), r() < 0.5 ? 0n : big(), big()] as const)
      : ([
          (sid << 32n) | (ssid << 12n) | 0x810n,
          (1n << 41n) | (stall ? (1n << 31n) | stag : 0n),
          BigInt.asUintN(64, addr),
          r() < 0.8 ? 0n : BigInt.asUintN(64, addr >> 3n),
        ] as const);
    b.push(ts, smmus[Math.floor(r() * smmus.length)], w);
  }
  return b.finish();
}

const batchOf = (e: EventBlock): Batch =>
  modelBatch('node-a', 9, e, { agentId: 'agent-1', epoch: 3, createdUnixNs: 1_790_000_000_000_000_001n });

/** The EventColumns of coding 2, computed with bigints straight from telemetry.proto's formulas. */
function referenceColumns(e: EventBlock) {
  const L = (v: bigint, signed: boolean) =>
    Long.fromString((signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v)).toString(), !signed);
  const c = {
    count: e.count,
    smmu_names: [...e.smmuNames],
    coding: 2,
    timestamp_ns: L(timestampNs(e, 0), true),
    timestamp_unit_ns: L(1n, false),
    timestamp_delta_units: [] as Long[],
    stream_smmu: [] as number[],
    stream_word0_hi: [] as number[],
    stream_ssid: [] as number[],
    stream_index: [] as number[],
    shape_word0_lo: [] as number[],
    shape_word1_hi: [] as Long[],
    shape_index: [] as number[],
    stag: [] as number[],
    addr_page_delta: [] as Long[],
    addr_offset: [] as number[],
    evt3_delta: [] as Long[],
  };
  const deltas: bigint[] = [];
  for (let i = 1; i < e.count; i++) deltas.push(timestampNs(e, i) - timestampNs(e, i - 1));
  const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
  const unit = deltas.reduce((g, d) => gcd(g, d < 0n ? -d : d), 0n) || 1n;
  c.timestamp_unit_ns = L(unit, false);
  c.timestamp_delta_units = deltas.map((d) => L(d / unit, true));
  const streams = new Map<string, { i: number; page: bigint; w3: bigint }>();
  const shapes = new Map<string, number>();
  const stags = new Map<number, bigint>();
  for (let i = 0; i < e.count; i++) {
    const [w0, w1, w2, w3] = [0, 1, 2, 3].map((k) => word64(e, i, k));
    const smmu = e.smmuIndex[i];
    const key = `${smmu}/${w0 >> 32n}/${(w0 >> 12n) & 0xfffffn}`;
    let s = streams.get(key);
    if (!s) {
      s = { i: streams.size, page: 0n, w3: 0n };
      streams.set(key, s);
      c.stream_smmu.push(smmu);
      c.stream_word0_hi.push(Number(w0 >> 32n));
      c.stream_ssid.push(Number((w0 >> 12n) & 0xfffffn));
    }
    c.stream_index.push(s.i);
    const shapeKey = `${w0 & 0xfffn}/${w1 >> 16n}`;
    if (!shapes.has(shapeKey)) {
      shapes.set(shapeKey, shapes.size);
      c.shape_word0_lo.push(Number(w0 & 0xfffn));
      c.shape_word1_hi.push(L(w1 >> 16n, false));
    }
    c.shape_index.push(shapes.get(shapeKey) as number);
    const stag = w1 & 0xffffn;
    if (stag === 0n) c.stag.push(0);
    else {
      const d = stag - (stags.get(smmu) ?? 0n);
      c.stag.push(Number(d >= 0n ? 2n * d : -2n * d - 1n) + 1);
      stags.set(smmu, stag);
    }
    c.addr_page_delta.push(L((w2 >> 12n) - s.page, true));
    s.page = w2 >> 12n;
    c.addr_offset.push(Number(w2 & 0xfffn));
    c.evt3_delta.push(L(w3 - s.w3, true));
    s.w3 = w3;
  }
  return c;
}

function referenceEncoding(b: Batch): Uint8Array {
  return v1.EventBatch.encode({
    agent: { host: b.host, agent_id: b.agentId, epoch: u64Long(b.epoch) },
    sequence: u64Long(b.sequence),
    source: { kind: b.sourceKind, event: b.sourceEvent },
    events: referenceColumns(b.events),
    created_unix_ns: Long.fromString(b.createdUnixNs.toString(), true),
  }).finish();
}

function assertSameEvents(a: EventBlock, b: EventBlock): void {
  assert.equal(b.count, a.count);
  for (let i = 0; i < a.count; i++) {
    assert.equal(timestampNs(b, i), timestampNs(a, i), `timestamp of event ${i}`);
    assert.equal(b.smmuNames[b.smmuIndex[i]], a.smmuNames[a.smmuIndex[i]]);
    for (let k = 0; k < 4; k++) assert.equal(word64(b, i, k), word64(a, i, k), `evt${k} of event ${i}`);
  }
}

test('field coding: byte-identical to a bigint reference of the .proto formulas', () => {
  for (const [seed, n, smmus, step] of [
    [1, 1, ['arm-smmu-v3.0.auto'], 1],
    [2, 400, ['arm-smmu-v3.0.auto'], 1],
    [3, 600, ['smmu0', 'smmu1', 'smmu2'], 1],
    [4, 300, ['a', 'b'], 1000],
  ] as const) {
    const b = batchOf(events(seed, n, [...smmus], step));
    assert.deepEqual(Buffer.from(encodeBatch(b)), Buffer.from(referenceEncoding(b)), `seed ${seed}`);
  }
  const model = batchOf(modelEvents(3000));
  assert.deepEqual(Buffer.from(encodeBatch(model)), Buffer.from(referenceEncoding(model)));
});

test('field coding: golden vector', () => {
  const e = new EventBlockBuilder(2);
  e.push(1_790_000_000_000_001_000n, 'smmu0', [
    0x0000_0101_0000_2810n,
    0x0000_0200_8000_0007n,
    0x7f00_0000_1234n,
    0n,
  ]);
  e.push(1_790_000_000_000_004_000n, 'smmu0', [
    0x0000_0101_0000_2810n,
    0x0000_0200_8000_0008n,
    0x7f00_0000_2234n,
    M64,
  ]);
  const events = e.finish();
  const bytes = encodeBatch(batchOf(events));
  const w = encodeColumns(events);
  const cols = Buffer.from(w.buf.subarray(0, w.pos)).toString('hex');
  // count 2, "smmu0", coding 2, t0, unit 3000 (b817), delta 1 unit; stream (SMMU 0, StreamID
  // 0x101, SSID 2), stream indexes 0 0; shape (0x810, 0x2008000), shape indexes 0 0; STAG 7
  // then 8: 15 3; page deltas 0x7f0000001 then 1; offsets 0x234 0x234; evt3 deltas 0 then -1.
  assert.equal(
    cols,
    '08021205736d6d7530480250d08f98bf84e1add73158b8176201026a0100720281027a010282010200008a01029010' +
      '920104808082109a01020000a201020f03aa010782808080fe0102b20104b404b404ba01020001',
  );
  assertSameEvents(events, decodeBatch(bytes).events);
});

test('field coding: round trip of random and model events, microsecond time in units of 1000', () => {
  for (const [seed, n, smmus, step] of [
    [5, 1, ['x'], 1],
    [6, 2000, ['x', 'y', 'z'], 1],
    [7, 500, ['x'], 1000],
  ] as const) {
    const b = batchOf(events(seed, n, [...smmus], step));
    const bytes = encodeBatch(b);
    assertSameEvents(b.events, decodeBatch(bytes).events);
    const unit = Long.fromValue(v1.EventBatch.decode(bytes).events?.timestamp_unit_ns ?? 0).toNumber();
    assert.equal(unit, step === 1000 && n > 1 ? 1000 : 1);
  }
  const model = batchOf(modelEvents(20_000));
  assertSameEvents(model.events, decodeBatch(encodeBatch(model)).events);
});

test('old-version decoding: word-coded batches still decode, and the two codings give the same events', () => {
  const b = batchOf(events(8, 700, ['x', 'y'], 1));
  const old = encodeBatch(b, WORD_CODING);
  assert.equal(v1.EventBatch.decode(old).events?.coding, 0);
  assertSameEvents(decodeBatch(old).events, decodeBatch(encodeBatch(b, FIELD_CODING)).events);
});

test('a reader of word columns only refuses field columns instead of misreading them', () => {
  const g = v1.EventBatch.decode(encodeBatch(batchOf(events(9, 10, ['x'], 1))));
  const ev = g.events as NonNullable<typeof g.events>;
  ev.coding = 0; // what a coding-0 reader sees: the fields it knows, fields 3-8, are empty
  assert.throws(
    () => decodeBatch(v1.EventBatch.encode(g).finish()),
    /timestamp_delta_ns has 0 elements, count is 10/,
  );
  ev.coding = 3;
  assert.throws(() => decodeBatch(v1.EventBatch.encode(g).finish()), /coding 3 unknown/);
});

test('field coding is under half the bytes of word coding on the model default workload', () => {
  const b = batchOf(modelEvents(16_384));
  const words = encodeBatch(b, WORD_CODING).length / b.events.count;
  const fields = encodeBatch(b, FIELD_CODING).length / b.events.count;
  assert.ok(fields < words / 2, `field coding ${fields.toFixed(2)} B/event, word coding ${words.toFixed(2)}`);
});

/**
 * `bytes` with each packed column of its EventColumns re-sent as protobuf allows: the first
 * element unpacked, the rest in two packed pieces, all after the other fields; `cut` makes the
 * first piece of addr_page_delta end inside a varint.
 */
function piecewise(bytes: Uint8Array, cut = false): Uint8Array {
  const outer = new ByteReader(bytes);
  const batch = new ByteWriter();
  while (!outer.done) {
    const key = outer.uint();
    const [s, e] = key === (BATCH_FIELDS.events << 3) + WIRE_LEN ? outer.len() : [0, 0];
    if (e === 0) {
      const from = outer.pos;
      outer.skip(key & 7);
      batch.uint(key);
      batch.bytes(bytes.subarray(from, outer.pos));
      continue;
    }
    const inner = new ByteReader(bytes, s, e);
    const head = new ByteWriter();
    const tail = new ByteWriter();
    while (!inner.done) {
      const k = inner.uint();
      const field = k >>> 3;
      if (field < 12 || (k & 7) !== WIRE_LEN) {
        const from = inner.pos;
        inner.skip(k & 7);
        head.uint(k);
        head.bytes(bytes.subarray(from, inner.pos));
        continue;
      }
      const [ps, pe] = inner.len();
      const first = new ByteReader(bytes, ps, pe);
      if (ps < pe) first.varint64();
      const rest = first.pos;
      tail.tag(field, WIRE_VARINT);
      tail.bytes(bytes.subarray(ps, rest));
      const mid = rest + Math.floor((pe - rest) / 2);
      let split = rest;
      // With `cut`, the first piece ends inside the first varint of two bytes or more.
      for (let at = rest; cut && field === 21 ? split - at < 2 : split < mid; ) {
        at = split;
        first.varint64();
        split = first.pos;
      }
      if (cut && field === 21) split--;
      for (const [a, b] of [
        [rest, split],
        [split, pe],
      ]) {
        tail.tag(field, WIRE_LEN);
        tail.uint(b - a);
        tail.bytes(bytes.subarray(a, b));
      }
    }
    head.bytes(tail.buf.subarray(0, tail.pos));
    batch.lenField(BATCH_FIELDS.events, head);
  }
  return batch.finish();
}

test('field coding: columns sent unpacked or in several pieces read the same', () => {
  const b = batchOf(events(10, 900, ['x', 'y'], 1));
  const whole = encodeBatch(b);
  const pieces = piecewise(whole);
  assert.ok(pieces.length > whole.length);
  assertSameEvents(b.events, decodeBatch(pieces).events);
  assert.equal(decodeBatch(pieces, { maxEvents: 900, structureOnly: true }).events.count, 900);
  for (const structureOnly of [false, true])
    assert.throws(
      () => decodeBatch(piecewise(whole, true), { maxEvents: 900, structureOnly }),
      /addr_page_delta: truncated varint/,
    );
});
