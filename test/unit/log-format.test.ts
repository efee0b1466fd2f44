import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { formatLogLine } from '../../common/runtime/log';

/** What pino writes for these calls, as JSON lines. */
function records(log: (l: pino.Logger) => void): string[] {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  log(pino({ name: 'smmu-test', base: { pid: 1 }, timestamp: () => ',"time":0' }, sink));
  return lines;
}

test('errors under `err` keep their type, message and stack through the serializer', () => {
  const err = new TypeError('bad thing');
  const [line] = records((l) => l.error({ err, partition: 3 }, 'checkpoint failed'));
  const r = JSON.parse(line);
  assert.equal(r.err.type, 'TypeError');
  assert.equal(r.err.message, 'bad thing');
  assert.equal(r.err.stack, err.stack);
  assert.equal(r.partition, 3);
});

test('the terminal format: one readable line per record, the stack indented below', () => {
  const err = new Error('no broker');
  const [warn, fail, plain] = records((l) => {
    l.warn({ peer: '127.0.0.1:5', unacked: 4 }, 'collector stream broken');
    l.error({ err }, 'publish failed');
    l.info('started');
  });
  assert.equal(
    formatLogLine(warn),
    '00:00:00.000 WARN smmu-test: collector stream broken peer=127.0.0.1:5 unacked=4\n',
  );
  const lines = formatLogLine(fail).split('\n');
  assert.equal(lines[0], '00:00:00.000 ERROR smmu-test: publish failed');
  assert.equal(lines[1], '    Error: no broker');
  assert.match(lines[2], /^ {8}at /);
  assert.equal(formatLogLine(plain), '00:00:00.000 INFO smmu-test: started\n');
  assert.equal(formatLogLine('not json\n'), 'not json\n', 'anything else passes through');
});
