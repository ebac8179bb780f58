// The page as a person reads it: tables by their column names, charts by
// what they draw, times as the console writes them.

import { expect, type Locator, type Page } from '@playwright/test';

/** The table, within `scope`, that has a column named `column`. */
export function tableWith(scope: Page | Locator, column: string): Locator {
  // A filter's inner locator is taken relative to the table, so it starts from the page.
  const page = 'goto' in scope ? scope : scope.page();
  return scope.getByRole('table').filter({ has: page.getByRole('columnheader', { name: column, exact: true }) });
}

/** A table's body rows, each cell's text by its column's name (sort arrows left out). */
export function readTable(table: Locator): Promise<Record<string, string>[]> {
  return table.evaluate((el) => {
    const t = el as HTMLTableElement;
    const names = [...(t.tHead?.rows[0]?.cells ?? [])].map((th) => (th.textContent ?? '').replace(/[▲▼]/g, '').trim());
    return [...(t.tBodies[0]?.rows ?? [])].map((tr) =>
      Object.fromEntries([...tr.cells].map((cell, i) => [names[i] ?? String(i), (cell.textContent ?? '').trim()])),
    );
  });
}

/** How many alerts a page's alert table lists (none when it says so instead). */
export async function alertRows(page: Page | Locator): Promise<number> {
  const table = tableWith(page, 'Rule');
  return (await table.count()) === 0 ? 0 : (await readTable(table)).length;
}

/** A number as the console writes it in a table cell. */
export const fixed = (v: number | null | undefined, decimals: number): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(decimals);

/** A time as the console writes it, in the tests' UTC. */
export const when = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

/** The chart of a signal or a station's field ("Message.Signal", "st-001.field"). */
export function chart(page: Page, key: string): Locator {
  return page.getByRole('img', { name: `${key} chart` });
}

export interface Drawn {
  /** The plot area's columns, left to right, that hold the series' line. */
  columns: number[];
  /** Its columns that hold an alert's marker, drawn over the line. */
  marked: number[];
  /** The plot area's width in canvas pixels. */
  width: number;
}

/**
 * What the chart draws in its plot area: the columns that hold pixels of the
 * line's colour (the theme's --accent, which only the line uses) and those
 * that hold an alert marker's (--alert), among the grid's and the axes'.
 */
export function drawn(chartLocator: Locator): Promise<Drawn> {
  return chartLocator.evaluate(drawnIn);
}

/** Runs in the page: see `drawn`. */
function drawnIn(el: Element): Drawn {
  const canvas = el.querySelector('canvas');
  const plot = el.querySelector('.u-over');
  const context = canvas?.getContext('2d');
  if (!canvas || !plot || !context) return { columns: [], marked: [], width: 0 };
  const c = canvas.getBoundingClientRect();
  const p = plot.getBoundingClientRect();
  const ratio = canvas.width / c.width;
  const left = Math.round((p.left - c.left) * ratio);
  // A line at the range's edge is drawn on the plot's border: a few rows more each side.
  const top = Math.max(0, Math.round((p.top - c.top) * ratio) - 3);
  const width = Math.round(p.width * ratio);
  const height = Math.min(canvas.height - top, Math.round(p.height * ratio) + 6);
  if (width <= 0 || height <= 0) return { columns: [], marked: [], width: 0 };
  // Each drawn pixel counts as the theme colour it is nearest: where the
  // line crosses a grid line, its antialiased pixels are a blend of the two.
  const palette = ['--accent', '--alert', '--grid', '--muted'].map((name) => {
    const hex = getComputedStyle(document.documentElement).getPropertyValue(name).trim().replace('#', '');
    return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
  });
  const pixels = context.getImageData(left, top, width, height).data;
  const nearest = (i: number) => {
    let best = -1;
    let distance = Infinity;
    palette.forEach((rgb, k) => {
      const d = rgb.reduce((sum, v, c) => sum + (pixels[i + c]! - v) ** 2, 0);
      if (d < distance) [best, distance] = [k, d];
    });
    return best;
  };
  const columnsOf = (wanted: number) => {
    const out: number[] = [];
    for (let x = 0; x < width; x++) {
      for (let y = 0; y < height; y++) {
        const i = (y * width + x) * 4;
        if (pixels[i + 3]! >= 100 && nearest(i) === wanted) {
          out.push(x);
          break;
        }
      }
    }
    return out;
  };
  return { columns: columnsOf(0), marked: columnsOf(1), width };
}

/**
 * Waits until `chartLocator` draws a line over the times from `firstMs` to
 * `lastMs` of its range, `fromMs` to `toMs`: in (nearly) every column between
 * the two, and nowhere else.
 */
export async function expectLineOver(chartLocator: Locator, range: { fromMs: number; toMs: number }, firstMs: number, lastMs: number) {
  let last: ReturnType<typeof drawsOver> | undefined;
  try {
    await expect
      .poll(async () => (last = drawsOver(await drawn(chartLocator), range, firstMs, lastMs)).ok, { timeout: 15_000 })
      .toBe(true);
  } catch {
    expect(last, `the line drawn: ${JSON.stringify(last)}`).toMatchObject({ ok: true });
  }
}

function drawsOver(drawing: Drawn, range: { fromMs: number; toMs: number }, firstMs: number, lastMs: number) {
  const at = (ms: number) => ((ms - range.fromMs) / (range.toMs - range.fromMs)) * drawing.width;
  const from = at(firstMs);
  const to = at(lastMs);
  // The columns the line must cover: those it crosses by half a pixel or
  // more (at least one), but where an alert's marker hides it.
  let lo = Math.floor(from + 0.5);
  let hi = Math.min(drawing.width - 1, Math.floor(to - 0.5));
  if (hi < lo) lo = hi = Math.floor((from + to) / 2);
  const due = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i).filter((x) => !drawing.marked.includes(x));
  const inside = due.filter((x) => drawing.columns.includes(x)).length;
  const outside = drawing.columns.filter((x) => x < from - 2 || x > to + 2).length;
  return { ok: due.length > 0 && inside / due.length >= 0.9 && outside === 0, from, to, due: due.length, inside, outside };
}
