/**
 * A hand-written SVG line chart: latency per time bucket, one polyline per series, optional
 * vertical event markers (reloads). No plotting dependency; the output is stable text.
 */
import type { Sample } from './client.js';
import { percentile } from './stats.js';

export interface Series {
  label: string;
  color: string;
  /** [x, y] points; y NaN leaves a gap. */
  points: [number, number][];
  dashed?: boolean;
}

export interface Chart {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** x positions of events drawn as thin vertical lines. */
  markers?: { x: number[]; label: string; color: string }[];
  /** log10 y axis (latency spans 1 ms to seconds). */
  logY?: boolean;
  /** Right end of the x axis (default: the largest x), so panels can share a scale. */
  xMax?: number;
}

/**
 * Buckets samples by start time (ms since the series' t0) into `bucketMs` slots and returns
 * [bucket middle in seconds, p-th percentile latency in ms] per non-empty bucket.
 */
export function bucketed(samples: Sample[], bucketMs: number, p: number, by: 'start' | 'end' = 'start'): [number, number][] {
  const slots = new Map<number, number[]>();
  for (const s of samples) {
    if (s.status === 0) continue;
    const k = Math.floor((by === 'start' ? s.start : s.end) / bucketMs);
    const slot = slots.get(k) ?? [];
    slot.push(s.ms);
    slots.set(k, slot);
  }
  return [...slots.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [((k + 0.5) * bucketMs) / 1000, percentile(v, p)]);
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f = (n: number) => (Math.round(n * 10) / 10).toString();

function niceTicks(min: number, max: number, count: number): number[] {
  const span = max - min || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

/** One panel at (x0, y0) of size w x h, as SVG elements. */
function panel(chart: Chart, x0: number, y0: number, w: number, h: number): string {
  const left = 64;
  const right = 16;
  const top = 44;
  const bottom = 40;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const all = chart.series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  const xMax = chart.xMax ?? Math.max(1e-3, ...all.map(([x]) => x), ...(chart.markers ?? []).flatMap((m) => m.x));
  const yVals = all.map(([, y]) => y).filter((y) => !chart.logY || y > 0);
  const yMaxRaw = Math.max(1, ...yVals);
  const yMinRaw = chart.logY ? Math.max(0.1, Math.min(...yVals, yMaxRaw)) : 0;
  const ly = (v: number) => (chart.logY ? Math.log10(v) : v);
  const yLo = chart.logY ? Math.floor(ly(yMinRaw)) : 0;
  const yHi = chart.logY ? Math.ceil(ly(yMaxRaw)) : yMaxRaw * 1.1;
  const sx = (x: number) => x0 + left + (x / xMax) * pw;
  const sy = (y: number) => y0 + top + ph - ((ly(Math.max(y, chart.logY ? 10 ** yLo : 0)) - yLo) / (yHi - yLo || 1)) * ph;
  const out: string[] = [];
  out.push(`<text x="${f(x0 + left)}" y="${f(y0 + 18)}" font-size="14" font-weight="bold">${esc(chart.title)}</text>`);
  if (chart.subtitle) out.push(`<text x="${f(x0 + left)}" y="${f(y0 + 34)}" font-size="11" fill="#555">${esc(chart.subtitle)}</text>`);
  out.push(`<rect x="${f(x0 + left)}" y="${f(y0 + top)}" width="${f(pw)}" height="${f(ph)}" fill="none" stroke="#999"/>`);
  const yTicks = chart.logY ? Array.from({ length: yHi - yLo + 1 }, (_, i) => 10 ** (yLo + i)) : niceTicks(0, yHi, 5);
  for (const t of yTicks) {
    const y = sy(t);
    out.push(`<line x1="${f(x0 + left)}" x2="${f(x0 + left + pw)}" y1="${f(y)}" y2="${f(y)}" stroke="#eee"/>`);
    out.push(`<text x="${f(x0 + left - 6)}" y="${f(y + 4)}" font-size="10" text-anchor="end">${t >= 1 ? t : t.toFixed(1)}</text>`);
  }
  for (const t of niceTicks(0, xMax, 8)) {
    const x = sx(t);
    out.push(`<text x="${f(x)}" y="${f(y0 + top + ph + 14)}" font-size="10" text-anchor="middle">${t}</text>`);
  }
  out.push(`<text x="${f(x0 + left + pw / 2)}" y="${f(y0 + h - 8)}" font-size="11" text-anchor="middle">${esc(chart.xLabel)}</text>`);
  out.push(`<text transform="translate(${f(x0 + 14)},${f(y0 + top + ph / 2)}) rotate(-90)" font-size="11" text-anchor="middle">${esc(chart.yLabel)}</text>`);
  for (const m of chart.markers ?? []) {
    for (const x of m.x) out.push(`<line x1="${f(sx(x))}" x2="${f(sx(x))}" y1="${f(y0 + top)}" y2="${f(y0 + top + ph)}" stroke="${m.color}" stroke-opacity="0.35"/>`);
  }
  for (const s of chart.series) {
    const runs: string[][] = [[]];
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y)) runs.push([]);
      else runs[runs.length - 1]!.push(`${f(sx(x))},${f(sy(y))}`);
    }
    for (const r of runs.filter((r) => r.length > 0)) {
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="4 3"' : ''} points="${r.join(' ')}"/>`);
    }
  }
  // Legend, top right inside the plot.
  const legend = [...chart.series.map((s) => ({ label: s.label, color: s.color, dashed: s.dashed })), ...(chart.markers ?? []).map((m) => ({ label: m.label, color: m.color, dashed: false }))];
  out.push(`<rect x="${f(x0 + left + pw - 256)}" y="${f(y0 + top + 2)}" width="250" height="${f(legend.length * 15 + 6)}" fill="white" fill-opacity="0.85"/>`);
  legend.forEach((l, i) => {
    const y = y0 + top + 14 + i * 15;
    const x = x0 + left + pw - 250;
    out.push(`<line x1="${f(x)}" x2="${f(x + 22)}" y1="${f(y - 4)}" y2="${f(y - 4)}" stroke="${l.color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="4 3"' : ''}/>`);
    out.push(`<text x="${f(x + 28)}" y="${f(y)}" font-size="11">${esc(l.label)}</text>`);
  });
  return out.join('\n');
}

/** An SVG document with the charts stacked vertically. */
export function renderSvg(charts: Chart[], width = 900, panelHeight = 300): string {
  const height = panelHeight * charts.length;
  const body = charts.map((c, i) => panel(c, 0, i * panelHeight, width, panelHeight)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${body}
</svg>
`;
}
