import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canStall,
  DEFINED_EVENT_IDS,
  EVENT_INFO,
  eventIdByName,
  eventName,
  FaultKind,
  Field,
  linuxEventName,
} from '../../common/smmu/event-ids';
import {
  DecodedEvent,
  decodeRecord,
  type EventFields,
  encodeRecord,
  eventId,
  FETCH_ADDR_MASK,
  faultKind,
  hasSubstream,
  IPA_MASK,
  inputPage,
  isRead,
  isStall,
  stallTag,
  streamId,
  substreamId,
} from '../../common/smmu/record';
import { GOLDEN_VECTORS } from '../fixtures/smmu/golden-vectors';

function wordsOf(evt: readonly bigint[]): Uint32Array {
  const out = new Uint32Array(8);
  evt.forEach((x, k) => {
    out[2 * k] = Number(x & 0xffffffffn);
    out[2 * k + 1] = Number(x >> 32n);
  });
  return out;
}

function fieldsOf(e: DecodedEvent) {
  return {
    id: e.id,
    name: e.name,
    defined: e.info.defined,
    linuxNamed: e.info.linuxNamed,
    ssv: e.ssv,
    ssid: e.ssid,
    rawSsid: e.rawSsid,
    sid: e.sid,
    stag: e.stag,
    reason: e.reason,
    stall: e.stall,
    pnu: e.pnu,
    ind: e.ind,
    rnw: e.rnw,
    s2: e.s2,
    class: e.class,
    classTt: e.classTt,
    ttrnw: e.ttrnw,
    inputAddr: e.inputAddr,
    ipa: e.ipa,
    fetchAddr: e.fetchAddr,
  };
}

/** Architecture IDs plus every IMPDEF one. */
const ALL_IDS = [...DEFINED_EVENT_IDS, ...Array.from({ length: 16 }, (_, i) => 0xe0 + i)];

test('event table names every architecture ID, Linux names exactly its twelve', () => {
  assert.deepEqual(
    DEFINED_EVENT_IDS,
    [
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x11, 0x12, 0x13, 0x20, 0x21,
      0x24, 0x25,
    ],
  );
  const names = ALL_IDS.map(eventName);
  assert.equal(new Set(names).size, names.length, 'names are unique');
  for (const id of ALL_IDS) {
    assert.equal(EVENT_INFO[id].defined, true, eventName(id));
    assert.equal(eventIdByName(eventName(id)), id);
    assert.ok(EVENT_INFO[id].fields & Field.Sid, `${eventName(id)} carries a StreamID`);
  }
  const linux = EVENT_INFO.filter((e) => e.linuxNamed).map((e) => e.id);
  assert.deepEqual(linux, [0x02, 0x03, 0x04, 0x06, 0x08, 0x09, 0x0a, 0x10, 0x11, 0x12, 0x13, 0x25]);
  assert.equal(linuxEventName(0x0b), 'UNKNOWN');
  assert.equal(linuxEventName(0x10), 'F_TRANSLATION');
  assert.equal(eventName(0x42), 'UNKNOWN_0x42');
  assert.equal(EVENT_INFO[0x42].defined, false);
  assert.equal(eventIdByName('UNKNOWN_0x42'), undefined);
  assert.deepEqual(
    EVENT_INFO.filter((e) => canStall(e.id)).map((e) => e.id),
    [0x10, 0x11, 0x12, 0x13],
  );
});

test('fault kinds: translation, access, permission; everything else is other', () => {
  for (let id = 0; id < 256; id++) {
    const expected =
      id === 0x10
        ? FaultKind.Translation
        : id === 0x12
          ? FaultKind.Access
          : id === 0x13
            ? FaultKind.Permission
            : FaultKind.Other;
    assert.equal(EVENT_INFO[id].kind, expected, eventName(id));
    assert.equal(faultKind(Uint32Array.of(id, 0, 0, 0, 0, 0, 0, 0), 0), expected);
  }
});

