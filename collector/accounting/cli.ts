#!/usr/bin/env node
// smmu-fleet: fleet IOMMU fault accounting.
//
//   aggregate   the aggregator daemon: raw batches -> windows and totals topics, HTTP JSON API
//   top         vmstat-style table per process, sorted by fault rate, from the aggregator's API
//               (--api-url), the totals topic, or (--source raw) straight from the raw topic
//   advise      prefault advice from the aggregator's API
//   totals      JSON totals counted straight from the raw topic, once it is drained
import { setTimeout as sleep } from 'node:timers/promises';
import { kafkaClient, kafkaOptionSpecs, kafkaSecurityFromOptions } from '../../common/kafka/client';
import { DEFAULT_BROKERS, DEFAULT_RAW_TOPIC } from '../../common/kafka/topics';
import type { Logger } from '../../common/runtime/log';
import { runMain } from '../../common/runtime/main';
import { OptionError, type Options, overlay } from '../../common/runtime/options';
import { Aggregator, defaultAggregatorConfig as a } from './aggregator';
import { BatchConsumer } from './consume';
import { FleetTotals } from './fleet-totals';
import { fleetSummary, hostRowFromProto, type ProcessRow, processRows, seriesRowFromProto } from './query';
import { type HostTotalsRow, hostRows, seriesRows } from './rows';
import { type AdviceLike, formatAdvice, formatTop, type TopFrame, topRows } from './table';
import { TotalsTopicView } from './totals-view';

const ENV_PREFIX = 'SMMU_FLEET_';

const specs = {
  ...kafkaOptionSpecs(DEFAULT_BROKERS),
  rawTopic: { type: 'string', default: DEFAULT_RAW_TOPIC, help: 'Kafka topic of raw agent batches' },
  windowsTopic: {
    type: 'string',
    default: a.windowsTopic,
    help: 'Kafka topic of closed windows (aggregate)',
  },
  totalsTopic: {
    type: 'string',
    default: a.totalsTopic,
    help: 'compacted Kafka topic of totals (aggregate writes it, top --source topic reads it)',
  },
  checkpointTopic: {
    type: 'string',
    default: a.checkpointTopic,
    help: 'compacted Kafka topic of the aggregator checkpoints',
  },
  groupId: {
    type: 'string',
    default: '',
    help: `consumer group (aggregate: default ${a.groupId}; top --source raw and totals: a new one per run, reading from the oldest batch)`,
  },
  httpListen: {
    type: 'string',
    default: a.httpListen,
    help: 'aggregate: HTTP address of the JSON API, /healthz, /readyz, /metrics (empty: off)',
  },
  fleetPeers: {
    type: 'list',
    default: [],
    help: "aggregate: the other instances' API base URLs; /v1/fleet/ and the web page at / merge their answers into the whole fleet",
  },
  apiUrl: {
    type: 'list',
    default: [],
    help: 'top, advise: aggregator API base URLs (several: one per instance, merged), e.g. http://127.0.0.1:9472',
  },
  source: {
    type: 'string',
    default: 'auto',
    choices: ['auto', 'api', 'topic', 'raw'],
    help: 'top: where the numbers come from (auto: api when --api-url is given, else topic)',
  },
  format: {
    type: 'string',
    default: 'table',
    choices: ['table', 'json'],
    help: 'top, advise: output format',
  },
  count: {
    type: 'number',
    default: 0,
    min: 0,
    integer: true,
    help: 'top: frames to print before exiting (0: until interrupted); rates need two',
  },
  intervalMs: { type: 'number', default: 1000, min: 50, help: 'top: refresh interval' },
  rows: { type: 'number', default: 40, min: 1, integer: true, help: 'most table rows shown' },
  idleMs: {
    type: 'number',
    default: 3000,
    min: 100,
    help: 'totals: print once no batch arrived for this long',
  },
  host: { type: 'string', default: '', help: 'advise: only this host' },
  ssid: { type: 'number', default: -1, min: -1, integer: true, help: 'advise: only this SSID (-1: all)' },
  minFaults: {
    type: 'number',
    default: a.adviceMinFaults,
    min: 1,
    integer: true,
    help: 'advise, aggregate: guaranteed faults that make a page hot',
  },
  gapPages: {
    type: 'number',
    default: a.adviceGapPages,
    min: 0,
    integer: true,
    help: 'advise, aggregate: most non-hot pages between two hot pages of one advice range',
  },
  createTopics: { type: 'boolean', default: a.createTopics, help: 'aggregate: create missing output topics' },
  topicPartitions: {
    type: 'number',
    default: a.topicPartitions,
    min: 1,
    integer: true,
    help: 'aggregate: partitions of created windows/totals topics',
  },
  topicReplication: {
    type: 'number',
    default: a.topicReplication,
    min: 1,
    integer: true,
    help: 'aggregate: replication of created topics',
  },
  windowsRetentionMs: {
    type: 'number',
    default: a.windowsRetentionMs,
    min: 60_000,
    help: 'aggregate: retention of a created windows topic',
  },
  checkpointIntervalMs: {
    type: 'number',
    default: a.checkpointIntervalMs,
    min: 50,
    help: 'aggregate: publish windows/totals and checkpoint each partition this often',
  },
  windowGraceMs: {
    type: 'number',
    default: a.windowGraceMs,
    min: 0,
    help: "aggregate: a window closes once the host's event time passes its end plus this",
  },
  maxEventAheadMs: {
    type: 'number',
    default: a.maxEventAheadMs,
    min: 0,
    help: "aggregate: events further ahead of the collector's clock (or before 1970) count in totals, in no window",
  },
  hotPageSlots: {
    type: 'number',
    default: a.hotPageSlots,
    min: 1,
    integer: true,
    help: 'aggregate: hot-page counters per process',
  },
  hotPageShift: {
    type: 'number',
    default: a.hotPageShift,
    min: 12,
    // inputPage (common/smmu/record.ts) shifts a 32-bit word, and `>>>` takes its count mod 32;
    // 30 (1 GiB) is also the largest page-table block.
    max: 30,
    integer: true,
    help: 'aggregate: hot pages are aligned blocks of 2^N bytes (12: 4 KiB pages, 16: 64 KiB, 21: 2 MiB)',
  },
  windowHistory: {
    type: 'number',
    default: a.windowHistory,
    min: 0,
    integer: true,
    help: 'aggregate: closed windows kept in memory for /v1/windows',
  },
  sessionTimeoutMs: {
    type: 'number',
    default: a.sessionTimeoutMs,
    min: 6000,
    help: 'aggregate: consumer-group session timeout (a crashed instance is replaced after it)',
  },
} as const;

