// The console's names for the API's answers, taken from the OpenAPI document
// (schema.d.ts, which `npm run gen:api` generates from ../openapi.json), so
// a change of the document fails tsc wherever the console reads it.

import type { components, paths } from './schema';

type Schemas = components['schemas'];

/** A route's JSON answer on success, as the document declares it. */
export type Answer<P extends keyof paths, M extends 'get' | 'post' = 'get'> =
  NonNullable<paths[P][M]> extends { responses: { 200: { content: { 'application/json': infer Body } } } } ? Body : never;

export type VehicleState = Schemas['State'];

export type Point = Schemas['Point'];

/** Exact statistics of every value in the range (not only the points drawn). */
export type RangeStats = Schemas['Stats'];

export type Series = Schemas['Series'];

/** Several signals' history (POST /vehicles/{id}/query). */
export type History = Schemas['SignalsHistory'];

export type SignalRef = Schemas['SignalRef'];

export type CatalogEntry = Schemas['CatalogEntry'];

/** A contiguous period of telemetry (GET /vehicles/{id}/trips). */
export type Trip = Schemas['Trip'];

/** An alert: a vehicle's (vehicle_id) or a declared device's (kind and device_id). */
export type Alert = Schemas['Alert'];

/** A battery-swap station's latest status (kinds/station.toml; GET /stations/{id}). */
export type StationState = Answer<'/stations/{id}'>;

/** A number field of a station, as its history's route names them. */
export type StationField = NonNullable<paths['/stations/{id}/history/{field}']['get']>['parameters']['path']['field'];

/** A station's field over a range (GET /stations/{id}/history/{field}). */
export type FieldHistory = Answer<'/stations/{id}/history/{field}'>;

/** What the console needs to know before its first request (GET /config.json). */
export type ConsoleConfig = Schemas['ConsoleConfig'];