test('which fields each event defines', () => {
  const f = (name: string) => EVENT_INFO[eventIdByName(name)!].fields;
  assert.equal(f('F_STREAM_DISABLED'), Field.Sid, 'only type and StreamID');
  assert.ok(f('F_TRANSLATION') & Field.Stag && f('F_TRANSLATION') & Field.Ipa);
  assert.equal(f('F_TRANSLATION') & Field.TtRnW, 0, 'TTRnW only for F_PERMISSION');
  assert.ok(f('F_PERMISSION') & Field.TtRnW);
  for (const n of ['F_STE_FETCH', 'F_CD_FETCH', 'F_VMS_FETCH', 'F_WALK_EABT'])
    assert.ok(f(n) & Field.FetchAddr, n);
  assert.ok(f('F_UUT') & Field.Reason);
  for (const id of ALL_IDS) {
    if (!canStall(id)) assert.equal(EVENT_INFO[id].fields & (Field.Stall | Field.Stag), 0, eventName(id));
  }
});

test('golden vectors: raw words decode to the hand-computed fields', () => {
  for (const v of GOLDEN_VECTORS) {
    const words = wordsOf(v.evt);
    const e = decodeRecord(words, 0);
    assert.deepEqual(fieldsOf(e), v.expect, v.note);
    assert.deepEqual(e.raw, [...v.evt], `${v.note}: raw words kept`);
    assert.deepEqual(e.rawWords(), words);
    // The allocation-free accessors agree with the full decode.
    assert.equal(eventId(words, 0), v.expect.id);
    assert.equal(streamId(words, 0), v.expect.sid);
    assert.equal(substreamId(words, 0), v.expect.ssid);
    assert.equal(hasSubstream(words, 0), v.expect.ssv || v.expect.id === 0x08);
    assert.equal(isStall(words, 0), v.expect.stall);
    assert.equal(stallTag(words, 0), v.expect.stag);
    assert.equal(isRead(words, 0), v.expect.rnw);
    assert.equal(BigInt(inputPage(words, 0, 12)), v.expect.inputAddr >> 12n);
  }
});

test('golden vectors re-encode to the same words when they use no bits outside the fields', () => {
  let exact = 0;
  for (const v of GOLDEN_VECTORS) {
    const e = decodeRecord(wordsOf(v.evt), 0);
    const fields: EventFields = {
      id: e.id,
      sid: e.sid,
      ssv: e.ssv,
      ssid: e.rawSsid,
      stag: e.stag,
      stall: e.stall,
      pnu: e.pnu,
      ind: e.ind,
      rnw: e.rnw,
      s2: e.s2,
      class: e.class,
      ttrnw: e.ttrnw,
      inputAddr: e.inputAddr,
      fetchAddr: e.fetchAddr,
    };
    const again = encodeRecord(fields);
    assert.deepEqual(fieldsOf(decodeRecord(again, 0)), v.expect, v.note);
    // Bits the record fields cover: evt0 all but 10:8; evt1 STAG, STALL, PnU, InD, RnW, S2, CLASS, TTRnW.
    const known = [
      0xffff_ffff_ffff_f8ffn,
      (1n << 44n) | (3n << 40n) | (1n << 39n) | (7n << 33n) | (1n << 31n) | 0xffffn,
      0xffff_ffff_ffff_ffffn,
      FETCH_ADDR_MASK,
    ];
    if (v.evt.every((x, k) => (x & ~known[k]) === 0n)) {
      assert.deepEqual(again, wordsOf(v.evt), v.note);
      exact++;
    }
  }
  assert.equal(exact, GOLDEN_VECTORS.length - 3, 'all but the three vectors with spare bits');
});

// Boundary values of every field; case k takes element k (mod length) of each list, so all
// values of every field meet every event ID.
const SID = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff];
const SSID = [0, 1, 0x7ffff, 0x80000, 0xfffff];
const STAG = [0, 1, 0x7fff, 0x8000, 0xffff];
const CLASS = [0, 1, 2, 3];
const ADDR = [0n, 1n, 0xffff_ffffn, 0x1_0000_0000n, 1n << 63n, 0xffff_ffff_ffff_ffffn];
const IPA = [0n, 0x1000n, 1n << 51n, IPA_MASK];
const FETCH = [0n, 8n, 0xffff_fff8n, 1n << 51n, FETCH_ADDR_MASK];

function boundaryCase(id: number, k: number): EventFields {
  const bit = (n: number) => ((k >> n) & 1) === 1;
  const fetchEvent = (EVENT_INFO[id].fields & Field.FetchAddr) !== 0;
  return {
    id,
    sid: SID[k % SID.length],
    ssv: bit(0),
    ssid: SSID[(k + 1) % SSID.length],
    stag: STAG[(k + 2) % STAG.length],
    stall: bit(1),
    pnu: bit(2),
    ind: bit(3),
    rnw: bit(4),
    s2: bit(5),
    class: CLASS[k % CLASS.length],
    ttrnw: bit(6),
    inputAddr: ADDR[k % ADDR.length],
    ...(fetchEvent ? { fetchAddr: FETCH[k % FETCH.length] } : { ipa: IPA[k % IPA.length] }),
  };
}

