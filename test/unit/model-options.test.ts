import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ModelOptions, modelConfigInput, modelSpecs } from '../../agent/src/model-options';
import { resolveModelConfig } from '../../agent/src/source/model';
import { parseOptions } from '../../common/runtime/options';

const program = { name: 'smmu-agent', envPrefix: 'SMMU_AGENT_', summary: '' };
const file = {
  seed: 7,
  rate: 50,
  maxEvents: 9,
  pace: 'work' as const,
  topology: { smmus: 1, devicesPerSmmu: 2, processes: 3, firstPasid: 5 },
  memory: { prefault: true, mappingPages: 64 },
};

function resolved(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const p = parseOptions(program, modelSpecs, argv, env);
  return resolveModelConfig(modelConfigInput(p.options as ModelOptions, p.given, file, 123n));
}

test('--model-config values are not overridden by options left at their defaults', () => {
  const c = resolved([]);
  assert.equal(c.seed, 7);
  assert.equal(c.rate, 50);
  assert.equal(c.maxEvents, 9);
  assert.equal(c.pace, 'work');
  assert.deepEqual(
    [c.topology.smmus, c.topology.devicesPerSmmu, c.topology.processes, c.topology.firstPasid],
    [1, 2, 3, 5],
  );
  assert.equal(c.memory.prefault, true);
  assert.equal(c.memory.mappingPages, 64);
  assert.equal(c.startTimeNs, 123n, 'no start time in the file: the given clock');
});

test('options given by flag or environment win over --model-config', () => {
  const c = resolved(
    ['--seed', 'x', '--rate', '0', '--model-pace', 'events', '--smmus', '4', '--processes', '8'],
    { SMMU_AGENT_MAX_EVENTS: '100', SMMU_AGENT_DEVICES_PER_SMMU: '6', SMMU_AGENT_PREFAULT: 'false' },
  );
  assert.equal(c.seed, 'x');
  assert.equal(c.rate, 0);
  assert.equal(c.maxEvents, 100);
  assert.equal(c.pace, 'events');
  assert.deepEqual([c.topology.smmus, c.topology.devicesPerSmmu, c.topology.processes], [4, 6, 8]);
  assert.equal(c.memory.prefault, false, 'an explicit false wins over the file');
  assert.equal(c.topology.firstPasid, 5, 'what no option covers still comes from the file');
});

test('without --model-config the options and their defaults apply', () => {
  const p = parseOptions(program, modelSpecs, ['--seed', '12'], {});
  const c = resolveModelConfig(modelConfigInput(p.options as ModelOptions, p.given, {}, 5n));
  assert.equal(c.seed, 12, 'a numeric seed is a number');
  assert.equal(c.rate, modelSpecs.rate.default);
  assert.equal(c.pace, 'events');
  assert.equal(c.topology.smmus, modelSpecs.smmus.default);
  assert.equal(c.memory.prefault, false);
  const start = resolveModelConfig(
    modelConfigInput(p.options as ModelOptions, p.given, { startTimeNs: 99n }, 5n),
  );
  assert.equal(start.startTimeNs, 99n, 'the file can fix the start time');
});
