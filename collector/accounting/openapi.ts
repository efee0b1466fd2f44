// The aggregator's HTTP API as an OpenAPI 3.0 document, served at /v1/openapi.json and kept
// as collector/accounting/openapi.json (`node dist/collector/accounting/openapi.js`
// prints it; a unit test checks that the two agree).
import { withFleetPaths } from './openapi-fleet';

const int = { type: 'integer', minimum: 0 } as const;
const num = { type: 'number' } as const;
const str = { type: 'string' } as const;
const nsString = {
  type: 'string',
  pattern: '^[0-9]+$',
  description: 'ns since the Unix epoch, as a decimal string (beyond 2^53)',
} as const;
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const counts = { type: 'object', additionalProperties: int } as const;
/** Per host and in the summary: what was counted apart, and why. */
const clockAndConflicts = {
  outOfRangeEvents: {
    ...int,
    description:
      "Events with a timestamp before 1970 or more than --max-event-ahead-ms ahead of the collector's clock: in the totals, in no window",
  },
  conflictingBatches: {
    ...int,
    description:
      'Batches that reused a counted (agent_id, epoch, sequence) with other content: not counted (logged as conflicts)',
  },
  conflictingEvents: { ...int, description: 'Events in those batches (not in events)' },
} as const;
const nullNs = {
  type: 'integer',
  nullable: true,
  description: 'Stall time in ns; always null: SMMU event records do not say how long a stall lasted',
} as const;

const q = (name: string, description: string, schema: object = str) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});
const hostQ = q('host', 'Only this host');
const ssidQ = q('ssid', 'Only this SubstreamID (PASID); 0: events without a valid one', {
  type: 'integer',
  minimum: 0,
  maximum: 0xfffff,
});

const ok = (description: string, schema: object) => ({
  200: { description, content: { 'application/json': { schema } } },
  400: { description: 'A parameter is malformed', content: { 'application/json': { schema: ref('Error') } } },
});

const get = (summary: string, description: string, parameters: object[], responses: object) => ({
  get: { summary, description, parameters, responses },
});

