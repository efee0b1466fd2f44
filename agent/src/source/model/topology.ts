// The simulated host: SMMU instances, the devices (StreamIDs) behind them, processes
// (PASIDs) and their SVA bindings and mappings.
import type { ModelConfig } from './config';
import type { Rng } from './rng';

export interface ModelSmmu {
  index: number;
  /** Kernel dev_name of the SMMU platform device. */
  name: string;
}

export interface ModelDevice {
  index: number;
  smmu: number;
  /** StreamID: the PCI requester ID (bus << 8 | device << 3 | function) behind that SMMU. */
  sid: number;
  /** PCI address, used as the client name in kernel-style dumps. */
  name: string;
  /** Uses the stall model: faults stall (STALL=1, stall tag) until resumed. */
  stall: boolean;
}

export interface ModelMapping {
  /** Index within the process. */
  index: number;
  /** Index in the model's page array / mapping tables. */
  global: number;
  /** First page number (VA >> pageShift). */
  basePage: number;
  /** Virtual address of the first byte. */
  va: bigint;
  pages: number;
  /** Pages are prefaulted (MAP_POPULATE) whenever the mapping is (re)created. */
  prefault: boolean;
}

export interface ModelProcess {
  index: number;
  /** SubstreamID of its SVA bonds (mm->pasid). */
  pasid: number;
  /** Devices bound to its address space. */
  devices: number[];
  mappings: ModelMapping[];
}

export interface ModelBinding {
  device: number;
  process: number;
}

export interface Topology {
  smmus: ModelSmmu[];
  devices: ModelDevice[];
  processes: ModelProcess[];
  bindings: ModelBinding[];
}

/** arm64 48-bit user VA: mmap() places regions below 2^48. */
const MMAP_TOP_PAGE_4K = 2 ** 36;
/** Unmapped guard pages between two mappings of a process. */
const GAP_PAGES = 16;

export function buildTopology(c: ModelConfig, rng: Rng): Topology {
  const t = c.topology;
  const m = c.memory;
  const smmus: ModelSmmu[] = [];
  for (let i = 0; i < t.smmus; i++) smmus.push({ index: i, name: `arm-smmu-v3.${i}.auto` });

  const nDevices = t.smmus * t.devicesPerSmmu;
  // Exactly round(fraction x n) stall devices, chosen by a seeded shuffle.
  const order = Array.from({ length: nDevices }, (_, i) => i);
  for (let i = nDevices - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const stalls = new Set(order.slice(0, Math.round(t.stallDeviceFraction * nDevices)));
  const devices: ModelDevice[] = [];
  for (let s = 0; s < t.smmus; s++) {
    for (let k = 0; k < t.devicesPerSmmu; k++) {
      const index = devices.length;
      const bus = 1 + (k >> 5);
      const dev = k & 31;
      devices.push({
        index,
        smmu: s,
        sid: (bus << 8) | (dev << 3),
        name: `${s.toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}:${dev.toString(16).padStart(2, '0')}.0`,
        stall: stalls.has(index),
      });
    }
  }

  const pageScale = 2 ** (m.pageShift - 12);
  const span = m.mappingsPerProcess * (m.mappingPages + GAP_PAGES);
  const processes: ModelProcess[] = [];
  const bindings: ModelBinding[] = [];
  for (let p = 0; p < t.processes; p++) {
    // A per-process base in the upper half of the mmap area, below 2^48.
    const top = Math.floor(MMAP_TOP_PAGE_4K / pageScale);
    const basePage = top / 2 + rng.int(top / 2 - span - 1);
    const mappings: ModelMapping[] = [];
    for (let i = 0; i < m.mappingsPerProcess; i++) {
      const page = basePage + i * (m.mappingPages + GAP_PAGES);
      mappings.push({
        index: i,
        global: p * m.mappingsPerProcess + i,
        basePage: page,
        va: BigInt(page) << BigInt(m.pageShift),
        pages: m.mappingPages,
        prefault: m.prefault,
      });
    }
    for (const o of m.prefaultOverrides) {
      if (o.process !== p) continue;
      for (const mp of mappings)
        if (o.mapping === undefined || o.mapping === mp.index) mp.prefault = o.prefault;
    }
    const devs: number[] = [];
    for (let k = 0; k < t.devicesPerProcess; k++) devs.push((p * t.devicesPerProcess + k) % nDevices);
    for (const d of devs) bindings.push({ device: d, process: p });
    processes.push({ index: p, pasid: t.firstPasid + p, devices: devs, mappings });
  }
  return { smmus, devices, processes, bindings };
}
