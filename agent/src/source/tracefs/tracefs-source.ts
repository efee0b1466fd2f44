// TracefsSource: SMMU fault records from the kernel's tracing ring buffer.
//
// Setup (open): find or mount tracefs, pick the events this kernel has (the SMMUv3
// tracepoint, else the fallbacks), build a decoder per event from its format file, create or
// recover the agent's instance with its own buffer and the "mono" trace clock, enable the
// events, open the reader. Reading: a timer loop of non-blocking read rounds whose interval
// adapts (pollMinMs while records flow, doubling up to pollMaxMs when idle, no wait while a
// round left data unread). Teardown (close, also when read() ends): close the files, remove
// the instance, unmount tracefs if this source mounted it.
//
// Guarantee: every record the kernel kept is delivered once, in timestamp order per event;
// every record it dropped is counted (RING_BUFFER_OVERRUN), as is every record that could not
// be decoded (MALFORMED_RECORD). Nothing is buffered beyond one read round: a slow consumer
// leaves records in the kernel's buffer, where overruns are counted.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { EventBlockBuilder } from '../../../../proto/event-block';
import { SourceKind } from '../../../../proto/index';
import type { EventSource, SourceChunk } from '../source';
import { type ClockOffset, measureMonoToWall, offsetDrifted } from './clock';
import { TracefsError } from './errors';
import {
  DECODER_FAMILIES,
  type DecoderFamily,
  decoderFamily,
  FALLBACK_EVENTS,
  PRIMARY_EVENT,
} from './events/index';
import { eventExists, readAttr, readEventFormat, TracefsInstance } from './instance';
import { LossCounter } from './losses';
import { findTracefs, type TracefsMount, unmountTracefs } from './mount';
import { RawReader } from './raw-reader';
import type { DecodeTarget, ReadContext, TracefsLog, TracefsReader } from './reader';
import { EventStaging } from './staging';
import { TextReader } from './text-reader';

/** An event to read, with the decoder family to use when its name is not a known family's. */
export interface TracefsEventSpec {
  /** "group:event". */
  event: string;
  /** Canonical "group:event" of the decoder family, e.g. "arm_smmu_v3:smmu_evtq_event". */
  decoder?: string;
}

export interface TracefsSourceOptions {
  /** Events to read. Default: arm_smmu_v3:smmu_evtq_event. */
  events?: readonly (string | TracefsEventSpec)[];
  /** Read instead when none of `events` exists. Default: iommu:io_page_fault, intel_iommu:prq_report. */
  fallbackEvents?: readonly string[];
  /** tracefs root to try first. */
  tracefsPath?: string;
  /** Mount tracefs when it is not mounted (needs CAP_SYS_ADMIN). Default true. */
  mount?: boolean;
  /** Instance name under instances/. Default "smmu-fleet". */
  instance?: string;
  /** Per-CPU buffer size, KiB (about 16 records per KiB). Default 1024. */
  bufferSizeKb?: number;
  /** Sub-buffer size, KiB (Linux 6.8+). Default: unchanged (the page size). */
  subbufSizeKb?: number;
  /** buffer_percent of the instance. Default 50. */
  bufferPercent?: number;
  /** "raw" (per-CPU binary pages, default) or "text" (trace_pipe). */
  reader?: 'raw' | 'text';
  /** Poll interval while records flow, ms. Default 10. */
  pollMinMs?: number;
  /** Longest poll interval when idle, ms. Default 200. */
  pollMaxMs?: number;
  /** How often to look for CPUs that came online, ms. Default 5000. */
  cpuRescanMs?: number;
  /** How often to read per-CPU stats for loss counts, ms. Default 1000. */
  statsIntervalMs?: number;
  /** Hold back records younger than this (raw reader), so chunks stay in time order. Default 2. */
  settleMs?: number;
  /**
   * Leave the instance in place, tracing, on close: the next source of that name recovers it
   * and reads what was recorded in between (an agent restart then loses nothing).
   */
  keepInstance?: boolean;
  log?: TracefsLog;
}

const noLog: TracefsLog = { info() {}, warn() {} };

export class TracefsSource implements EventSource {
  readonly kind = SourceKind.SOURCE_KIND_TRACEFS;
  private readonly opts: TracefsSourceOptions;
  private readonly log: TracefsLog;
  private readonly warned = new Set<string>();
  private mount: TracefsMount | undefined;
  private instance: TracefsInstance | undefined;
  private reader: TracefsReader | undefined;
  private targets: DecodeTarget[] = [];
  private clock: ClockOffset | undefined;
  private ctx: ReadContext | undefined;
  private opening: Promise<void> | undefined;
  private closed = false;

  constructor(options: TracefsSourceOptions = {}) {
    this.opts = options;
    this.log = options.log ?? noLog;
  }

