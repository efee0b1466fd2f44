// The local fleet demo: a Kafka broker, one smmu-collector process, several smmu-agent
// processes running the SMMU model as different hosts (one with prefaulting on, to show what
// MAP_POPULATE saves), an aggregator serving the fleet web page (its URL is printed), and the
// fleet accounting table redrawn as batches arrive.
// Ctrl-C (or --duration-s) stops the agents first (each drains what it spooled), then the
// collector, the aggregator and the broker, and exits 0.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { BatchConsumer } from '../../collector/accounting/consume';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { formatFleetTable } from '../../collector/accounting/table';
import { kafkaClient, kafkaOptionSpecs, kafkaSecurityFromOptions } from '../../common/kafka/client';
import { createLogger } from '../../common/runtime/log';
import { parseOptions } from '../../common/runtime/options';
import { freePort, type KafkaBroker, startKafka } from '../kafka/container';

// The usage text is a file so that demo.sh can print it before anything is built.
const usage = () => readFileSync(join(__dirname, '..', '..', '..', 'deploy', 'demo', 'usage.txt'), 'utf8');
let args: { agents: string; rate: string; 'duration-s': string; 'web-port': string; help: boolean };
try {
  args = parseArgs({
    options: {
      agents: { type: 'string', default: '4' },
      rate: { type: 'string', default: '6000' },
      'duration-s': { type: 'string', default: '0' },
      'web-port': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values as typeof args;
} catch (err) {
  process.stderr.write(`demo: ${(err as Error).message.split('. ')[0]}\n\n${usage()}`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(usage());
  process.exit(0);
}

// Kafka security for an existing cluster: the SMMU_FLEET_KAFKA_* variables, for the demo's own
// consumer and (as SMMU_COLLECTOR_KAFKA_*) for its collector.
function kafkaEnvOptions() {
  try {
    return parseOptions({ name: 'demo', envPrefix: 'SMMU_FLEET_', summary: '' }, kafkaOptionSpecs([]), [])
      .options;
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
const kafkaEnv = kafkaEnvOptions();
const security = kafkaSecurityFromOptions(kafkaEnv, 'SMMU_FLEET_');
const collectorEnv = Object.fromEntries(
  Object.entries(process.env)
    .filter(([k]) => k.startsWith('SMMU_FLEET_KAFKA_'))
    .map(([k, v]) => [k.replace('SMMU_FLEET_', 'SMMU_COLLECTOR_'), v]),
);

const dist = join(__dirname, '..', '..');
const log = createLogger('demo');
const children: ChildProcess[] = [];
let brokerStarting: Promise<KafkaBroker> | undefined;
/** What main() set up so far, for stop(). */
const running: {
  collector?: ChildProcess;
  aggregator?: ChildProcess;
  stopView?: () => Promise<void>;
  table?: () => string;
} = {};
let stopping = false;

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r));

/**
 * Agents first, one SIGTERM each (they close their batch and wait for the collector's acks),
 * then the collector, the view and the broker; whatever phase the demo is in.
 */
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const t0 = Date.now();
  process.stdout.write('\nstopping: the agents drain, then the collector and the broker stop...\n');
  const agents = children.filter((c) => c !== running.collector && c !== running.aggregator);
  for (const c of agents) c.kill('SIGTERM');
  await Promise.race([Promise.all(agents.map(exited)), sleep(15_000)]);
  const drained = agents.filter((c) => c.exitCode === 0).length;
  const servers = [running.collector, running.aggregator].filter((c): c is ChildProcess => c !== undefined);
  for (const c of servers) c.kill('SIGTERM');
  await Promise.race([Promise.all(servers.map(exited)), sleep(10_000)]);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await running.stopView?.().catch(() => {});
  const broker = await brokerStarting?.catch(() => undefined);
  await broker?.stop().catch((err: Error) => log.warn({ err }, 'could not remove the broker'));
  process.stdout.write(
    `${running.table?.() ?? ''}\n${drained} of ${agents.length} agents drained and exited 0; stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s.\n`,
  );
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

function launch(script: string, argv: string[], name: string): ChildProcess {
  // Own process group: a Ctrl-C on the terminal reaches the demo only, which then sends each
  // child one SIGTERM (two signals would make an agent skip its graceful drain).
  const child = spawn(process.execPath, [join(dist, script), ...argv], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
    env: { ...process.env, ...collectorEnv, LOG_FORMAT: 'json' },
  });
  child.stderr?.on('data', (d: Buffer) => {
    // Children log JSON lines; the demo shows warnings and errors only.
    for (const line of d.toString().split('\n'))
      if (/"level":(40|50|60)/.test(line)) log.warn({ from: name }, line);
  });
  children.push(child);
  return child;
}

async function main(): Promise<void> {
  brokerStarting = startKafka();
  const broker = await brokerStarting;
  if (stopping) return; // Ctrl-C while the broker started: stop() removes it
  const brokers = broker.brokers;
  const topic = `smmu-fleet.demo.${Date.now()}`;
  const grpcPort = await freePort();
  const collector = launch(
    'collector/ingest/cli.js',
    [
      '--listen',
      `127.0.0.1:${grpcPort}`,
      '--http-listen',
      '127.0.0.1:0',
      '--kafka-brokers',
      brokers.join(','),
      '--raw-topic',
      topic,
    ],
    'collector',
  );
  running.collector = collector;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('collector not ready within 60 s')), 60_000);
    collector.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('collector ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    collector.once('exit', (code) => reject(new Error(`collector exited with code ${code}`)));
  });
  if (stopping) return; // no agents after Ctrl-C
  const webPort = Number(args['web-port']) || (await freePort());
  const aggregator = launch(
    'collector/accounting/cli.js',
    [
      'aggregate',
      '--kafka-brokers',
      brokers.join(','),
      '--raw-topic',
      topic,
      '--windows-topic',
      `${topic}.windows`,
      '--totals-topic',
      `${topic}.totals`,
      '--checkpoint-topic',
      `${topic}.checkpoints`,
      '--group-id',
      `${topic}.aggregator`,
      '--checkpoint-interval-ms',
      '1000',
      '--http-listen',
      `127.0.0.1:${webPort}`,
    ],
    'aggregator',
  );
  running.aggregator = aggregator;
  const pageUrl = `http://127.0.0.1:${webPort}/`;
  const n = Number(args.agents);
  for (let i = 1; i <= n; i++) {
    const extra = i === n ? ['--prefault'] : [];
    launch(
      'agent/src/cli.js',
      [
        '--host',
        `node-${i}${extra.length ? '-prefault' : ''}`,
        '--seed',
        String(i),
        '--rate',
        args.rate,
        '--model-pace',
        'work',
        '--collector',
        `127.0.0.1:${grpcPort}`,
        '--http-listen',
        '',
        ...extra,
      ],
      `agent-${i}`,
    );
  }

  const totals = new FleetTotals();
  const kafka = kafkaClient({ clientId: 'smmu-fleet-demo', brokers, security });
  const consumer = new BatchConsumer(
    kafka,
    { topic, groupId: `demo-${Date.now()}`, fromBeginning: true },
    log,
  );
  let started = false;
  for (let tries = 0; !started && tries < 100; tries++) {
    try {
      await consumer.start((b) => totals.add(b));
      started = true;
    } catch {
      await sleep(300); // the collector creates the topic once it is up
    }
  }
  const timer = setInterval(() => {
    process.stdout.write(
      `\x1b[2J\x1b[Hsmmu-fleet demo: ${n} agents -> collector 127.0.0.1:${grpcPort} -> Kafka ${brokers.join(',')} topic ${topic}\n`,
    );
    process.stdout.write(`fleet web page: ${pageUrl}\n`);
    process.stdout.write(
      `(every agent does the same DMA work; node-${n}-prefault maps with MAP_POPULATE: no translation faults, fewer faults in all)   Ctrl-C to stop\n\n${formatFleetTable(totals, 15)}\n`,
    );
  }, 1000);

  running.stopView = async () => {
    clearInterval(timer);
    await consumer.stop();
  };
  running.table = () => formatFleetTable(totals, 15);
  const seconds = Number(args['duration-s']);
  if (seconds > 0) setTimeout(() => void stop(0), seconds * 1000);
}

main().catch((err: Error) => {
  if (stopping) return; // a child ended by stop() is not a failure
  process.stderr.write(`demo failed: ${err.message}\n`);
  for (const c of children) c.kill('SIGKILL');
  void (brokerStarting?.then((b) => b.stop()) ?? Promise.resolve()).finally(() => process.exit(1));
});
