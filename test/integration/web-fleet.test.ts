// The fleet web page in a real browser (Debian's chromium, headless, via playwright-core)
// against two real aggregator instances (one consumer group, each holding half of the raw
// partitions, each told of the other with --fleet-peers) fed by real model agents through a
// real collector and Kafka. The numbers on the page must equal the API's; both instances must
// show the same fleet; drill-down, keyboard, live update and the error messages must work.
// Screenshots of every view go to test-results/screenshots/ (printed).
/// <reference lib="dom" />
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { freePort, type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { type Browser, launchChromium } from '../support/browser';
import { repoRoot } from '../support/paths';
import { agentProc, Proc } from '../support/processes';

/** Events each model agent reads before it stops (the prefaulting one faults less per DMA touch). */
const MAX_EVENTS: Record<string, number> = { 'node-a': 16_000, 'node-b': 16_000, 'node-c-prefault': 8_000 };
const HOSTS = Object.keys(MAX_EVENTS);
const SHOTS = join(repoRoot(), 'test-results', 'screenshots');
const run = Date.now();
const topic = (t: string) => `smmu-fleet.web-test.${run}.${t}`;

let broker: KafkaBroker;
let stateDir: string | undefined;
let browser: Browser;
const procs: Proc[] = [];
const api: string[] = [];
let collectorAddress = '';

async function getJson<T = Record<string, unknown>>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await f().catch((err) => {
      last = err;
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${String(last)}`);
    await sleep(250);
  }
}

const digits = (s: string | null) => (s ?? '').replace(/,/g, '').trim();

async function shot(page: Page, name: string): Promise<void> {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

/** Waits for the page's next render (it counts them in body[data-updates]). */
async function nextRender(page: Page, view: string): Promise<void> {
  const n = Number((await page.getAttribute('body', 'data-updates')) ?? 0);
  await page.waitForFunction(
    ([n, view]) =>
      Number(document.body.dataset.updates ?? 0) > Number(n) && document.body.dataset.view === view,
    [n, view] as const,
    { timeout: 15_000 },
  );
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  broker = await startKafka();
  const brokers = broker.brokers.join(',');
  const ports = [await freePort(), await freePort()];
  const grpc = await freePort();
  collectorAddress = `127.0.0.1:${grpc}`;
  ports.forEach((p, i) => {
    api.push(`http://127.0.0.1:${p}`);
    procs.push(
      new Proc(`aggregator-${i}`, 'collector/accounting/cli.js', [
        'aggregate',
        ...['--kafka-brokers', brokers, '--group-id', `web-test-${run}`, '--topic-partitions', '4'],
        ...[
          '--raw-topic',
          topic('raw'),
          '--windows-topic',
          topic('windows'),
          '--totals-topic',
          topic('totals'),
        ],
        ...[
          '--checkpoint-topic',
          topic('checkpoints'),
          '--checkpoint-interval-ms',
          '1000',
          '--window-grace-ms',
          '1000',
        ],
        ...['--http-listen', `127.0.0.1:${p}`, '--fleet-peers', `http://127.0.0.1:${ports[1 - i]}`],
      ]),
    );
  });
  await Promise.all(procs.map((p) => p.waitForLog(/aggregator ready/, 60_000)));
  // Agents first: the collector is not up yet, so node-b's small spool overflows and its agent
  // reports those events lost (spool full); the others keep everything until it is.
  const agent = (host: string, args: string[]) =>
    agentProc(host, {
      collector: `127.0.0.1:${grpc}`,
      host,
      args: ['--max-events', String(MAX_EVENTS[host]), '--backoff-max-ms', '300', ...args],
    });
  stateDir = mkdtempSync(join(tmpdir(), 'web-fleet-'));
  const nodeB = agent('node-b', [
    ...['--seed', '12', '--rate', '2000', '--spool-budget-bytes', '8000', '--state-dir', stateDir],
  ]);
  procs.push(
    agent('node-a', ['--seed', '11', '--rate', '2000']),
    nodeB,
    agent('node-c-prefault', ['--seed', '13', '--model-pace', 'work', '--prefault', '--rate', '6000']),
  );
  // The collector starts once node-b's spool has overflowed, however fast this machine is.
  await nodeB.waitForLog(/spool full/, 60_000);
  const collector = new Proc('collector', 'collector/ingest/cli.js', [
    ...['--listen', `127.0.0.1:${grpc}`, '--http-listen', '', '--kafka-brokers', brokers],
    ...['--raw-topic', topic('raw'), '--topic-partitions', '4'],
  ]);
  procs.push(collector);
  await collector.waitForLog(/collector ready/);
  browser = await launchChromium();
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write']);
});

