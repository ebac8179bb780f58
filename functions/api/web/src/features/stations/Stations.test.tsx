// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { App } from '../../App';
import { stubApi } from '../../test/stubApi';
import { stopClock, station } from '../../test/fixtures';

vi.mock('uplot', () => import('../../test/fakeUplot'));

beforeEach(stopClock);

describe('the stations page', () => {
  it('shows each station of every page, the empty and the scarce first', async () => {
    const requests = stubApi({
      'GET /stations': ({ url }: { url: URL }) =>
        url.searchParams.get('after')
          ? { stations: [station('st-003', 0, 2)], next: null }
          : { stations: [station('st-001', 6, 8), station('st-002', 2, 8)], next: 'st-002' },
    });
    window.history.replaceState(null, '', '/#/stations');
    render(<App config={{ auth: null }} />);

    expect(await screen.findByText('3 stations · 1 without a charged battery')).toBeTruthy();
    const cards = within(screen.getByRole('main')).getAllByRole('listitem');
    expect(cards.map((c) => within(c).getAllByRole('link')[0]!.textContent)).toEqual(['st-003', 'st-002', 'st-001']);
    expect(cards.map((c) => within(c).getByLabelText(/batteries charged$/).getAttribute('aria-label'))).toEqual([
      '0 of 2 batteries charged',
      '2 of 8 batteries charged',
      '6 of 8 batteries charged',
    ]);
    expect(cards.map((c) => within(c).getByText(/^(no charged battery|few charged|available)$/).textContent)).toEqual([
      'no charged battery',
      'few charged',
      'available',
    ]);
    const first = cards[0]!;
    expect(within(first).getByText('21.5 °C')).toBeTruthy();
    expect(within(first).getByText('40.3 kW')).toBeTruthy();
    expect(within(first).getByText('last status 20 s ago')).toBeTruthy();
    expect(within(first).getByRole('link').getAttribute('href')).toBe('#/stations/st-003?range=1d');
    expect(requests.map((r) => r.url.search)).toEqual(['?limit=100', '?limit=100&after=st-002']);
  });
});
