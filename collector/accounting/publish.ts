// Accounting stage 4: publish. The records the aggregator publishes to Kafka, per
// proto/smmu/accounting/v1/accounting.proto, and the producer that sends them. Guarantee: acks
// from all in-sync replicas from an idempotent producer, before the checkpoint that covers them
// is written (aggregator.ts), so a crash republishes, never skips, a closed window or a total.
//
//  windows topic  WindowRecord   key "<host>/<smmu>/<sid>/<ssid>" (series) or "<host>" (host)
//  totals topic   TotalsRecord   same keys, compacted
//
// Headers, like the raw topic's: content-type (with the message type), schema-version, and
// record-type (series | host).
import { CompressionTypes, type Kafka, type Producer } from 'kafkajs';
import Long from 'long';
import { durableProducer } from '../../common/kafka/client';
import { smmu } from '../../proto/gen/telemetry';
import { SCHEMA_VERSION } from '../../proto/index';
import type { AccountState } from './aggregate';
import { rowEvents, rowStalls, STALLS } from './cells';
import { CHECKPOINT_TYPE, checkpointHeaders } from './checkpoint';
import type { HostAccount } from './host';
import { type HostWindowOut, type SeriesWindowOut, WIDTHS_NS } from './windows';

const pb = smmu.accounting.v1;
export const WINDOW_RECORD_TYPE = 'smmu.accounting.v1.WindowRecord';
export const TOTALS_RECORD_TYPE = 'smmu.accounting.v1.TotalsRecord';
export { CHECKPOINT_TYPE };