after(async () => {
  await browser?.close();
  for (const p of procs.reverse()) await p.kill('SIGKILL');
  await broker?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

interface HostRow {
  host: string;
  events: number;
  lostEvents: number;
  lost: Record<string, number>;
  kinds: Record<string, number>;
}

/** Host rows once every agent's events arrived (stable): node-a and node-c lose nothing, node-b's losses are in. */
async function settled(): Promise<HostRow[]> {
  let previous = '';
  return until(
    'all agents counted',
    async () => {
      const { body } = await getJson<{ hosts: HostRow[] }>(`${api[0]}/v1/fleet/hosts`);
      const row = (h: string) => body.hosts.find((r) => r.host === h);
      const exact = ['node-a', 'node-c-prefault'].every(
        (h) => row(h)?.events === MAX_EVENTS[h] && row(h)?.lostEvents === 0,
      );
      const b = row('node-b');
      const now = JSON.stringify(body.hosts);
      const stable = now === previous;
      previous = now;
      if (exact && b && b.events + b.lostEvents >= MAX_EVENTS['node-b'] && stable) return body.hosts;
      const parts = await Promise.all(
        api.map((u) => getJson(`${u}/v1/summary`).then((r) => JSON.stringify(r.body.partitions))),
      );
      throw new Error(
        `${body.hosts.map((r) => `${r.host}: ${r.events} + ${r.lostEvents} lost`).join(', ')}; partitions: ${parts.join(' | ')}`,
      );
    },
    60_000,
  ).catch((err) => {
    for (const p of procs) console.log(`${p.name}:\n${p.tail(8)}`);
    throw err;
  });
}

test('every event is counted or lost, and each instance answers for the whole fleet', async () => {
  const hosts = await settled();
  const b = hosts.find((h) => h.host === 'node-b')!;
  assert.ok(
    b.lost.LOSS_REASON_SPOOL_FULL > 0,
    `node-b should report spool-full losses: ${JSON.stringify(b)}`,
  );
  assert.equal(
    b.events + b.lostEvents,
    MAX_EVENTS['node-b'],
    'node-b: every event read is counted or lost, once',
  );
  assert.equal(hosts.find((h) => h.host === 'node-c-prefault')!.kinds.translation, 0);
  // The instances' own answers are disjoint and together the fleet's.
  const own = await Promise.all(api.map((u) => getJson<{ hosts: HostRow[] }>(`${u}/v1/hosts`)));
  const names = own.map((o) => o.body.hosts.map((h) => h.host));
  console.log(`hosts per instance: ${JSON.stringify(names)}`);
  assert.deepEqual(names.flat().sort(), [...HOSTS].sort());
  // The windows (the page's charts) hold every counted event but the late ones, on either
  // instance, once the windows closed meanwhile are published (about a checkpoint interval).
  await until(
    'windows holding every event',
    async () => {
      const { windows } = (
        await getJson<{ windows: Array<{ host: string; events: number }> }>(
          `${api[1]}/v1/fleet/windows?width=10s`,
        )
      ).body;
      const off = hosts
        .map((h) => ({ h, w: windows.filter((w) => w.host === h.host).reduce((s, w) => s + w.events, 0) }))
        .filter(({ h, w }) => w + (h as HostRow & { late: Record<string, number> }).late['10s'] !== h.events);
      if (off.length === 0) return true;
      throw new Error(off.map(({ h, w }) => `${h.host}: ${w} in windows, ${h.events} counted`).join('; '));
    },
    20_000,
  );
  const other = await getJson<{ hosts: HostRow[] }>(`${api[1]}/v1/fleet/hosts`);
  const byName = (r: HostRow[]) => [...r].sort((x, y) => (x.host < y.host ? -1 : 1));
  assert.deepEqual(byName(other.body.hosts), byName(hosts));
});

test('the API rejects malformed parameters with 400 and names them', async () => {
  for (const [path, param] of [
    ['/v1/fleet/windows?width=5s', 'width'],
    ['/v1/fleet/series?streamId=-1', 'streamId'],
    ['/v1/fleet/hotpages?ssid=abc', 'ssid'],
    ['/v1/fleet/advice?minFaults=0', 'minFaults'],
    ['/v1/fleet/windows?since=yesterday', 'since'],
    ['/v1/series?ssid=0x', 'ssid'],
  ]) {
    const r = await getJson<{ error: string }>(`${api[0]}${path}`);
    assert.equal(r.status, 400, path);
    assert.match(r.body.error, new RegExp(`^parameter ${param}:`), path);
  }
  const unknown = await getJson<{ error: string }>(`${api[0]}/v1/fleet/hosts/no-such-host`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error, 'no host "no-such-host" in the fleet (2 of 2 instances answered)');
});

test('overview: the numbers on both instances’ pages equal the fleet API', async () => {
  const sum = (
    await getJson<Record<string, unknown> & { kinds: Record<string, number> }>(`${api[0]}/v1/fleet/summary`)
  ).body;
  const { hosts } = (await getJson<{ hosts: HostRow[] }>(`${api[0]}/v1/fleet/hosts`)).body;
  const pages: Page[] = [];
  for (const [i, base] of api.entries()) {
    const page = await browser.context.newPage();
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-view="overview"]');
    const card = (k: string) => page.textContent(`.cards dd[data-k="${k}"]`).then(digits);
    assert.equal(await card('hosts'), '3');
    assert.equal(await card('events'), String(sum.events));
    for (const k of ['translation', 'access', 'permission', 'other'])
      assert.equal(await card(k), String(sum.kinds[k]));
    assert.equal(await card('stalls'), String(sum.stalls));
    assert.equal(await card('lost events'), String(sum.lostEvents));
    for (const h of hosts) {
      const row = page.locator('#hosts tbody tr', { hasText: h.host });
      assert.equal(digits(await row.locator('td[data-k="events"]').textContent()), String(h.events));
      assert.equal(digits(await row.locator('td[data-k="lostEvents"]').textContent()), String(h.lostEvents));
      for (const [reason, n] of Object.entries(h.lost)) {
        const lost = page.locator('#lost tbody tr', { hasText: h.host }).filter({
          hasText: reason.replace('LOSS_REASON_', '').toLowerCase().replace(/_/g, ' '),
        });
        assert.equal(digits(await lost.locator('td[data-k="lost"]').textContent()), String(n));
      }
    }
    assert.match(
      (await page.textContent('#hosts tbody')) ?? '',
      /node-c-prefault.*prefaulted: no translation faults/,
    );
    await shot(page, `overview-instance-${i}`);
    pages.push(page);
  }
  // Both pages refresh every 2 s; once a window closes between their renders they differ for
  // one refresh, so they must agree within a few.
  const text = (p: Page) =>
    // biome-ignore lint/performance/useDomNodeTextContent: Page.innerText is the browser driver's call, and the rendered text is what both pages must agree on
    Promise.all(['.cards', '#hosts', '#lost'].map((sel) => p.innerText(sel))).then((t) => t.join('\n'));
  await until(
    'both instances show the same fleet',
    async () => {
      const last = await Promise.all(pages.map(text));
      if (last[0] === last[1]) return true;
      throw new Error(`instance 0:\n${last[0]}\ninstance 1:\n${last[1]}`);
    },
    15_000,
  );
  for (const p of pages) await p.close();
});

test('drill-down host -> device -> process with the keyboard, hot pages and advice', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${api[1]}/`);
  await page.waitForSelector('body[data-view="overview"]');
  await page.focus('a[href="?host=node-a"]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-view="host"]');
  assert.equal(new URL(page.url()).search, '?host=node-a');
  const host = (
    await getJson<{ devices: Array<{ smmu: string; streamId: number; events: number }> }>(
      `${api[0]}/v1/fleet/hosts/node-a`,
    )
  ).body;
  const rows = page.locator('#devices tbody tr');
  assert.equal(await rows.count(), host.devices.length);
  for (const [i, d] of host.devices.entries())
    assert.equal(digits(await rows.nth(i).locator('td[data-k="events"]').textContent()), String(d.events));
  await shot(page, 'host');

  const d = host.devices[0];
  await rows.first().locator('a').click();
  await page.waitForSelector('body[data-view="device"]');
  assert.equal(
    new URL(page.url()).search,
    `?host=node-a&smmu=${encodeURIComponent(d.smmu)}&sid=${d.streamId}`,
  );
  const series = (
    await getJson<{ series: Array<{ ssid: number; events: number }> }>(
      `${api[0]}/v1/fleet/series?host=node-a&smmu=${encodeURIComponent(d.smmu)}&streamId=${d.streamId}`,
    )
  ).body.series;
  const srows = page.locator('#series tbody tr');
  assert.equal(await srows.count(), series.length);
  assert.equal(
    digits(await srows.first().locator('td[data-k="events"]').textContent()),
    String(series[0].events),
  );
  await shot(page, 'device');
  await page.keyboard.press('u');
  await page.waitForSelector('body[data-view="host"]');

  const procs = (
    await getJson<{ processes: Array<{ ssid: number; events: number }> }>(
      `${api[0]}/v1/fleet/processes?host=node-a`,
    )
  ).body.processes;
  const top = procs[0];
  await page.click(`#processes a[href="?host=node-a&ssid=${top.ssid}"]`);
  await page.waitForSelector('body[data-view="process"]');
  const hot = (
    await getJson<{ processes: Array<{ pages: unknown[] }> }>(
      `${api[0]}/v1/fleet/hotpages?host=node-a&ssid=${top.ssid}&limit=128`,
    )
  ).body;
  assert.equal(await page.locator('.addrmap rect.page').count(), hot.processes[0].pages.length);
  const adv = (
    await getJson<{ advice: Array<{ savedFaults: number; ranges: Array<{ start: string }> }> }>(
      `${api[0]}/v1/fleet/advice?host=node-a&ssid=${top.ssid}`,
    )
  ).body.advice;
  assert.equal(adv.length, 1, 'the busiest process has pages worth populating');
  assert.equal(await page.locator('#ranges tbody tr').count(), adv[0].ranges.length);
  const hint = await page.inputValue('#hint');
  assert.match(
    hint,
    new RegExp(
      `madvise\\(\\(void \\*\\)${adv[0].ranges[0].start}, 0x[0-9a-f]+, MADV_POPULATE_(READ|WRITE)\\)`,
    ),
  );
  assert.match(hint, /MAP_POPULATE/);
  await page.focus('#copy-hint');
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    () => document.querySelector('#advice ~ .hint [role=status]')?.textContent === 'copied',
  );
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), hint);
  await shot(page, 'process');
  await page.goBack();
  await page.waitForSelector('body[data-view="host"]');
  await page.close();
});

