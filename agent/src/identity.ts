// Who the agent is: host name (flag, NODE_NAME from the Kubernetes downward API, or the OS),
// a stable agent id kept in the state directory, and the epoch of its sequence numbers.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type AgentIdentity, newEpoch } from './pipeline';

export function resolveIdentity(o: { host: string; agentId: string; stateDir: string }): AgentIdentity {
  const host = o.host || process.env.NODE_NAME || hostname();
  let agentId = o.agentId;
  if (!agentId && o.stateDir) {
    const file = join(o.stateDir, 'agent-id');
    try {
      agentId = readFileSync(file, 'utf8').trim();
    } catch {
      mkdirSync(o.stateDir, { recursive: true });
      agentId = `${host}-${randomUUID().slice(0, 8)}`;
      writeFileSync(file, `${agentId}\n`);
    }
  }
  // Without a durable spool every start is a new epoch whose sequences begin at 1.
  return { host, agentId: agentId || host, epoch: newEpoch() };
}
