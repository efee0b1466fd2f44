import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { helpText, OptionError, overlay, parseOptions } from '../../common/runtime/options';

const program = { name: 'prog', envPrefix: 'PROG_', summary: 'test program' };
const specs = {
  rate: { type: 'number', default: 10, min: 0, help: 'events per second' },
  collector: { type: 'list', default: ['127.0.0.1:7070'], help: 'collectors' },
  mode: { type: 'string', default: 'model', choices: ['model', 'tracefs'], help: 'source' },
  verbose: { type: 'boolean', default: false, help: 'talk more' },
  limit: { type: 'number', default: 20, min: 0, integer: true, help: 'events to print' },
} as const;

test('flags beat env, env beats the config file, the file beats defaults', () => {
  const dir = mkdtempSync(join(tmpdir(), 'opts-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ rate: 5, mode: 'tracefs', verbose: true }));
  const p = parseOptions(program, specs, ['--config', file, '--rate', '7'], {
    PROG_RATE: '6',
    PROG_COLLECTOR: 'a:1, b:2',
  });
  assert.deepEqual(p.options, {
    rate: 7,
    collector: ['a:1', 'b:2'],
    mode: 'tracefs',
    verbose: true,
    limit: 20,
  });
  assert.deepEqual([...p.given].sort(), ['collector', 'mode', 'rate', 'verbose']);
  const d = parseOptions(program, specs, [], {});
  assert.deepEqual(d.options, {
    rate: 10,
    collector: ['127.0.0.1:7070'],
    mode: 'model',
    verbose: false,
    limit: 20,
  });
  assert.equal(d.given.size, 0, 'defaults are not given');
});

test('a config file value is kept when no flag or env sets that option', () => {
  const dir = mkdtempSync(join(tmpdir(), 'opts-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ rate: 0, verbose: false, limit: 3 }));
  const p = parseOptions(program, specs, ['--config', file, '--verbose'], {});
  assert.deepEqual(p.options, {
    rate: 0,
    collector: ['127.0.0.1:7070'],
    mode: 'model',
    verbose: true,
    limit: 3,
  });
  assert.deepEqual([...p.given].sort(), ['limit', 'rate', 'verbose']);
});

test('overlay takes every option named like a config field, and nothing else', () => {
  const defaults = { rate: 1, mode: 'x', brokers: ['b:1'] };
  const c = overlay(defaults, { rate: 5, mode: 'y', verbose: true });
  assert.deepEqual(c, { rate: 5, mode: 'y', brokers: ['b:1'] });
  assert.deepEqual(defaults, { rate: 1, mode: 'x', brokers: ['b:1'] }, 'defaults untouched');
});

test('bad values name the option and what is expected', () => {
  assert.throws(
    () => parseOptions(program, specs, ['--rate', 'fast'], {}),
    new OptionError('option --rate (flag): expected a number, got "fast"'),
  );
  assert.throws(() => parseOptions(program, specs, ['--rate=-1'], {}), /must be >= 0, got -1/);
  const shift = { shift: { type: 'number', default: 16, min: 12, max: 30, help: 'x' } } as const;
  assert.throws(
    () => parseOptions(program, shift, ['--shift', '32'], {}),
    new OptionError('option --shift (flag): must be <= 30, got 32'),
  );
  assert.equal(parseOptions(program, shift, ['--shift', '30'], {}).options.shift, 30);
  assert.throws(
    () => parseOptions(program, specs, ['--limit', '2.5'], {}),
    new OptionError('option --limit (flag): expected a whole number, got 2.5'),
  );
  assert.equal(parseOptions(program, specs, ['--rate', '2.5'], {}).options.rate, 2.5);
  assert.throws(
    () => parseOptions(program, specs, [], { PROG_MODE: 'magic' }),
    /env PROG_MODE\): expected one of model, tracefs, got "magic"/,
  );
  assert.throws(
    () => parseOptions(program, specs, ['--nope'], {}),
    /Unknown option '--nope'.*see prog --help/,
  );
  const dir = mkdtempSync(join(tmpdir(), 'opts-'));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ rat: 1 }));
  assert.throws(
    () => parseOptions(program, specs, ['--config', join(dir, 'bad.json')], {}),
    /unknown option "rat"/,
  );
});

test('help lists every option with its env variable and default', () => {
  const h = helpText(program, specs);
  for (const s of [
    '--rate <number>',
    'env PROG_RATE, default 10',
    '--collector <a,b>',
    'env PROG_VERBOSE, default false',
    '(one of: model, tracefs)',
  ]) {
    assert.ok(h.includes(s), `help lacks ${s}:\n${h}`);
  }
});
