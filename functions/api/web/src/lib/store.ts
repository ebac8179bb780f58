// Server state in one place: every answer the console holds, by key. Pages
// read it through useResource; a poll or a second page asking for the same
// key shares the one request in flight.

import { useEffect, useSyncExternalStore } from 'react';

export interface Resource<T> {
  data?: T;
  error?: Error;
  loading: boolean;
}

const IDLE: Resource<never> = { loading: false };
const entries = new Map<string, Resource<unknown>>();
const inFlight = new Map<string, Promise<void>>();
const listeners = new Set<() => void>();

function set(key: string, next: Resource<unknown>): void {
  entries.set(key, next);
  for (const l of listeners) l();
}

/** Loads `key` with `load` unless a load of it is already running. */
export function refresh<T>(key: string, load: () => Promise<T>): Promise<void> {
  const running = inFlight.get(key);
  if (running) return running;
  const previous = entries.get(key);
  set(key, { ...previous, loading: true });
  const done = load().then(
    (data) => set(key, { data, loading: false }),
    (error: unknown) =>
      // The last good answer stays beside the error: a failed poll does not blank a page.
      set(key, { data: previous?.data, error: error instanceof Error ? error : new Error(String(error)), loading: false }),
  );
  const tracked = done.finally(() => inFlight.delete(key));
  inFlight.set(key, tracked);
  return tracked;
}

/**
 * Changes a loaded answer in place (a pushed update): `update` gets what is
 * held and returns what replaces it; an answer not loaded yet is left alone,
 * its first load brings the news anyway.
 */
export function patch<T>(key: string, update: (data: T) => T): void {
  const entry = entries.get(key) as Resource<T> | undefined;
  if (entry?.data === undefined) return;
  set(key, { ...entry, data: update(entry.data) });
}

/** {@link patch} for every loaded answer whose key starts with `prefix`. */
export function patchEach<T>(prefix: string, update: (data: T, key: string) => T): void {
  for (const key of [...entries.keys()].filter((k) => k.startsWith(prefix))) patch<T>(key, (data) => update(data, key));
}

/** What is held for `key` now, outside a component. */
export function peek<T>(key: string): T | undefined {
  return entries.get(key)?.data as T | undefined;
}

/** Forgets every answer (sign-out, tests). */
export function clear(): void {
  entries.clear();
  for (const l of listeners) l();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * The answer for `key` (null: nothing to load yet), loaded on first use and
 * again every `pollMs` when given. `load` must depend on `key` only.
 */
export function useResource<T>(key: string | null, load: () => Promise<T>, pollMs?: number): Resource<T> {
  const resource = useSyncExternalStore(subscribe, () => (key ? entries.get(key) : undefined) ?? IDLE) as Resource<T>;
  useEffect(() => {
    if (!key) return;
    void refresh(key, load);
    if (!pollMs) return;
    const timer = setInterval(() => {
      // A hidden tab does not poll.
      if (typeof document === 'undefined' || document.visibilityState !== 'hidden') void refresh(key, load);
    }, pollMs);
    return () => clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- load is a function of key
  }, [key, pollMs]);
  return resource;
}
