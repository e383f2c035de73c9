/**
 * The map as SVG: the outside network on top with the clients seen in flows, the Services
 * below it, and the nodes side by side, each holding its pods between its bridge (cni0)
 * and its VTEP (flannel.1), the overlay joining the VTEPs. Every box carries its map id
 * in `data-id` (`pod:NS/NAME`, `svc:NS/NAME`, `node:NAME`, `ip:A.B.C.D`), the same ids the
 * flows' edges and the trace's path name, so both are drawn between the boxes' anchors.
 *
 * Everything is built with DOM calls and text nodes: no markup is made from the data.
 */
import type { ClusterMap, MapNode } from './types.js';

const SVG = 'http://www.w3.org/2000/svg';

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Layout {
  width: number;
  height: number;
  /** Anchors by map id, plus `bridge:NODE` and `vtep:NODE`. */
  boxes: Map<string, Box>;
}

const POD_W = 190;
const POD_H = 50;
const NODE_W = 2 * POD_W + 36;
const GAP = 40;
const SVC_W = 250;
const SVC_H = 64;
const OUTSIDE_Y = 16;
const OUTSIDE_H = 76;
const SVC_Y = OUTSIDE_Y + OUTSIDE_H + 40;
const NODE_Y = SVC_Y + SVC_H + 60;

export function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

function text(x: number, y: number, value: string, cls: string): SVGTextElement {
  return el('text', { x, y, class: cls }, value);
}

function nodeHeight(node: MapNode): number {
  return 96 + Math.max(1, Math.ceil(node.pods.length / 2)) * (POD_H + 12) + 56;
}

/** Where everything goes; the outside clients are the flows' addresses that no box of the cluster holds. */
export function layout(map: ClusterMap, clients: readonly string[]): Layout {
  const boxes = new Map<string, Box>();
  const nodeRowW = map.nodes.length * NODE_W + Math.max(0, map.nodes.length - 1) * GAP;
  const svcRowW = map.services.length * SVC_W + Math.max(0, map.services.length - 1) * GAP;
  const width = Math.max(nodeRowW, svcRowW, 600, clients.length * 150 + 260) + 2 * GAP;
  const nodeH = Math.max(0, ...map.nodes.map(nodeHeight));
  const height = NODE_Y + nodeH + 90;
  boxes.set('outside', { x: GAP, y: OUTSIDE_Y, w: width - 2 * GAP, h: OUTSIDE_H });
  clients.forEach((id, i) => boxes.set(id, { x: GAP + 240 + i * 150, y: OUTSIDE_Y + 30, w: 136, h: 34 }));
  let x = (width - svcRowW) / 2;
  for (const s of map.services) {
    boxes.set(s.id, { x, y: SVC_Y, w: SVC_W, h: SVC_H });
    x += SVC_W + GAP;
  }
  x = (width - nodeRowW) / 2;
  for (const node of map.nodes) {
    const h = nodeHeight(node);
    boxes.set(node.id, { x, y: NODE_Y, w: NODE_W, h });
    boxes.set(`bridge:${node.name}`, { x: x + 12, y: NODE_Y + 58, w: NODE_W - 24, h: 26 });
    node.pods.forEach((p, i) => boxes.set(p.id, { x: x + 12 + (i % 2) * (POD_W + 12), y: NODE_Y + 96 + Math.floor(i / 2) * (POD_H + 12), w: POD_W, h: POD_H }));
    boxes.set(`vtep:${node.name}`, { x: x + NODE_W / 2 - 120, y: NODE_Y + h - 44, w: 240, h: 32 });
    x += NODE_W + GAP;
  }
  return { width, height, boxes };
}

export function centre(b: Box): { x: number; y: number } {
  return { x: b.x + b.w / 2, y: b.y + b.h / 2 };
}

/** Where the line from the box's centre towards `to` leaves the box: edges end at boxes, not over their text. */
export function boundary(b: Box, to: { x: number; y: number }): { x: number; y: number } {
  const c = centre(b);
  const dx = to.x - c.x;
  const dy = to.y - c.y;
  if (dx === 0 && dy === 0) return c;
  const scale = Math.min(dx === 0 ? Infinity : b.w / 2 / Math.abs(dx), dy === 0 ? Infinity : b.h / 2 / Math.abs(dy));
  return { x: c.x + dx * Math.min(scale, 1), y: c.y + dy * Math.min(scale, 1) };
}

