// The systemd units' command lines, run for real: each program is started exactly as its unit
// in deploy/systemd/ starts it (ExecStart, Environment=, EnvironmentFile=, the shipped
// /etc/smmu-fleet/*.json), with the install paths mapped to this build and to temporary
// directories, and local overrides given the way an administrator gives them (SMMU_* variables,
// as in /etc/smmu-fleet/*.env): loopback addresses with port 0, a real Kafka broker, and the
// SMMU model as the agent's source (the kernel tracepoint is not on a CI machine). Checks:
// /healthz, /readyz and /metrics of collector, aggregator and agent, the documented metric
// names and every metric the Grafana dashboard queries, batches flowing agent -> collector ->
// Kafka -> aggregator, the agent id in the StateDirectory, a clean exit on SIGTERM (what
// `systemctl stop` sends). Also: the collector drop-in that deploy/README.md documents, and
// every JSON configuration under deploy/ is accepted by its program.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { repoRoot } from '../support/paths';

/** The build this test belongs to: dist/ (or another --outDir) holding agent/, collector/, test/. */
const DIST = resolve(__dirname, '..', '..');
const ROOT = (() => {
  try {
    return repoRoot();
  } catch {
    return process.cwd(); // a build outside the repository, run from the repository
  }
})();
const UNITS = join(ROOT, 'deploy', 'systemd');
const INSTALL_BIN = '/opt/smmu-fleet/bin/';
const CONF_DIR = '/etc/smmu-fleet/';

const START_TIMEOUT_MS = 120_000;
const FLOW_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000; // TimeoutStopSec of the units

// --- unit files ---------------------------------------------------------------------------------

/** Splits a systemd value into words, honouring double and single quotes. */
function unitWords(value: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) words.push(m[1] ?? m[2] ?? m[3]);
  return words;
}

/** The [Service] settings of a unit file, in order, continuation lines joined. */
function serviceSettings(text: string): [string, string][] {
  const out: [string, string][] = [];
  let section = '';
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = pending + raw.trim();
    pending = '';
    if (line.endsWith('\\')) {
      pending = `${line.slice(0, -1)} `;
      continue;
    }
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (section === 'Service' && eq > 0) out.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}

interface UnitCommand {
  unit: string;
  /** node's own flags, from an ExecStart of the form `/usr/bin/env node <flags> <program> ...`. */
  nodeArgs: string[];
  program: string;
  args: string[];
  env: Record<string, string>;
  stateDirectory?: string;
}

/**
 * The command a unit runs, mapped onto this build: /opt/smmu-fleet/bin/<bin> -> the package.json
 * bin entry in DIST, /etc/smmu-fleet/<file> -> a copy of deploy/systemd/<file> in `etc`, %S ->
 * `state`. Environment= first, then EnvironmentFile= (systemd's order). `dropIn`: the text of a
 * drop-in whose settings follow the unit's (an empty ExecStart= clears the unit's, as systemd
 * does).
 */
