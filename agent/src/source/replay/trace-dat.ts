// trace-cmd's trace.dat: recognised by its magic, not read yet (see the agent README).

/** "\x17\x08\x44tracing": the first 10 bytes of every trace.dat. */
const MAGIC = Buffer.from([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]);

export function isTraceDat(head: Buffer): boolean {
  return head.length >= MAGIC.length && head.subarray(0, MAGIC.length).equals(MAGIC);
}

/** The error for a trace.dat input, naming the file version found and what works instead. */
export function traceDatUnsupported(input: string, head: Buffer): Error {
  const version = head.toString('latin1', MAGIC.length, head.indexOf(0, MAGIC.length));
  return new Error(
    `${input}: trace-cmd trace.dat (file version ${version || '?'}) is not read yet; ` +
      'replay a directory of raw per-CPU dumps (per_cpu/cpuN/trace_pipe_raw) or trace_pipe text instead',
  );
}
