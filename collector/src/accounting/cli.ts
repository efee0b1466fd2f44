#!/usr/bin/env node
// smmu-fleet: fleet fault accounting from the raw-batches topic, printed as a table that
// updates while batches arrive (`top`), or once as JSON when caught up (`totals`).
import { Kafka, logLevel } from 'kafkajs';
import { runMain } from '../../../agent/src/runtime/main';
import { defaultCollectorConfig as d } from '../collector';
import { FleetTotals } from './aggregate';
import { BatchConsumer } from './consume';
import { formatFleetTable } from './table';

const specs = {
  kafkaBrokers: { type: 'list', default: d.brokers, help: 'Kafka bootstrap brokers' },
  rawTopic: { type: 'string', default: d.rawTopic, help: 'Kafka topic of raw agent batches' },
  groupId: {
    type: 'string',
    default: '',
    help: 'consumer group (default: a new one per run, reading from the oldest batch)',
  },
  intervalMs: { type: 'number', default: 1000, min: 50, help: 'table refresh interval for `top`' },
  rows: { type: 'number', default: 40, min: 1, help: 'most table rows shown' },
  idleMs: {
    type: 'number',
    default: 3000,
    min: 100,
    help: '`totals`: print once no batch arrived for this long',
  },
} as const;

runMain(
  {
    name: 'smmu-fleet',
    envPrefix: 'SMMU_FLEET_',
    usage: '[top|totals] [options]',
    summary:
      'Fleet IOMMU fault accounting: counts events per host x SMMU x StreamID x SSID x event type from the raw-batches topic, dropping replayed batches. `top` (default) redraws the table; `totals` prints JSON once the topic is drained.',
  },
  specs,
  async (o, positionals, log) => {
    const mode = positionals[0] ?? 'top';
    if (mode !== 'top' && mode !== 'totals') throw new Error(`unknown command "${mode}": use top or totals`);
    const kafka = new Kafka({ clientId: 'smmu-fleet', brokers: o.kafkaBrokers, logLevel: logLevel.NOTHING });
    const totals = new FleetTotals();
    const groupId = o.groupId || `smmu-fleet-${process.pid}-${Date.now()}`;
    const consumer = new BatchConsumer(kafka, { topic: o.rawTopic, groupId, fromBeginning: true }, log);
    let last = Date.now();
    await consumer.start((b) => {
      totals.add(b);
      last = Date.now();
    });
    const stop = async () => {
      clearInterval(timer);
      await consumer.stop();
    };
    const timer = setInterval(
      () => {
        if (mode === 'top') {
          process.stdout.write(
            `\x1b[2J\x1b[H${new Date().toISOString()}  topic ${o.rawTopic}\n${formatFleetTable(totals, o.rows)}\n`,
          );
        } else if (Date.now() - last >= o.idleMs) {
          process.stdout.write(
            `${JSON.stringify({ hosts: totals.hostRows(), counts: totals.rows(), lost: totals.lostRows(), replayedBatches: totals.replays.duplicates }, null, 2)}\n`,
          );
          void stop().then(() => process.exit(0));
        }
      },
      mode === 'top' ? o.intervalMs : 200,
    );
    return { stop };
  },
);
