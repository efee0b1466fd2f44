// Delivery on bad days, with real processes and a real broker: the collector killed, Kafka
// stopped, the network cut, the agent killed, the spool over budget, the spool damaged under
// batches whose acks were lost. Each scenario ends with the events accounted from Kafka (replays
// dropped) equal to the events the model generated, record for record, or — when the spool had
// to drop or lost records to damage — accounted + reported lost == generated.
// Each scenario also proves its fault happened while delivery was under way (a fault injected
// after the agent finished would pass the totals check and test nothing): faults are injected
// a second after the agent connected, well inside its 12 s of events, and checked for effect.
import assert from 'node:assert/strict';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { SmmuModel } from '../../agent/src/source/model';
import { scanRecords } from '../../agent/src/spool/segment-file';
import { BatchConsumer } from '../../collector/accounting/consume';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { silentLogger } from '../../common/runtime/log';
import { freePort, type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { type EventBlock, timestampNs, WORDS_PER_RECORD } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { agentProc, collectorProc, type Proc } from '../support/processes';
import { TcpProxy } from '../support/tcp-proxy';

const START_NS = 1_700_000_000_000_000_000n;
let broker: KafkaBroker;
let modelFile: string;
const running = new Set<Proc>();

before(async () => {
  broker = await startKafka();
  const dir = mkdtempSync(join(tmpdir(), 'faults-'));
  modelFile = join(dir, 'model.json');
  writeFileSync(modelFile, JSON.stringify({ startTimeNs: START_NS.toString() }));
});

after(async () => {
  for (const p of running) await p.kill();
  await broker?.stop();
});

/** The process's JSON log records with this message. */
function records(p: Proc, msg: string): Array<Record<string, unknown>> {
  return p.log
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.msg === msg);
}

const BROKEN = 'collector stream broken; will resend unacknowledged batches';
/** Agent stream breaks during the Kafka outage (reported, not asserted: timing decides). */
let breaksDuringOutage = 0;
const CONNECTED = 'connected to collector';
const REPLACED = 'spool: damaged record; sending a replacement that reports its events lost';
const KEPT = 'spool: damaged record found; its first send will be its replacement';

/** Kills a process that must still be running: the fault has to land mid-stream. */
async function killRunning(p: Proc): Promise<void> {
  assert.equal(p.child.exitCode, null, `${p.name} still running when the fault is injected:\n${p.tail()}`);
  assert.equal(await p.kill('SIGKILL'), null, `${p.name} died of the signal`);
}

function track(p: Proc): Proc {
  running.add(p);
  void p.exited.then(() => running.delete(p));
  return p;
}

/** One event as a string key: timestamp and the four words. */
function keys(b: EventBlock, into: Map<string, number>): void {
  for (let i = 0; i < b.count; i++) {
    const w = i * WORDS_PER_RECORD;
    const k = `${timestampNs(b, i)}:${Array.from(b.words.subarray(w, w + WORDS_PER_RECORD)).join(',')}`;
    into.set(k, (into.get(k) ?? 0) + 1);
  }
}

function expected(seed: number, events: number, rate: number): Map<string, number> {
  const m = new Map<string, number>();
  keys(new SmmuModel({ seed, rate, maxEvents: events, startTimeNs: START_NS }).generate(events), m);
  return m;
}

interface Accounted {
  events: Map<string, number>;
  count: number;
  /** Reported lost as LOSS_REASON_SPOOL_FULL, and as LOSS_REASON_SPOOL_CORRUPT. */
  lost: number;
  corrupt: number;
  replays: number;
  conflicts: number;
}