export const OPENAPI = withFleetPaths({
  openapi: '3.0.3',
  info: {
    title: 'smmu-fleet aggregator API',
    version: '1',
    description:
      'Fleet IOMMU (Arm SMMUv3) fault accounting, as counted by one `smmu-fleet aggregate` instance: exact totals (replayed batches dropped), 10 s and 1 min event-time windows, hot pages and prefault advice. An instance answers for the raw-topic partitions it holds (see /v1/summary `partitions`); with several instances, query each (their hosts are disjoint) or read the totals topic. Counts are numbers; timestamps in ns are decimal strings.',
  },
  paths: {
    '/v1/summary': get(
      'Fleet summary',
      'Totals over every host of this instance, its partitions and their positions in the raw topic.',
      [],
      ok('Summary', ref('Summary')),
    ),
    '/v1/hosts': get(
      'Per-host totals',
      'One row per host, by name.',
      [],
      ok('Hosts', { type: 'object', properties: { hosts: { type: 'array', items: ref('HostTotals') } } }),
    ),
    '/v1/hosts/{host}': get(
      'One host',
      'The host row with its devices and processes; 404 when the host is not in this instance.',
      [{ name: 'host', in: 'path', required: true, schema: str }],
      {
        ...ok('Host', {
          type: 'object',
          properties: {
            host: ref('HostTotals'),
            devices: { type: 'array', items: ref('Device') },
            processes: { type: 'array', items: ref('Process') },
          },
        }),
        404: { description: 'Unknown host', content: { 'application/json': { schema: ref('Error') } } },
      },
    ),
    '/v1/devices': get(
      'Per-device totals',
      'One row per host x SMMU x StreamID, most events first.',
      [hostQ],
      ok('Devices', { type: 'object', properties: { devices: { type: 'array', items: ref('Device') } } }),
    ),
    '/v1/processes': get(
      'Per-process totals',
      'One row per host x SSID (process), most events first, with the event rate of the host`s last closed 10 s window.',
      [hostQ],
      ok('Processes', {
        type: 'object',
        properties: { processes: { type: 'array', items: ref('Process') } },
      }),
    ),
    '/v1/series': get(
      'Per-series totals',
      'One row per host x SMMU x StreamID x SSID, most events first.',
      [
        hostQ,
        q('smmu', 'Only this SMMU'),
        q('streamId', 'Only this StreamID', { type: 'integer', minimum: 0 }),
        ssidQ,
      ],
      ok('Series', { type: 'object', properties: { series: { type: 'array', items: ref('SeriesTotals') } } }),
    ),
    '/v1/windows': get(
      'Time series of windows',
      'Tumbling windows by event time, oldest first: host windows, or series windows when smmu, streamId or ssid is given. Closed windows come from memory (the last `--window-history` of them since this instance took the partition; the windows topic has all); open windows (closed=false) are still counting.',
      [
        q('width', 'Window width', { type: 'string', enum: ['10s', '1m'], default: '10s' }),
        hostQ,
        q('smmu', 'Only this SMMU (series windows)'),
        q('streamId', 'Only this StreamID (series windows)', { type: 'integer', minimum: 0 }),
        { ...ssidQ, description: 'Only this SSID (series windows)' },
        q('since', 'Only windows starting at or after this time (ns since the Unix epoch)', nsString),
        q('open', 'Include open windows', { type: 'boolean', default: true }),
        q('limit', 'At most this many (the newest)', { type: 'integer', minimum: 1, default: 1000 }),
      ],
      ok('Windows', {
        type: 'object',
        properties: { width: str, windows: { type: 'array', items: ref('Window') } },
      }),
    ),
    '/v1/hotpages': get(
      'Hot faulting pages per process',
      'The pages with the most page faults of each (host, SSID), from a Space-Saving sketch: faults - error <= true faults <= faults.',
      [hostQ, ssidQ, q('limit', 'Pages per process', { type: 'integer', minimum: 1, default: 16 })],
      ok('Hot pages', {
        type: 'object',
        properties: { processes: { type: 'array', items: ref('HotPages') } },
      }),
    ),
    '/v1/advice': get(
      'Prefault advice',
      'Per process, the address ranges worth populating (MAP_POPULATE, MADV_POPULATE_READ/WRITE) and the faults and stalls that would have been saved; largest saving first.',
      [
        hostQ,
        ssidQ,
        q('minFaults', 'A page qualifies with at least this many guaranteed faults', {
          type: 'integer',
          minimum: 1,
        }),
        q('gapPages', 'Most non-hot pages between two hot pages of one range (default 0: adjacent only)', {
          type: 'integer',
          minimum: 0,
        }),
      ],
      ok('Advice', { type: 'object', properties: { advice: { type: 'array', items: ref('Advice') } } }),
    ),
    '/v1/openapi.json': get('This document', 'The OpenAPI description of this API.', [], {
      200: {
        description: 'OpenAPI 3.0 document',
        content: { 'application/json': { schema: { type: 'object' } } },
      },
    }),
  },
  components: {
    schemas: {
      Error: { type: 'object', properties: { error: str }, required: ['error'] },
      Kinds: {
        type: 'object',
        description:
          'Events by fault kind: translation (F_TRANSLATION), access (F_ACCESS), permission (F_PERMISSION), other (every other event ID)',
        properties: { translation: int, access: int, permission: int, other: int },
        required: ['translation', 'access', 'permission', 'other'],
      },
      Summary: {
        type: 'object',
        properties: {
          hosts: int,
          series: int,
          batches: int,
          events: int,
          kinds: ref('Kinds'),
          stalls: { ...int, description: 'Events with STALL=1' },
          stallTimeNs: nullNs,
          lost: {
            ...counts,
            description:
              'Events the agents reported lost, by LossReason name (values this version does not know: LOSS_REASON_UNKNOWN_<value>)',
          },
          lostEvents: int,
          replayedBatches: { ...int, description: 'Batches dropped as replays of counted ones' },
          late: {
            ...counts,
            description: 'Events that arrived after their window closed, by width (10s, 1m)',
          },
          ...clockAndConflicts,
          malformedMessages: int,
          skippedOffsets: {
            ...int,
            description: 'Raw offsets this instance found deleted (retention) before they were counted',
          },
          checkpointIntervalMs: int,
          windowGraceMs: int,
          assignedPartitions: {
            type: 'array',
            items: int,
            description: 'Raw-topic partitions the consumer group assigned to this instance',
          },
          partitions: {
            type: 'array',
            description: 'Partitions whose state this instance holds (assigned and read at least once)',
            items: {
              type: 'object',
              properties: {
                partition: int,
                nextOffset: { ...int, description: 'Next raw offset to count' },
                checkpointedOffset: {
                  type: 'integer',
                  description: 'Raw offset the last checkpoint of this instance covers up to; -1: none yet',
                },
                highWatermark: int,
                lag: int,
              },
            },
          },
        },
      },
      HostTotals: {
        type: 'object',
        properties: {
          host: str,
          batches: int,
          events: int,
          kinds: ref('Kinds'),
          stalls: int,
          lost: counts,
          lostEvents: int,
          replayedBatches: int,
          late: counts,
          ...clockAndConflicts,
          firstEventUnixNs: nsString,
          lastEventUnixNs: nsString,
          series: int,
        },
      },
      SeriesTotals: {
        type: 'object',
        properties: {
          host: str,
          smmu: str,
          streamId: int,
          ssid: int,
          events: int,
          kinds: ref('Kinds'),
          stalls: int,
          stallsByKind: ref('Kinds'),
          stallTimeNs: nullNs,
          otherEvents: { ...counts, description: 'Events of kind other by event name, e.g. C_BAD_STE' },
          lastEventUnixNs: nsString,
        },
      },
      Device: {
        type: 'object',
        properties: {
          host: str,
          smmu: str,
          streamId: int,
          events: int,
          kinds: ref('Kinds'),
          stalls: int,
          processes: int,
        },
      },
      Process: {
        type: 'object',
        properties: {
          host: str,
          ssid: int,
          events: int,
          kinds: ref('Kinds'),
          stalls: int,
          devices: int,
          eventsPerSec: { ...num, nullable: true, description: 'In the host`s last closed 10 s window' },
        },
      },
      Window: {
        type: 'object',
        properties: {
          host: str,
          smmu: str,
          streamId: int,
          ssid: int,
          width: { type: 'string', enum: ['10s', '1m'] },
          startUnixNs: nsString,
          start: { type: 'string', format: 'date-time' },
          closed: { type: 'boolean' },
          events: int,
          eventsPerSec: num,
          kinds: ref('Kinds'),
          stalls: int,
          stallsByKind: ref('Kinds'),
          stallTimeNs: nullNs,
          otherEvents: counts,
          batches: { ...int, description: 'Host windows: batches attributed to the window' },
          lost: counts,
          lostEvents: int,
          series: { ...int, description: 'Host windows: series with events' },
        },
      },
      HotPage: {
        type: 'object',
        properties: {
          page: int,
          address: { type: 'string', description: 'hex' },
          faults: int,
          error: int,
          guaranteed: int,
          stalls: int,
          translation: int,
          access: int,
          permission: int,
        },
      },
      HotPages: {
        type: 'object',
        properties: {
          host: str,
          ssid: int,
          hotPageShift: int,
          faults: int,
          slots: int,
          pages: { type: 'array', items: ref('HotPage') },
        },
      },
      AdviceRange: {
        type: 'object',
        properties: {
          start: { type: 'string', description: 'hex address' },
          end: { type: 'string', description: 'hex address, exclusive' },
          bytes: int,
          startPage: int,
          endPage: int,
          hotPages: int,
          faults: int,
          guaranteedFaults: int,
          stalls: int,
          translation: int,
          access: int,
          permission: int,
          populate: {
            type: 'string',
            enum: ['read', 'write'],
            description: 'write: MADV_POPULATE_WRITE (permission faults seen); read: MADV_POPULATE_READ',
          },
          faultsPerSec: { ...num, nullable: true },
          stallTimeNs: nullNs,
        },
      },
      Advice: {
        type: 'object',
        properties: {
          host: str,
          ssid: int,
          hotPageShift: int,
          observedSeconds: num,
          faults: int,
          savedFaults: int,
          savedGuaranteedFaults: int,
          savedStalls: int,
          ranges: { type: 'array', items: ref('AdviceRange') },
        },
      },
    },
  },
});

if (require.main === module) process.stdout.write(`${JSON.stringify(OPENAPI, null, 2)}\n`);
