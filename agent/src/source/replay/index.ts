// The replay source: captures of the kernel's ring buffer (trace.dat, text, raw dumps).
export { detectReplayKind, type ReplayKind, ReplaySource, type ReplaySourceOptions } from './replay-source';
