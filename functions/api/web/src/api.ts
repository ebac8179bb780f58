// The API's answers as the console uses them (openapi.json is the reference),
// and the one client every request goes through: the access token, ETags,
// and errors turned into messages a person can read.

export interface VehicleState {
  vehicle_id: string;
  ts: string;
  seq: number;
  soc_pct: number;
  pack_voltage_v: number;
  pack_current_a: number;
  cell_voltage_min_v: number;
  cell_voltage_max_v: number;
  cell_temp_min_c: number;
  cell_temp_max_c: number;
  speed_kph: number;
  received_at_ms?: number | null;
  updated_at_ms: number;
}

export interface Alert {
  vehicle_id: string;
  rule: string;
  severity: string;
  measure: string;
  value: number;
  comparison: string;
  threshold: number;
  unit: string;
  ts: string;
  ts_us: number;
  seq: number;
}

/** A battery-swap station's latest status (kinds/station.toml; GET /stations). */
export interface StationState {
  kind: 'station';
  station_id: string;
  ts: string;
  seq: number;
  slots: number;
  batteries_available: number;
  charging: number;
  faulted: number;
  swaps_today: number;
  temperature_c: number;
  grid_power_kw: number;
  slot_soc_pct: number[];
  slot_temp_c: number[];
  received_at_ms?: number | null;
  updated_at_ms: number;
}

/** An alert of a declared device (a station): its kind and id instead of a vehicle's. */
export interface DeviceAlert extends Omit<Alert, 'vehicle_id'> {
  kind: string;
  device_id: string;
}

/** A device field over a range (GET /stations/{id}/history/{field}). */
export interface FieldHistory {
  station_id: string;
  field: string;
  unit: string;
  from_us: number;
  to_us: number;
  stats: { count: number; min: number; max: number; mean: number; stddev: number } | null;
  points: Point[];
}

export interface CatalogEntry {
  message: string;
  message_id: number;
  signal: string;
  unit: string;
  minimum?: number | null;
  maximum?: number | null;
  comment?: string | null;
}

export interface Point {
  ts_us: number;
  value: number;
}

/** Exact statistics of every value in the range (not only the points drawn). */
export interface RangeStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  stddev: number;
  /** Values outside the signal's DBC range (older API answers lack it). */
  out_of_range?: number;
  from_us: number;
  to_us: number;
  source: string;
}

export interface Series {
  message_name: string;
  signal_name: string;
  unit: string;
  source_points: number;
  downsampled: boolean;
  points: Point[];
  stats?: RangeStats | null;
}

export interface History {
  vehicle_id: string;
  from_us: number;
  to_us: number;
  series: Series[];
}

/** A contiguous period of telemetry (GET /vehicles/{id}/trips). */
export interface Trip {
  start: string;
  end: string;
  start_us: number;
  end_us: number;
  duration_s: number;
  samples: number;
  distance_km: number;
  energy_out_kwh: number;
  energy_in_kwh: number;
  soc_start_pct: number;
  soc_end_pct: number;
  cell_temp_max_c: number;
  alerts: Alert[];
}

export interface SignalRef {
  message_name: string;
  signal_name: string;
}

/** What the console needs to know before its first request. */
export interface ConsoleConfig {
  /** Cognito managed login; null where there is no sign-in (the local stack). */
  auth: { domain: string; client_id: string } | null;
  /** The live stream (wss://…); null or absent: this server's own /live. */
  live_url?: string | null;
}

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

export interface Client {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
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

export function createClient(base: string, token: () => string | null, fetchImpl: Fetch = fetch): Client {
  // Last answer and ETag per path: a poll that changes nothing costs a 304
  // and hands back the same object, so nothing re-renders.
  const cache = new Map<string, { etag: string; body: unknown }>();

  async function send<T>(path: string, init: RequestInit): Promise<T> {
    const headers = new Headers(init.headers);
    headers.set('Accept', 'application/json');
    const bearer = token();
    if (bearer) headers.set('Authorization', `Bearer ${bearer}`);
    const cached = init.method === 'GET' ? cache.get(path) : undefined;
    if (cached) headers.set('If-None-Match', cached.etag);
    let response: Response;
    try {
      response = await fetchImpl(base + path, { ...init, headers });
    } catch (e) {
      throw new ApiError(`the API could not be reached (${e instanceof Error ? e.message : String(e)})`, 0);
    }
    if (response.status === 304 && cached) return cached.body as T;
    if (!response.ok) throw await errorOf(response, path);
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`${path} answered something that is not JSON`, response.status);
    }
    const etag = response.headers.get('ETag');
    if (init.method === 'GET' && etag) cache.set(path, { etag, body });
    return body as T;
  }

  return {
    get: (path) => send(path, { method: 'GET' }),
    post: (path, body) =>
      send(path, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  };
}

/** Every vehicle, following `next` until the listing ends. */
export async function allVehicles(client: Client): Promise<VehicleState[]> {
  const out: VehicleState[] = [];
  let after: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const query: string = after ? `/vehicles?limit=100&after=${encodeURIComponent(after)}` : '/vehicles?limit=100';
    const answer = await client.get<{ vehicles: VehicleState[]; next: string | null }>(query);
    out.push(...answer.vehicles);
    after = answer.next;
    if (!after) break;
  }
  return out;
}

/** Every station, following `next` until the listing ends. */
export async function allStations(client: Client): Promise<StationState[]> {
  const out: StationState[] = [];
  let after: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const query: string = after ? `/stations?limit=100&after=${encodeURIComponent(after)}` : '/stations?limit=100';
    const answer = await client.get<{ stations: StationState[]; next: string | null }>(query);
    out.push(...answer.stations);
    after = answer.next;
    if (!after) break;
  }
  return out;
}

export const signalKey = (s: SignalRef): string => `${s.message_name}.${s.signal_name}`;

export function parseSignalKey(key: string): SignalRef | null {
  const dot = key.indexOf('.');
  if (dot <= 0 || dot === key.length - 1) return null;
  return { message_name: key.slice(0, dot), signal_name: key.slice(dot + 1) };
}
