// Human-readable renderings of SMMUv3 event records: the kernel's log dump (Linux v6.15
// arm_smmu_dump_raw_event + arm_smmu_dump_event, which a rate limit hides from most people),
// a one-line summary, and a trace_pipe-like line for `--dump`.
import { type EventBlock, timestampNs, WORDS_PER_RECORD } from '../../proto/event-block';
import {
  EVT_F_ACCESS,
  EVT_F_ADDR_SIZE,
  EVT_F_CD_FETCH,
  EVT_F_PERMISSION,
  EVT_F_STE_FETCH,
  EVT_F_TRANSLATION,
  EVT_F_VMS_FETCH,
  Field,
  linuxEventName,
} from './event-ids';
import { DecodedEvent, EVENT_CLASS_NAMES } from './record';

/** C printf "%#x" / "%#llx": 0 prints as "0", anything else with a 0x prefix. */
function altHex(v: number | bigint): string {
  return v === 0 || v === 0n ? '0' : `0x${v.toString(16)}`;
}

function hex16(v: bigint): string {
  return `0x${v.toString(16).padStart(16, '0')}`;
}

export interface DumpOptions {
  /** Device name of the stream's master; Linux prints "(unassigned sid)" without one. */
  client?: string;
  /** Use Linux's event names ("UNKNOWN" for the ones it does not name). Default: architecture names. */
  linuxNames?: boolean;
}

function decodedLines(e: DecodedEvent, opts: DumpOptions): string[] {
  const name = opts.linuxNames ? linuxEventName(e.id) : e.name;
  const head = `event: ${name} client: ${opts.client ?? '(unassigned sid)'} sid: ${altHex(e.sid)} ssid: ${altHex(e.ssid)}`;
  switch (e.id) {
    case EVT_F_TRANSLATION:
    case EVT_F_ADDR_SIZE:
    case EVT_F_ACCESS:
    case EVT_F_PERMISSION:
      return [
        `${head} iova: ${altHex(e.inputAddr)} ipa: ${altHex(e.ipa)}`,
        `${e.pnu ? 'priv' : 'unpriv'} ${e.ind ? 'inst' : 'data'} ${e.rnw ? 'read' : 'write'} ${e.s2 ? 's2' : 's1'} "${EVENT_CLASS_NAMES[e.class]}"${e.classTt ? (e.ttrnw ? ' ttd_read' : ' ttd_write') : ''}${e.stall ? ' stall' : ''} stag: ${altHex(e.stag)}`,
      ];
    case EVT_F_STE_FETCH:
    case EVT_F_CD_FETCH:
    case EVT_F_VMS_FETCH:
      return [`${head} fetch_addr: ${altHex(e.fetchAddr)}`];
    default:
      return [head];
  }
}

/**
 * The lines Linux logs for a record it does not handle, without the "arm-smmu-v3 <dev>: "
 * prefix: "event 0x10 received:", the four words, then the decoded line(s). Linux names
 * by default. One difference: C_BAD_SUBSTREAMID's SubstreamID is shown even without SSV.
 */
export function formatKernelLog(words: Uint32Array, w: number, opts: DumpOptions = {}): string[] {
  const e = new DecodedEvent(words, w);
  const raw = e.raw;
  return [
    `event 0x${e.id.toString(16).padStart(2, '0')} received:`,
    ...raw.map((x) => `\t${hex16(x)}`),
    ...decodedLines(e, { linuxNames: true, ...opts }),
  ];
}

/** The kernel dump on one line: "event 0x10 received: <4 words> | <decoded fields>". */
export function formatEventLine(words: Uint32Array, w: number, opts: DumpOptions = {}): string {
  const e = new DecodedEvent(words, w);
  const raw = e.raw.map(hex16).join(' ');
  return [`event 0x${e.id.toString(16).padStart(2, '0')} received: ${raw}`, ...decodedLines(e, opts)].join(
    ' | ',
  );
}

/** "1700000000.123456" from ns since the epoch (trace_pipe shows microseconds). */
function traceTime(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const usec = (ns % 1_000_000_000n) / 1000n;
  return `${sec}.${usec.toString().padStart(6, '0')}`;
}

/** A compact decoded suffix: name, ids, direction, stall tag, address. */
export function formatSummary(words: Uint32Array, w: number): string {
  const e = new DecodedEvent(words, w);
  const parts = [e.name, `sid=${altHex(e.sid)}`];
  if (e.ssv || e.ssid !== 0) parts.push(`ssid=${altHex(e.ssid)}`);
  if (e.fields & Field.InputAddr) parts.push(`${e.rnw ? 'read' : 'write'}`, `addr=${altHex(e.inputAddr)}`);
  if (e.stall) parts.push(`stall stag=${altHex(e.stag)}`);
  return parts.join(' ');
}

/**
 * Event i of a block as the proposed tracepoint prints it, trace_pipe style:
 * "<sec.usec>: <group:event>: <smmu> evt: 0x... 0x... 0x... 0x..." plus, with `decode`, a
 * "# <summary>" suffix.
 */
export function formatTraceLine(
  block: EventBlock,
  i: number,
  opts: { event?: string; decode?: boolean } = {},
): string {
  const w = i * WORDS_PER_RECORD;
  const words = block.words;
  const evt: string[] = [];
  for (let k = 0; k < 4; k++) {
    evt.push(hex16((BigInt(words[w + 2 * k + 1]) << 32n) | BigInt(words[w + 2 * k])));
  }
  const line = `${traceTime(timestampNs(block, i))}: ${opts.event ?? 'smmu_evtq_event'}: ${block.smmuNames[block.smmuIndex[i]]} evt: ${evt.join(' ')}`;
  return opts.decode ? `${line}  # ${formatSummary(words, w)}` : line;
}
