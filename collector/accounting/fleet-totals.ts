// The one-shot view the `totals` command, the demo and the tests use: fleet totals over
// everything offered, per host x SMMU x StreamID x SSID x event type, from one AccountState
// (so it counts exactly as the aggregator does, replays and conflicts dropped).
import { EVT_F_ACCESS, EVT_F_PERMISSION, EVT_F_TRANSLATION, eventName } from '../../common/smmu/event-ids';
import type { Batch } from '../../proto/batch-codec';
import { type AccountOptions, AccountState } from './aggregate';
import { OTHER } from './cells';
import type { ReplayFilter } from './dedup';
import { lossName } from './rows';

/** The event ID of each of the first three kinds (they are one event each). */
const KIND_EVENT = [EVT_F_TRANSLATION, EVT_F_ACCESS, EVT_F_PERMISSION];

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

/** Fleet totals over everything offered: per host x SMMU x StreamID x SSID x event type. */
export class FleetTotals {
  readonly state: AccountState;

  constructor(opts: Partial<AccountOptions> = {}) {
    this.state = new AccountState(opts);
  }

  get replays(): ReplayFilter {
    return this.state.replays;
  }

  /** Adds a batch; returns false (and counts nothing) when it is a replay or a conflict. */
  add(b: Batch, receivedNs?: bigint): boolean {
    return this.state.add(b, receivedNs);
  }

  rows(): CountRow[] {
    const st = this.state;
    const out: CountRow[] = [];
    for (let s = 0; s < st.seriesCount; s++) {
      const k = st.seriesKey(s);
      const c = st.seriesCells(s);
      const base = { host: k.host, smmu: k.smmu, streamId: k.streamId, ssid: k.ssid };
      for (let kind = 0; kind < OTHER; kind++) {
        if (c[kind] > 0) {
          const id = KIND_EVENT[kind];
          out.push({ ...base, eventId: id, event: eventName(id), count: c[kind] });
        }
      }
      for (const [id, count] of st.seriesOther(s))
        out.push({ ...base, eventId: id, event: eventName(id), count });
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
    for (const h of this.state.allHosts())
      for (const [r, count] of h.lost) out.push({ host: h.name, reason: lossName(r), count });
    return out;
  }

  hostRows(): HostRow[] {
    return this.state
      .allHosts()
      .filter((h) => h.batches > 0)
      .map((h) => ({ host: h.name, batches: h.batches, events: h.events, lost: h.lostTotal() }))
      .sort((a, b) => a.host.localeCompare(b.host));
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