/** Reads the topic from the start until `want` events+losses are accounted and nothing more arrives. */
async function account(topic: string, want: number, timeoutMs = 60_000): Promise<Accounted> {
  const totals = new FleetTotals();
  const events = new Map<string, number>();
  const kafka = new Kafka({ clientId: 'faults-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const consumer = new BatchConsumer(
    kafka,
    { topic, groupId: `faults-${Date.now()}`, fromBeginning: true },
    silentLogger,
  );
  await consumer.start((b) => {
    if (totals.add(b)) keys(b.events, events);
  });
  const seen = () => totals.hostRows().reduce((s, h) => s + h.events + h.lost, 0);
  const deadline = Date.now() + timeoutMs;
  while (seen() < want && Date.now() < deadline) await sleep(100);
  await sleep(1000);
  await consumer.stop();
  const rows = totals.hostRows();
  const lost = (reason: LossReason) =>
    totals
      .lostRows()
      .filter((r) => r.reason === LossReason[reason])
      .reduce((s, r) => s + r.count, 0);
  return {
    events,
    count: rows.reduce((s, h) => s + h.events, 0),
    lost: lost(LossReason.LOSS_REASON_SPOOL_FULL),
    corrupt: lost(LossReason.LOSS_REASON_SPOOL_CORRUPT),
    replays: totals.replays.duplicates,
    conflicts: totals.replays.conflicts,
  };
}

interface Scenario {
  seed: number;
  events: number;
  rate: number;
  agentArgs?: string[];
  /** Put a TCP proxy between agent and collector. */
  proxy?: boolean;
  /** Do not start the collector before the agent. */
  collectorLater?: boolean;
}

interface Ctx {
  collector: Proc;
  agent: Proc;
  proxy?: TcpProxy;
  startCollector(): Promise<Proc>;
  startAgent(): Proc;
}

async function run(
  s: Scenario,
  inject: (c: Ctx) => Promise<void>,
): Promise<{ accounted: Accounted; generated: Map<string, number> }> {
  const topic = `faults-${s.seed}-${Date.now()}`;
  const port = await freePort();
  const host = `node-${s.seed}`;
  let proxy: TcpProxy | undefined;
  let address = `127.0.0.1:${port}`;
  if (s.proxy) {
    proxy = new TcpProxy({ host: '127.0.0.1', port });
    address = await proxy.start();
  }
  const startCollector = async () => {
    const c = track(collectorProc(`collector-${s.seed}`, { port, brokers: broker.brokers, topic }));
    await c.waitForLog(/collector ready/);
    return c;
  };
  const startAgent = () =>
    track(
      agentProc(`agent-${s.seed}`, {
        collector: address,
        host,
        args: [
          '--seed',
          String(s.seed),
          '--rate',
          String(s.rate),
          '--max-events',
          String(s.events),
          '--model-config',
          modelFile,
          '--batch-max-delay-ms',
          '100',
          '--backoff-min-ms',
          '50',
          '--backoff-max-ms',
          '500',
          '--drain-timeout-ms',
          '60000',
          ...(s.agentArgs ?? []),
        ],
      }),
    );
  const ctx: Ctx = {
    collector: undefined as unknown as Proc,
    agent: undefined as unknown as Proc,
    proxy,
    startCollector,
    startAgent,
  };
  if (!s.collectorLater) ctx.collector = await startCollector();
  ctx.agent = startAgent();
  try {
    await inject(ctx);
    const code = await Promise.race([ctx.agent.exited, sleep(90_000).then(() => 'timeout')]);
    assert.equal(code, 0, `agent exit code; its log:\n${ctx.agent.tail()}`);
    const accounted = await account(topic, s.events);
    return { accounted, generated: expected(s.seed, s.events, s.rate) };
  } finally {
    await ctx.agent?.kill();
    await ctx.collector?.kill();
    await proxy?.stop();
  }
}

function assertExact(r: { accounted: Accounted; generated: Map<string, number> }, events: number): void {
  assert.deepEqual([r.accounted.lost, r.accounted.corrupt], [0, 0], 'nothing reported lost');
  assert.equal(r.accounted.count, events, 'accounted events');
  // Record for record: the same timestamps and words, each exactly once.
  assert.deepEqual(r.accounted.events, r.generated);
}

test('collector killed (SIGKILL) mid-stream and restarted: exact totals', { timeout: 180_000 }, async () => {
  let agent: Proc | undefined;
  const r = await run({ seed: 11, events: 12_000, rate: 1000 }, async (c) => {
    agent = c.agent;
    await c.agent.waitForLog(/connected to collector/);
    await sleep(1200);
    assert.equal(c.agent.child.exitCode, null, `the agent is still streaming:\n${c.agent.tail()}`);
    await killRunning(c.collector);
    await sleep(800);
    c.collector = await c.startCollector();
  });
  assertExact(r, 12_000);
  // The kill broke the agent's stream and the agent reconnected to the new collector.
  assert.ok(records(agent!, BROKEN).length >= 1, 'the agent saw its stream break');
  assert.ok(records(agent!, CONNECTED).length >= 2, 'the agent reconnected');
});

test('Kafka broker stopped for a while and restarted: exact totals', { timeout: 240_000 }, async () => {
  const r = await run({ seed: 12, events: 12_000, rate: 1000 }, async (c) => {
    await c.agent.waitForLog(/connected to collector/);
    await sleep(1200);
    assert.equal(c.agent.child.exitCode, null, `the agent is still streaming:\n${c.agent.tail()}`);
    await broker.stopBroker();
    // The model is paced to 12 s of events: an agent still running once the broker is down and
    // after the outage kept sending batches the whole time Kafka could not take them.
    assert.equal(c.agent.child.exitCode, null, 'the agent streams while Kafka is down');
    const brokenBefore = records(c.agent, BROKEN).length;
    await sleep(5000);
    assert.equal(c.agent.child.exitCode, null, 'the agent still streams after 5 s of outage');
    breaksDuringOutage = records(c.agent, BROKEN).length - brokenBefore;
    await broker.startBroker();
  });
  assertExact(r, 12_000);
  // Informational: whether the collector's Kafka retries outlasted the outage or gave up
  // (then the agent's stream broke and it resent) depends on timing; both must end exact.
  process.stdout.write(`# Kafka outage: agent stream breaks during it: ${breaksDuringOutage}\n`);
});

test('network between agent and collector cut and restored: exact totals', { timeout: 180_000 }, async () => {
  let agent: Proc | undefined;
  let brokenDuringCut = 0;
  const r = await run({ seed: 13, events: 12_000, rate: 1000, proxy: true }, async (c) => {
    agent = c.agent;
    await c.agent.waitForLog(/connected to collector/);
    await sleep(1000);
    assert.equal(c.agent.child.exitCode, null, 'the agent is still streaming when the network is cut');
    c.proxy?.cut();
    await sleep(1500);
    brokenDuringCut = records(c.agent, BROKEN).length;
    c.proxy?.restore();
  });
  assertExact(r, 12_000);
  assert.ok(brokenDuringCut >= 1, 'the cut broke the stream (and reconnects were attempted)');
  assert.ok(records(agent!, CONNECTED).length >= 2, 'the agent reconnected once the network was back');
});

test('agent killed (SIGKILL) mid-stream and restarted from its durable spool: exact totals', {
  timeout: 180_000,
}, async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'agent-state-'));
  const agents: Proc[] = [];
  const r = await run(
    { seed: 15, events: 12_000, rate: 1000, agentArgs: ['--state-dir', stateDir] },
    async (c) => {
      agents.push(c.agent);
      await c.agent.waitForLog(/connected to collector/);
      await sleep(1000);
      await killRunning(c.agent);
      c.agent = c.startAgent();
      agents.push(c.agent);
      await c.agent.waitForLog(/connected to collector/);
      await sleep(1000);
      await killRunning(c.agent);
      c.agent = c.startAgent();
      agents.push(c.agent);
    },
  );
  assertExact(r, 12_000);
  // Only the first process made a new spool; the restarted ones continued the killed one's.
  assert.deepEqual(
    agents.map((a) => records(a, 'new spool directory: new epoch').length),
    [1, 0, 0],
  );
  assert.ok(
    r.accounted.replays >= 1,
    `batches resent after a kill were dropped as replays (${r.accounted.replays})`,
  );
});

