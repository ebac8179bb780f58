import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import type { Alert, Series } from '../api/types';
import { signalKey } from '../lib/signals';

/** Every chart on the page, in order, for the PNG export. */
const charts = new Map<string, uPlot>();

const SYNC_KEY = 'canopy-vehicle';

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

interface Props {
  series: Series;
  fromMs: number;
  toMs: number;
  /** Where to draw alert markers: any alert, a vehicle's or a device's. */
  alerts: readonly Pick<Alert, 'ts_us'>[];
  showTimeAxis: boolean;
  onZoom: (fromMs: number, toMs: number) => void;
}

/** One signal over the shown range; drag across it to zoom (the page re-queries). */
export function Chart({ series, fromMs, toMs, alerts, showTimeAxis, onZoom }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // The hooks below read the latest props through this, not through a stale closure.
  const latest = useRef({ fromMs, toMs, alerts, onZoom });
  latest.current = { fromMs, toMs, alerts, onZoom };
  const key = signalKey(series);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const grid = { stroke: cssVar('--grid'), width: 1 };
    const axis = { stroke: cssVar('--muted'), grid, ticks: grid };
    const options: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: 170,
      cursor: { sync: { key: SYNC_KEY }, drag: { x: true, y: false, setScale: false } },
      legend: { show: false },
      scales: {
        x: { time: true, range: () => [latest.current.fromMs / 1000, latest.current.toMs / 1000] },
      },
      axes: [
        { ...axis, show: showTimeAxis },
        { ...axis, size: 60, label: series.unit || undefined },
      ],
      series: [{}, { label: key, stroke: cssVar('--accent'), width: 1.5, points: { show: false } }],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 4) return;
            const from = u.posToVal(u.select.left, 'x') * 1000;
            const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            latest.current.onZoom(Math.round(from), Math.round(to));
          },
        ],
        draw: [
          (u) => {
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = cssVar('--alert');
            ctx.lineWidth = 2;
            ctx.setLineDash([4, 4]);
            for (const a of latest.current.alerts) {
              const x = u.valToPos(a.ts_us / 1e6, 'x', true);
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    };
    const u = new uPlot(options, [[], []], el);
    plot.current = u;
    charts.set(key, u);
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 170 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      charts.delete(key);
      u.destroy();
      plot.current = null;
    };
  }, [key, series.unit, showTimeAxis]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    const xs = series.points.map((p) => p.ts_us / 1e6);
    const ys = series.points.map((p) => p.value);
    u.setData([xs, ys], true);
    u.redraw();
  }, [series, fromMs, toMs, alerts]);

  return <div className="chart" ref={host} role="img" aria-label={`${key} chart`} />;
}

/** The charts drawn, stacked into one PNG with their names. */
export function chartsPng(theme: { background: string; text: string }): Promise<Blob | null> {
  const list = [...charts.entries()];
  const title = 22;
  const width = Math.max(1, ...list.map(([, u]) => u.ctx.canvas.width));
  const height = list.reduce((h, [, u]) => h + title + u.ctx.canvas.height, 0);
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = Math.max(1, height);
  const ctx = canvas.getContext('2d');
  if (!ctx) return Promise.resolve(null);
  ctx.fillStyle = theme.background;
  ctx.fillRect(0, 0, width, canvas.height);
  let y = 0;
  for (const [name, u] of list) {
    ctx.fillStyle = theme.text;
    ctx.font = '14px sans-serif';
    ctx.fillText(name, 8, y + 16);
    y += title;
    ctx.drawImage(u.ctx.canvas, 0, y);
    y += u.ctx.canvas.height;
  }
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
}