/** Where the trace's path touches a box: beside its text (a pod's and the VTEP's right end, a Service's lower edge). */
export function traceAnchor(id: string, b: Box): { x: number; y: number } {
  if (id.startsWith('svc:')) return { x: b.x + b.w - 20, y: b.y + b.h };
  if (id.startsWith('pod:') || id.startsWith('vtep:')) return { x: b.x + b.w - 14, y: b.y + 14 };
  if (id.startsWith('bridge:')) return { x: b.x + b.w - 18, y: b.y + b.h / 2 };
  return centre(b);
}

/** A button drawn in the SVG: a rect and its label, with a data-action the page listens for. */
function button(x: number, y: number, label: string, action: string, target: string): SVGGElement {
  return el('g', { class: 'button', 'data-action': action, 'data-target': target, role: 'button', tabindex: 0 }, el('rect', { x, y, width: 56, height: 18, rx: 4 }), text(x + 28, y + 13, label, 'button-label'));
}

/** The map's boxes (the layers for edges and the trace are the page's, drawn over them). */
export function drawMap(svg: SVGSVGElement, map: ClusterMap, lay: Layout, clients: readonly string[]): void {
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${lay.width} ${lay.height}`);
  svg.setAttribute('width', String(lay.width));
  svg.setAttribute('height', String(lay.height));
  const boxes = lay.boxes;
  const out = boxes.get('outside')!;
  svg.append(
    el(
      'g',
      { class: 'outside', 'data-id': 'outside' },
      el('rect', { x: out.x, y: out.y, width: out.w, height: out.h, rx: 10 }),
      text(out.x + 14, out.y + 24, 'outside network', 'title'),
      text(out.x + 14, out.y + 44, map.outside.cidr, 'detail'),
      text(out.x + 14, out.y + 62, `LoadBalancer ${map.outside.loadBalancerCIDR}`, 'detail'),
    ),
  );
  for (const id of clients) {
    const b = boxes.get(id)!;
    svg.append(el('g', { class: 'client', 'data-id': id }, el('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 6 }), text(b.x + b.w / 2, b.y + 22, id.slice('ip:'.length), 'label centred')));
  }
  // The overlay: one link per pair of nodes, drawn under the VTEPs.
  const overlayY = NODE_Y + Math.max(0, ...map.nodes.map(nodeHeight)) + 40;
  const links = el('g', { class: 'overlay' });
  for (const link of map.links) {
    const a = boxes.get(`vtep:${link.from.slice('node:'.length)}`);
    const b = boxes.get(`vtep:${link.to.slice('node:'.length)}`);
    if (a === undefined || b === undefined) continue;
    const ca = centre(a);
    const cb = centre(b);
    links.append(el('path', { d: `M ${ca.x} ${a.y + a.h} V ${overlayY} H ${cb.x} V ${b.y + b.h}`, 'data-link': `${link.from}>${link.to}` }));
    links.append(text((ca.x + cb.x) / 2, overlayY - 6, 'VXLAN overlay (UDP)', 'detail centred'));
  }
  svg.append(links);
  // Each Service to the pods behind its ready endpoints, as kube-proxy's KUBE-SEP chains join them.
  const backends = el('g', { class: 'endpoint-links' });
  for (const s of map.services) {
    const sb = boxes.get(s.id);
    const pods = new Set(s.ports.flatMap((p) => p.endpoints.filter((e) => e.ready && e.pod !== undefined).map((e) => e.pod!)));
    for (const pod of pods) {
      const pb = boxes.get(pod);
      if (sb === undefined || pb === undefined) continue;
      const a = boundary(sb, centre(pb));
      const b = boundary(pb, centre(sb));
      backends.append(el('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, 'data-endpoint': `${s.id}>${pod}` }));
    }
  }
  svg.append(backends);
  for (const s of map.services) {
    const b = boxes.get(s.id)!;
    const ports = s.ports.map((p) => `${p.port}/${p.protocol}${p.nodePort !== undefined ? ` NodePort ${p.nodePort}` : ''}`).join(', ');
    const ready = new Set(s.ports.flatMap((p) => p.endpoints.filter((e) => e.ready).map((e) => `${e.ip}:${e.port}`))).size;
    const address = s.headless ? 'headless' : (s.clusterIP ?? s.type);
    svg.append(
      el(
        'g',
        { class: 'service', 'data-id': s.id },
        el('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 10 }),
        text(b.x + 12, b.y + 20, `${s.namespace}/${s.name}`, 'title'),
        text(b.x + 12, b.y + 38, `${s.type} ${address}${s.loadBalancerIP !== undefined ? ` LB ${s.loadBalancerIP}` : ''}`, 'detail'),
        text(b.x + 12, b.y + 55, `${ports} · ${s.builtin === true ? 'answered by every node' : `${ready} ready endpoint${ready === 1 ? '' : 's'}`}`, 'detail endpoints'),
      ),
    );
  }
  for (const node of map.nodes) {
    const b = boxes.get(node.id)!;
    const br = boxes.get(`bridge:${node.name}`)!;
    const vt = boxes.get(`vtep:${node.name}`)!;
    const state = !node.up ? 'down' : node.ready ? 'Ready' : 'NotReady';
    const g = el(
      'g',
      { class: `node ${node.up && node.ready ? 'ready' : 'unready'}`, 'data-id': node.id },
      el('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 12 }),
      text(b.x + 14, b.y + 22, node.name, 'title'),
      text(b.x + 14, b.y + 40, `${state} · ${node.machine} · uplink ${node.externalIP}`, 'detail'),
      button(b.x + b.w - 70, b.y + 10, 'pcap', 'capture', node.id),
      el('g', { class: 'bridge', 'data-id': `bridge:${node.name}` }, el('rect', { x: br.x, y: br.y, width: br.w, height: br.h, rx: 5 }), text(br.x + 10, br.y + 17, `bridge ${node.bridge.name} ${node.bridge.address} · pods ${node.podCIDR}`, 'detail')),
      el(
        'g',
        { class: 'vtep', 'data-id': `vtep:${node.name}` },
        el('rect', { x: vt.x, y: vt.y, width: vt.w, height: vt.h, rx: 5 }),
        text(vt.x + 10, vt.y + 20, `VTEP ${node.vtep.name} ${node.vtep.address}`, 'detail'),
        // The overlay interfaces' datagrams, outer headers and all.
        button(vt.x + vt.w + 6, vt.y + 7, 'pcap', 'capture', `vtep:${node.name}`),
      ),
    );
    for (const pod of node.pods) {
      const p = boxes.get(pod.id)!;
      g.append(
        el(
          'g',
          { class: `pod ${pod.ready ? 'ready' : 'unready'}`, 'data-id': pod.id, 'data-ip': pod.ip },
          el('title', {}, `${pod.namespace}/${pod.name} ${pod.ip}${pod.ready ? ' Ready' : ` NotReady${pod.reason !== undefined ? ` (${pod.reason})` : ''}`}${pod.restarts > 0 ? `, ${pod.restarts} restarts` : ''}`),
          el('rect', { x: p.x, y: p.y, width: p.w, height: p.h, rx: 7 }),
          el('circle', { cx: p.x + 12, cy: p.y + 16, r: 5, class: 'ready-dot' }),
          text(p.x + 22, p.y + 20, pod.name.length > 24 ? `${pod.name.slice(0, 11)}…${pod.name.slice(-11)}` : pod.name, 'label'),
          text(p.x + 22, p.y + 38, `${pod.ip}${pod.namespace !== 'default' ? ` · ${pod.namespace}` : ''}`, 'detail'),
          button(p.x + p.w - 62, p.y + 28, 'pcap', 'capture', pod.id),
        ),
      );
    }
    svg.append(g);
  }
}

/** A curve from one box to another, bowed so that edges between the same boxes both ways stay apart. */
export function edgePath(a: Box, b: Box, bow: number): { d: string; mid: { x: number; y: number } } {
  const ca = boundary(a, centre(b));
  const cb = boundary(b, centre(a));
  const mx = (ca.x + cb.x) / 2;
  const my = (ca.y + cb.y) / 2;
  const dx = cb.x - ca.x;
  const dy = cb.y - ca.y;
  const len = Math.hypot(dx, dy) || 1;
  const cx = mx - (dy / len) * bow;
  const cy = my + (dx / len) * bow;
  return { d: `M ${ca.x} ${ca.y} Q ${cx} ${cy} ${cb.x} ${cb.y}`, mid: { x: (ca.x + 2 * cx + cb.x) / 4, y: (ca.y + 2 * cy + cb.y) / 4 } };
}
