// The fleet page: picks the view from the URL, refreshes it every few seconds without reloading
// (polling the JSON API), follows links without reloading (history API), and answers keys:
// u = up one level, p = pause/resume live update.
import { ApiError } from './api.js';
import { h } from './dom.js';
import { clock } from './format.js';
import { hostView } from './host.js';
import { overview } from './overview.js';
import { deviceView, processView } from './process.js';
import { href, readState, type State, up } from './state.js';

const REFRESH_MS = 2000;
const main = document.getElementById('main')!;
const live = document.getElementById('live')!;
const pause = document.getElementById('pause') as HTMLButtonElement;
let state = readState(location.search);
let paused = false;
let timer: number | undefined;
let generation = 0;
let updates = 0;

function view(s: State): Promise<HTMLElement[]> {
  if (s.host === undefined) return overview(s);
  const host = s.host;
  if (s.ssid !== undefined) return processView({ ...s, host, ssid: s.ssid });
  if (s.smmu !== undefined && s.sid !== undefined)
    return deviceView({ ...s, host, smmu: s.smmu, sid: s.sid });
  return hostView({ ...s, host });
}

function title(s: State): string {
  const where = s.ssid
    ? `${s.host} SSID ${s.ssid}`
    : s.sid
      ? `${s.host} ${s.smmu} ${s.sid}`
      : (s.host ?? 'fleet');
  return `smmu-fleet: ${where}`;
}

function problem(err: Error): HTMLElement[] {
  const status = err instanceof ApiError ? err.status : 0;
  const what = status === 404 ? 'Not found' : status === 400 ? 'Bad link' : 'The API did not answer';
  return [
    h(
      'div',
      { class: 'error', role: 'alert', id: 'problem' },
      h('h1', {}, what),
      h('p', {}, err.message),
      h('p', {}, h('a', { href: href({ width: state.width }), 'data-nav': '' }, 'Back to the whole fleet')),
    ),
  ];
}

/** Re-renders in place; focus stays on the element with the same id or link target. */
async function render(): Promise<void> {
  const mine = ++generation;
  clearTimeout(timer);
  let nodes: HTMLElement[];
  let ok = true;
  try {
    nodes = await view(state);
  } catch (err) {
    nodes = problem(err as Error);
    ok = false;
  }
  if (mine !== generation) return;
  const active = document.activeElement as HTMLElement | null;
  const key =
    active && main.contains(active)
      ? active.id
        ? `#${CSS.escape(active.id)}`
        : active.getAttribute('href')
      : null;
  main.replaceChildren(...nodes);
  if (key) {
    const again = key.startsWith('#')
      ? main.querySelector<HTMLElement>(key)
      : main.querySelector<HTMLElement>(`[href="${CSS.escape(key)}"]`);
    again?.focus();
  }
  document.title = title(state);
  document.body.dataset.view = ok
    ? state.ssid
      ? 'process'
      : state.sid
        ? 'device'
        : state.host
          ? 'host'
          : 'overview'
    : 'problem';
  document.body.dataset.updates = String(++updates);
  live.textContent = paused ? `paused at ${clock(Date.now())}` : `live · updated ${clock(Date.now())}`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#widths a')) {
    const w = a.dataset.width!;
    a.href = href({ ...state, width: w });
    if (w === state.width) a.setAttribute('aria-current', 'true');
    else a.removeAttribute('aria-current');
  }
  if (!paused) timer = window.setTimeout(render, REFRESH_MS);
}

function go(s: State, push = true): void {
  state = s;
  if (push) history.pushState(null, '', href(s));
  window.scrollTo(0, 0);
  main.focus();
  void render();
}

document.addEventListener('click', (e) => {
  const a = (e.target as Element).closest?.('a[data-nav]') as HTMLAnchorElement | null;
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  go(readState(new URL(a.href).search));
});
window.addEventListener('popstate', () => go(readState(location.search), false));
pause.addEventListener('click', () => {
  paused = !paused;
  pause.textContent = paused ? 'Resume live update' : 'Pause live update';
  pause.setAttribute('aria-pressed', String(paused));
  void render();
});
document.addEventListener('keydown', (e) => {
  const t = e.target as HTMLElement;
  if (e.ctrlKey || e.metaKey || e.altKey || t.tagName === 'TEXTAREA' || t.tagName === 'INPUT') return;
  if (e.key === 'u' && state.host !== undefined) go(up(state));
  else if (e.key === 'p') pause.click();
});
void render();
