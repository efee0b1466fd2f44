// Summaries of V8 CPU profiles (.cpuprofile, from node --cpu-prof): the functions with the
// most self time, so a benchmark can print where a process spent its CPU.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The `top` functions by self time: "share% name (file:line)". */
export function topSelfTime(file: string, top = 10): string[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const f = byId.get(id)?.callFrame;
    const dt = p.timeDeltas[i] ?? 0;
    if (!f || f.functionName === '(idle)') return;
    const where = f.url ? ` (${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1})` : '';
    const key = `${f.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `${((us / total) * 100).toFixed(1)}% ${k}`);
}
