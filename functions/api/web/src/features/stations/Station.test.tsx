// @vitest-environment jsdom
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { App } from '../../App';
import { stubApi, type Request } from '../../test/stubApi';
import FakePlot from '../../test/fakeUplot';
import { NOW_MS, alert, stopClock, station } from '../../test/fixtures';

vi.mock('uplot', () => import('../../test/fakeUplot'));

beforeEach(stopClock);

const POINTS = [
  { ts_us: (NOW_MS - 600_000) * 1000, value: 1 },
  { ts_us: (NOW_MS - 30_000) * 1000, value: 0 },
];

function history({ url }: Request) {
  const field = url.pathname.split('/').at(-1);
  return {
    station_id: 'st-003',
    field,
    unit: field === 'temperature_c' ? '°C' : '',
    from_us: 0,
    to_us: 1,
    stats: { count: 20, min: 0, max: 1, mean: 0.25, stddev: 0.43 },
    points: POINTS,
  };
}

function renderStation() {
  const { vehicle_id: _, ...deviceAlert } = alert('st-003', (NOW_MS - 60_000) * 1000, {
    rule: 'no-charged-battery',
    measure: 'batteries_available',
    value: 0,
    comparison: '<',
    threshold: 1,
    unit: '',
  });
  const requests = stubApi({
    'GET /stations/st-003': station('st-003', 0, 2),
    'GET /stations/st-003/alerts': { station_id: 'st-003', alerts: [{ ...deviceAlert, kind: 'station', device_id: 'st-003' }] },
    'GET /stations/st-003/history/batteries_available': history,
    'GET /stations/st-003/history/temperature_c': history,
  });
  window.history.replaceState(null, '', '/#/stations/st-003');
  render(<App config={{ auth: null }} />);
  return requests;
}

describe("a station's page", () => {
  it('shows its status and a tile per slot', async () => {
    renderStation();
    expect(await screen.findByText(/^0 of 2 charged/)).toBeTruthy();
    expect(screen.getByText('no charged battery')).toBeTruthy();
    const slots = within(screen.getByRole('list', { name: 'Slots' })).getAllByRole('listitem');
    expect(slots.map((s) => s.textContent)).toEqual(['42 %27.0 °C', '42 %27.0 °C']);
  });

  it("charts a field's history over the last day with the API's statistics", async () => {
    const user = userEvent.setup();
    const requests = renderStation();
    const figure = await screen.findByRole('figure');
    expect(within(figure).getByText('Charged batteries')).toBeTruthy();
    expect(within(figure).getByText('min 0.00 · max 1.00 · mean 0.25 · stddev 0.43 (of all 20 values)')).toBeTruthy();
    expect(FakePlot.of('st-003.batteries_available')).toEqual(POINTS);
    const asked = requests.find((r) => r.url.pathname.includes('/history/'))!.url.searchParams;
    expect(Date.parse(asked.get('to')!) - Date.parse(asked.get('from')!)).toBe(86_400_000);
    expect(asked.get('max_points')).toBe('1000');

    await user.selectOptions(screen.getByRole('combobox', { name: 'Field' }), 'Station temperature');
    expect(window.location.hash).toBe('#/stations/st-003?field=temperature_c&range=1d');
    await waitFor(() => expect(within(screen.getByRole('figure')).getByText('Station temperature')).toBeTruthy());
  });

  it('lists its alerts', async () => {
    renderStation();
    const rule = await screen.findByRole('cell', { name: 'no-charged-battery' });
    expect(within(rule.closest('tr')!).getByText('batteries_available 0.00 < 1.00')).toBeTruthy();
  });
});
