// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';

import { App } from '../../App';
import { stubApi } from '../../test/stubApi';
import { NOW_MS, alert } from '../../test/fixtures';

vi.mock('uplot', () => import('../../test/fakeUplot'));

function renderAlerts() {
  window.history.replaceState(null, '', '/#/alerts');
  render(<App config={{ auth: null }} />);
}

describe('the alerts page', () => {
  it("lists the fleet's recent alerts as the API orders them, each linking its vehicle", async () => {
    const requests = stubApi({
      'GET /alerts': {
        alerts: [
          alert('veh-002', NOW_MS * 1000, { rule: 'low-soc', severity: 'warning', measure: 'soc_pct', value: 9.5, comparison: '<', threshold: 10, unit: '%' }),
          alert('veh-001', (NOW_MS - 60_000) * 1000),
        ],
      },
    });
    renderAlerts();
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Alerts');
    const table = (await screen.findByRole('columnheader', { name: 'Rule' })).closest('table')!;
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell').slice(1).map((c) => c.textContent))).toEqual([
      ['veh-002', 'low-soc', 'warning', 'soc_pct 9.50 % < 10.00'],
      ['veh-001', 'over-temperature', 'critical', 'cell_temp_max_c 61.50 °C > 60.00'],
    ]);
    expect(within(rows[1]!).getByRole('link', { name: 'veh-001' }).getAttribute('href')).toBe('#/vehicles/veh-001?range=1h');
    expect(requests[0]?.url.search).toBe('?limit=100');
    expect(screen.getByRole('link', { name: 'Alerts' }).getAttribute('aria-current')).toBe('page');
  });

  it('reads older pages by the cursor the API gave, on request', async () => {
    const requests = stubApi({
      'GET /alerts': (r: { url: URL }) =>
        r.url.searchParams.get('after') === 'page-2'
          ? { alerts: [alert('veh-003', (NOW_MS - 120_000) * 1000)], next: null }
          : { alerts: [alert('veh-001', NOW_MS * 1000)], next: 'page-2' },
    });
    renderAlerts();
    const older = await screen.findByRole('button', { name: 'Show older alerts' });
    older.click();
    expect(await screen.findByRole('link', { name: 'veh-003' })).toBeTruthy();
    expect(screen.getByRole('link', { name: 'veh-001' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Show older alerts' })).toBeNull();
    expect(requests.map((r) => r.url.search)).toEqual(['?limit=100', '?limit=100&after=page-2']);
  });

  it('says when there is none', async () => {
    stubApi({ 'GET /alerts': { alerts: [] } });
    renderAlerts();
    expect(await screen.findByText('No alerts.')).toBeTruthy();
  });
});
