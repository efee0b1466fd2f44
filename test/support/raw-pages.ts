// Builds a raw dump directory (what `smmu-agent replay DIR` reads) from event blocks: 4 KiB
// ring-buffer sub-buffers of arm_smmu_v3:smmu_evtq_event records in one per-CPU file, with
// the kernel's header_page and the proposed tracepoint's format file (fixtures), so the
// binary page path decodes exactly the events the other paths get. Record layout from that
// format: common fields, __data_loc iommu at 8, evt0..evt3 at 16, the name at 48.
import { closeSync, copyFileSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type EventBlock, timestampNs, WORDS_PER_RECORD } from '../../proto/event-block';
import { tracefsFixture } from './uprobe-records';

const PAGE = 4096;
const HEADER = 16; // u64 timestamp, long commit (header_page.4k)
const TYPE_ID = 1796; // ID: of smmu_evtq_event.proposed.handmade.format
const TIME_EXTEND = 30;
const DELTA_LIMIT = 2 ** 27;

/** Where the pages' trace clock stands against the events' wall time, once written. */
export interface RawDump {
  dir: string;
  /** Page header timestamp of the last page (trace clock, ns). */
  lastPageNs: bigint;
}

/**
 * Writes `blocks` as raw pages into `dir` (cpu0, header_page, events/.../format). Trace-clock
 * time = wall time - `bootNs`, so a replay maps it back by one offset.
 */
export function writeRawDump(dir: string, blocks: readonly EventBlock[], bootNs: bigint): RawDump {
  const fmtDir = join(dir, 'events', 'arm_smmu_v3', 'smmu_evtq_event');
  mkdirSync(fmtDir, { recursive: true });
  copyFileSync(tracefsFixture('header_page.4k'), join(dir, 'header_page'));
  copyFileSync(tracefsFixture('smmu_evtq_event.proposed.handmade.format'), join(fmtDir, 'format'));
  const fd = openSync(join(dir, 'cpu0'), 'w');
  const page = Buffer.alloc(PAGE);
  let pos = HEADER;
  let pageTs = -1n;
  let prev = 0n;
  let lastPageNs = -1n;
  const flush = () => {
    if (pageTs < 0n) return;
    page.writeBigUInt64LE(pageTs, 0);
    page.writeBigUInt64LE(BigInt(pos - HEADER), 8);
    page.fill(0, pos);
    writeSync(fd, page);
    lastPageNs = pageTs;
    pos = HEADER;
    pageTs = -1n;
  };
  try {
    for (const b of blocks) {
      for (let i = 0; i < b.count; i++) {
        const name = Buffer.from(`${b.smmuNames[b.smmuIndex[i]]}\0`);
        const payload = Math.ceil((48 + name.length) / 4) * 4;
        const t = timestampNs(b, i) - bootNs;
        let delta = pageTs < 0n ? 0 : Number(t - prev);
        const extend = delta >= DELTA_LIMIT ? 8 : 0;
        if (pos + extend + 4 + payload > PAGE) flush();
        if (pageTs < 0n) {
          pageTs = t;
          delta = 0;
        } else if (delta >= DELTA_LIMIT) {
          page.writeUInt32LE((((delta % DELTA_LIMIT) << 5) | TIME_EXTEND) >>> 0, pos);
          page.writeUInt32LE(Math.floor(delta / DELTA_LIMIT), pos + 4);
          pos += 8;
          delta = 0;
        }
        prev = t;
        page.writeUInt32LE(((delta << 5) | (payload / 4)) >>> 0, pos);
        const p = pos + 4;
        page.fill(0, p, p + payload);
        page.writeUInt16LE(TYPE_ID, p);
        page.writeUInt32LE(((name.length << 16) | 48) >>> 0, p + 8);
        for (let k = 0; k < WORDS_PER_RECORD; k++)
          page.writeUInt32LE(b.words[i * WORDS_PER_RECORD + k], p + 16 + 4 * k);
        name.copy(page, p + 48);
        pos = p + payload;
      }
    }
    flush();
  } finally {
    closeSync(fd);
  }
  return { dir, lastPageNs };
}

/** Wall ns minus trace-clock ns that a replay of `dump` applies (the cpu file's mtime is the last page's time). */
export function replayOffsetNs(dump: RawDump): bigint {
  return statSync(join(dump.dir, 'cpu0'), { bigint: true }).mtimeNs - dump.lastPageNs;
}