test('spool over budget while no collector answers: accounted + reported lost == generated', {
  timeout: 180_000,
}, async () => {
  const events = 40_000;
  const r = await run(
    {
      seed: 14,
      events,
      rate: 0,
      collectorLater: true,
      agentArgs: ['--spool-budget-bytes', String(64 << 10), '--batch-max-events', '1000'],
    },
    async (c) => {
      await c.agent.waitForLog(/collector stream broken/);
      await sleep(3000); // the model is done long before: most batches were dropped
      c.collector = await c.startCollector();
    },
  );
  assert.ok(r.accounted.lost > 0, 'the budget forced drops');
  assert.equal(r.accounted.count + r.accounted.lost, events);
  for (const [k, n] of r.accounted.events)
    assert.equal(r.generated.get(k), n, `accounted event ${k} was generated once`);
});

/**
 * Flips a payload byte of every intact record in the spool's segment files, in place; with
 * `spareLast`, not of each file's last one (a restarted spool keeps damaged records pending
 * only where an intact record follows them).
 */
function damageSpool(dir: string, spareLast: boolean): number {
  let damaged = 0;
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.seg'))) {
    const path = join(dir, name);
    const bytes = readFileSync(path);
    const intact = scanRecords(bytes).records.filter((x) => x.intact && x.payloadLength > 0);
    if (spareLast) intact.pop();
    // Written in place, one byte each: the running agent keeps appending to the same file.
    const fd = openSync(path, 'r+');
    try {
      for (const rec of intact) {
        const at = rec.offset + rec.headerLength + rec.payloadLength - 1;
        writeSync(fd, Buffer.of(bytes[at] ^ 0xff), 0, 1, at);
        damaged++;
      }
    } finally {
      closeSync(fd);
    }
  }
  return damaged;
}

