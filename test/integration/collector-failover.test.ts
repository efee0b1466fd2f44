// Many collectors: agents given two collector addresses, two collector processes behind them,
// the one they use killed with SIGKILL under load. Every agent reconnects to the other (its
// /metrics show the second stream) and the fleet totals from Kafka are exact.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { BatchConsumer } from '../../collector/accounting/consume';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { silentLogger } from '../../common/runtime/log';
import { freePort, type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { agentProc, collectorProc, type Proc } from '../support/processes';

let broker: KafkaBroker;
const running: Proc[] = [];

before(async () => {
  broker = await startKafka();
});

after(async () => {
  for (const p of running) await p.kill();
  await broker?.stop();
});

/** The agent's smmu_agent_collector_connects_total per collector address ({} when unreachable). */
async function connects(httpPort: number): Promise<Record<string, number>> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^smmu_agent_collector_connects_total\{collector="([^"]+)"\} (\d+)/gm))
      out[m[1]] = Number(m[2]);
    return out;
  } catch {
    return {};
  }
}

test('two collectors, the one in use killed (SIGKILL) under load: agents fail over, totals exact', {
  timeout: 240_000,
}, async () => {
  const topic = `failover-${Date.now()}`;
  const [p1, p2] = [await freePort(), await freePort()];
  const [a1, a2] = [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`];
  const collectors = [p1, p2].map((port, i) =>
    collectorProc(`collector-${i + 1}`, { port, brokers: broker.brokers, topic }),
  );
  running.push(...collectors);
  for (const c of collectors) await c.waitForLog(/collector ready/);

  // 20 s of events per agent: long enough to kill a collector mid-stream on a loaded machine.
  const events = 60_000;
  const agents = await Promise.all(
    [1, 2, 3].map(async (seed) => {
      const http = await freePort();
      const host = `node-failover-${seed}`;
      const p = agentProc(host, {
        collector: `${a1},${a2}`,
        host,
        args: [
          ...['--seed', String(seed), '--rate', '3000', '--max-events', String(events)],
          ...['--batch-max-delay-ms', '100', '--backoff-min-ms', '50', '--backoff-max-ms', '500'],
          ...['--drain-timeout-ms', '60000', '--http-listen', `127.0.0.1:${http}`],
        ],
      });
      running.push(p);
      return { p, http, host };
    }),
  );
  /** Polls every agent's metrics until `ok` holds for each (or 30 s pass); returns the last. */
  const pollAll = (ok: (c: Record<string, number>) => boolean) =>
    Promise.all(
      agents.map(async (a) => {
        const deadline = Date.now() + 30_000;
        let seen = await connects(a.http);
        while (!ok(seen) && Date.now() < deadline) {
          await sleep(50);
          seen = await connects(a.http);
        }
        return seen;
      }),
    );
  // Every agent streams to the first address first.
  const before = await pollAll((c) => c[a1] === 1);
  for (const [i, c] of before.entries()) assert.deepEqual(c, { [a1]: 1 }, `${agents[i].host} on ${a1}`);
  await sleep(1000);
  await collectors[0].kill('SIGKILL');

  // The reconnect shows in each agent's metrics before it finishes.
  const afterKill = await pollAll((c) => c[a2] >= 1);
  for (const [i, c] of afterKill.entries())
    assert.ok(c[a2] >= 1, `${agents[i].host} reconnected to ${a2}: ${JSON.stringify(c)}`);
  for (const a of agents) {
    const code = await Promise.race([a.p.exited, sleep(120_000).then(() => 'timeout')]);
    assert.equal(code, 0, `${a.host} exit code; its log:\n${a.p.tail()}`);
  }

  const totals = new FleetTotals();
  const kafka = new Kafka({ clientId: 'failover-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const consumer = new BatchConsumer(
    kafka,
    { topic, groupId: `failover-${Date.now()}`, fromBeginning: true },
    silentLogger,
  );
  await consumer.start((b) => totals.add(b));
  const want = events * agents.length;
  const counted = () => totals.hostRows().reduce((s, h) => s + h.events, 0);
  const deadline = Date.now() + 60_000;
  while (counted() < want && Date.now() < deadline) await sleep(100);
  await sleep(1000);
  await consumer.stop();
  assert.deepEqual(
    totals
      .hostRows()
      .map((h) => [h.host, h.events, h.lost])
      .sort(),
    agents.map((a) => [a.host, events, 0]).sort(),
  );
  assert.equal(consumer.malformed, 0);
});
