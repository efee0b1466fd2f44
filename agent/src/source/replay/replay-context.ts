// What the replay readers (text, raw pages, trace.dat) share: the decode targets (one per
// event in the capture, decoder family chosen by event name), their stagings, the loss
// counter, and turning what was decoded into source chunks.
import { EventBlockBuilder } from '../../../../proto/event-block';
import type { SourceChunk } from '../source';
import { DECODER_FAMILIES, type DecoderFamily } from '../tracefs/events/index';
import { type EventFormat, parseFieldLine } from '../tracefs/format';
import { LossCounter } from '../tracefs/losses';
import type { DecodeTarget } from '../tracefs/reader';
import { EventStaging } from '../tracefs/staging';

/** The family of an event by name: the canonical name, or a probe named after it (e.g. "smmu_evtq_event_1"). */
export function familyFor(name: string): DecoderFamily | undefined {
  const bare = name.slice(name.indexOf(':') + 1);
  return DECODER_FAMILIES.find((f) => bare.startsWith(f.event.slice(f.event.indexOf(':') + 1)));
}

/** Text gives no format: the proposed tracepoint's fields, enough for its text decoder. */
const TEXT_FORMAT: EventFormat = {
  name: 'smmu_evtq_event',
  id: 0,
  printFmt: '',
  fields: [
    'field:unsigned short common_type; offset:0; size:2; signed:0;',
    'field:u64 evt0; offset:8; size:8; signed:0;',
    'field:u64 evt1; offset:16; size:8; signed:0;',
    'field:u64 evt2; offset:24; size:8; signed:0;',
    'field:u64 evt3; offset:32; size:8; signed:0;',
    'field:__data_loc char[] iommu; offset:40; size:4; signed:1;',
  ].map((l) => parseFieldLine(l) as NonNullable<ReturnType<typeof parseFieldLine>>),
};

export class ReplayContext {
  /** A capture has no per-CPU stats: a missed-events flag without a count counts as one. */
  readonly losses = new LossCounter(1);
  readonly targets: DecodeTarget[] = [];
  private readonly warned = new Set<string>();
  private base = 0n;

  constructor(
    /** Path of the capture ("-": stdin). */
    readonly input: string,
    private readonly warn: (msg: string) => void,
  ) {}

  readonly warnOnce = (key: string, msg: string): void => {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(msg);
  };

  /** Starts a slice: decoded records get offsets from wall time `wallBaseNs`. */
  begin(wallBaseNs: bigint): void {
    this.base = wallBaseNs;
    for (const t of this.targets) t.staging.begin(wallBaseNs);
  }

  /** A target for "group:event" with its format from the capture; undefined when no decoder fits. */
  addTarget(event: string, format: EventFormat): DecodeTarget | undefined {
    const family = familyFor(event);
    if (!family) return undefined;
    const t: DecodeTarget = {
      event,
      typeId: format.id,
      decoder: family.create(format, event),
      staging: new EventStaging(event),
    };
    t.staging.begin(this.base);
    this.targets.push(t);
    return t;
  }

  /** A target for an event named in text (no group, no format), or undefined. */
  textTarget(name: string): DecodeTarget | undefined {
    const family = familyFor(name);
    if (!family) return undefined;
    try {
      return this.addTarget(`${family.event.split(':')[0]}:${name}`, { ...TEXT_FORMAT, name });
    } catch {
      return undefined; // a family whose decoder needs fields text cannot tell
    }
  }
}

/** The records decoded since begin(), one chunk per event, and the losses counted meanwhile. */
export function* takeChunks(ctx: ReplayContext): Generator<SourceChunk> {
  const chunks: SourceChunk[] = [];
  for (const t of ctx.targets) {
    const events = t.staging.take();
    if (events) chunks.push({ events, event: t.event });
  }
  const lost = ctx.losses.take();
  if (lost) {
    if (chunks.length > 0) chunks[0].lost = lost;
    else chunks.push({ events: new EventBlockBuilder(1).finish(), event: ctx.targets[0]?.event, lost });
  }
  yield* chunks;
}
