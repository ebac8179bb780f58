// The one client every API request goes through: the access token, ETags,
// and errors turned into messages a person can read. Its routes are the
// OpenAPI document's: a fetcher names a route of the document, its path
// and query parameters, and gets that route's declared answer, so tsc checks
// every fetcher against the document.

import type { paths } from '../api/schema';
import type { Answer } from '../api/types';
import { token } from './auth';

type Method = 'get' | 'post';

/** The document's routes that answer `method`. */
export type Route<M extends Method> = { [P in keyof paths]: paths[P][M] extends undefined ? never : P }[keyof paths];

type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

type RouteParameters<P extends keyof paths, M extends Method> = Operation<P, M> extends { parameters: infer X } ? X : never;

type RequestBody<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody: { content: { 'application/json': infer Body } } } ? Body : never;

/** A route's path and query parameters as the document declares them, and its JSON body for a POST. */
export type Options<P extends keyof paths, M extends Method> = Omit<RouteParameters<P, M>, 'header' | 'cookie'> &
  (M extends 'post' ? { body: RequestBody<P, M> } : unknown);

/** The options argument, optional where the route needs none. */
type OptionsArgument<P extends keyof paths, M extends Method> =
  object extends Options<P, M> ? [options?: Options<P, M>] : [options: Options<P, M>];

/** A request that failed, with the API's own message when it sent one. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** A file a route answered: its bytes, the name it suggests, and its headers. */
export interface FileAnswer {
  blob: Blob;
  name: string | null;
  headers: Headers;
}

export interface Client {
  get<P extends Route<'get'>>(route: P, ...options: OptionsArgument<P, 'get'>): Promise<Answer<P, 'get'>>;
  post<P extends Route<'post'>>(route: P, options: Options<P, 'post'>): Promise<Answer<P, 'post'>>;
  /** A route that answers a file (a CAN log), not JSON. */
  file<P extends Route<'get'>>(route: P, ...options: OptionsArgument<P, 'get'>): Promise<FileAnswer>;
}

/** The file name a Content-Disposition header suggests (`attachment; filename="a.log"`). */
export function fileName(disposition: string | null): string | null {
  return disposition?.match(/filename="([^"]+)"/)?.[1] ?? null;
}

/** The message an error answer carries: `{"error": {"message", "request_id"?}}`. */
export async function errorOf(response: Response, path: string): Promise<ApiError> {
  let message = `${response.status} ${response.statusText || 'error'} from ${path}`;
  let requestId: string | undefined;
  try {
    const body = (await response.json()) as { error?: { message?: string; request_id?: string } };
    if (body.error?.message) message = body.error.message;
    requestId = body.error?.request_id;
  } catch {
    // Not JSON (a proxy's page, an empty body): the status line says enough.
  }
  if (response.status === 429) {
    const retry = response.headers.get('Retry-After');
    if (retry && !message.includes('retry')) message += ` (retry in ${retry} s)`;
  }
  return new ApiError(message, response.status, requestId);
}

/** `route` with its `{name}`s filled in, and the query's defined parameters appended in order. */
export function urlOf(route: string, options: { path?: object; query?: object } = {}): string {
  const values = new Map(Object.entries(options.path ?? {}));
  const path = route.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(values.get(name) ?? '')));
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== null) query.set(name, String(value));
  }
  const search = query.toString();
  return search ? `${path}?${search}` : path;
}

// Reads the global fetch on each call, so that a test can stub it after the client is made.
const globalFetch: Fetch = (input, init) => fetch(input, init);

export function createClient(base: string, bearer: () => string | null, fetchImpl: Fetch = globalFetch): Client {
  // Last answer and ETag per path: a poll that changes nothing costs a 304
  // and hands back the same object, so nothing re-renders.
  const cache = new Map<string, { etag: string; body: unknown }>();

  async function fetched(path: string, init: RequestInit, accept: string, etag?: string): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('Accept', accept);
    const access = bearer();
    if (access) headers.set('Authorization', `Bearer ${access}`);
    if (etag) headers.set('If-None-Match', etag);
    try {
      return await fetchImpl(base + path, { ...init, headers });
    } catch (e) {
      throw new ApiError(`the API could not be reached (${e instanceof Error ? e.message : String(e)})`, 0);
    }
  }

  async function send(path: string, init: RequestInit): Promise<unknown> {
    const cached = init.method === 'GET' ? cache.get(path) : undefined;
    const response = await fetched(path, init, 'application/json', cached?.etag);
    if (response.status === 304 && cached) return cached.body;
    if (!response.ok) throw await errorOf(response, path);
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`${path} answered something that is not JSON`, response.status);
    }
    const etag = response.headers.get('ETag');
    if (init.method === 'GET' && etag) cache.set(path, { etag, body });
    return body;
  }

  // The answer's type is the document's: the one place a JSON body is taken as typed.
  return {
    get: (route, ...[options]) => send(urlOf(route, options), { method: 'GET' }) as Promise<Answer<typeof route, 'get'>>,
    post: (route, options) =>
      send(urlOf(route, options as { path?: object }), {
        method: 'POST',
        body: JSON.stringify(options.body),
        headers: { 'Content-Type': 'application/json' },
      }) as Promise<Answer<typeof route, 'post'>>,
    file: async (route, ...[options]) => {
      const path = urlOf(route, options);
      const response = await fetched(path, { method: 'GET' }, '*/*');
      if (!response.ok) throw await errorOf(response, path);
      return { blob: await response.blob(), name: fileName(response.headers.get('Content-Disposition')), headers: response.headers };
    },
  };
}

/** The console's client: this server's API, with the signed-in user's token. */
export const http: Client = createClient('', () => token());