test('encode/decode round-trips every event ID with boundary values of every field', () => {
  let cases = 0;
  for (const id of ALL_IDS) {
    for (let k = 0; k < 128; k++) {
      const f = boundaryCase(id, k);
      const e = decodeRecord(encodeRecord(f), 0);
      const ctx = `${eventName(id)} case ${k}`;
      assert.equal(e.id, id, ctx);
      assert.equal(e.sid, f.sid, ctx);
      assert.equal(e.ssv, f.ssv, ctx);
      assert.equal(e.rawSsid, f.ssid, ctx);
      assert.equal(e.ssid, f.ssv || id === 0x08 ? f.ssid : 0, ctx);
      assert.equal(e.stag, f.stag, ctx);
      assert.equal(e.stall, f.stall, ctx);
      assert.equal(e.pnu, f.pnu, ctx);
      assert.equal(e.ind, f.ind, ctx);
      assert.equal(e.rnw, f.rnw, ctx);
      assert.equal(e.s2, f.s2, ctx);
      assert.equal(e.class, f.class, ctx);
      assert.equal(e.ttrnw, f.ttrnw, ctx);
      assert.equal(e.classTt, id === 0x13 && f.class === 1, ctx);
      assert.equal(e.inputAddr, f.inputAddr, ctx);
      if (f.fetchAddr !== undefined) {
        assert.equal(e.fetchAddr, f.fetchAddr, ctx);
        assert.equal(e.ipa, f.fetchAddr & IPA_MASK, ctx);
      } else {
        assert.equal(e.ipa, f.ipa, ctx);
        assert.equal(e.fetchAddr, f.ipa, ctx);
      }
      cases++;
    }
  }
  assert.equal(cases, ALL_IDS.length * 128);
});

test('a reserved ID round-trips with its words intact', () => {
  const f = boundaryCase(0x7f, 5);
  const words = encodeRecord(f);
  const e = decodeRecord(words, 0);
  assert.equal(e.info.defined, false);
  assert.equal(e.name, 'UNKNOWN_0x7f');
  assert.deepEqual(e.rawWords(), words);
});

test('decodes records in the middle of a word array', () => {
  const words = new Uint32Array(8 * 3);
  words.set(encodeRecord({ id: 0x12, sid: 9, ssv: true, ssid: 4, rnw: true, inputAddr: 0x4000n }), 8);
  const e = decodeRecord(words, 8);
  assert.equal(e.name, 'F_ACCESS');
  assert.equal(e.sid, 9);
  assert.equal(e.ssid, 4);
  assert.equal(e.inputAddr, 0x4000n);
  assert.ok(e instanceof DecodedEvent);
  assert.equal(decodeRecord(words, 0).name, 'UNKNOWN_0x00');
});

test('encode rejects values that do not fit their fields', () => {
  const bad: Array<[string, EventFields]> = [
    ['id', { id: 0x100 }],
    ['sid', { id: 0x10, sid: -1 }],
    ['sid', { id: 0x10, sid: 2 ** 32 }],
    ['ssid', { id: 0x10, ssid: 0x100000 }],
    ['stag', { id: 0x10, stag: 0x10000 }],
    ['stag', { id: 0x10, stag: 1.5 }],
    ['class', { id: 0x10, class: 4 }],
    ['inputAddr', { id: 0x10, inputAddr: 1n << 64n }],
    ['inputAddr', { id: 0x10, inputAddr: -1n }],
    ['ipa', { id: 0x10, ipa: 0x1001n }],
    ['ipa', { id: 0x10, ipa: 1n << 52n }],
    ['fetchAddr', { id: 0x03, fetchAddr: 0x4n }],
    ['stag and reason', { id: 0x01, stag: 1, reason: 2 }],
    ['ipa and fetchAddr', { id: 0x03, ipa: 0x1000n, fetchAddr: 0x2000n }],
  ];
  for (const [what, f] of bad) {
    assert.throws(() => encodeRecord(f), RangeError, what);
  }
});
