// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';

import { alert, trip } from '../../test/fixtures';
import { TripRows } from './TripRows';
import { tripRange } from './trips';

const OLDER = trip(1_000, 1_042, { distance_km: 0.35, energy_out_kwh: 0.1, energy_in_kwh: 0 });
const NEWER = trip(5_000, 8_900, { alerts: [alert('veh-001', 6_000e6) as never, alert('veh-001', 7_000e6) as never] });

describe('the trip list', () => {
  it('shows each trip newest first, with what it took and how far it went', () => {
    render(<TripRows trips={[OLDER, NEWER]} shown={{ fromMs: 0, toMs: 1 }} onOpen={() => {}} />);
    const rows = screen.getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell').slice(1).map((c) => c.textContent))).toEqual([
      ['1 h 05 min', '11.7 km', '2.50 / 0.25 kWh', '82.0 → 79.5 %', '33.0 °C', '2'],
      ['42 s', '0.3 km', '0.10 / 0.00 kWh', '82.0 → 79.5 %', '33.0 °C', '—'],
    ]);
    expect(rows.some((r) => r.getAttribute('aria-current'))).toBe(false);
  });

  it('opens the trip clicked and marks the one shown', async () => {
    const user = userEvent.setup();
    const onOpen = vi.fn();
    render(<TripRows trips={[OLDER, NEWER]} shown={tripRange(OLDER)} onOpen={onOpen} />);
    const [newer, older] = screen.getAllByRole('row').slice(1) as [HTMLElement, HTMLElement];
    expect(older.getAttribute('aria-current')).toBe('true');
    await user.click(within(newer).getByRole('button', { name: /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/ }));
    expect(onOpen).toHaveBeenCalledWith(NEWER);
  });

  it('says when there is none', () => {
    render(<TripRows trips={[]} shown={{ fromMs: 0, toMs: 1 }} onOpen={() => {}} />);
    expect(screen.getByText('No trips in the last week.')).toBeTruthy();
  });
});
