// Kafka ACLs for least-privilege tests: what each program needs, granted and revoked through a
// super-user admin client.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  type Admin,
  ResourcePatternTypes,
} from 'kafkajs';

export type Operation = keyof typeof AclOperationTypes;

export interface Grant {
  /** A user name; the principal is User:<user>. */
  user: string;
  resource: 'TOPIC' | 'GROUP' | 'CLUSTER';
  name: string;
  operation: Operation;
  /** PREFIXED: every resource whose name starts with `name`. Default LITERAL. */
  pattern?: 'LITERAL' | 'PREFIXED';
}

const entry = (g: Grant) => ({
  resourceType: AclResourceTypes[g.resource],
  resourceName: g.name,
  resourcePatternType: ResourcePatternTypes[g.pattern ?? 'LITERAL'],
  principal: `User:${g.user}`,
  host: '*',
  operation: AclOperationTypes[g.operation],
  permissionType: AclPermissionTypes.ALLOW,
});

/**
 * Waits until the broker's authorizer holds each ACL (present) or none of them: ACL changes go
 * through the metadata log and reach the authorizer a little later than the call returns.
 */
async function settled(admin: Admin, grants: Grant[], present: boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = await Promise.all(
      grants.map(async (g) => {
        const r = await admin.describeAcls(entry(g));
        return r.resources.some((x) => x.acls.length > 0);
      }),
    );
    if (found.every((f) => f === present)) return;
    if (Date.now() > deadline) throw new Error(`ACLs not ${present ? 'granted' : 'revoked'} within 10 s`);
    await sleep(50);
  }
}

export async function grant(admin: Admin, ...grants: Grant[]): Promise<void> {
  await admin.createAcls({ acl: grants.map(entry) });
  await settled(admin, grants, true);
}

export async function revoke(admin: Admin, ...grants: Grant[]): Promise<void> {
  await admin.deleteAcls({ filters: grants.map(entry) });
  await settled(admin, grants, false);
}

/** The ACLs the collector needs: WRITE on the raw topic (idempotent writes need nothing more). */
export const collectorAcls = (user: string, rawTopic: string): Grant[] => [
  { user, resource: 'TOPIC', name: rawTopic, operation: 'WRITE' },
];

/** The ACLs `smmu-fleet aggregate` needs (README "Production Kafka"). */
export function aggregatorAcls(
  user: string,
  t: { raw: string; windows: string; totals: string; checkpoints: string; group: string },
): Grant[] {
  return [
    { user, resource: 'TOPIC', name: t.raw, operation: 'READ' },
    { user, resource: 'TOPIC', name: t.checkpoints, operation: 'READ' },
    { user, resource: 'TOPIC', name: t.checkpoints, operation: 'WRITE' },
    { user, resource: 'TOPIC', name: t.windows, operation: 'WRITE' },
    { user, resource: 'TOPIC', name: t.totals, operation: 'WRITE' },
    { user, resource: 'TOPIC', name: t.checkpoints, operation: 'DESCRIBE_CONFIGS' },
    { user, resource: 'TOPIC', name: t.totals, operation: 'DESCRIBE_CONFIGS' },
    { user, resource: 'GROUP', name: t.group, operation: 'READ', pattern: 'PREFIXED' },
  ];
}