test('unknown host or process in the URL, or a malformed one, gives a clear message', async () => {
  const page = await browser.context.newPage();
  for (const [search, message] of [
    ['?host=nope', 'no host "nope" in the fleet (2 of 2 instances answered)'],
    ['?host=node-a&ssid=999', 'no process with SSID 999 on host "node-a" in the fleet'],
    ['?host=node-a&ssid=abc', 'parameter ssid: expected an integer in 0..1048575, got "abc"'],
    ['?host=node-a&smmu=smmu9&sid=1', 'no device smmu9 StreamID 1 on host "node-a" in the fleet'],
  ]) {
    await page.goto(`${api[0]}/${search}`);
    await page.waitForSelector('body[data-view="problem"]');
    assert.equal(await page.textContent('#problem p'), message, search);
  }
  await shot(page, 'not-found');
  await page.close();
});

test('the page updates live without reloading, and reads in a narrow window', async () => {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 380, height: 800 });
  const t0 = Date.now();
  const shipped = new Map<string, number>();
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/v1/')) void r.body().then((b) => shipped.set(u.pathname, b.length));
  });
  await page.goto(`${api[0]}/`);
  await page.waitForSelector('body[data-view="overview"]');
  const loadMs = Date.now() - t0;
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    return { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd };
  });
  const onDisk = readdirSync(join(repoRoot(), 'dist/collector/accounting/web')).reduce(
    (s, f) => s + statSync(join(repoRoot(), 'dist/collector/accounting/web', f)).size,
    0,
  );
  console.log(
    `page: ${[...shipped.values()].reduce((a, b) => a + b, 0)} bytes shipped in ${shipped.size} files (${onDisk} bytes built); ` +
      `first data rendered ${loadMs} ms after navigation start; DOMContentLoaded ${nav.domContentLoaded.toFixed(0)} ms, load ${nav.load.toFixed(0)} ms`,
  );
  assert.ok(
    await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'no sideways scrolling of the page at 380 px (wide tables scroll in their own box)',
  );
  await shot(page, 'overview-narrow');
  await page.evaluate(() => {
    (window as unknown as { marker: number }).marker = 42;
  });
  const before = digits(await page.textContent('.cards dd[data-k="events"]'));
  const late = agentProc('node-d', {
    collector: collectorAddress,
    host: 'node-d',
    args: ['--rate', '1000', '--seed', '14'],
  });
  procs.push(late);
  await page.waitForFunction(
    () => document.querySelector('.cards dd[data-k="hosts"]')?.textContent === '4',
    null,
    {
      timeout: 30_000,
    },
  );
  await nextRender(page, 'overview');
  assert.notEqual(digits(await page.textContent('.cards dd[data-k="events"]')), before);
  assert.ok(await page.locator('#hosts tbody tr', { hasText: 'node-d' }).count());
  assert.equal(
    await page.evaluate(() => (window as unknown as { marker?: number }).marker),
    42,
    'not reloaded',
  );
  await late.kill('SIGKILL');
  await page.close();
});
