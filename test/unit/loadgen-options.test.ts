// smmu-agent loadgen's option handling: distinct hosts, agent ids and seeds per stream, the
// bounds on streams and duration, options refused with a usage error (exit 2) naming them,
// and the exit code a summary maps to.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { exitCode } from '../../agent/src/loadgen/command';
import type { LoadgenSummary } from '../../agent/src/loadgen/loadgen';
import { type LoadgenFlags, loadgenPlan, MAX_DURATION_S, MAX_STREAMS } from '../../agent/src/loadgen/plan';
import { OptionError } from '../../common/runtime/options';
import { repoRoot } from '../support/paths';

const flags: LoadgenFlags = {
  streams: 3,
  duration: 2.5,
  host: '',
  agentId: '',
  stateDir: '',
  source: 'model',
  seed: '7',
};

test('each stream is a host of its own: <host>-<n>, agent id = host, seeds counted up', () => {
  assert.deepEqual(loadgenPlan(flags, new Set()), {
    durationMs: 2500,
    streams: [
      { host: 'loadgen-1', agentId: 'loadgen-1', seed: 7 },
      { host: 'loadgen-2', agentId: 'loadgen-2', seed: 8 },
      { host: 'loadgen-3', agentId: 'loadgen-3', seed: 9 },
    ],
  });
  const named = loadgenPlan({ ...flags, streams: 2, host: 'rack7', seed: 'abc' }, new Set());
  assert.deepEqual(named.streams, [
    { host: 'rack7-1', agentId: 'rack7-1', seed: 'abc-1' },
    { host: 'rack7-2', agentId: 'rack7-2', seed: 'abc-2' },
  ]);
  assert.equal(loadgenPlan({ ...flags, streams: MAX_STREAMS }, new Set()).streams.length, MAX_STREAMS);
});

test('refused: too many streams, a duration out of range, other sources, a state dir, an agent id', () => {
  const refuses = (f: Partial<LoadgenFlags>, given: string[], message: RegExp) =>
    assert.throws(
      () => loadgenPlan({ ...flags, ...f }, new Set(given)),
      (e: Error) => e instanceof OptionError && message.test(e.message),
    );
  refuses({ streams: MAX_STREAMS + 1 }, [], /^--streams: at most 10000, got 10001$/);
  refuses({ duration: 0 }, [], /^--duration: seconds in \(0, 86400\], got 0$/);
  refuses({ duration: MAX_DURATION_S + 1 }, [], /--duration: .* got 86401$/);
  refuses({ source: 'tracefs' }, [], /model events: --source tracefs is not supported/);
  refuses({ stateDir: '/tmp/x' }, [], /--state-dir is not supported/);
  refuses({ agentId: 'a' }, ['agentId'], /--agent-id is not supported/);
});

test('exit code from the summary: 0 drained, 3 unacknowledged at the timeout, 4 lost, 1 failed', () => {
  const s: LoadgenSummary = {
    streams: 2,
    seconds: 1,
    events: 10,
    batches: 2,
    ackedBatches: 2,
    drainedStreams: 2,
    lostEvents: 0,
    reportedLost: 0,
    failedStreams: 0,
    maxPendingBatches: 1,
    ackLatencyMs: { p50: 1, p99: 2, max: 2 },
    perStream: { 'loadgen-1': 5, 'loadgen-2': 5 },
  };
  assert.equal(exitCode(s), 0);
  assert.equal(exitCode({ ...s, drainedStreams: 1 }), 3);
  assert.equal(exitCode({ ...s, drainedStreams: 1, lostEvents: 3 }), 4);
  assert.equal(exitCode({ ...s, failedStreams: 1, lostEvents: 3 }), 1);
});

test('the command: --help lists its options; usage errors exit 2 naming the option', () => {
  const cli = join(repoRoot(), 'dist', 'agent/src/cli.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { timeout: 20_000 });
  const help = run('--help').stdout.toString();
  for (const o of ['--streams <number>', '--duration <number>', 'loadgen'])
    assert.ok(help.includes(o), `--help mentions ${o}`);
  const cases: Array<[string[], string]> = [
    [['--streams', '0'], 'smmu-agent: option --streams (flag): must be >= 1, got 0\n'],
    [['--streams', '2.5'], 'smmu-agent: option --streams (flag): expected a whole number, got 2.5\n'],
    [['--duration', 'x'], 'smmu-agent: option --duration (flag): expected a number, got "x"\n'],
    [['--duration', '0'], 'smmu-agent: --duration: seconds in (0, 86400], got 0\n'],
    [
      ['--source', 'replay'],
      'smmu-agent: loadgen generates model events: --source replay is not supported\n',
    ],
    [['--model-config', '/nonexistent.json'], 'smmu-agent: --model-config /nonexistent.json: ENOENT'],
  ];
  for (const [args, message] of cases) {
    const r = run('loadgen', '--collector', '127.0.0.1:1', '--http-listen', '', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.toString().startsWith(message), `${args.join(' ')}: ${r.stderr}`);
  }
});
