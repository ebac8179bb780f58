// The API's own description (GET /openapi.json).

import { http } from '../../lib/http';
import { useResource } from '../../lib/store';

/** An operation as the docs page shows it. */
export interface Operation {
  summary?: string;
  description?: string;
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: { type?: string } }[];
  requestBody?: unknown;
  responses?: Record<string, { description?: string; $ref?: string }>;
  security?: unknown[];
}

/** The parts of an OpenAPI 3.1 document the docs page reads. */
export interface OpenApi {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
}

export async function getOpenApi(): Promise<OpenApi> {
  // The document declares its own answer as any JSON: OpenApi says what the page reads.
  return (await http.get('/openapi.json')) as OpenApi;
}

export function useOpenApi() {
  return useResource('openapi', getOpenApi);
}
