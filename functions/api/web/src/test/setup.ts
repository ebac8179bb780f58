// After each test: nothing rendered, no answer held, no stub left for the next.

import { afterEach, vi } from 'vitest';

import { clear } from '../lib/store';

// jsdom has no ResizeObserver; the charts observe their width.
if (typeof window !== 'undefined' && window.ResizeObserver === undefined) {
  window.ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}

afterEach(async () => {
  if (typeof document !== 'undefined') {
    const { cleanup } = await import('@testing-library/react');
    cleanup();
    window.history.replaceState(null, '', '/');
  }
  clear();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});
