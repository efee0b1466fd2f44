// Accounting stage 2: fleet totals. Counts events per host x SMMU x StreamID x SSID x event
// type and lost events per host x reason, after dropping replayed batches, so the totals are
// exactly-once although delivery is at-least-once.

import { eventId, eventName, streamId, substreamId } from '../../../agent/src/smmu/record';
import type { Batch } from '../../../proto/batch-codec';
import { WORDS_PER_RECORD } from '../../../proto/event-block';
import { LossReason } from '../../../proto/index';
import { ReplayFilter } from './dedup';

export interface CountRow {
  host: string;
  smmu: string;
  streamId: number;
  ssid: number;
  eventId: number;
  event: string;
  count: number;
}

export interface LostRow {
  host: string;
  reason: string;
  count: number;
}

export interface HostRow {
  host: string;
  batches: number;
  events: number;
  lost: number;
}

export class FleetTotals {
  readonly replays = new ReplayFilter();
  /** `${host}\0${smmu}` -> StreamID -> (SSID << 8 | event id) -> count */
  private counts = new Map<string, Map<number, Map<number, number>>>();
  private lost = new Map<string, Map<LossReason, number>>();
  private hosts = new Map<string, HostRow>();

  /** Adds a batch; returns false (and counts nothing) when it is a replay. */
  add(b: Batch): boolean {
    if (!this.replays.accept(b.agentId, b.epoch, b.sequence)) return false;
    let h = this.hosts.get(b.host);
    if (!h) {
      h = { host: b.host, batches: 0, events: 0, lost: 0 };
      this.hosts.set(b.host, h);
    }
    h.batches++;
    h.events += b.events.count;
    if (b.lost.size > 0) {
      let l = this.lost.get(b.host);
      if (!l) {
        l = new Map();
        this.lost.set(b.host, l);
      }
      for (const [r, n] of b.lost) {
        l.set(r, (l.get(r) ?? 0) + n);
        h.lost += n;
      }
    }
    const e = b.events;
    const perSmmu = e.smmuNames.map((name) => {
      const key = `${b.host}\0${name}`;
      let m = this.counts.get(key);
      if (!m) {
        m = new Map();
        this.counts.set(key, m);
      }
      return m;
    });
    for (let i = 0; i < e.count; i++) {
      const w = i * WORDS_PER_RECORD;
      const bySid = perSmmu[e.smmuIndex[i]];
      const sid = streamId(e.words, w);
      let m = bySid.get(sid);
      if (!m) {
        m = new Map();
        bySid.set(sid, m);
      }
      const k = substreamId(e.words, w) * 256 + eventId(e.words, w);
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return true;
  }

  rows(): CountRow[] {
    const out: CountRow[] = [];
    for (const [key, bySid] of this.counts) {
      const [host, smmu] = key.split('\0');
      for (const [sid, m] of bySid) {
        for (const [k, count] of m) {
          const id = k % 256;
          out.push({
            host,
            smmu,
            streamId: sid,
            ssid: Math.floor(k / 256),
            eventId: id,
            event: eventName(id),
            count,
          });
        }
      }
    }
    return out.sort(
      (a, b) =>
        b.count - a.count ||
        a.host.localeCompare(b.host) ||
        a.streamId - b.streamId ||
        a.ssid - b.ssid ||
        a.eventId - b.eventId,
    );
  }

  lostRows(): LostRow[] {
    const out: LostRow[] = [];
    for (const [host, m] of this.lost)
      for (const [r, count] of m) out.push({ host, reason: LossReason[r] ?? String(r), count });
    return out;
  }

  hostRows(): HostRow[] {
    return [...this.hosts.values()].sort((a, b) => a.host.localeCompare(b.host));
  }

  /** Events per host and event name: the coarse view tests and the demo print. */
  perHostEvent(): Map<string, Map<string, number>> {
    const out = new Map<string, Map<string, number>>();
    for (const r of this.rows()) {
      let m = out.get(r.host);
      if (!m) {
        m = new Map();
        out.set(r.host, m);
      }
      m.set(r.event, (m.get(r.event) ?? 0) + r.count);
    }
    return out;
  }
}
