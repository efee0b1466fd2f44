// The local demo as a user runs it: a Ctrl-C on the terminal (SIGINT to the whole foreground
// process group) stops it with exit 0 after every agent drained; --help answers at once.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../support/paths';

const root = repoRoot();

test('demo --help prints the usage without preparing anything', () => {
  const started = Date.now();
  const r = spawnSync('bash', [join(root, 'deploy', 'demo', 'demo.sh'), '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, readFileSync(join(root, 'deploy', 'demo', 'usage.txt'), 'utf8'));
  assert.equal(r.stderr, '', 'no [prepare] steps ran');
  assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
});

test('Ctrl-C on the demo: each agent drains, the demo exits 0', { timeout: 240_000 }, async () => {
  // detached: its own process group, which a terminal's Ctrl-C signals as a whole.
  const demo = spawn(
    process.execPath,
    [join(root, 'dist', 'deploy', 'demo', 'demo.js'), '--agents', '2', '--rate', '1000'],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  demo.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  demo.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => demo.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 180_000;
    // The table shows events once the agents' batches went through the collector and Kafka.
    while (!/node-1\s+[1-9]/.test(out) && Date.now() < deadline && demo.exitCode === null) await sleep(200);
    assert.match(out, /smmu-fleet demo: 2 agents/, `demo output:\n${out.slice(-2000)}\n${err}`);
    process.kill(-demo.pid!, 'SIGINT');
    assert.equal(await exited, 0, err);
    assert.match(out, /\n2 of 2 agents drained and exited 0; stopped in [\d.]+ s\.\n$/);
    assert.doesNotMatch(err, /second signal/);
  } finally {
    if (demo.exitCode === null) process.kill(-demo.pid!, 'SIGKILL');
  }
});