  /** "group:event" of the first event read (after fallback, once open). */
  get event(): string {
    if (this.targets.length > 0) return this.targets[0].event;
    const first = this.opts.events?.[0] ?? PRIMARY_EVENT;
    return typeof first === 'string' ? first : first.event;
  }

  /** Events being read, once open. */
  get events(): readonly string[] {
    return this.targets.map((t) => t.event);
  }

  /** The instance directory, once open. */
  get instancePath(): string | undefined {
    return this.instance?.path;
  }

  /** The tracefs mount in use, once open. */
  get tracefs(): TracefsMount | undefined {
    return this.mount;
  }

  /** Wall-clock offset of the trace clock and its uncertainty, once open. */
  get clockOffset(): ClockOffset | undefined {
    return this.clock;
  }

  /** Sets everything up (idempotent; read() calls it). Throws TracefsError with a hint. */
  open(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('TracefsSource is closed'));
    this.opening ??= this.doOpen().catch(async (err) => {
      await this.close();
      throw err;
    });
    return this.opening;
  }

  private async doOpen(): Promise<void> {
    const o = this.opts;
    this.mount = await findTracefs({ path: o.tracefsPath, mount: o.mount });
    const root = this.mount.path;
    if (this.mount.mountedByUs) this.log.info(`mounted tracefs at ${root}`);
    const chosen = this.chooseEvents(root);
    // Decoders first: a format that does not fit fails before anything is created.
    this.targets = chosen.map(({ event, family }) => {
      const format = readEventFormat(root, event);
      return {
        event,
        typeId: format.id,
        decoder: family.create(format, event),
        staging: new EventStaging(event),
      };
    });

    const available = readAttr(`${root}/trace_clock`);
    const clockName = /(^|[\s[])mono([\s\]]|$)/.test(available) ? 'mono' : 'local';
    if (clockName !== 'mono') {
      this.log.warn(
        'trace clock "mono" not offered by this kernel: timestamps use "local" and may be off by ms',
      );
    }
    this.instance = TracefsInstance.open(root, {
      name: o.instance ?? 'smmu-fleet',
      bufferSizeKb: o.bufferSizeKb ?? 1024,
      subbufSizeKb: o.subbufSizeKb,
      bufferPercent: o.bufferPercent ?? 50,
      clock: clockName,
    });
    if (this.instance.recovered) {
      this.log.info(
        `recovered tracefs instance ${this.instance.path}: reading what it kept while no agent ran`,
      );
    }
    this.instance.enableOnly(this.targets.map((t) => t.event));

    this.clock = measureMonoToWall();
    this.ctx = {
      instance: this.instance,
      targets: this.targets,
      losses: new LossCounter(),
      clockOffsetNs: this.clock.offsetNs,
      warnOnce: (key, msg) => {
        if (this.warned.has(key)) return;
        this.warned.add(key);
        this.log.warn(msg);
      },
    };
    this.reader =
      o.reader === 'text' ? new TextReader(this.ctx) : new RawReader(this.ctx, this.instance.pageLayout());
    this.reader.open();
    this.log.info(
      `reading ${this.targets.map((t) => t.event).join(', ')} from ${this.instance.path} (${this.reader.mode}, clock ${clockName})`,
    );
  }

  /** The events to read: the configured ones that exist, else the fallbacks that exist. */
  private chooseEvents(root: string): { event: string; family: DecoderFamily }[] {
    const specs = (this.opts.events ?? [PRIMARY_EVENT]).map((s) =>
      typeof s === 'string' ? { event: s } : s,
    );
    const resolve = (s: TracefsEventSpec) => {
      const family = decoderFamily(s.decoder ?? s.event);
      if (!family) {
        throw new TracefsError(
          'EVENT_MISSING',
          `no decoder for trace event ${s.event}`,
          `known event families: ${DECODER_FAMILIES.map((f) => f.event).join(', ')}; name one as "decoder"`,
        );
      }
      return { event: s.event, family };
    };
    const wanted = specs.map(resolve);
    const present = wanted.filter((w) => eventExists(root, w.event));
    for (const w of wanted) {
      if (!present.includes(w)) {
        this.log.warn(
          `trace event ${w.event} does not exist in this kernel: it needs ${w.family.kernelSupport}`,
        );
      }
    }
    if (present.length > 0) return present;
    const fallbacks = (this.opts.fallbackEvents ?? FALLBACK_EVENTS).map((e) => resolve({ event: e }));
    const usable = fallbacks.filter((f) => eventExists(root, f.event));
    if (usable.length > 0) {
      this.log.warn(
        `none of ${wanted.map((w) => w.event).join(', ')} exists in this kernel; ` +
          `falling back to ${usable.map((u) => u.event).join(', ')}`,
      );
      return usable;
    }
    const all = [...wanted, ...fallbacks];
    throw new TracefsError(
      'EVENT_MISSING',
      `none of the trace events ${all.map((a) => a.event).join(', ')} exists in this kernel`,
      all.map((a) => `${a.event} needs ${a.family.kernelSupport}`).join('; '),
    );
  }

  async *read(signal: AbortSignal): AsyncGenerator<SourceChunk> {
    await this.open();
    const o = this.opts;
    const pollMin = o.pollMinMs ?? 10;
    const pollMax = o.pollMaxMs ?? 200;
    const settleNs = BigInt(Math.round((o.settleMs ?? 2) * 1e6));
    let interval = pollMin;
    let nextRescan = Date.now() + (o.cpuRescanMs ?? 5000);
    let nextStats = Date.now() + (o.statsIntervalMs ?? 1000);
    try {
      while (!signal.aborted) {
        const now = Date.now();
        if (now >= nextStats) {
          this.updateStats();
          nextStats = now + (o.statsIntervalMs ?? 1000);
          this.checkClock();
        }
        if (now >= nextRescan) {
          this.reader?.refreshCpus();
          nextRescan = now + (o.cpuRescanMs ?? 5000);
        }
        const { chunks, drained, active } = this.round(settleNs);
        for (const c of chunks) yield c;
        if (!drained) {
          await yieldToLoop();
          continue;
        }
        interval = active ? pollMin : Math.min(interval * 2, pollMax);
        await sleep(interval, signal);
      }
      // Finish what is in hand: everything read so far, and the final loss counts.
      this.updateStats();
      for (const c of this.round(undefined).chunks) yield c;
    } finally {
      await this.close();
    }
  }

  /**
   * One read round; settleNs undefined = final round (no hold-back). `active`: records were
   * read or are held back, so the next round should come soon.
   */
  private round(settleNs: bigint | undefined): { chunks: SourceChunk[]; drained: boolean; active: boolean } {
    const ctx = this.ctx;
    const reader = this.reader;
    if (!ctx || !reader) return { chunks: [], drained: true, active: false };
    const monoNow = process.hrtime.bigint();
    const baseNs = monoNow + ctx.clockOffsetNs;
    for (const t of this.targets) t.staging.begin(baseNs);
    const settled =
      settleNs === undefined || this.instance?.clock !== 'mono'
        ? undefined
        : monoNow - settleNs + ctx.clockOffsetNs;
    const r = reader.round(baseNs, settled);
    const cutoff = settleNs === undefined ? Number.POSITIVE_INFINITY : r.cutoffOffsetNs;
    const chunks: SourceChunk[] = [];
    let held = 0;
    for (const t of this.targets) {
      const events = t.staging.take(cutoff);
      held += t.staging.count;
      if (events) chunks.push({ events, event: t.event });
    }
    const lost = ctx.losses.take();
    if (lost) {
      if (chunks.length > 0) chunks[0].lost = lost;
      else chunks.push({ events: new EventBlockBuilder(1).finish(), event: this.event, lost });
    }
    return { chunks, drained: r.drained, active: r.records > 0 || held > 0 };
  }

  private updateStats(): void {
    const ctx = this.ctx;
    const inst = this.instance;
    if (!ctx || !inst || !this.reader) return;
    for (const cpu of this.reader.cpus()) {
      try {
        ctx.losses.updateStats(cpu, inst.stats(cpu));
      } catch (err) {
        ctx.warnOnce(`stats:${cpu}`, `cannot read stats of CPU ${cpu}: ${String(err)}`);
      }
    }
    if (ctx.losses.unknownCountSeen) {
      ctx.warnOnce(
        'unknown-missed',
        'the kernel flagged missed events without a count; counted from per-CPU stats',
      );
    }
  }

  private checkClock(): void {
    if (!this.clock || !this.ctx || !offsetDrifted(this.clock)) return;
    this.clock = measureMonoToWall();
    this.ctx.clockOffsetNs = this.clock.offsetNs;
    this.log.info('wall clock moved against CLOCK_MONOTONIC: trace clock offset re-measured');
  }

  /** Releases everything (idempotent): files, the instance (unless keepInstance), our mount. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reader?.close();
    this.reader = undefined;
    if (this.instance && !this.opts.keepInstance) {
      try {
        await this.instance.remove();
      } catch (err) {
        this.log.warn(`could not remove tracefs instance ${this.instance.path}: ${String(err)}`);
      }
    }
    if (this.mount?.mountedByUs) {
      const err = await unmountTracefs(this.mount);
      if (err) this.log.warn(`could not unmount tracefs at ${this.mount.path}: ${err.message}`);
    }
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
