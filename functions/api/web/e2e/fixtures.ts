// What every console test gets: the stack's API to compare the page with,
// and a page that fails its test on any script error.

import { test as base, expect } from '@playwright/test';

/** The stack's API, read directly: what the page must agree with. */
export class Api {
  constructor(readonly base: string) {}

  async json<T>(path: string, init?: RequestInit): Promise<T> {
    const response = await fetch(this.base + path, init);
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return (await response.json()) as T;
  }
}

export const test = base.extend<{ api: Api }>({
  api: async ({ baseURL }, use) => {
    if (!baseURL) throw new Error('no stack: e2e/global-setup.ts sets CANOPY_E2E_API');
    await use(new Api(baseURL));
  },
  page: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await use(page);
    expect(errors, 'script errors').toEqual([]);
  },
});

export { expect };