type Opts = Options<typeof specs>;
/** A Kafka client with the connection options (brokers, TLS, SASL) of the command line. */
const kafkaFor = (o: Opts, clientId: string) =>
  kafkaClient({ clientId, brokers: o.kafkaBrokers, security: kafkaSecurityFromOptions(o, ENV_PREFIX) });

type Sample = { processes: ProcessRow[]; hosts: HostTotalsRow[]; source: string };

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** The per-process and per-host rows of every API, merged (instances hold disjoint hosts). */
async function sampleApi(urls: string[]): Promise<Sample> {
  const parts = await Promise.all(
    urls.map(async (u) => {
      const base = u.replace(/\/+$/, '');
      const [p, h] = await Promise.all([
        getJson<{ processes: ProcessRow[] }>(`${base}/v1/processes`),
        getJson<{ hosts: HostTotalsRow[] }>(`${base}/v1/hosts`),
      ]);
      return { processes: p.processes, hosts: h.hosts };
    }),
  );
  return {
    processes: parts.flatMap((x) => x.processes),
    hosts: parts.flatMap((x) => x.hosts),
    source: `api ${urls.join(',')}`,
  };
}

async function topCommand(o: Opts, log: Logger) {
  const source = o.source === 'auto' ? (o.apiUrl.length > 0 ? 'api' : 'topic') : o.source;
  if (source === 'api' && o.apiUrl.length === 0) throw new OptionError('--source api needs --api-url');
  const kafka = kafkaFor(o, 'smmu-fleet-top');
  let sample: () => Promise<Sample>;
  let stopSource = async () => {};
  if (source === 'api') {
    sample = () => sampleApi(o.apiUrl);
  } else if (source === 'topic') {
    const view = new TotalsTopicView(kafka, o.totalsTopic, log);
    await view.start();
    await view.caughtUp();
    stopSource = () => view.stop();
    sample = async () => {
      const recs = view.records();
      const series = recs.filter((r) => r.series).map((r) => seriesRowFromProto(r.series!));
      const hosts = recs.filter((r) => r.host).map((r) => hostRowFromProto(r.host!));
      return { processes: processRows(series), hosts, source: `topic ${o.totalsTopic}` };
    };
  } else {
    const totals = new FleetTotals();
    const consumer = new BatchConsumer(
      kafka,
      {
        topic: o.rawTopic,
        groupId: o.groupId || `smmu-fleet-${process.pid}-${Date.now()}`,
        fromBeginning: true,
      },
      log,
    );
    await consumer.start((b, receivedNs) => totals.add(b, receivedNs));
    stopSource = () => consumer.stop();
    sample = async () => ({
      processes: processRows(seriesRows(totals.state)),
      hosts: hostRows(totals.state),
      source: `raw ${o.rawTopic}`,
    });
  }
  let prev: { rows: ProcessRow[]; at: number } | undefined;
  let frames = 0;
  let stopped = false;
  const frame = async () => {
    const s = await sample();
    const at = Date.now();
    const f: TopFrame = {
      at: new Date(at).toISOString(),
      source: s.source,
      summary: fleetSummary(s.hosts),
      processes: topRows(s.processes, prev?.rows, prev ? (at - prev.at) / 1000 : 0),
    };
    prev = { rows: s.processes, at };
    if (o.format === 'json') process.stdout.write(`${JSON.stringify(f)}\n`);
    else process.stdout.write(`${o.count === 1 ? '' : '\x1b[2J\x1b[H'}${formatTop(f, o.rows)}\n`);
    frames++;
  };
  const stop = async () => {
    stopped = true;
    await stopSource();
  };
  void (async () => {
    try {
      while (!stopped) {
        await frame();
        if (o.count > 0 && frames >= o.count) break;
        await sleep(o.intervalMs);
      }
      await stop();
      process.exit(0);
    } catch (err) {
      process.stderr.write(`smmu-fleet top: ${(err as Error).message}\n`);
      await stop();
      process.exit(1);
    }
  })();
  return { stop };
}

