// The byte-level trace text parser: strict words, CRLF, header lines, LOST lines, a last line
// without "\n", over-long lines, and input split at every possible byte.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decoderFamily, PRIMARY_EVENT } from '../../agent/src/source/tracefs/events/index';
import { parseEventFormat } from '../../agent/src/source/tracefs/format';
import { LossCounter } from '../../agent/src/source/tracefs/losses';
import { EventStaging } from '../../agent/src/source/tracefs/staging';
import { LineBuffer, TraceTextParser } from '../../agent/src/source/tracefs/text-lines';
import { type EventBlock, word64 } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { tracefsFixture } from '../support/uprobe-records';

const format = parseEventFormat(readFileSync(tracefsFixture('smmu_evtq_event.uprobe.format'), 'utf8'));
const W = '0x0000004200001810 0x0000000880000007 0xffff800012345000 0x0000000012345000';
const line = (ts: string, body = `arm-smmu-v3.0.auto evt: ${W}`) =>
  `            emit-8031    [001] DBZff   ${ts}: smmu_evtq_event: ${body}`;

interface Parsed {
  block: EventBlock | undefined;
  records: number;
  lost: Map<LossReason, number>;
  warnings: string[];
}

/** Feeds `text` in pieces of `step` bytes through a LineBuffer of `size` bytes. */
function run(text: string | Buffer, step = 1 << 20, size = 1 << 16): Parsed {
  const decoder = decoderFamily(PRIMARY_EVENT)?.create(format, PRIMARY_EVENT);
  assert.ok(decoder);
  const staging = new EventStaging(PRIMARY_EVENT);
  const losses = new LossCounter();
  const warnings: string[] = [];
  const parser = new TraceTextParser({
    targets: [{ event: PRIMARY_EVENT, typeId: format.id, decoder, staging }],
    losses,
    warnOnce: (_k, m) => warnings.push(m),
  });
  parser.setBase(0n);
  const lines = new LineBuffer(parser, size);
  const input = Buffer.isBuffer(text) ? text : Buffer.from(text);
  staging.begin(0n);
  let records = 0;
  for (let at = 0; at < input.length; ) {
    const n = Math.min(step, lines.free, input.length - at);
    input.copy(lines.buf, lines.carry, at, at + n);
    at += n;
    records += lines.parse(n);
  }
  records += lines.finish();
  return { block: staging.take(), records, lost: losses.take() ?? new Map(), warnings };
}

const MALFORMED = LossReason.LOSS_REASON_MALFORMED_RECORD;
const OVERRUN = LossReason.LOSS_REASON_RING_BUFFER_OVERRUN;

