/**
 * The web view's page: the cluster map (redrawn whenever the server's `cluster` event
 * says it changed), the edges the flows light (from the `flows` events, counted by
 * verdict, red with the reason and the policy when dropped), the life of a packet (the
 * trace drawn as a path across the map, and stage by stage with its rules beside it), the
 * recent flows of an edge on a click, and captures downloaded from any pod or node.
 */
import { drawMap, edgePath, el, layout, traceAnchor, type Layout } from './draw.js';
import type { ClusterMap, FlowEdge, HubFlow, TracedPath } from './types.js';

interface EdgeState {
  readonly key: string;
  readonly from: string;
  readonly to: string;
  readonly counts: Record<string, number>;
  lastVerdict: string;
  /** When the page last saw a flow on it (ms, the page's clock). */
  lastSeen: number;
  dropReason?: string;
  deniedBy?: readonly string[];
}

/** How long an edge stays lit after its last flow. */
const LIT_MS = 4000;
/** Outside addresses shown as clients, newest first. */
const MAX_CLIENTS = 8;

const state = {
  map: undefined as ClusterMap | undefined,
  layout: undefined as Layout | undefined,
  clients: [] as string[],
  edges: new Map<string, EdgeState>(),
  trace: undefined as TracedPath | undefined,
  selectedEdge: undefined as string | undefined,
};

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e as T;
}

const svg = (() => {
  const e = document.querySelector<SVGSVGElement>('svg#map');
  if (e === null) throw new Error('the page has no svg#map');
  return e;
})();

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

// ---- the map -------------------------------------------------------------------------

function render(): void {
  const map = state.map;
  if (map === undefined) return;
  state.layout = layout(map, state.clients);
  drawMap(svg, map, state.layout, state.clients);
  svg.append(el('g', { id: 'edges' }), el('g', { id: 'trace' }));
  drawEdges();
  drawTrace();
  byId('cluster-name').textContent = map.name;
  fillChoices(map);
  document.body.dataset.nodes = String(map.nodes.length);
  document.body.dataset.pods = String(map.nodes.reduce((n, node) => n + node.pods.length, 0));
}

/** The trace form's suggestions: every pod as a source; Services, their names and pods as destinations. */
function fillChoices(map: ClusterMap): void {
  const sources = byId('sources');
  const destinations = byId('destinations');
  const pods = map.nodes.flatMap((n) => n.pods);
  // An outside client: the .100 of the outside network, as the tests and the README use it.
  const outside = map.outside.cidr.replace(/\.\d+\/\d+$/, '.100');
  sources.replaceChildren(...pods.map((p) => h('option', { value: `${p.namespace}/${p.name}` })), h('option', { value: `outside:${outside}` }));
  destinations.replaceChildren(
    ...map.services.flatMap((s) => s.ports.flatMap((p) => [...(s.clusterIP !== undefined ? [h('option', { value: `${s.clusterIP}:${p.port}${p.protocol === 'UDP' ? '/udp' : ''}` }, `${s.namespace}/${s.name}`)] : []), h('option', { value: `${s.name}.${s.namespace}:${p.port}${p.protocol === 'UDP' ? '/udp' : ''}` })])),
    ...pods.map((p) => h('option', { value: `${p.ip}:80` }, `${p.namespace}/${p.name}`)),
  );
}

// ---- flows on edges ------------------------------------------------------------------

function addFlows(flows: readonly HubFlow[]): void {
  const now = Date.now();
  let newClient = false;
  for (const f of flows) {
    for (const e of f.edges) {
      for (const end of [e.from, e.to]) {
        if (end.startsWith('ip:') && !state.clients.includes(end)) {
          state.clients.unshift(end);
          state.clients.length = Math.min(state.clients.length, MAX_CLIENTS);
          newClient = true;
        }
      }
      const s = state.edges.get(e.key) ?? newEdge(e);
      s.counts[f.verdict] = (s.counts[f.verdict] ?? 0) + 1;
      s.lastVerdict = f.verdict;
      // Lit by when the flow happened (µs, the nodes' clock on this machine): the history a fresh page gets is not lit.
      s.lastSeen = Math.max(s.lastSeen, Math.min(now, f.at / 1000));
      if (f.verdict === 'DROPPED') {
        if (f.dropReason !== undefined) s.dropReason = f.dropReason;
        if (f.deniedBy !== undefined) s.deniedBy = f.deniedBy;
      }
      state.edges.set(e.key, s);
    }
  }
  if (newClient) render();
  else scheduleEdges();
}