async function adviseCommand(o: Opts) {
  if (o.apiUrl.length === 0)
    throw new OptionError('advise needs --api-url (the aggregator keeps the hot pages)');
  const params = new URLSearchParams({ minFaults: String(o.minFaults), gapPages: String(o.gapPages) });
  if (o.host) params.set('host', o.host);
  if (o.ssid >= 0) params.set('ssid', String(o.ssid));
  const parts = await Promise.all(
    o.apiUrl.map((u) => getJson<{ advice: AdviceLike[] }>(`${u.replace(/\/+$/, '')}/v1/advice?${params}`)),
  );
  const advice = parts.flatMap((p) => p.advice).sort((x, y) => y.savedFaults - x.savedFaults);
  const text =
    o.format === 'json' ? `${JSON.stringify({ advice }, null, 2)}\n` : `${formatAdvice(advice, o.rows)}\n`;
  process.stdout.write(text, () => process.exit(0));
}

async function totalsCommand(o: Opts, log: Logger) {
  const kafka = kafkaFor(o, 'smmu-fleet');
  const totals = new FleetTotals();
  const groupId = o.groupId || `smmu-fleet-${process.pid}-${Date.now()}`;
  const consumer = new BatchConsumer(kafka, { topic: o.rawTopic, groupId, fromBeginning: true }, log);
  let last = Date.now();
  await consumer.start((b, receivedNs) => {
    totals.add(b, receivedNs);
    last = Date.now();
  });
  const stop = async () => {
    clearInterval(timer);
    await consumer.stop();
  };
  const timer = setInterval(() => {
    if (Date.now() - last < o.idleMs) return;
    process.stdout.write(
      `${JSON.stringify({ hosts: totals.hostRows(), counts: totals.rows(), lost: totals.lostRows(), replayedBatches: totals.replays.duplicates }, null, 2)}\n`,
    );
    void stop().then(() => process.exit(0));
  }, 200);
  return { stop };
}

async function aggregateCommand(o: Opts, log: Logger) {
  const agg = new Aggregator(
    {
      ...overlay(a, o),
      brokers: o.kafkaBrokers,
      kafkaSecurity: kafkaSecurityFromOptions(o, ENV_PREFIX),
      groupId: o.groupId || a.groupId,
      adviceMinFaults: o.minFaults,
      adviceGapPages: o.gapPages,
    },
    log,
  );
  await agg.start();
  return agg;
}

runMain(
  {
    name: 'smmu-fleet',
    envPrefix: ENV_PREFIX,
    usage: '[top|aggregate|advise|totals] [options]',
    summary:
      'Fleet IOMMU fault accounting per host x SMMU x StreamID x SSID x fault kind, replayed batches dropped. `aggregate` runs the aggregator (raw batches -> windows and totals topics, JSON API); `top` (default) shows faults per process sorted by rate, from the API or the totals topic; `advise` prints prefault advice from the API; `totals` prints JSON counted straight from the raw topic once it is drained.',
  },
  specs,
  async (o, positionals, log) => {
    const mode = positionals[0] ?? 'top';
    switch (mode) {
      case 'aggregate':
        return aggregateCommand(o, log);
      case 'top':
        return topCommand(o, log);
      case 'advise':
        await adviseCommand(o);
        return undefined;
      case 'totals':
        return totalsCommand(o, log);
      default:
        throw new OptionError(`unknown command "${mode}": use top, aggregate, advise or totals`);
    }
  },
);