function unitCommand(unit: string, dirs: { etc: string; state: string }, dropIn = ''): UnitCommand {
  const settings = [...serviceSettings(readFileSync(join(UNITS, unit), 'utf8')), ...serviceSettings(dropIn)];
  const get = (k: string) => {
    const vs: string[] = [];
    for (const [key, v] of settings) {
      if (key !== k) continue;
      // An empty assignment clears the list, as in systemd.
      if (v === '') vs.length = 0;
      else vs.push(v);
    }
    return vs;
  };
  const spec = (s: string) => s.replace(/%S/g, dirs.state).replace(/%%/g, '%');
  const etc = (s: string) => {
    if (!s.startsWith(CONF_DIR)) return s;
    const name = s.slice(CONF_DIR.length);
    const copy = join(dirs.etc, name);
    if (existsSync(join(UNITS, name)) && !existsSync(copy)) copyFileSync(join(UNITS, name), copy);
    return copy;
  };
  const execStart = get('ExecStart');
  assert.equal(execStart.length, 1, `${unit}: one ExecStart`);
  let words = unitWords(spec(execStart[0]));
  const nodeArgs: string[] = [];
  if (words[0] === '/usr/bin/env' && words[1] === 'node') {
    words = words.slice(2);
    while (words[0]?.startsWith('-')) nodeArgs.push(words.shift() as string);
  }
  const [program, ...args] = words;
  assert.ok(program?.startsWith(INSTALL_BIN), `${unit}: ExecStart runs a program from ${INSTALL_BIN}`);
  const bins = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin as Record<string, string>;
  const bin = bins[program.slice(INSTALL_BIN.length)];
  assert.ok(bin, `${unit}: ${program} is a bin entry of package.json`);
  const env: Record<string, string> = {};
  for (const e of get('Environment')) {
    for (const w of unitWords(spec(e))) {
      const i = w.indexOf('=');
      env[w.slice(0, i)] = w.slice(i + 1);
    }
  }
  for (const f of get('EnvironmentFile')) {
    const optional = f.startsWith('-');
    const path = etc(spec(optional ? f.slice(1) : f));
    if (!existsSync(path)) {
      assert.ok(optional, `${unit}: EnvironmentFile ${f} is shipped or optional`);
      continue;
    }
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (m) env[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
    }
  }
  const stateDirectory = get('StateDirectory')[0];
  return {
    unit,
    nodeArgs,
    program: join(DIST, bin.replace(/^dist\//, '')),
    args: args.map(etc),
    env,
    stateDirectory: stateDirectory && join(dirs.state, stateDirectory),
  };
}

// --- processes ----------------------------------------------------------------------------------

interface Daemon {
  unit: string;
  child: ChildProcess;
  /** JSON log lines seen so far. */
  logs: Record<string, unknown>[];
  stderr: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const daemons: Daemon[] = [];

function startUnit(cmd: UnitCommand, overrides: Record<string, string>): Daemon {
  if (cmd.stateDirectory) mkdirSync(cmd.stateDirectory, { recursive: true, mode: 0o700 });
  // A service gets a clean environment: the unit's, the administrator's overrides, PATH.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LOG_LEVEL: 'info', ...cmd.env, ...overrides };
  const child = spawn(process.execPath, [...cmd.nodeArgs, cmd.program, ...cmd.args], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const d: Daemon = {
    unit: cmd.unit,
    child,
    logs: [],
    stderr: [],
    exit: new Promise((res) => child.once('exit', (code, signal) => res({ code, signal }))),
  };
  let buf = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      d.stderr.push(line);
      if (d.stderr.length > 200) d.stderr.shift();
      try {
        d.logs.push(JSON.parse(line));
      } catch {
        // not JSON: kept in stderr only
      }
    }
  });
  daemons.push(d);
  return d;
}

function tail(d: Daemon): string {
  return `${d.unit} stderr:\n${d.stderr.slice(-15).join('\n')}`;
}

/** Waits for a JSON log line that has all `keys`; fails early when the process exits. */
async function waitForLog(d: Daemon, keys: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void d.exit.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    const found = d.logs.find((l) => keys.every((k) => typeof l[k] === 'string' && l[k] !== ''));
    if (found) return found;
    if (exited) assert.fail(`${d.unit} exited before logging ${keys.join(', ')}\n${tail(d)}`);
    await sleep(100);
  }
  assert.fail(`${d.unit} did not log ${keys.join(', ')} within ${timeoutMs} ms\n${tail(d)}`);
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  assert.fail(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
}

/** The value of an unlabelled sample in Prometheus text, or undefined. */
function sample(metrics: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{\\})? ([0-9.eE+-]+)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : undefined;
}

async function stopDaemon(d: Daemon): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
  const timer = sleep(STOP_TIMEOUT_MS).then(() => 'timeout' as const);
  const r = await Promise.race([d.exit, timer]);
  if (r === 'timeout') {
    d.child.kill('SIGKILL');
    await d.exit;
    assert.fail(`${d.unit} did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${tail(d)}`);
  }
  return r;
}

// --- the test -----------------------------------------------------------------------------------

let broker: KafkaBroker | undefined;
let tmp = '';

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'smmu-deploy-units-'));
  broker = await startKafka();
});

