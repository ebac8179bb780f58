// @vitest-environment jsdom
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import type { CatalogEntry, Series, SignalRef } from '../../api/types';
import { App } from '../../App';
import { stubApi, type Request } from '../../test/stubApi';
import FakePlot from '../../test/fakeUplot';
import { NOW_MS, alert, stopClock, trip, vehicle } from '../../test/fixtures';

vi.mock('uplot', () => import('../../test/fakeUplot'));

beforeEach(stopClock);

const entry = (message: string, signal: string, unit: string): CatalogEntry => ({ message, message_id: 1, signal, unit, comment: null });

const CATALOG = [
  entry('BMS_PackStatus', 'StateOfCharge', '%'),
  entry('BMS_PackStatus', 'PackCurrent', 'A'),
  entry('BMS_TemperatureSummary', 'CellTempMax', '°C'),
  entry('BMS_CellVoltages', 'CellVoltageMin', 'V'),
];

const POINTS = [
  { ts_us: (NOW_MS - 120_000) * 1000, value: -12.5 },
  { ts_us: (NOW_MS - 60_000) * 1000, value: 4 },
  { ts_us: (NOW_MS - 1_000) * 1000, value: 553.1 },
];

/** The query's answer: PackCurrent with the API's exact statistics, any other signal without. */
function history({ body }: Request) {
  const { signals, start_time, end_time } = body as { signals: SignalRef[]; start_time: string; end_time: string };
  const series = signals.map(
    (s): Series => ({
      ...s,
      unit: s.signal_name === 'PackCurrent' ? 'A' : '°C',
      source_points: 3,
      downsampled: false,
      points: POINTS,
      stats:
        s.signal_name === 'PackCurrent'
          ? { count: 6000, min: -157.4, max: 553.1, mean: 36.871, stddev: 61.12, out_of_range: 3, from_us: 0, to_us: 1, source: 'decoded' }
          : null,
    }),
  );
  return { vehicle_id: 'veh-001', from_us: Date.parse(start_time) * 1000, to_us: Date.parse(end_time) * 1000, series };
}

const TRIP = trip(NOW_MS / 1000 - 900, NOW_MS / 1000 - 300);

function renderVehicle(query = '?signals=BMS_PackStatus.PackCurrent,BMS_TemperatureSummary.CellTempMax&range=1h') {
  const requests = stubApi({
    'GET /vehicles/veh-001': vehicle('veh-001'),
    'GET /vehicles/veh-001/signals': { vehicle_id: 'veh-001', signals: CATALOG },
    'GET /vehicles/veh-001/alerts': { vehicle_id: 'veh-001', alerts: [alert('veh-001', (NOW_MS - 30_000) * 1000)] },
    'GET /vehicles/veh-001/trips': { vehicle_id: 'veh-001', from_us: 0, to_us: 1, gap_s: 120, trips: [TRIP] },
    'POST /vehicles/veh-001/query': history,
  });
  window.history.replaceState(null, '', `/#/vehicles/veh-001${query}`);
  render(<App config={{ auth: null }} />);
  return requests;
}

const queries = (requests: Request[]) =>
  requests.filter((r) => r.method === 'POST').map((r) => r.body as { signals: SignalRef[]; start_time: string; end_time: string; max_points: number });

