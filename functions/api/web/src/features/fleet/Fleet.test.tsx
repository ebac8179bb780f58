// @vitest-environment jsdom
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { App } from '../../App';
import { json, stubApi } from '../../test/stubApi';
import { NOW_MS, alert, stopClock, vehicle } from '../../test/fixtures';

vi.mock('uplot', () => import('../../test/fakeUplot'));

beforeEach(stopClock);

/** The fleet table's rows, each cell by its column's name. */
function fleetRows(): Record<string, string>[] {
  const table = screen.getByRole('table');
  const headers = within(table)
    .getAllByRole('columnheader')
    .map((th) => within(th).getByRole('button').textContent!.replace(/[▲▼]/g, '').trim());
  return within(table)
    .getAllByRole('row')
    .slice(1)
    .map((row) => {
      const cells = [within(row).getByRole('rowheader'), ...within(row).getAllByRole('cell')];
      return Object.fromEntries(cells.map((cell, i) => [headers[i], cell.textContent!.trim()]));
    });
}

function renderFleet(hash = '#/') {
  window.history.replaceState(null, '', `/${hash}`);
  return render(<App config={{ auth: null }} />);
}

describe('the fleet page', () => {
  it("lists a page of vehicles with the API's values and its recent alerts, and more on asking", async () => {
    const requests = stubApi({
      'GET /vehicles': ({ url }: { url: URL }) =>
        url.searchParams.get('after') === 'veh-002'
          ? { vehicles: [vehicle('veh-010', { soc_pct: 12.34, speed_kph: 0 })], next: null }
          : { vehicles: [vehicle('veh-001'), vehicle('veh-002', { received_at_ms: NOW_MS - 180_000 })], next: 'veh-002' },
      'GET /alerts': { alerts: [alert('veh-001', NOW_MS * 1000), alert('veh-001', NOW_MS * 1000 - 1)] },
      'GET /fleet/counts': { total: 3, driving: 1, charging: 0, parked: 1, silent: 1, alerting: 1 },
    });
    const user = userEvent.setup();
    renderFleet();

    expect(await screen.findByText('2 vehicles shown, more to show')).toBeTruthy();
    const byStatus = within(await screen.findByLabelText('Vehicles by status'));
    expect(byStatus.getAllByRole('term').map((t) => t.textContent)).toEqual(['Vehicles', 'Driving', 'Charging', 'Parked', 'Silent', 'Alerting']);
    expect(byStatus.getAllByRole('definition').map((d) => d.textContent)).toEqual(['3', '1', '0', '1', '1', '1']);
    await screen.findByRole('link', { name: '2 recent alerts' });
    expect(fleetRows()).toEqual([
      {
        Vehicle: 'veh-001',
        'SoC (%)': '80.0',
        'Pack voltage (V)': '371.3',
        'Pack current (A)': '-12.5',
        'Hottest cell (°C)': '31.2',
        'Speed (km/h)': '52',
        'Last message': '4 s ago',
        Alerts: '2',
      },
      expect.objectContaining({ Vehicle: 'veh-002', 'Last message': '3 min ago', Alerts: '—' }),
    ]);
    const fleetRequests = () => requests.filter((r) => r.url.pathname === '/vehicles').map((r) => r.url.search);
    expect(fleetRequests(), 'one page, not the fleet').toEqual(['?limit=50']);

    await user.click(screen.getByRole('button', { name: 'Show more vehicles' }));
    expect(await screen.findByText('3 vehicles shown')).toBeTruthy();
    expect(fleetRows()[2]).toEqual(expect.objectContaining({ Vehicle: 'veh-010', 'SoC (%)': '12.3', 'Speed (km/h)': '0' }));
    expect(screen.getByRole('link', { name: 'veh-010' }).getAttribute('href')).toBe('#/vehicles/veh-010?range=1h');
    expect(screen.queryByRole('button', { name: 'Show more vehicles' })).toBeNull();
    expect(fleetRequests().slice(1)).toEqual(['?limit=50', '?limit=50&after=veh-002']);
  });

  it('sorts the whole fleet on the server by SoC either way, the shown rows by any column, and searches by id prefix on the server, keeping all in the URL', async () => {
    const fleet = [vehicle('veh-001', { soc_pct: 50 }), vehicle('veh-002', { soc_pct: 90 }), vehicle('veh-003', { soc_pct: 70 })];
    const requests = stubApi({
      'GET /vehicles': ({ url }: { url: URL }) => {
        const sort = url.searchParams.get('sort');
        const sorted = fleet.slice();
        if (sort === 'soc_pct') sorted.sort((a, b) => a.soc_pct - b.soc_pct);
        if (sort === '-soc_pct') sorted.sort((a, b) => b.soc_pct - a.soc_pct);
        // One vehicle a page while sorted: the order is the server's, page by page.
        const page = sort ? sorted.slice(0, 1) : sorted;
        return { vehicles: page.filter((v) => v.vehicle_id.startsWith(url.searchParams.get('prefix') ?? '')), next: null };
      },
      'GET /alerts': { alerts: [] },
      'GET /fleet/counts': { total: 3, driving: 0, charging: 0, parked: 3, silent: 0, alerting: 0 },
    });
    const sorts = () => requests.filter((r) => r.url.pathname === '/vehicles').map((r) => r.url.searchParams.get('sort'));
    const user = userEvent.setup();
    renderFleet();
    await screen.findByText('3 vehicles shown');

    // The table is drawn anew for each order the server sorts in: find its header each time.
    const soc = () => screen.getByRole('button', { name: 'SoC (%)' });
    await user.click(soc());
    await waitFor(() => expect(fleetRows().map((r) => r.Vehicle)).toEqual(['veh-001']));
    expect(screen.getByRole('columnheader', { name: 'SoC (%)' }).getAttribute('aria-sort')).toBe('ascending');
    await user.click(soc());
    await waitFor(() => expect(fleetRows().map((r) => r.Vehicle)).toEqual(['veh-002']));
    expect(window.location.hash).toBe('#/?sort=-soc_pct');
    expect(sorts()).toEqual([null, 'soc_pct', '-soc_pct']);

    await user.click(screen.getByRole('button', { name: 'Pack voltage (V)' }));
    await screen.findByText('3 vehicles shown');
    expect(sorts().at(-1), 'a column the server does not sort by sorts the shown rows').toBe(null);

    await user.click(soc());
    await user.type(screen.getByRole('searchbox', { name: 'Search vehicles by id prefix' }), 'veh-003');
    expect(await screen.findByText('1 vehicle shown')).toBeTruthy();
    expect(fleetRows().map((r) => r.Vehicle)).toEqual(['veh-003']);
    expect(window.location.hash).toBe('#/?q=veh-003&sort=soc_pct');
    const searched = requests.filter((r) => r.url.searchParams.get('prefix') === 'veh-003');
    expect(searched.length).toBeGreaterThan(0);
    expect(searched.every((r) => !r.url.searchParams.has('sort')), 'a search sorts its rows, not the fleet').toBe(true);

    await user.click(screen.getByRole('button', { name: 'Show only parked vehicles' }));
    expect(window.location.hash).toBe('#/?q=veh-003&status=parked&sort=soc_pct');
    await screen.findByText('1 vehicle shown');
    expect(requests.some((r) => r.url.searchParams.get('status') === 'parked')).toBe(true);
    expect(screen.getByRole('button', { name: 'Show only parked vehicles' }).getAttribute('aria-pressed')).toBe('true');

    await user.click(screen.getByRole('button', { name: 'Show only alerting vehicles' }));
    expect(window.location.hash).toBe('#/?q=veh-003&status=alerting&sort=soc_pct');
    await waitFor(() => expect(requests.some((r) => r.url.searchParams.get('status') === 'alerting')).toBe(true));
  });

  it("shows the API's error as a sentence with what failed", async () => {
    stubApi({
      'GET /vehicles': json({ error: { status: 502, message: 'a table read failed (request r-42)', request_id: 'r-42' } }, 502),
      'GET /alerts': { alerts: [] },
      'GET /fleet/counts': { total: 3, driving: 0, charging: 0, parked: 3, silent: 0, alerting: 0 },
    });
    renderFleet();
    const error = await screen.findByRole('alert');
    expect(error.textContent).toBe('Could not load the fleet. a table read failed (request r-42)');
  });
});
