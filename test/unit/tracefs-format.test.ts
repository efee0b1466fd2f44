import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  findField,
  parseEventFormat,
  parseHeaderPage,
  withDataSize,
} from '../../agent/src/source/tracefs/format';
import { tracefsFixture } from '../support/uprobe-records';

const read = (name: string) => readFileSync(tracefsFixture(name), 'utf8');

describe('tracefs format files', () => {
  it('parses the uprobe stand-in for arm_smmu_v3:smmu_evtq_event (captured)', () => {
    const f = parseEventFormat(read('smmu_evtq_event.uprobe.format'));
    assert.equal(f.name, 'smmu_evtq_event');
    assert.ok(Number.isInteger(f.id) && f.id > 0);
    const type = findField(f, 'common_type');
    assert.deepEqual([type?.offset, type?.size, type?.signed, type?.common], [0, 2, false, true]);
    for (let i = 0; i < 4; i++) {
      const e = findField(f, `evt${i}`);
      assert.deepEqual([e?.type, e?.offset, e?.size, e?.common], ['u64', 16 + 8 * i, 8, false]);
    }
    const name = findField(f, 'iommu');
    assert.equal(name?.dataLoc, true);
    assert.equal(name?.isString, true);
    assert.equal(name?.type, 'char[]');
    assert.deepEqual([name?.offset, name?.size], [48, 4]);
    assert.equal(findField(f, '__probe_ip')?.type, 'unsigned long');
    assert.match(f.printFmt, /^"\(%lx\) evt0=0x%Lx/);
  });

  it('parses iommu:io_page_fault as this kernel declares it (captured)', () => {
    const f = parseEventFormat(read('io_page_fault.format'));
    assert.equal(f.name, 'io_page_fault');
    assert.deepEqual(
      f.fields.filter((x) => !x.common).map((x) => [x.name, x.offset, x.size, x.dataLoc, x.signed]),
      [
        ['device', 8, 4, true, false],
        ['driver', 12, 4, true, false],
        ['iova', 16, 8, false, false],
        ['flags', 24, 4, false, true],
      ],
    );
  });

  it('parses fixed arrays, __rel_loc and unexpanded array lengths', () => {
    const f = parseEventFormat(
      [
        'name: demo',
        'ID: 7',
        'format:',
        '\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;',
        '',
        '\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;',
        '\tfield:__rel_loc char[] rel;\toffset:24;\tsize:4;\tsigned:0;',
        '\tfield:char name[TASK_COMM_LEN];\toffset:28;\tsize:16;\tsigned:0;',
        '\tfield:u32 vals[4];\toffset:44;\tsize:16;\tsigned:0;',
        '',
        'print fmt: "%s", REC->comm',
      ].join('\n'),
    );
    assert.deepEqual(
      f.fields.map((x) => [x.name, x.type, x.arrayLength, x.isString, x.relLoc, x.common]),
      [
        ['common_type', 'unsigned short', undefined, false, false, true],
        ['comm', 'char[16]', 16, true, false, false],
        ['rel', 'char[]', undefined, true, true, false],
        ['name', 'char[TASK_COMM_LEN]', 16, true, false, false],
        ['vals', 'u32[4]', 4, false, false, false],
      ],
    );
  });

  it('rejects text that is not a format file', () => {
    assert.throws(() => parseEventFormat('hello'), /not an event format file/);
  });

  it('reads the sub-buffer layout from header_page, 4 KiB and 64 KiB (captured)', () => {
    const small = parseHeaderPage(read('header_page.4k'));
    assert.deepEqual(small, {
      timestampOffset: 0,
      timestampSize: 8,
      commitOffset: 8,
      commitSize: 8,
      dataOffset: 16,
      dataSize: 4080,
      subbufSize: 4096,
    });
    const big = parseHeaderPage(read('header_page.64k'));
    assert.equal(big.dataSize, 65520);
    assert.equal(big.subbufSize, 65536);
    assert.deepEqual(withDataSize(small, 16384), { ...small, dataSize: 16368, subbufSize: 16384 });
  });

  it('takes a 32-bit kernel header (4-byte commit) as declared', () => {
    const l = parseHeaderPage(
      [
        '\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;',
        '\tfield: local_t commit;\toffset:8;\tsize:4;\tsigned:1;',
        '\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;',
        '\tfield: char data;\toffset:12;\tsize:4084;\tsigned:0;',
      ].join('\n'),
    );
    assert.deepEqual([l.commitSize, l.dataOffset, l.subbufSize], [4, 12, 4096]);
  });
});
