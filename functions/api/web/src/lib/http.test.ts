import { describe, expect, it } from 'vitest';

import { ApiError, createClient, fileName, urlOf } from './http';

type Call = { url: string; init?: RequestInit; headers: Headers };

function fakeFetch(answers: Response[]) {
  const calls: Call[] = [];
  const fetchImpl = async (url: string, init?: RequestInit) => {
    calls.push({ url, init, headers: new Headers(init?.headers) });
    const next = answers.shift();
    if (!next) throw new TypeError('Failed to fetch');
    return next;
  };
  return { calls, fetchImpl };
}

const json = (body: unknown, init: ResponseInit = {}) =>
  new Response(JSON.stringify(body), { ...init, headers: { 'Content-Type': 'application/json', ...(init.headers ?? {}) } });

describe('the client', () => {
  it('sends the token and revalidates with the ETag, handing back the same object on a 304', async () => {
    const { calls, fetchImpl } = fakeFetch([json({ vehicles: [], next: null }, { headers: { ETag: '"t1"' } }), new Response(null, { status: 304 })]);
    const client = createClient('http://api', () => 'tok', fetchImpl);
    const first = await client.get('/vehicles');
    const second = await client.get('/vehicles');
    expect(second).toBe(first);
    expect(calls[0]!.url).toBe('http://api/vehicles');
    expect(calls[0]!.headers.get('Authorization')).toBe('Bearer tok');
    expect(calls[0]!.headers.get('If-None-Match')).toBeNull();
    expect(calls[1]!.headers.get('If-None-Match')).toBe('"t1"');
  });

  it("turns the API's error into its message, with the request id", async () => {
    const { fetchImpl } = fakeFetch([
      json({ error: { status: 502, message: 'a table read failed (request r-1)', request_id: 'r-1' } }, { status: 502 }),
      new Response('<html>gateway</html>', { status: 503, statusText: 'Service Unavailable' }),
      json({ error: { status: 429, message: 'too many' } }, { status: 429, headers: { 'Retry-After': '12' } }),
    ]);
    const client = createClient('', () => null, fetchImpl);
    const e1 = await client.get('/vehicles').catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ApiError);
    expect((e1 as ApiError).message).toBe('a table read failed (request r-1)');
    expect((e1 as ApiError).requestId).toBe('r-1');
    const e2 = (await client.get('/signals').catch((e: unknown) => e)) as ApiError;
    expect(e2.message).toBe('503 Service Unavailable from /signals');
    const e3 = (await client.get('/signals').catch((e: unknown) => e)) as ApiError;
    expect(e3.message).toBe('too many (retry in 12 s)');
    const e4 = (await client.get('/signals').catch((e: unknown) => e)) as ApiError;
    expect(e4.message).toMatch(/could not be reached/);
    expect(e4.status).toBe(0);
  });

  it('fetches a file with its name and headers, and its errors as JSON ones', async () => {
    const { calls, fetchImpl } = fakeFetch([
      new Response('(1.000000) can0 100#01\n', {
        headers: { 'Content-Disposition': 'attachment; filename="veh-1_20231114T221320Z.log"', 'Canopy-Frames': '1' },
      }),
      json({ error: { status: 400, message: 'from: a window spans at most a day' } }, { status: 400 }),
    ]);
    const client = createClient('', () => 'tok', fetchImpl);
    const file = await client.file('/vehicles/{id}/raw', { path: { id: 'veh-1' }, query: { format: 'candump' } });
    expect(calls[0]!.url).toBe('/vehicles/veh-1/raw?format=candump');
    expect(calls[0]!.headers.get('Authorization')).toBe('Bearer tok');
    expect(file.name).toBe('veh-1_20231114T221320Z.log');
    expect(file.headers.get('Canopy-Frames')).toBe('1');
    expect(await file.blob.text()).toBe('(1.000000) can0 100#01\n');
    const e = (await client.file('/vehicles/{id}/raw', { path: { id: 'veh-1' } }).catch((e: unknown) => e)) as ApiError;
    expect(e.message).toBe('from: a window spans at most a day');
    expect(fileName(null)).toBeNull();
  });

  it("fills in a route's parameters and posts its body as JSON", async () => {
    const { calls, fetchImpl } = fakeFetch([json({ vehicle_id: 'v 1', from_us: 0, to_us: 1, series: [] })]);
    const client = createClient('', () => null, fetchImpl);
    await client.post('/vehicles/{id}/query', {
      path: { id: 'v 1' },
      body: { signals: [{ message_name: 'M', signal_name: 'S' }], max_points: 10 },
    });
    expect(calls[0]!.url).toBe('/vehicles/v%201/query');
    expect(calls[0]!.init?.method).toBe('POST');
    expect(calls[0]!.headers.get('Content-Type')).toBe('application/json');
    expect(JSON.parse(String(calls[0]!.init?.body))).toEqual({ signals: [{ message_name: 'M', signal_name: 'S' }], max_points: 10 });
  });
});

describe('urlOf', () => {
  it('appends the defined query parameters in order', () => {
    expect(urlOf('/vehicles', { query: { limit: 100, after: undefined } })).toBe('/vehicles?limit=100');
    expect(urlOf('/stations/{id}/history/{field}', { path: { id: 'st-1', field: 'charging' }, query: { to: '2026-01-01T00:00:00.000Z' } })).toBe(
      '/stations/st-1/history/charging?to=2026-01-01T00%3A00%3A00.000Z',
    );
  });
});
