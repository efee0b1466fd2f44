// The fleet table for a person: one row per host x SMMU x device x process x event type.
import type { FleetTotals } from './aggregate';

export function formatFleetTable(t: FleetTotals, maxRows = 40): string {
  const rows = t.rows();
  const hosts = t.hostRows();
  const lines: string[] = [];
  const total = hosts.reduce((s, h) => s + h.events, 0);
  const lost = hosts.reduce((s, h) => s + h.lost, 0);
  lines.push(
    `fleet: ${hosts.length} hosts, ${total} events, ${lost} lost, ${t.replays.duplicates} replayed batches dropped`,
  );
  lines.push(
    `${'HOST'.padEnd(14)} ${'SMMU'.padEnd(20)} ${'SID'.padStart(6)} ${'SSID'.padStart(6)} ${'EVENT'.padEnd(18)} ${'COUNT'.padStart(10)}`,
  );
  for (const r of rows.slice(0, maxRows)) {
    lines.push(
      `${r.host.padEnd(14)} ${r.smmu.padEnd(20)} ${String(r.streamId).padStart(6)} ${String(r.ssid).padStart(6)} ${r.event.padEnd(18)} ${String(r.count).padStart(10)}`,
    );
  }
  if (rows.length > maxRows) lines.push(`... ${rows.length - maxRows} more rows`);
  for (const l of t.lostRows()) lines.push(`lost on ${l.host}: ${l.count} (${l.reason})`);
  return lines.join('\n');
}
