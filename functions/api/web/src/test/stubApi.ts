// Component tests answer the console's requests from a table of routes: the
// global fetch is stubbed, so the real fetchers and HTTP client run.

import { vi } from 'vitest';

export interface Request {
  method: string;
  url: URL;
  body: unknown;
}

/** An answer: a JSON body (status 200), a Response, or a function of the request returning either. */
type Reply = unknown | Response | ((request: Request) => unknown);

/**
 * Stubs fetch with `routes`, keyed "METHOD /path" (the path without its
 * query); a request no route answers gets a 404 in the API's error shape.
 * Returns the requests made, in order.
 */
export function stubApi(routes: Record<string, Reply>): Request[] {
  const requests: Request[] = [];
  vi.stubGlobal('fetch', async (input: string, init: RequestInit = {}) => {
    const method = init.method ?? 'GET';
    const url = new URL(input, window.location.origin);
    const request = { method, url, body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined };
    requests.push(request);
    const route = `${method} ${url.pathname}`;
    if (!(route in routes)) {
      return json({ error: { status: 404, message: `no route ${route} in the test` } }, 404);
    }
    const reply = routes[route];
    const answer = typeof reply === 'function' ? (reply as (r: Request) => unknown)(request) : reply;
    return answer instanceof Response ? answer : json(answer);
  });
  return requests;
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
