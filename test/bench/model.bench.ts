// Throughput of the SMMU model and the record decoder on one core, as `key: value` lines.
// Each figure is the median of RUNS timed runs after one warm-up run.
//   node dist/test/bench/model.bench.js [events-per-run]
import { FaultCounters } from '../../agent/src/smmu/counters';
import { SmmuModel } from '../../agent/src/source/model';
import {
  type DecodedEvent,
  decodeRecord,
  faultKind,
  isStall,
  streamId,
  substreamId,
} from '../../common/smmu/record';
import type { EventBlock } from '../../proto/event-block';
import { medianOf } from './bench-util';

const RUNS = 7;
const EVENTS = Number(process.argv[2] ?? 1_000_000);

/** Events/s of `fn` (which handles `events` events), median of RUNS runs after a warm-up. */
function rate(events: number, fn: () => void): number {
  fn();
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    rates.push(events / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return medianOf(rates);
}

function fmt(x: number): string {
  return x.toExponential(2).replace('e+', 'e');
}

function main(): void {
  const model = new SmmuModel({ seed: 1, rate: 0 });
  // Generate: simulate DMA page touches, decide faults, write the 32-byte records.
  let block: EventBlock = model.generate(1);
  const touchesBefore = model.stats.touches;
  const eventsBefore = model.stats.events;
  const generate = rate(EVENTS, () => {
    block = model.generate(EVENTS);
  });
  const touchesPerEvent = (model.stats.touches - touchesBefore) / (model.stats.events - eventsBefore);

  // The same in work pace: the clock advances per page touch, events only where one faults.
  const work = new SmmuModel({ seed: 1, rate: 0, pace: 'work' });
  work.generate(1);
  const workTouchesBefore = work.stats.touches;
  const workEventsBefore = work.stats.events;
  const workGenerate = rate(EVENTS, () => {
    work.generate(EVENTS);
  });
  const workTouchesPerEvent =
    (work.stats.touches - workTouchesBefore) / (work.stats.events - workEventsBefore);

  // Full decode: one DecodedEvent per record, kept alive so the allocation cannot be elided,
  // reading its fields including the 64-bit InputAddr.
  const sink: DecodedEvent[] = new Array(1024);
  let check = 0;
  const decode = rate(block.count, () => {
    const words = block.words;
    for (let i = 0, w = 0; i < block.count; i++, w += 8) {
      const e = decodeRecord(words, w);
      sink[i & 1023] = e;
      check += e.sid + e.ssid + e.stag + (e.rnw ? 1 : 0) + Number(e.inputAddr & 0xfffn);
    }
  });

  // Hot-loop accessors: no allocation at all.
  const fast = rate(block.count, () => {
    const words = block.words;
    for (let i = 0, w = 0; i < block.count; i++, w += 8) {
      check += faultKind(words, w) + streamId(words, w) + substreamId(words, w) + (isStall(words, w) ? 1 : 0);
    }
  });

  const withStall = new FaultCounters({ stallTime: model.stallTimeNs });
  const counters = rate(block.count, () => withStall.add(block));
  const plain = new FaultCounters();
  const countersNoStallTime = rate(block.count, () => plain.add(block));

  const out: Array<[string, string]> = [
    ['node', process.version],
    ['runs', String(RUNS)],
    ['events_per_run', String(EVENTS)],
    ['model_generate_events_per_s', fmt(generate)],
    ['model_touches_per_event', touchesPerEvent.toFixed(2)],
    ['model_work_generate_events_per_s', fmt(workGenerate)],
    ['model_work_generate_touches_per_s', fmt(workGenerate * workTouchesPerEvent)],
    ['model_work_touches_per_event', workTouchesPerEvent.toFixed(2)],
    ['decoder_decode_record_events_per_s', fmt(decode)],
    ['decoder_fast_path_events_per_s', fmt(fast)],
    ['counters_add_events_per_s', fmt(counters)],
    ['counters_add_no_stall_time_events_per_s', fmt(countersNoStallTime)],
  ];
  for (const [k, v] of out) process.stdout.write(`${k}: ${v}\n`);
  if (check === 0.5) process.stdout.write('\n'); // keeps `check` live
}

main();