after(async () => {
  for (const d of daemons) {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  }
  await Promise.all(daemons.map((d) => Promise.race([d.exit, sleep(5000)])));
  await broker?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const AGENT_METRICS = [
  'smmu_agent_events_read_total',
  'smmu_agent_events_lost_total',
  'smmu_agent_batches_spooled_total',
  'smmu_agent_batches_spooled_bytes_total',
  'smmu_agent_spool_bytes',
  'smmu_agent_batches_acked_total',
  'smmu_agent_collector_connected',
  'smmu_agent_ack_latency_seconds',
];
const COLLECTOR_METRICS = [
  'smmu_collector_streams',
  'smmu_collector_batches_received_bytes_total',
  'smmu_collector_batches_received_total',
  'smmu_collector_events_received_total',
  'smmu_collector_batches_rejected_total',
  'smmu_collector_publishes_failed_total',
  'smmu_collector_publish_seconds',
];
const AGGREGATOR_METRICS = [
  'smmu_fleet_aggregator_batches_read_total',
  'smmu_fleet_aggregator_events_counted_total',
];

test('collector, aggregator and agent run from their systemd units: health, readiness, metrics, data flow, clean stop', {
  timeout: START_TIMEOUT_MS * 2 + FLOW_TIMEOUT_MS * 2 + STOP_TIMEOUT_MS * 3,
}, async () => {
  assert.ok(broker, 'Kafka broker');
  const etc = join(tmp, 'etc');
  const state = join(tmp, 'var-lib');
  mkdirSync(etc, { recursive: true });
  const dirs = { etc, state };
  const run = `deploy-${Date.now()}`;
  const topic = `${run}.batches`;

  // smmu-collector.service
  const collector = startUnit(unitCommand('smmu-collector.service', dirs), {
    SMMU_COLLECTOR_LISTEN: '127.0.0.1:0',
    SMMU_COLLECTOR_HTTP_LISTEN: '127.0.0.1:0',
    SMMU_COLLECTOR_KAFKA_BROKERS: broker.brokers.join(','),
    SMMU_COLLECTOR_RAW_TOPIC: topic,
    SMMU_COLLECTOR_TOPIC_PARTITIONS: '3',
    SMMU_COLLECTOR_TOPIC_REPLICATION: '1',
  });
  const ready = await waitForLog(collector, ['grpc', 'http'], START_TIMEOUT_MS);
  const cHttp = `http://${ready.http}`;

  // smmu-fleet-aggregator.service
  const aggregator = startUnit(unitCommand('smmu-fleet-aggregator.service', dirs), {
    SMMU_FLEET_KAFKA_BROKERS: broker.brokers.join(','),
    SMMU_FLEET_HTTP_LISTEN: '127.0.0.1:0',
    SMMU_FLEET_RAW_TOPIC: topic,
    SMMU_FLEET_WINDOWS_TOPIC: `${run}.windows`,
    SMMU_FLEET_TOTALS_TOPIC: `${run}.totals`,
    SMMU_FLEET_CHECKPOINT_TOPIC: `${run}.checkpoints`,
    SMMU_FLEET_GROUP_ID: `${run}-aggregator`,
    SMMU_FLEET_TOPIC_REPLICATION: '1',
    SMMU_FLEET_CHECKPOINT_INTERVAL_MS: '500',
  });

  // smmu-agent.service
  const agentCmd = unitCommand('smmu-agent.service', dirs);
  assert.equal(
    agentCmd.env.SMMU_AGENT_STATE_DIR,
    agentCmd.stateDirectory,
    'the agent keeps its state in StateDirectory',
  );
  const agent = startUnit(agentCmd, {
    SMMU_AGENT_SOURCE: 'model',
    SMMU_AGENT_RATE: '2000',
    SMMU_AGENT_COLLECTOR: String(ready.grpc),
    SMMU_AGENT_HTTP_LISTEN: '127.0.0.1:0',
    SMMU_AGENT_BATCH_MAX_DELAY_MS: '100',
  });
  const started = await waitForLog(agent, ['http'], START_TIMEOUT_MS);
  const aHttp = `http://${started.http}`;
  const gReady = await waitForLog(aggregator, ['http'], START_TIMEOUT_MS);
  const gHttp = `http://${gReady.http}`;

  for (const [name, base] of [
    ['collector', cHttp],
    ['aggregator', gHttp],
    ['agent', aHttp],
  ]) {
    const h = await get(`${base}/healthz`);
    assert.equal(h.status, 200, `${name} /healthz`);
    await waitFor(`${name} /readyz 200`, START_TIMEOUT_MS, async () =>
      (await get(`${base}/readyz`)).status === 200 ? true : undefined,
    );
  }

  // Batches flow: the agent's are acknowledged (so Kafka has them) and the aggregator counts them.
  const aMetrics = await waitFor('agent batches acknowledged', FLOW_TIMEOUT_MS, async () => {
    const m = (await get(`${aHttp}/metrics`)).body;
    return (sample(m, 'smmu_agent_batches_acked_total') ?? 0) > 0 ? m : undefined;
  });
  const cMetrics = (await get(`${cHttp}/metrics`)).body;
  assert.ok(
    (sample(cMetrics, 'smmu_collector_batches_received_total') ?? 0) > 0,
    'collector received batches',
  );
  const gMetrics = await waitFor('aggregator counted events', FLOW_TIMEOUT_MS, async () => {
    const m = (await get(`${gHttp}/metrics`)).body;
    return (sample(m, 'smmu_fleet_aggregator_events_counted_total') ?? 0) > 0 ? m : undefined;
  });
  assert.equal(sample(aMetrics, 'smmu_agent_collector_connected'), 1, 'agent connected');

  const has = (text: string, name: string) => new RegExp(`^# TYPE ${name} `, 'm').test(text);
  for (const n of AGENT_METRICS) assert.ok(has(aMetrics, n), `agent /metrics has ${n}`);
  for (const n of COLLECTOR_METRICS) assert.ok(has(cMetrics, n), `collector /metrics has ${n}`);
  for (const n of AGGREGATOR_METRICS) assert.ok(has(gMetrics, n), `aggregator /metrics has ${n}`);

  // Every metric the Grafana dashboards query is served by a program.
  const all = `${aMetrics}\n${cMetrics}\n${gMetrics}`;
  const grafana = join(ROOT, 'deploy', 'grafana');
  for (const f of readdirSync(grafana).filter((x) => x.endsWith('.json'))) {
    const names = new Set(readFileSync(join(grafana, f), 'utf8').match(/\bsmmu_[a-z0-9_]+/g) ?? []);
    assert.ok(names.size > 0, `${f} queries smmu_* metrics`);
    for (const n of names) {
      const base = n.replace(/_(bucket|sum|count)$/, '');
      assert.ok(has(all, n) || has(all, base), `${f}: ${n} is served by a program`);
    }
  }

  const faults = await get(`${aHttp}/faults`);
  assert.equal(faults.status, 200, 'agent /faults');
  assert.ok(agentCmd.stateDirectory);
  const idFile = join(agentCmd.stateDirectory, 'agent-id');
  assert.ok(existsSync(idFile), 'agent id kept in the StateDirectory');

  // systemctl stop: SIGTERM, then the unit's TimeoutStopSec.
  for (const d of [agent, aggregator, collector]) {
    const r = await stopDaemon(d);
    assert.deepEqual(r, { code: 0, signal: null }, `${d.unit} exits 0 on SIGTERM\n${tail(d)}`);
  }
  const stopped = agent.logs.find((l) => l.msg === 'agent stopped');
  assert.equal(stopped?.drained, true, 'the agent drained its spool before exiting');
});

test('the collector drop-in of deploy/README.md runs it with --single-threaded-gc: ready, clean stop', {
  timeout: START_TIMEOUT_MS + STOP_TIMEOUT_MS,
}, async () => {
  assert.ok(broker, 'Kafka broker');
  const readme = readFileSync(join(ROOT, 'deploy', 'README.md'), 'utf8');
  const dropIn = /drop-in for `smmu-collector\.service`\s*```ini\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(dropIn, 'deploy/README.md shows a drop-in for smmu-collector.service');
  const etc = join(tmp, 'etc-gc');
  mkdirSync(etc, { recursive: true });
  const cmd = unitCommand('smmu-collector.service', { etc, state: join(tmp, 'var-lib-gc') }, dropIn);
  assert.deepEqual(cmd.nodeArgs, ['--single-threaded-gc']);
  const collector = startUnit(cmd, {
    SMMU_COLLECTOR_LISTEN: '127.0.0.1:0',
    SMMU_COLLECTOR_HTTP_LISTEN: '127.0.0.1:0',
    SMMU_COLLECTOR_KAFKA_BROKERS: broker.brokers.join(','),
    SMMU_COLLECTOR_RAW_TOPIC: `deploy-gc-${Date.now()}.batches`,
    SMMU_COLLECTOR_TOPIC_REPLICATION: '1',
  });
  const ready = await waitForLog(collector, ['grpc', 'http'], START_TIMEOUT_MS);
  const cmdline = readFileSync(`/proc/${collector.child.pid}/cmdline`, 'utf8').split('\0');
  assert.ok(cmdline.includes('--single-threaded-gc'), cmdline.join(' '));
  await waitFor('collector /readyz 200', START_TIMEOUT_MS, async () =>
    (await get(`http://${ready.http}/readyz`)).status === 200 ? true : undefined,
  );
  const r = await stopDaemon(collector);
  assert.deepEqual(r, { code: 0, signal: null }, `exits 0 on SIGTERM\n${tail(collector)}`);
});

test('every JSON configuration under deploy/ is accepted by its program', () => {
  const programs: Record<string, string> = {
    agent: 'agent/src/cli.js',
    collector: 'collector/ingest/cli.js',
    aggregator: 'collector/accounting/cli.js',
  };
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json') && basename(dir) !== 'grafana') files.push(p);
    }
  };
  walk(join(ROOT, 'deploy', 'systemd'));
  walk(join(ROOT, 'deploy', 'kubernetes'));
  assert.ok(files.length >= 8, `configuration files found: ${files.length}`);
  for (const f of files) {
    const kind = Object.keys(programs).find((k) => basename(f).startsWith(k));
    assert.ok(kind, `${f}: named after its program (agent, collector, aggregator)`);
    const r = spawnSync(process.execPath, [join(DIST, programs[kind]), '--config', f, '--help'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
});
