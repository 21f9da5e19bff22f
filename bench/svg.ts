/**
 * Layer: bench support, pure (plus one file write). A failover timeline as
 * a standalone SVG: x is time relative to the fault, one row per node for
 * the ARP answers the client got from its MAC, one row per node for its
 * role, and vertical markers at the fault and the heal.
 */
import * as fs from 'node:fs';

/** A node's part of a timeline. */
export interface TimelineNode {
  name: string;
  mac: string;
  /** Role changes (the role held at the window's start first), bench clock. */
  roles: Array<{ atNs: bigint; role: string }>;
  /** Receive times of the client's answers from this node's MAC. */
  answers: bigint[];
}

/** One failover, as recorded by bench/failover. */
export interface Timeline {
  title: string;
  startNs: bigint;
  endNs: bigint;
  faultNs: bigint;
  healNs: bigint;
  faultLabel: string;
  healLabel: string;
  takeoverMs: number;
  gapAfterHealMs?: number;
  /** The client's probe period: answers closer than 2.5 periods draw as one bar. */
  periodMs: number;
  nodes: TimelineNode[];
}

const ROLE_COLORS: Record<string, string> = {
  master: '#2ca02c', backup: '#b8b8b8', fault: '#d62728', stopping: '#ff9896', init: '#aec7e8', down: '#ffffff',
};
const NODE_COLORS = ['#1f77b4', '#ff7f0e', '#9467bd', '#8c564b'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A "nice" tick step (1, 2 or 5 × 10^k ms) giving about `target` ticks over `spanMs`. */
function tickStep(spanMs: number, target = 10): number {
  const raw = spanMs / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Render a timeline to SVG text. */
export function timelineSvg(tl: Timeline): string {
  const W = 1000;
  const left = 250;
  const right = 20;
  const rowH = 22;
  const top = 58;
  const plotW = W - left - right;
  const msOf = (ns: bigint) => Number(ns - tl.faultNs) / 1e6;
  const x0 = msOf(tl.startNs);
  const x1 = msOf(tl.endNs);
  const X = (ms: number) => left + ((ms - x0) / (x1 - x0)) * plotW;
  const rows = tl.nodes.length * 2;
  const plotBottom = top + rows * rowH + 8;
  const H = plotBottom + 86;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(tl.title)}</text>`);
  const sub = `takeover ${tl.takeoverMs} ms (fault → first answer from the new owner)` + (tl.gapAfterHealMs !== undefined ? `; exactly one MAC answering ${tl.gapAfterHealMs} ms after the heal` : '');
  o.push(`<text x="${W / 2}" y="36" text-anchor="middle" fill="#444">${esc(sub)}</text>`);

  // Grid and axis (ms relative to the fault).
  const step = tickStep(x1 - x0);
  for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
    const x = X(t).toFixed(1);
    o.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${plotBottom}" stroke="#eeeeee"/>`);
    o.push(`<text x="${x}" y="${plotBottom + 14}" text-anchor="middle" fill="#555">${t >= 1000 || t <= -1000 ? `${(t / 1000).toFixed(step < 1000 ? 1 : 0)} s` : `${t} ms`}</text>`);
  }
  o.push(`<text x="${left + plotW / 2}" y="${plotBottom + 30}" text-anchor="middle" fill="#555">time since the fault</text>`);

  // Answer rows, then role rows.
  tl.nodes.forEach((n, i) => {
    const y = top + i * rowH;
    const color = NODE_COLORS[i % NODE_COLORS.length]!;
    o.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(n.name)} answered (${esc(n.mac)})</text>`);
    o.push(`<rect x="${left}" y="${y + 3}" width="${plotW}" height="${rowH - 6}" fill="#fafafa" stroke="#e0e0e0"/>`);
    const gapMs = 2.5 * tl.periodMs;
    let runStart: number | undefined;
    let prev = 0;
    const flush = () => {
      if (runStart === undefined) return;
      const xa = X(runStart);
      const xb = Math.max(X(prev + tl.periodMs), xa + 1);
      o.push(`<rect x="${xa.toFixed(1)}" y="${y + 4}" width="${(xb - xa).toFixed(1)}" height="${rowH - 8}" fill="${color}"/>`);
    };
    for (const a of n.answers) {
      const t = msOf(a);
      if (runStart !== undefined && t - prev <= gapMs) { prev = t; continue; }
      flush();
      runStart = t;
      prev = t;
    }
    flush();
  });
  tl.nodes.forEach((n, i) => {
    const y = top + (tl.nodes.length + i) * rowH;
    o.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">role of ${esc(n.name)}</text>`);
    n.roles.forEach((r, k) => {
      const from = Math.max(msOf(r.atNs), x0);
      const to = k + 1 < n.roles.length ? msOf(n.roles[k + 1]!.atNs) : x1;
      if (to <= from) return;
      const fill = ROLE_COLORS[r.role] ?? '#dddddd';
      o.push(`<rect x="${X(from).toFixed(1)}" y="${y + 3}" width="${(X(to) - X(from)).toFixed(1)}" height="${rowH - 6}" fill="${fill}" stroke="#999" stroke-width="0.5"><title>${esc(`${n.name}: ${r.role}`)}</title></rect>`);
      if (X(to) - X(from) > 40) o.push(`<text x="${(X(from) + 4).toFixed(1)}" y="${y + 15}" font-size="10" fill="${r.role === 'master' || r.role === 'fault' ? '#fff' : '#333'}">${esc(r.role)}</text>`);
    });
  });

  // Fault and heal markers.
  const marker = (ms: number, text: string, color: string, anchor: 'start' | 'end') => {
    const x = X(ms).toFixed(1);
    o.push(`<line x1="${x}" y1="${top - 10}" x2="${x}" y2="${plotBottom}" stroke="${color}" stroke-width="1.5" stroke-dasharray="5,3"/>`);
    o.push(`<text x="${anchor === 'start' ? Number(x) + 4 : Number(x) - 4}" y="${top - 12}" text-anchor="${anchor}" fill="${color}">${esc(text)}</text>`);
  };
  marker(0, `fault: ${tl.faultLabel}`, '#d62728', 'start');
  // A heal label near the right edge goes to the left of its line.
  marker(msOf(tl.healNs), `heal: ${tl.healLabel}`, '#2ca02c', X(msOf(tl.healNs)) > left + 0.7 * plotW ? 'end' : 'start');
  const ya = top + tl.nodes.length * rowH - 2;
  o.push(`<line x1="${X(0).toFixed(1)}" y1="${ya}" x2="${X(tl.takeoverMs).toFixed(1)}" y2="${ya}" stroke="#000" stroke-width="1.2"/>`);
  o.push(`<text x="${((X(0) + X(tl.takeoverMs)) / 2).toFixed(1)}" y="${ya - 3}" text-anchor="middle" font-size="10">takeover ${tl.takeoverMs} ms</text>`);

  // Legend.
  const ly = plotBottom + 48;
  let lx = left;
  for (const [role, fill] of Object.entries(ROLE_COLORS)) {
    o.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="12" fill="${fill}" stroke="#999" stroke-width="0.5"/><text x="${lx + 18}" y="${ly}">${role}</text>`);
    lx += 90;
  }
  o.push(`<text x="${left}" y="${ly + 20}" fill="#555">roles from the daemons' logs; the client probes every ${tl.periodMs} ms over ARP, and a bar joins answers less than ${2.5 * tl.periodMs} ms apart</text>`);
  o.push('</svg>');
  return o.join('\n') + '\n';
}

/** Write the timeline's SVG to `file`. */
export function writeTimelineSvg(file: string, tl: Timeline): void {
  fs.writeFileSync(file, timelineSvg(tl));
}