function newEdge(e: FlowEdge): EdgeState {
  return { key: e.key, from: e.from, to: e.to, counts: {}, lastVerdict: '', lastSeen: 0 };
}

let edgesPending = false;
function scheduleEdges(): void {
  if (edgesPending) return;
  edgesPending = true;
  requestAnimationFrame(() => {
    edgesPending = false;
    drawEdges();
  });
}

function verdictClass(v: string): string {
  return v.toLowerCase().replace(/[^a-z]/g, '');
}

function drawEdges(): void {
  const layer = svg.querySelector('#edges');
  const boxes = state.layout?.boxes;
  if (layer === null || boxes === undefined) return;
  const now = Date.now();
  layer.replaceChildren();
  for (const e of state.edges.values()) {
    const a = boxes.get(e.from);
    const b = boxes.get(e.to);
    if (a === undefined || b === undefined || e.from === e.to) continue;
    const reverse = state.edges.has(`${e.to}>${e.from}`) ? 18 : 0;
    const { d, mid } = edgePath(a, b, 24 + reverse);
    const total = Object.values(e.counts).reduce((n, c) => n + c, 0);
    const drops = e.counts.DROPPED ?? 0;
    const red = e.lastVerdict === 'DROPPED';
    const lit = now - e.lastSeen < LIT_MS;
    const label = red ? `✕ ${drops} dropped: ${e.dropReason ?? 'dropped'}${e.deniedBy !== undefined ? ` (policy ${e.deniedBy.join(', ')})` : ''}` : `${total} flow${total === 1 ? '' : 's'}${drops > 0 ? `, ${drops} dropped` : ''}`;
    const g = el(
      'g',
      { class: `edge verdict-${verdictClass(red ? 'DROPPED' : e.lastVerdict)}${lit ? ' lit' : ''}${state.selectedEdge === e.key ? ' selected' : ''}`, 'data-edge': e.key, 'data-from': e.from, 'data-to': e.to, 'data-count': total, 'data-drops': drops },
      el('title', {}, `${e.from} → ${e.to}: ${Object.entries(e.counts).map(([v, n]) => `${v} ${n}`).join(', ')}`),
      el('path', { d, class: 'edge-line', 'marker-end': 'url(#arrow)' }),
      el('path', { d, class: 'edge-hit' }),
      el('text', { x: mid.x, y: mid.y - 4, class: 'edge-label centred' }, label),
    );
    layer.append(g);
  }
  if (svg.querySelector('defs') === null) {
    svg.prepend(el('defs', {}, el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow-head' }))));
  }
}

async function showEdgeFlows(key: string): Promise<void> {
  state.selectedEdge = key;
  drawEdges();
  const out = byId('flow-lines');
  byId('flows-heading').textContent = `Flows ${key.replace('>', ' → ')}`;
  const res = await fetch(`/api/flows?last=50&edge=${encodeURIComponent(key)}`);
  const body = (await res.json()) as { flows?: HubFlow[]; error?: string };
  if (!res.ok || body.flows === undefined) {
    out.textContent = body.error ?? `HTTP ${res.status}`;
    return;
  }
  out.replaceChildren(...body.flows.map((f) => h('div', { class: `flow-line verdict-${verdictClass(f.verdict)}` }, f.line)));
  if (body.flows.length === 0) out.textContent = 'no flow of this edge is held any more';
}

// ---- the life of a packet ------------------------------------------------------------

async function runTrace(from: string, to: string): Promise<void> {
  const out = byId('trace-result');
  out.replaceChildren(h('p', { class: 'muted' }, 'tracing…'));
  const res = await fetch(`/api/trace?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  const body = (await res.json()) as TracedPath & { error?: string };
  if (!res.ok) {
    state.trace = undefined;
    drawTrace();
    out.replaceChildren(h('p', { class: 'error' }, body.error ?? `HTTP ${res.status}`));
    return;
  }
  state.trace = body;
  const end = body.path[body.path.length - 1];
  // An outside address the trace reaches (or starts from) is drawn among the clients.
  const outside = body.path.filter((id) => id.startsWith('ip:') && !state.clients.includes(id));
  if (outside.length > 0) {
    state.clients.unshift(...outside);
    state.clients.length = Math.min(state.clients.length, MAX_CLIENTS);
    render();
  } else {
    drawTrace();
  }
  out.replaceChildren(traceView(body));
  out.dataset.end = end ?? '';
}

function traceView(t: TracedPath): HTMLElement {
  const list = h('ol', { class: 'stages' });
  t.hops.forEach((hop, i) => {
    list.append(h('li', { class: 'hop', 'data-hop': String(i + 1) }, h('strong', {}, `${i + 1}. node ${hop.node}`), ` entered from ${hop.from.startsWith('node:') ? `the overlay (${hop.from.slice(5)})` : hop.from}`));
    for (const s of hop.result.stages) {
      const rules = s.detail.filter((d) => d.startsWith('-A '));
      const notes = s.detail.filter((d) => !d.startsWith('-A '));
      list.append(
        h(
          'li',
          { class: 'stage', 'data-stage': s.stage },
          h('span', { class: 'stage-name' }, s.stage),
          ...(notes.length > 0 ? [h('pre', { class: 'rules' }, notes.join('\n'))] : []),
          ...(rules.length > 0 ? [h('ol', { class: 'rules-hit' }, ...rules.map((r) => h('li', { class: 'rule' }, h('span', { class: 'rule-name' }, ruleName(r)), h('pre', { class: 'rules' }, r))))] : []),
        ),
      );
    }
    if (hop.overlay !== undefined) {
      const o = hop.overlay.outer;
      list.append(h('li', { class: 'stage overlay-hop', 'data-stage': 'vxlan' }, h('span', { class: 'stage-name' }, `VXLAN to ${hop.overlay.to}`), h('pre', { class: 'rules' }, `outer: UDP ${o.src} -> ${o.dst}, VNI ${o.vni}\n${hop.result.outcome}`)));
    }
  });
  const verdict = h('p', { class: `verdict verdict-${t.verdict}`, id: 'trace-verdict' }, `${t.verdict}: ${t.outcome}${t.dropReason !== undefined ? ` [${t.dropReason}]` : ''}`);
  const rest = t.continuesOn === undefined ? [] : [h('p', { class: 'muted', id: 'trace-continues' }, `${t.continuesOn} runs on another machine: the rest of the path is traced by the page on that machine`)];
  return h('div', {}, h('p', { class: 'muted' }, `${t.request.proto.toUpperCase()} ${t.request.from} → ${t.request.to}`), list, verdict, ...rest);
}

/** What a rule line is, by its chain: `KUBE-SVC (probability 0.5)`, `KUBE-SEP DNAT to 10.244.1.3:80`. */
function ruleName(rule: string): string {
  const chain = /^-A (\S+)/.exec(rule)?.[1] ?? '';
  const family = /^(KUBE-SVC|KUBE-SEP|KUBE-EXT|KUBE-SVL|KUBE-FW|KUBE-NODEPORTS)-/.exec(chain)?.[1] ?? chain;
  const probability = / --probability (\S+)/.exec(rule)?.[1];
  const dnat = / -j DNAT --to-destination (\S+)/.exec(rule)?.[1];
  const jump = / -j (\S+)/.exec(rule)?.[1];
  if (dnat !== undefined) return `${family} DNAT to ${dnat}`;
  if (probability !== undefined) return `${family} (probability ${Number(probability).toFixed(4)}) → ${jump ?? ''}`;
  return jump !== undefined ? `${family} → ${jump}` : family;
}

/** The trace's path as points on the map: a node is entered at its bridge and left or reached over the overlay at its VTEP. */
function tracePoints(t: TracedPath, boxes: Layout['boxes']): { x: number; y: number; id: string }[] {
  const points: { x: number; y: number; id: string }[] = [];
  let lastNode: string | undefined;
  const at = (id: string): void => {
    const b = boxes.get(id);
    if (b !== undefined) points.push({ ...traceAnchor(id, b), id });
  };
  for (const id of t.path) {
    if (id.startsWith('node:')) {
      const name = id.slice('node:'.length);
      if (lastNode !== undefined && lastNode !== name) {
        at(`vtep:${lastNode}`);
        at(`vtep:${name}`);
      }
      at(`bridge:${name}`);
      lastNode = name;
    } else {
      at(id);
    }
  }
  return points;
}

function drawTrace(): void {
  const layer = svg.querySelector('#trace');
  const boxes = state.layout?.boxes;
  if (layer === null || boxes === undefined) return;
  layer.replaceChildren();
  const t = state.trace;
  if (t === undefined) return;
  const points = tracePoints(t, boxes);
  if (points.length < 2) return;
  layer.setAttribute('class', `trace verdict-${t.verdict}`);
  layer.append(el('polyline', { points: points.map((p) => `${p.x},${p.y}`).join(' '), class: 'trace-line' }));
  const stagesAt = new Map(t.hops.map((hop) => [`bridge:${hop.node}`, hop.result.stages.map((s) => s.stage).join(' → ')]));
  points.forEach((p, i) => {
    layer.append(
      el(
        'g',
        { class: 'trace-step', 'data-step': i + 1, 'data-id': p.id },
        el('title', {}, stagesAt.get(p.id) ?? p.id),
        el('circle', { cx: p.x, cy: p.y, r: 11 }),
        el('text', { x: p.x, y: p.y + 4, class: 'centred' }, String(i + 1)),
      ),
    );
  });
}

// ---- captures ------------------------------------------------------------------------

/** The VTEP's UDP port of a node on the map (4789 unless it joined with another). */
function vtepPort(node: string): number {
  return state.map?.nodes.find((n) => n.name === node)?.vtep.port ?? 4789;
}

function capture(target: string): void {
  const seconds = byId<HTMLInputElement>('capture-seconds').value;
  // A VTEP's button: the node's overlay interfaces, whose frames are the VXLAN datagrams.
  const query = target.startsWith('pod:')
    ? `pod=${encodeURIComponent(target.slice(4))}`
    : target.startsWith('vtep:')
      ? `node=${encodeURIComponent(target.slice(5))}&filter=${encodeURIComponent(`udp port ${vtepPort(target.slice(5))}`)}`
      : `node=${encodeURIComponent(target.slice(5))}`;
  const a = h('a', { href: `/api/capture?${query}&seconds=${encodeURIComponent(seconds)}`, download: '' });
  document.body.append(a);
  a.click();
  a.remove();
  byId('capture-state').textContent = `capturing ${target.slice(target.indexOf(':') + 1)} for ${seconds} s: the download ends then`;
}

// ---- wiring --------------------------------------------------------------------------

svg.addEventListener('click', (ev) => {
  const target = ev.target as Element;
  const button = target.closest('[data-action="capture"]');
  if (button !== null) {
    capture(button.getAttribute('data-target') ?? '');
    return;
  }
  const edge = target.closest('[data-edge]');
  if (edge !== null) void showEdgeFlows(edge.getAttribute('data-edge') ?? '');
});

byId<HTMLFormElement>('trace-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void runTrace(byId<HTMLInputElement>('trace-from').value.trim(), byId<HTMLInputElement>('trace-to').value.trim());
});

const events = new EventSource('/api/events');
events.addEventListener('open', () => (byId('stream-state').textContent = 'live'));
events.addEventListener('error', () => (byId('stream-state').textContent = 'reconnecting…'));
events.addEventListener('cluster', (ev) => {
  const map = JSON.parse((ev as MessageEvent<string>).data) as ClusterMap | null;
  if (map === null) {
    byId('stream-state').textContent = 'the cluster is not running';
    return;
  }
  state.map = map;
  render();
});
events.addEventListener('flows', (ev) => addFlows(JSON.parse((ev as MessageEvent<string>).data) as HubFlow[]));
events.addEventListener('nodes', (ev) => {
  const { unavailable } = JSON.parse((ev as MessageEvent<string>).data) as { unavailable: Record<string, string> };
  const names = Object.keys(unavailable);
  byId('nodes-state').textContent = names.length === 0 ? '' : `no flows from ${names.join(', ')}`;
});
// Lit edges dim again when their flows stop.
setInterval(scheduleEdges, 1000);