export interface OutMessage {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

export function seriesKeyString(k: { host: string; smmu: string; streamId: number; ssid: number }): string {
  return `${k.host}/${k.smmu}/${k.streamId}/${k.ssid}`;
}

export function recordHeaders(type: string, recordType: 'series' | 'host'): Record<string, string> {
  return {
    'content-type': `application/x-protobuf; messageType=${type}`,
    'schema-version': SCHEMA_VERSION,
    'record-type': recordType,
  };
}

function u64(v: bigint | number): Long {
  return typeof v === 'number' ? Long.fromNumber(v, true) : Long.fromString(v.toString(), true);
}

function buf(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** KindCount per kind with events, from a row of cells (cells.ts). */
function kindCountsPb(c: ArrayLike<number>): smmu.accounting.v1.KindCount.$Properties[] {
  const out: smmu.accounting.v1.KindCount.$Properties[] = [];
  for (let k = 0; k < 4; k++) if (c[k] > 0) out.push({ kind: k + 1, events: c[k], stalls: c[STALLS + k] });
  return out;
}

function kindWindows(c: ArrayLike<number>, widthS: number): smmu.accounting.v1.KindWindow.$Properties[] {
  const out: smmu.accounting.v1.KindWindow.$Properties[] = [];
  for (let k = 0; k < 4; k++) {
    if (c[k] > 0) {
      out.push({
        kind: k + 1,
        events: c[k],
        stalls: c[STALLS + k],
        events_per_s: c[k] / widthS,
        stalls_per_s: c[STALLS + k] / widthS,
      });
    }
  }
  return out;
}

function lostCounts(m: Map<number, number>): {
  lost: smmu.accounting.v1.LostCount.$Properties[];
  total: number;
} {
  const lost = [...m]
    .filter(([, c]) => c > 0)
    .sort(([a], [b]) => a - b)
    .map(([reason, count]) => ({ reason, count }));
  return { lost, total: lost.reduce((s, l) => s + (l.count as number), 0) };
}

export function seriesWindowMessage(w: SeriesWindowOut): OutMessage {
  const widthNs = WIDTHS_NS[w.width];
  const c = w.cells;
  const events = rowEvents(c);
  const rec = pb.WindowRecord.encode({
    series: {
      series: { host: w.host, smmu: w.smmu, stream_id: w.streamId, ssid: w.ssid },
      start_unix_ns: u64(BigInt(w.index) * BigInt(widthNs)),
      width_ns: widthNs,
      kinds: kindWindows(c, widthNs / 1e9),
      other_events: Object.fromEntries(w.other ?? []),
      events,
      events_per_s: events / (widthNs / 1e9),
      stalls: rowStalls(c),
    },
  }).finish();
  return { key: seriesKeyString(w), value: buf(rec), headers: recordHeaders(WINDOW_RECORD_TYPE, 'series') };
}

export function hostWindowMessage(w: HostWindowOut): OutMessage {
  const widthNs = WIDTHS_NS[w.width];
  const c = w.cells;
  const events = rowEvents(c);
  const { lost, total } = lostCounts(w.lost);
  const rec = pb.WindowRecord.encode({
    host: {
      host: w.host,
      start_unix_ns: u64(BigInt(w.index) * BigInt(widthNs)),
      width_ns: widthNs,
      kinds: kindWindows(c, widthNs / 1e9),
      events,
      events_per_s: events / (widthNs / 1e9),
      stalls: rowStalls(c),
      batches: w.batches,
      lost,
      lost_events: total,
      series: w.series,
    },
  }).finish();
  return { key: w.host, value: buf(rec), headers: recordHeaders(WINDOW_RECORD_TYPE, 'host') };
}

export interface AsOf {
  rawTopic: string;
  partition: number;
  nextOffset: number;
}

function position(a: AsOf): smmu.accounting.v1.Position.$Properties {
  return { raw_topic: a.rawTopic, partition: a.partition, next_offset: a.nextOffset };
}

export function seriesTotalsMessage(st: AccountState, s: number, asOf: AsOf): OutMessage {
  const k = st.seriesKey(s);
  const c = st.seriesCells(s);
  const rec = pb.TotalsRecord.encode({
    series: {
      series: { host: k.host, smmu: k.smmu, stream_id: k.streamId, ssid: k.ssid },
      kinds: kindCountsPb(c),
      other_events: Object.fromEntries(st.seriesOther(s)),
      events: rowEvents(c),
      stalls: rowStalls(c),
      as_of: position(asOf),
      last_event_unix_ns: u64(st.seriesLastNs(s)),
    },
  }).finish();
  return { key: seriesKeyString(k), value: buf(rec), headers: recordHeaders(TOTALS_RECORD_TYPE, 'series') };
}

export function hostTotalsMessage(st: AccountState, h: HostAccount, asOf: AsOf): OutMessage {
  const c = st.hostCells(h);
  const { lost, total } = lostCounts(h.lost);
  const rec = pb.TotalsRecord.encode({
    host: {
      host: h.name,
      batches: h.batches,
      events: h.events,
      kinds: kindCountsPb(c),
      lost,
      lost_events: total,
      replayed_batches: h.replayed,
      late: WIDTHS_NS.map((width_ns, k) => ({ width_ns, events: h.late[k] })),
      first_event_unix_ns: u64(h.firstNs),
      last_event_unix_ns: u64(h.lastNs),
      series: h.series.length,
      as_of: position(asOf),
      out_of_range_events: h.outOfRange,
      conflicting_batches: h.conflicts,
      conflicting_events: h.conflictEvents,
    },
  }).finish();
  return { key: h.name, value: buf(rec), headers: recordHeaders(TOTALS_RECORD_TYPE, 'host') };
}

/** Sends records with acks=all from an idempotent producer, in chunks that stay well below 1 MiB. */
export class OutputPublisher {
  private producer: Producer;

  constructor(kafka: Kafka) {
    this.producer = durableProducer(kafka);
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  async send(topic: string, messages: OutMessage[], chunk = 2000): Promise<void> {
    for (let i = 0; i < messages.length; i += chunk) {
      await this.producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: messages.slice(i, i + chunk),
      });
    }
  }

  /** One checkpoint, gzip-compressed (states of large partitions compress about 20:1). */
  async sendCheckpoint(topic: string, key: string, nextOffset: number, value: Uint8Array): Promise<void> {
    await this.producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: [{ key, value: buf(value), headers: checkpointHeaders(nextOffset) }],
    });
  }
}
