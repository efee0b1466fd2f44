import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerFaultMetrics } from '../../agent/src/metrics';
import { FaultCounters } from '../../agent/src/smmu/counters';
import { EventBlockBuilder } from '../../proto/event-block';

test('local fault counters are exported per device and per PASID with exact values', async () => {
  const b = new EventBlockBuilder();
  // evt0: ID 7:0, SSV 11, SSID 31:12, SID 63:32; evt1 STALL bit 31
  const rec = (id: bigint, sid: bigint, ssid: bigint, stall: boolean) =>
    b.push(1n, 'smmu0', [
      (sid << 32n) | (ssid << 12n) | (1n << 11n) | id,
      stall ? 1n << 31n : 0n,
      0x1000n,
      0n,
    ]);
  rec(0x10n, 5n, 3n, true);
  rec(0x10n, 5n, 3n, true);
  rec(0x12n, 5n, 4n, false);
  rec(0x13n, 6n, 3n, false);
  const counters = new FaultCounters({ stallTime: () => 2_000_000 });
  counters.add(b.finish());
  const registry = new Registry();
  registerFaultMetrics(registry, () => counters.snapshot());
  const text = await registry.metrics();
  const lines = (name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`))
      .sort();
  assert.deepEqual(lines('smmu_agent_device_faults_total'), [
    'smmu_agent_device_faults_total{smmu="smmu0",sid="5",kind="access"} 1',
    'smmu_agent_device_faults_total{smmu="smmu0",sid="5",kind="translation"} 2',
    'smmu_agent_device_faults_total{smmu="smmu0",sid="6",kind="permission"} 1',
  ]);
  assert.deepEqual(lines('smmu_agent_pasid_faults_total'), [
    'smmu_agent_pasid_faults_total{pasid="3",kind="permission"} 1',
    'smmu_agent_pasid_faults_total{pasid="3",kind="translation"} 2',
    'smmu_agent_pasid_faults_total{pasid="4",kind="access"} 1',
  ]);
  assert.deepEqual(lines('smmu_agent_pasid_stalls_total'), ['smmu_agent_pasid_stalls_total{pasid="3"} 2']);
  assert.deepEqual(lines('smmu_agent_pasid_stall_seconds_total'), [
    'smmu_agent_pasid_stall_seconds_total{pasid="3"} 0.004',
  ]);
});
