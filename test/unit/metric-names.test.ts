// Every program's metrics follow one naming scheme: smmu_<program>_..., counters end in
// _total, no word twice in a row (smmu_agent_process_process_...), units spelled out, and
// the aggregator's gauges are read at scrape time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Registry } from 'prom-client';
import { agentMetrics, registerFaultMetrics, registerSpoolMetrics } from '../../agent/src/metrics';
import { emptyStats } from '../../agent/src/spool/spool-settings';
import { aggregatorMetrics } from '../../collector/accounting/metrics';
import { collectorMetrics } from '../../collector/ingest/metrics';

async function metrics(registry: Registry) {
  return (await registry.getMetricsAsJSON()).map((m) => ({
    name: m.name,
    type: String(m.type),
    labels: [...new Set(m.values.flatMap((v) => Object.keys(v.labels)))],
  }));
}

test('metric names: program prefix, _total on counters, no doubled words', async () => {
  const agent = agentMetrics();
  registerFaultMetrics(agent.registry, () => []);
  registerSpoolMetrics(agent.registry, emptyStats);
  const programs: Array<[string, Registry]> = [
    ['smmu_agent_', agent.registry],
    ['smmu_collector_', collectorMetrics().registry],
    [
      'smmu_fleet_aggregator_',
      aggregatorMetrics({ partitionsAssigned: () => 0, seriesHeld: () => 0 }).registry,
    ],
  ];
  for (const [prefix, registry] of programs) {
    const all = await metrics(registry);
    assert.ok(all.length > 20, `${prefix}: default process metrics are there too`);
    for (const m of all) {
      assert.ok(m.name.startsWith(prefix), m.name);
      assert.doesNotMatch(m.name, /(?:^|_)([a-z]+)_\1(?:_|$)/, `${m.name}: a doubled word`);
      if (m.type === 'counter') assert.match(m.name, /_total$/, `${m.name}: counters end in _total`);
      // prom-client's own defaults include gauges like nodejs_active_resources_total.
      else if (!/^(process|nodejs)_/.test(m.name.slice(prefix.length)))
        assert.doesNotMatch(m.name, /_total$/, `${m.name}: only counters end in _total`);
    }
    const names = all.map((m) => m.name);
    assert.ok(names.includes(`${prefix}process_cpu_seconds_total`), `${prefix}process_cpu_seconds_total`);
  }
});

test('the per-process fault metrics are labelled pasid, like their names', async () => {
  const agent = agentMetrics();
  registerFaultMetrics(agent.registry, () => [
    {
      scope: 'substream',
      smmu: null,
      sid: null,
      ssid: 7,
      translation: 1,
      access: 0,
      permission: 0,
      other: 0,
      total: 1,
      stalls: 1,
      stallTimeNs: 5,
    },
  ]);
  const text = await agent.registry.metrics();
  assert.match(text, /^smmu_agent_pasid_faults_total\{pasid="7",kind="translation"\} 1$/m);
  assert.match(text, /^smmu_agent_pasid_stalls_total\{pasid="7"\} 1$/m);
  assert.doesNotMatch(text, /ssid=/);
});

test('the aggregator gauges are computed at scrape, with no API call in between', async () => {
  let parts = 2;
  let series = 10;
  const m = aggregatorMetrics({ partitionsAssigned: () => parts, seriesHeld: () => series });
  const scrape = async () => {
    const t = await m.registry.metrics();
    return [
      Number(/^smmu_fleet_aggregator_partitions_assigned (\d+)$/m.exec(t)?.[1]),
      Number(/^smmu_fleet_aggregator_series (\d+)$/m.exec(t)?.[1]),
    ];
  };
  assert.deepEqual(await scrape(), [2, 10]);
  parts = 3;
  series = 42;
  assert.deepEqual(await scrape(), [3, 42]);
});

test('the durable spool findings are exported with their values', async () => {
  const agent = agentMetrics();
  registerSpoolMetrics(agent.registry, () => ({
    ...emptyStats(),
    corruptRecords: 2,
    replacedRecords: 3,
    droppedBatches: 5,
    failedWrites: 7,
    gapEvents: 110,
  }));
  const text = await agent.registry.metrics();
  for (const line of [
    'smmu_agent_spool_records_damaged_total{found="open"} 2',
    'smmu_agent_spool_records_damaged_total{found="resend"} 3',
    'smmu_agent_spool_batches_dropped_total 5',
    'smmu_agent_spool_writes_failed_total 7',
    'smmu_agent_spool_gap_events_total 110',
  ])
    assert.ok(text.split('\n').includes(line), line);
});
