// @vitest-environment jsdom
import { render, screen, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';

import { App } from '../../App';
import { stubApi } from '../../test/stubApi';

vi.mock('uplot', () => import('../../test/fakeUplot'));

describe('the API docs', () => {
  it('show every operation of openapi.json with its parameters and answers', async () => {
    stubApi({
      'GET /openapi.json': {
        info: { title: 'Canopy API', version: '1.2.0' },
        paths: {
          '/vehicles': { get: { summary: 'Every vehicle', responses: { '200': { description: 'A page' }, '400': { description: 'Bad' } } } },
          '/vehicles/{id}/query': {
            post: {
              summary: 'History',
              parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
              requestBody: {},
              responses: { '200': { description: 'History' } },
            },
          },
        },
      },
    });
    window.history.replaceState(null, '', '/docs');
    render(<App config={{ auth: null }} />);
    expect(await screen.findByRole('heading', { level: 1, name: 'Canopy API' })).toBeTruthy();
    const operations = screen.getAllByRole('article');
    expect(operations.map((o) => within(o).getByRole('heading', { level: 2 }).textContent)).toEqual(['GET /vehicles', 'POST /vehicles/{id}/query']);
    expect(within(operations[1]!).getByRole('cell', { name: 'id *' })).toBeTruthy();
    expect(within(operations[1]!).getByText('Takes a JSON body (see openapi.json).')).toBeTruthy();
    expect(within(operations[0]!).getByText('400').getAttribute('title')).toBe('Bad');
  });
});
