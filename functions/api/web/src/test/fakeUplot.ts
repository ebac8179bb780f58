// uPlot's stand-in under jsdom, which draws no canvas: each chart keeps the
// data the console handed it, for a test to compare with the API's answer.
// A test file takes it with `vi.mock('uplot', () => import('…/fakeUplot'))`.

export default class FakePlot {
  static live: FakePlot[] = [];

  readonly ctx = { canvas: { width: 0, height: 0 } };
  data: unknown[];

  constructor(
    readonly options: { series: { label?: string }[] },
    data: unknown[],
    readonly root: HTMLElement,
  ) {
    this.data = data;
    FakePlot.live.push(this);
  }

  /** The chart of series `label` ("Message.Signal"), with its data as the API's points. */
  static of(label: string): { ts_us: number; value: number }[] | undefined {
    const plot = FakePlot.live.find((p) => p.options.series[1]?.label === label);
    if (!plot) return undefined;
    const [xs = [], ys = []] = plot.data as number[][];
    return xs.map((x, i) => ({ ts_us: Math.round(x * 1e6), value: ys[i]! }));
  }

  setData(data: unknown[]): void {
    this.data = data;
  }

  setSize(): void {}

  redraw(): void {}

  destroy(): void {
    FakePlot.live = FakePlot.live.filter((p) => p !== this);
  }
}
