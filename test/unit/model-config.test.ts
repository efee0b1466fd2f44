import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  defaultModelConfig,
  ModelConfigError,
  type ModelConfigInput,
  resolveModelConfig,
  SmmuModel,
} from '../../agent/src/source/model';

test('defaults resolve, validate and are not modified by overrides', () => {
  const before = JSON.stringify(defaultModelConfig, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  const c = resolveModelConfig({ rate: 5, topology: { smmus: 1 }, rareEvents: { C_BAD_STE: 0.5 } });
  assert.equal(c.rate, 5);
  assert.equal(c.topology.smmus, 1);
  assert.equal(c.topology.devicesPerSmmu, defaultModelConfig.topology.devicesPerSmmu, 'nested objects merge');
  assert.equal(c.rareEvents.C_BAD_STE, 0.5);
  assert.equal(c.rareEvents.F_WALK_EABT, defaultModelConfig.rareEvents.F_WALK_EABT);
  assert.equal(resolveModelConfig({ bursts: null }).bursts, null, 'null switches bursts off');
  assert.equal(
    JSON.stringify(defaultModelConfig, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
    before,
  );
  assert.deepEqual(resolveModelConfig(), defaultModelConfig);
});

test('bad values are rejected with the key and the value in the message', () => {
  const cases: Array<[ModelConfigInput, RegExp]> = [
    [{ rate: -1 }, /^model config: rate must be a number >= 0 and <= 1000000000 \(got -1\)$/],
    [{ rate: Number.NaN }, /rate must be/],
    [{ clockRate: 0 }, /clockRate must be a number > 0/],
    [{ seed: Number.POSITIVE_INFINITY }, /seed must be a finite number or a string/],
    [{ startTimeNs: 5 as unknown as bigint }, /startTimeNs must be a bigint >= 0 \(got 5\)/],
    [{ chunkNs: 1.5e6 + 0.5 }, /chunkNs must be an integer/],
    [{ maxChunkEvents: 0 }, /maxChunkEvents must be an integer >= 1/],
    [{ bursts: { rateMultiplier: 0.5 } }, /bursts\.rateMultiplier must be a number >= 1/],
    [{ topology: { smmus: 0 } }, /topology\.smmus must be an integer >= 1/],
    [
      { topology: { devicesPerProcess: 9 } },
      /topology\.devicesPerProcess must be an integer >= 1 and <= 8 \(got 9\)/,
    ],
    [{ topology: { stallDeviceFraction: 1.5 } }, /topology\.stallDeviceFraction/],
    [{ topology: { firstPasid: 0 } }, /topology\.firstPasid must be an integer >= 1/],
    [{ memory: { pageShift: 13 } }, /memory\.pageShift must be 12, 14 or 16 \(got 13\)/],
    [
      { memory: { initialPages: { old: 0.6, readOnly: 0.6 } } },
      /memory\.initialPages fractions must add up to at most 1/,
    ],
    [{ memory: { mappingPages: 1 << 20, mappingsPerProcess: 1024 } }, /pages; at most 67108864 are modelled/],
    [{ memory: { prefault: 'yes' as unknown as boolean } }, /memory\.prefault must be true or false/],
    [
      { memory: { prefaultOverrides: [{ process: 8, prefault: true }] } },
      /prefaultOverrides\[0\]\.process must be an integer >= 0 and <= 7/,
    ],
    [
      { memory: { prefaultOverrides: [{ process: 0, mapping: 4, prefault: true }] } },
      /prefaultOverrides\[0\]\.mapping/,
    ],
    [
      { workload: { patterns: { sequential: 0, strided: 0, random: 0, hotset: 0 } } },
      /at least one weight must be > 0/,
    ],
    [{ workload: { writeFraction: -0.1 } }, /workload\.writeFraction/],
    [{ workload: { passes: 0 } }, /workload\.passes must be a number > 0/],
    [{ workload: { churn: { remap: 2 } } }, /workload\.churn\.remap/],
    [{ rareEvents: { C_BAD_STE: 0.7, F_UUT: 0.7 } }, /rareEvents probabilities add up to 1\.4/],
    [{ latency: { sigma: -1 } }, /latency\.sigma/],
    [{ latency: { translationNs: 0 } }, /latency\.translationNs must be a number > 0/],
  ];
  for (const [input, message] of cases) {
    assert.throws(
      () => resolveModelConfig(input),
      (e: unknown) => e instanceof ModelConfigError && message.test(e.message),
      JSON.stringify(input, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
    );
  }
});

test('unknown keys are rejected, nested ones with their path', () => {
  const unknown: Array<[unknown, RegExp]> = [
    [{ rat: 5 }, /unknown key rat$/],
    [{ topology: { smmu: 2 } }, /unknown key topology\.smmu$/],
    [{ workload: { patterns: { zigzag: 1 } } }, /unknown key workload\.patterns\.zigzag$/],
    [{ rareEvents: { F_BOGUS: 0.1 } }, /unknown key rareEvents\.F_BOGUS$/],
    [
      { memory: { prefaultOverrides: [{ process: 0, prefault: true, pages: 3 }] } },
      /unknown key memory\.prefaultOverrides\[0\]\.pages/,
    ],
  ];
  for (const [input, message] of unknown) {
    assert.throws(() => resolveModelConfig(input as ModelConfigInput), message);
  }
  assert.throws(
    () => resolveModelConfig([] as unknown as ModelConfigInput),
    /configuration must be an object/,
  );
});

test('the model and its source validate on construction', () => {
  assert.throws(() => new SmmuModel({ rate: -5 }), ModelConfigError);
});
