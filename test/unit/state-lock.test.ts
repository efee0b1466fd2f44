// The state directory lock with real agent processes: a second agent on the same --state-dir is
// refused with a message naming the holder; after kill -9 of the holder the lock is stale and
// the next agent takes it over.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { until } from '../support/until';

const CLI = join(__dirname, '../../agent/src/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'state-lock-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** An agent on `dir` with the model source, no collector reachable, no HTTP. */
function agent(): { child: ChildProcess; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      CLI,
      '--state-dir',
      dir,
      '--http-listen',
      '',
      '--collector',
      '127.0.0.1:1',
      '--rate',
      '10',
      '--drain-timeout-ms',
      '0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
  );
  children.push(child);
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderr: () => err, exit };
}

test('a second agent on the same state dir is refused, naming the holder; a SIGKILLed holder is taken over', async () => {
  const first = agent();
  await until('first agent started', () => first.stderr().includes('agent started'));
  const lock = JSON.parse(readFileSync(join(dir, 'agent.lock'), 'utf8'));
  assert.equal(lock.pid, first.child.pid);

  const second = agent();
  assert.equal(await second.exit, 1, 'refused');
  assert.match(
    second.stderr(),
    new RegExp(
      `in use by another smmu-agent \\(pid ${first.child.pid} on ${hostname()}, since ${lock.since}\\)`,
    ),
  );
  assert.equal(first.child.exitCode, null, 'the holder keeps running');

  first.child.kill('SIGKILL');
  await first.exit;
  const third = agent();
  await until('third agent started', () => third.stderr().includes('agent started'));
  assert.match(
    third.stderr(),
    new RegExp(`lock of pid ${first.child.pid} on ${hostname()} taken over: pid ${first.child.pid} is gone`),
  );
  assert.equal(JSON.parse(readFileSync(join(dir, 'agent.lock'), 'utf8')).pid, third.child.pid);

  third.child.kill('SIGTERM');
  await third.exit;
  assert.equal(existsSync(join(dir, 'agent.lock')), false, 'released on a clean stop');
});