describe('the vehicle page', () => {
  it('shows the latest state', async () => {
    renderVehicle();
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('veh-001');
    const latest = await screen.findByText(/^SoC 80\.0 %/);
    expect(latest.textContent).toBe('SoC 80.0 % · 371.3 V · -12.5 A · hottest cell 31.2 °C · 52 km/h · last message 4 s ago');
  });

  it("charts each chosen signal with the API's points and statistics", async () => {
    const requests = renderVehicle();
    const figures = await screen.findAllByRole('figure');
    expect(figures).toHaveLength(2);
    const [current, temperature] = figures as [HTMLElement, HTMLElement];
    expect(within(current).getByText('PackCurrent')).toBeTruthy();
    expect(within(current).getByText('min -157.40 · max 553.10 · mean 36.87 · stddev 61.12 (of all 6,000 values)')).toBeTruthy();
    expect(within(current).getByText('3 out of range')).toBeTruthy();
    // Without the API's statistics, those of the plotted points, said so.
    expect(within(temperature).getByText('min -12.50 · max 553.10 · mean 181.53 · stddev 262.82 (of the 3 plotted points)')).toBeTruthy();
    expect(within(current).getByRole('img', { name: 'BMS_PackStatus.PackCurrent chart' })).toBeTruthy();
    expect(FakePlot.of('BMS_PackStatus.PackCurrent')).toEqual(POINTS);
    expect(FakePlot.of('BMS_TemperatureSummary.CellTempMax')).toEqual(POINTS);

    const [query] = queries(requests);
    expect(query?.signals).toEqual([
      { message_name: 'BMS_PackStatus', signal_name: 'PackCurrent' },
      { message_name: 'BMS_TemperatureSummary', signal_name: 'CellTempMax' },
    ]);
    expect(Date.parse(query!.end_time) - Date.parse(query!.start_time)).toBe(3_600_000);
  });

  it('charts the default signals the DBC has when none is chosen', async () => {
    const requests = renderVehicle('');
    await screen.findAllByRole('figure');
    expect(queries(requests)[0]?.signals.map((s) => s.signal_name)).toEqual(['StateOfCharge', 'PackCurrent', 'CellTempMax']);
    const picker = screen.getByRole('group', { name: /Signals/ });
    expect(within(picker).getByRole('checkbox', { name: 'StateOfCharge BMS_PackStatus · %' })).toHaveProperty('checked', true);
    expect(within(picker).getByRole('checkbox', { name: 'CellVoltageMin BMS_CellVoltages · V' })).toHaveProperty('checked', false);
  });

  it('adds a ticked signal to the URL and charts it', async () => {
    const user = userEvent.setup();
    const requests = renderVehicle();
    await screen.findAllByRole('figure');
    await user.type(screen.getByRole('searchbox', { name: 'Search signals' }), 'voltage');
    await user.click(screen.getByRole('checkbox', { name: 'CellVoltageMin BMS_CellVoltages · V' }));
    expect(window.location.hash).toBe(
      '#/vehicles/veh-001?signals=BMS_PackStatus.PackCurrent,BMS_TemperatureSummary.CellTempMax,BMS_CellVoltages.CellVoltageMin&range=1h',
    );
    await waitFor(() => expect(screen.getAllByRole('figure')).toHaveLength(3));
    expect(queries(requests).at(-1)?.signals).toHaveLength(3);
  });

  it('asks for the range a preset names', async () => {
    const user = userEvent.setup();
    const requests = renderVehicle();
    await screen.findAllByRole('figure');
    await user.click(screen.getByRole('button', { name: 'Last day' }));
    expect(screen.getByRole('button', { name: 'Last day' }).getAttribute('aria-pressed')).toBe('true');
    await waitFor(() => expect(queries(requests)).toHaveLength(2));
    const day = queries(requests)[1]!;
    expect(Date.parse(day.end_time) - Date.parse(day.start_time)).toBe(86_400_000);
  });

  it("lists the vehicle's alerts", async () => {
    renderVehicle();
    const rule = await screen.findByRole('cell', { name: 'over-temperature' });
    const row = rule.closest('tr')!;
    expect(within(row).getByText('critical')).toBeTruthy();
    expect(within(row).getByText('cell_temp_max_c 61.50 °C > 60.00')).toBeTruthy();
  });

  it('charts a trip clicked in the list, and marks it', async () => {
    const user = userEvent.setup();
    const requests = renderVehicle();
    const trips = (await screen.findByRole('columnheader', { name: 'Distance' })).closest('table')!;
    const row = within(trips).getAllByRole('row')[1]!;
    expect(within(row).getByText('10 min')).toBeTruthy();
    expect(within(row).getByText('11.7 km')).toBeTruthy();
    await user.click(within(row).getByRole('button'));
    await waitFor(() => expect(queries(requests)).toHaveLength(2));
    const charted = queries(requests)[1]!;
    expect(Date.parse(charted.start_time)).toBe(TRIP.start_us / 1000 - 30_000);
    expect(Date.parse(charted.end_time)).toBe(TRIP.end_us / 1000 + 30_000);
    expect(window.location.hash).toContain('from=');
    expect(within(trips).getAllByRole('row')[1]!.getAttribute('aria-current')).toBe('true');
  });
});