/**
 * Acks lost, then no stream, then the spool damaged under a running agent (or one killed, then
 * restarted): some damaged batches were published, others never sent. Each event must count once.
 */
async function damagedSpool(seed: number, restart: boolean): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'agent-state-'));
  const events = 12_000;
  const agents: Proc[] = [];
  let damaged = 0;
  const r = await run(
    {
      seed,
      events,
      rate: 1000,
      proxy: true,
      // Every resend reads its batch back from disk.
      agentArgs: ['--state-dir', stateDir, '--spool-memory-bytes', '0'],
    },
    async (c) => {
      agents.push(c.agent);
      await c.agent.waitForLog(/connected to collector/);
      await sleep(1000);
      // Batches still reach the collector and Kafka; their acks never come back.
      c.proxy?.dropResponses();
      await sleep(1500);
      // No stream: the next batches are only spooled.
      c.proxy?.cut();
      await sleep(1000);
      if (restart) await killRunning(c.agent);
      else assert.equal(c.agent.child.exitCode, null, 'the agent is still running when its spool is damaged');
      damaged = damageSpool(join(stateDir, 'spool'), restart);
      c.proxy?.restore();
      if (restart) {
        c.agent = c.startAgent();
        agents.push(c.agent);
      }
    },
  );
  const last = agents[agents.length - 1];
  const replaced = records(last, REPLACED);
  process.stdout.write(
    `# damaged records: ${damaged}, replaced: ${replaced.length}, replays: ${r.accounted.replays}, ` +
      `events: ${r.accounted.count}, corrupt: ${r.accounted.corrupt}\n`,
  );
  if (restart) assert.equal(records(last, KEPT).length, replaced.length, 'found on open, replaced when sent');
  assert.ok(
    replaced.length >= 2,
    `unacknowledged batches were found damaged and replaced (${replaced.length})`,
  );
  // Published before the damage: the original counts and its replacement is a replay.
  assert.ok(r.accounted.replays >= 1, `a replacement met its published original (${r.accounted.replays})`);
  // Never sent before the damage: the replacement reports its events lost.
  assert.ok(r.accounted.corrupt > 0, 'events of batches never published are reported lost');
  assert.equal(r.accounted.conflicts, 0, 'a replacement is not a conflict');
  assert.equal(r.accounted.lost, 0);
  assert.equal(
    r.accounted.count + r.accounted.corrupt,
    events,
    'each event accounted or reported lost, once',
  );
  for (const [k, n] of r.accounted.events)
    assert.equal(r.generated.get(k), n, `accounted event ${k} was generated once`);
}

test(
  'spool damaged under a running agent, some batches published but unacknowledged: each event counted once',
  {
    timeout: 180_000,
  },
  () => damagedSpool(16, false),
);

test(
  'spool damaged while the agent was down, some batches published but unacknowledged: each event counted once',
  {
    timeout: 180_000,
  },
  () => damagedSpool(17, true),
);