describe('trace text parser', () => {
  it('decodes the kernel format exactly, with ns timestamps from any fraction length', () => {
    const r = run(`${line('836.322624')}\n${line('836.322624001')}\n${line('837')}\n`);
    assert.equal(r.records, 3);
    assert.deepEqual([...(r.block?.offsetNs ?? [])], [836_322_624_000, 836_322_624_001, 837_000_000_000]);
    assert.equal(word64(r.block as EventBlock, 0, 2), 0xffff800012345000n);
    assert.deepEqual(r.block?.smmuNames, ['arm-smmu-v3.0.auto']);
    assert.equal(r.lost.size, 0);
  });

  it('reads hex digits of either case exactly and refuses every other byte in a word', () => {
    const mixed = '0xFfEeDdCcBbAa9988 0x0123456789abcdef 0x0000000000000000 0xffffffffffffffff';
    const r = run(`${line('1.0', `a evt: ${mixed}`)}\n`);
    assert.equal(r.records, 1);
    const b = r.block as EventBlock;
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => word64(b, 0, k)),
      [0xffeeddccbbaa9988n, 0x0123456789abcdefn, 0n, 0xffffffffffffffffn],
    );
    let refused = 0;
    for (let c = 0; c < 256; c++) {
      const ch = String.fromCharCode(c);
      if (/[0-9a-fA-F]/.test(ch) || c === 0x0a || c === 0x0d) continue;
      for (const at of [2, 9, 10, 17]) {
        const word = `0x${'1'.repeat(16)}`.split('');
        word[at] = ch;
        const bad = Buffer.concat([
          Buffer.from(line('1.0', 'a evt: ')),
          Buffer.from(word.join(''), 'latin1'),
        ]);
        const got = run(Buffer.concat([bad, Buffer.from(` ${W.split(' ').slice(1).join(' ')}\n`)]));
        assert.equal(got.records, 0, `byte ${c} at ${at}`);
        refused++;
      }
    }
    assert.equal(refused, (256 - 22 - 2) * 4);
    // Fraction digits past the ninth are dropped, not rounded.
    assert.deepEqual([...(run(`${line('5.1234567899')}\n`).block?.offsetNs ?? [])], [5_123_456_789]);
  });

  it('counts a word of fewer or more than 16 digits, and trailing bytes, as malformed', () => {
    const short = W.replace('0x0000000012345000', '0x000000001234500');
    const long = W.replace('0x0000000012345000', '0x00000000123450000');
    const r = run(
      [line('1.0', `a evt: ${short}`), line('1.1', `a evt: ${long}`), line('1.2', `a evt: ${W} x`), ''].join(
        '\n',
      ),
    );
    assert.equal(r.records, 0);
    assert.equal(r.lost.get(MALFORMED), 3);
    assert.match(r.warnings[0], /malformed arm_smmu_v3:smmu_evtq_event line/);
  });

  it('handles CRLF, skips # header lines and empty lines without counting, counts LOST lines', () => {
    const text = [
      '# tracer: nop',
      '#',
      '##### CPU 1 buffer started ####',
      '',
      line('2.5'),
      'CPU:1 [LOST 17 EVENTS]',
      line('2.6'),
    ]
      .map((l) => `${l}\r\n`)
      .join('');
    const r = run(text);
    assert.equal(r.records, 2);
    assert.equal(r.lost.get(OVERRUN), 17);
    assert.equal(r.lost.get(MALFORMED), undefined);
  });

  it('parses a complete last line without "\\n" and counts a cut-off one', () => {
    assert.equal(run(`${line('3.0')}\n${line('3.1')}`).records, 2);
    const full = `${line('3.0')}\n${line('3.1')}`;
    // Cut anywhere inside the last line's words: never a record with a wrong word.
    for (let cut = full.length - 60; cut < full.length; cut++) {
      const r = run(full.slice(0, cut));
      assert.equal(r.records, 1, `cut at ${cut}`);
      assert.equal(r.lost.get(MALFORMED), 1, `cut at ${cut}`);
    }
  });

  it('gives the same result however the input is split into reads', () => {
    const text = `# h\n${line('4.0')}\r\n${line('4.1')}\nCPU:0 [LOST 2 EVENTS]\ngarbage\n${line('4.2')}`;
    const whole = run(text);
    assert.equal(whole.records, 3);
    for (const step of [1, 2, 7, 64, 333]) {
      const r = run(text, step, 512);
      assert.equal(r.records, 3, `step ${step}`);
      assert.deepEqual([...r.lost], [...whole.lost], `step ${step}`);
    }
  });

  it('counts a line longer than the buffer once and reads on after it', () => {
    const r = run(`${line('5.0')}\n${'x'.repeat(5000)}\n${line('5.1')}\n`, 100, 1024);
    assert.equal(r.records, 2);
    assert.equal(r.lost.get(MALFORMED), 1);
    assert.match(r.warnings.join('\n'), /line longer than 1024 bytes/);
  });

  it('reads the uprobe stand-in key=value form, with the words printed without padding', () => {
    const body =
      '(0x55d0c0de11d0) evt0=0x4200001810 evt1=0x880000007 evt2=0xffff800012345000 evt3=0x12345000 iommu="smmu1"';
    const r = run(`${line('6.0', body)}\n${line('6.1', body.replace(' evt3=0x12345000', ''))}\n`);
    assert.equal(r.records, 1);
    assert.equal(word64(r.block as EventBlock, 0, 3), 0x12345000n);
    assert.deepEqual(r.block?.smmuNames, ['smmu1']);
    assert.equal(r.lost.get(MALFORMED), 1);
  });
});
