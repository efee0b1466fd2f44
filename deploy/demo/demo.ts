// The local fleet demo: a Kafka broker, one smmu-collector process, several smmu-agent
// processes running the SMMU model as different hosts (one with prefaulting on, to show what
// MAP_POPULATE saves), and the fleet accounting table redrawn as batches arrive.
// Ctrl-C (or --duration-s) stops every process and the broker.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createLogger } from '../../agent/src/runtime/log';
import { parseOptions } from '../../agent/src/runtime/options';
import { FleetTotals } from '../../collector/src/accounting/aggregate';
import { BatchConsumer } from '../../collector/src/accounting/consume';
import { formatFleetTable } from '../../collector/src/accounting/table';
import { kafkaClient, kafkaOptionSpecs, kafkaSecurityFromOptions } from '../../collector/src/kafka-client';
import { freePort, type KafkaBroker, startKafka } from '../../test/support/kafka';

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '4' },
    rate: { type: 'string', default: '6000' },
    'duration-s': { type: 'string', default: '0' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'Usage: npm run demo -- [--agents N] [--rate DMA_PAGE_TOUCHES_PER_S] [--duration-s S]\n\nRuns Kafka, a collector and N model agents on this machine and shows the fleet fault table.\nCtrl-C stops everything. KAFKA_BROKERS=host:port uses an existing cluster instead of starting one;\nits TLS/SASL settings come from the SMMU_FLEET_KAFKA_* variables (see README.md, "Production Kafka").\n',
  );
  process.exit(0);
}

// Kafka security for an existing cluster: the SMMU_FLEET_KAFKA_* variables, for the demo's own
// consumer and (as SMMU_COLLECTOR_KAFKA_*) for its collector.
function kafkaEnvOptions() {
  try {
    return parseOptions({ name: 'demo', envPrefix: 'SMMU_FLEET_', summary: '' }, kafkaOptionSpecs([]), []).options;
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
let broker: KafkaBroker | undefined;

function launch(script: string, argv: string[], name: string): ChildProcess {
  const child = spawn(process.execPath, [join(dist, script), ...argv], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...collectorEnv },
  });
  child.stderr?.on('data', (d: Buffer) => {
    // Children log JSON lines; the demo shows warnings and errors only.
    for (const line of d.toString().split('\n')) if (/"level":(40|50|60)/.test(line)) log.warn({ from: name }, line);
  });
  children.push(child);
  return child;
}

async function main(): Promise<void> {
  broker = await startKafka();
  const brokers = broker.brokers;
  const topic = `smmu-fleet.demo.${Date.now()}`;
  const grpcPort = await freePort();
  const collector = launch(
    'collector/src/cli.js',
    ['--listen', `127.0.0.1:${grpcPort}`, '--http-listen', '127.0.0.1:0', '--kafka-brokers', brokers.join(','), '--raw-topic', topic],
    'collector',
  );
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
  const n = Number(args.agents);
  for (let i = 1; i <= n; i++) {
    const extra = i === n ? ['--prefault'] : [];
    launch(
      'agent/src/cli.js',
      ['--host', `node-${i}${extra.length ? '-prefault' : ''}`, '--seed', String(i), '--rate', args.rate, '--model-pace', 'work', '--collector', `127.0.0.1:${grpcPort}`, '--http-listen', '', ...extra],
      `agent-${i}`,
    );
  }

  const totals = new FleetTotals();
  const kafka = kafkaClient({ clientId: 'smmu-fleet-demo', brokers, security });
  const consumer = new BatchConsumer(kafka, { topic, groupId: `demo-${Date.now()}`, fromBeginning: true }, log);
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
    process.stdout.write(`\x1b[2J\x1b[Hsmmu-fleet demo: ${n} agents -> collector 127.0.0.1:${grpcPort} -> Kafka ${brokers.join(',')} topic ${topic}\n`);
    process.stdout.write(`(every agent does the same DMA work; node-${n}-prefault maps with MAP_POPULATE: no translation faults, fewer faults in all)   Ctrl-C to stop\n\n${formatFleetTable(totals, 15)}\n`);
  }, 1000);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    const t0 = Date.now();
    process.stdout.write('\nstopping agents, collector and broker...\n');
    const exited = (c: ChildProcess) =>
      c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r));
    const agents = children.filter((c) => c !== collector);
    for (const c of agents) c.kill('SIGTERM');
    await Promise.race([Promise.all(agents.map(exited)), sleep(15_000)]);
    collector.kill('SIGTERM');
    await Promise.race([exited(collector), sleep(10_000)]);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await consumer.stop().catch(() => {});
    await broker?.stop();
    process.stdout.write(`${formatFleetTable(totals, 15)}\nstopped in ${((Date.now() - t0) / 1000).toFixed(1)} s.\n`);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const seconds = Number(args['duration-s']);
  if (seconds > 0) setTimeout(stop, seconds * 1000);
}

main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  for (const c of children) c.kill('SIGKILL');
  void (broker?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
});
