// Who the agent is: host name (flag, NODE_NAME from the Kubernetes downward API, or the OS),
// and a stable agent id kept in the state directory. (The epoch belongs to the spool.)
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AgentIdentity } from './pipeline';

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
  return { host, agentId: agentId || host };
}
