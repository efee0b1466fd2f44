// The per-event hot paths in one process, ns per event (line): batch encode, the collector's
// structure check, full decode, the agent's counters (with and without the model's stall
// times), trace text parse + decode. BENCH_HOT_BASE=<tree> loads another build's dist/ into the
// same process and alternates the two round by round, so both see the same machine; it then
// prints <name>_base and the ratio. Medians of BENCH_HOT_ROUNDS rounds (the first two dropped).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tracefsFixture } from '../support/uprobe-records';
import { medianOf, report } from './bench-util';

const ROUNDS = Number(process.env.BENCH_HOT_ROUNDS ?? 15);
const BATCHES = 24;
const BATCH_EVENTS = 16_384;
const TEXT_LINES = 200_000;

/** A build's modules, loaded from its dist/ (this one's, or the base's). */
function load(dist: string) {
  const req = (m: string) => require(join(dist, m));
  const ev = req('agent/src/source/tracefs/events/index');
  return {
    codec: req('proto/batch-codec') as typeof import('../../proto/batch-codec'),
    counters: req('agent/src/smmu/counters') as typeof import('../../agent/src/smmu/counters'),
    events: ev as typeof import('../../agent/src/source/tracefs/events/index'),
    format: req('agent/src/source/tracefs/format') as typeof import('../../agent/src/source/tracefs/format'),
    staging: req(
      'agent/src/source/tracefs/staging',
    ) as typeof import('../../agent/src/source/tracefs/staging'),
    losses: req('agent/src/source/tracefs/losses') as typeof import('../../agent/src/source/tracefs/losses'),
    text: req(
      'agent/src/source/tracefs/text-lines',
    ) as typeof import('../../agent/src/source/tracefs/text-lines'),
  };
}
type Build = ReturnType<typeof load>;

const here = resolve(__dirname, '../..');
const base = process.env.BENCH_HOT_BASE;
const builds: [string, Build][] = [['', load(here)]];
if (base) builds.push(['_base', load(join(resolve(base), 'dist'))]);

// Inputs from this build: model batches and the e2e benchmark's text lines.
const { SmmuModel } = require(
  join(here, 'agent/src/source/model'),
) as typeof import('../../agent/src/source/model');
const { modelBatch } = require(join(here, 'test/support/batches')) as typeof import('../support/batches');
const e2e = require(join(here, 'test/bench/e2e-stream')) as typeof import('./e2e-stream');
const model = new SmmuModel({ seed: 7, rate: 0, maxChunkEvents: BATCH_EVENTS, chunkNs: 1e10 });
const blocks = Array.from({ length: BATCHES }, () => model.nextBlock());
const events = blocks.reduce((s, b) => s + b.count, 0);
const batches = blocks.map((ev, i) => modelBatch('node-1', i + 1, ev, { createdUnixNs: 1n }));
const encoded = batches.map((b) => builds[0][1].codec.encodeBatch(b));
const text = e2e.traceText(e2e.modelBlocks(e2e.modelConfig(TEXT_LINES, 1_780_000_000_000_000_000n)));
const formatText = readFileSync(tracefsFixture('smmu_evtq_event.uprobe.format'), 'utf8');

// Every build must write the same bytes, or the comparison means nothing.
for (const [tag, b] of builds)
  batches.forEach((x, k) => {
    if (!Buffer.from(b.codec.encodeBatch(x)).equals(Buffer.from(encoded[k])))
      throw new Error(`build${tag} encodes batch ${k} differently`);
  });

function textParse(b: Build): () => void {
  const fmt = b.format.parseEventFormat(formatText);
  const event = b.events.PRIMARY_EVENT;
  const decoder = b.events.decoderFamily(event)?.create(fmt, event);
  if (!decoder) throw new Error('no smmu_evtq_event decoder');
  return () => {
    const staging = new b.staging.EventStaging(event);
    const parser = new b.text.TraceTextParser({
      targets: [{ event, typeId: fmt.id, decoder, staging }],
      losses: new b.losses.LossCounter(),
      warnOnce: (_k, m) => {
        throw new Error(m);
      },
    });
    staging.begin(0n);
    parser.setBase(0n);
    const [n] = parser.parse(text, 0, text.length);
    if (n !== TEXT_LINES || staging.take()?.count !== TEXT_LINES)
      throw new Error(`text: ${n} of ${TEXT_LINES}`);
  };
}

/** A round that counts every block into new counters. */
function counting(b: Build, opts: { stallTime?: (words: Uint32Array, w: number) => number }): () => void {
  return () => {
    const c = new b.counters.FaultCounters(opts);
    for (const x of blocks) c.add(x);
  };
}

/** A round that calls `fn` on each of `xs`. */
function each<T>(xs: readonly T[], fn: (x: T) => unknown): () => void {
  return () => {
    for (const x of xs) fn(x);
  };
}

/** name -> [units per round, the work of one round for a build]. */
const jobs: Record<string, [number, (b: Build) => () => void]> = {
  encode: [events, (b) => each(blocks, (x) => b.codec.encodeColumns(x))],
  check: [
    events,
    (b) => each(encoded, (e) => b.codec.decodeBatch(e, { maxEvents: 1 << 20, structureOnly: true })),
  ],
  decode: [events, (b) => each(encoded, (e) => b.codec.decodeBatch(e))],
  counters: [events, (b) => counting(b, {})],
  counters_stall_time: [events, (b) => counting(b, { stallTime: model.stallTimeNs })],
  text_parse: [TEXT_LINES, textParse],
};

report('events_per_round', events);
for (const [name, [units, make]] of Object.entries(jobs)) {
  const works = builds.map(([, b]) => make(b));
  const ns: number[][] = builds.map(() => []);
  for (let r = 0; r < ROUNDS; r++)
    works.forEach((work, i) => {
      const t0 = process.hrtime.bigint();
      work();
      ns[i].push(Number(process.hrtime.bigint() - t0) / units);
    });
  const med = ns.map((xs) => medianOf(xs.slice(2)));
  for (const [i, [tag]] of builds.entries()) report(`${name}${tag}_ns_per_event`, med[i], 1);
  if (base) report(`${name}_base_over_this`, med[1] / med[0], 2);
}
