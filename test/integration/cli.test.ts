// The programs' command lines, run as a user runs them: usage errors exit 2 with a message
// naming what is wrong, fatal errors are reported once with their stack, invalid config files
// of every program are refused, and --model-config values survive the options' defaults.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../support/paths';

const root = repoRoot();
const fixture = (name: string) => join(root, 'test', 'fixtures', 'config', name);
const programs = {
  'smmu-agent': 'dist/agent/src/cli.js',
  'smmu-collector': 'dist/collector/ingest/cli.js',
  'smmu-fleet': 'dist/collector/accounting/cli.js',
};

function run(program: keyof typeof programs, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(root, programs[program]), ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, LOG_FORMAT: 'json', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('invalid config files are refused with exit 2 and a message naming the option, per program', () => {
  const cases: Array<[keyof typeof programs, string[], string]> = [
    [
      'smmu-agent',
      ['dump', '--config', fixture('agent-bad-value.json')],
      `smmu-agent: option --batch-max-events (config ${fixture('agent-bad-value.json')}): expected a number, got "many"\n`,
    ],
    [
      'smmu-agent',
      ['dump', '--config', fixture('agent-unknown-key.json')],
      `smmu-agent: config file ${fixture('agent-unknown-key.json')}: unknown option "batchMaxEvent"; see smmu-agent --help\n`,
    ],
    [
      'smmu-agent',
      ['dump', '--model-config', fixture('agent-model-bad-value.json')],
      `smmu-agent: --model-config ${fixture('agent-model-bad-value.json')}: model config: topology.smmus must be an integer >= 1 and <= 64 (got 0)\n`,
    ],
    [
      'smmu-collector',
      ['--config', fixture('collector-bad-value.json')],
      `smmu-collector: option --max-message-bytes (config ${fixture('collector-bad-value.json')}): must be >= 1024, got 10\n`,
    ],
    [
      'smmu-collector',
      ['--config', fixture('collector-not-object.json')],
      `smmu-collector: config file ${fixture('collector-not-object.json')}: expected a JSON object\n`,
    ],
    [
      'smmu-fleet',
      ['top', '--config', fixture('fleet-bad-choice.json')],
      `smmu-fleet: option --format (config ${fixture('fleet-bad-choice.json')}): expected one of table, json, got "xml"\n`,
    ],
    [
      'smmu-fleet',
      ['top', '--config', fixture('fleet-not-whole.json')],
      `smmu-fleet: option --rows (config ${fixture('fleet-not-whole.json')}): expected a whole number, got 2.5\n`,
    ],
  ];
  for (const [program, args, message] of cases) {
    const r = run(program, args);
    assert.equal(r.stderr, message);
    assert.equal(r.code, 2, `${program} ${args.join(' ')}`);
    assert.equal(r.stdout, '');
  }
  const broken = run('smmu-agent', ['dump', '--model-config', fixture('agent-model-broken.json')]);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /^smmu-agent: --model-config \S+agent-model-broken\.json: .*JSON.*\n$/);
});

test('usage errors exit 2 in every program: unknown commands, fractional counts, missing URLs', () => {
  const cases: Array<[keyof typeof programs, string[], string]> = [
    [
      'smmu-agent',
      ['frob'],
      'smmu-agent: unknown command "frob": use run, replay, dump, faults or loadgen\n',
    ],
    ['smmu-fleet', ['frob'], 'smmu-fleet: unknown command "frob": use top, aggregate, advise or totals\n'],
    [
      'smmu-agent',
      ['dump', '--dump-limit', '2.5'],
      'smmu-agent: option --dump-limit (flag): expected a whole number, got 2.5\n',
    ],
    ['smmu-fleet', ['advise'], 'smmu-fleet: advise needs --api-url (the aggregator keeps the hot pages)\n'],
    ['smmu-fleet', ['top', '--source', 'api'], 'smmu-fleet: --source api needs --api-url\n'],
    ['smmu-collector', ['--bogus'], "smmu-collector: Unknown option '--bogus'; see smmu-collector --help\n"],
  ];
  for (const [program, args, message] of cases) {
    const r = run(program, args);
    assert.equal(r.stderr, message);
    assert.equal(r.code, 2, `${program} ${args.join(' ')}`);
  }
});

test('a fatal error is reported once, with its stack; as text on request', () => {
  const r = run('smmu-agent', ['faults', '--http-listen', '127.0.0.1:1']);
  assert.equal(r.code, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.level, 60);
  assert.equal(rec.msg, 'failed to start');
  assert.match(rec.err.message, /^no agent answers at http:\/\/127\.0\.0\.1:1\/faults/);
  assert.match(rec.err.stack, /^Error: no agent answers[^\n]*\n\s+at /);
  const text = run('smmu-agent', ['faults', '--http-listen', '127.0.0.1:1'], { LOG_FORMAT: 'text' });
  assert.equal(text.code, 1);
  assert.match(
    text.stderr,
    /^\d\d:\d\d:\d\d\.\d{3} FATAL smmu-agent: failed to start\n {4}Error: no agent answers at [^\n]+\n {8}at /,
  );
  assert.equal(text.stderr.match(/no agent answers/g)?.length, 1, 'the message appears once');
});

test('--model-config values are not overridden by the defaults of options not given', () => {
  const fromFile = run('smmu-agent', [
    'dump',
    '--dump-limit',
    '0',
    '--model-config',
    fixture('agent-model.json'),
  ]);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  const [summary, ...reversed] = fromFile.stdout.trimEnd().split('\n').reverse();
  const lines = reversed.reverse();
  assert.equal(summary, '# 50 events printed; lost: none');
  assert.equal(lines.length, 50, 'maxEvents 50 from the file ends the dump');
  assert.ok(
    lines.every((l) => l.includes('arm-smmu-v3.0.auto')),
    'one SMMU (topology.smmus 1)',
  );
  assert.equal(lines.filter((l) => l.includes('F_TRANSLATION')).length, 0, 'prefault from the file');
  const fromFlags = run('smmu-agent', [
    'dump',
    '--dump-limit',
    '0',
    '--model-config',
    fixture('agent-model-start.json'),
    ...['--seed', '7', '--rate', '0', '--max-events', '50', '--model-pace', 'work'],
    ...['--smmus', '1', '--devices-per-smmu', '2', '--processes', '3', '--prefault'],
  ]);
  assert.equal(fromFlags.code, 0, fromFlags.stderr);
  assert.equal(fromFlags.stdout, fromFile.stdout, 'the file and the same flags give the same stream');
  const flagWins = run('smmu-agent', [
    'dump',
    '--dump-limit',
    '0',
    '--model-config',
    fixture('agent-model.json'),
    '--max-events',
    '20',
  ]);
  assert.equal(
    flagWins.stdout,
    `${lines.slice(0, 20).join('\n')}\n# 20 events printed; lost: none\n`,
    'a given flag wins over the file',
  );
});
