import { describe, expect, it } from 'vitest';

import { allPages } from './paging';

describe('allPages', () => {
  it('follows the listing to its end', async () => {
    const asked: (string | undefined)[] = [];
    const pages: Record<string, { items: string[]; next: string | null }> = {
      first: { items: ['a', 'b'], next: 'b' },
      b: { items: ['c'], next: null },
    };
    const items = await allPages(async (after) => {
      asked.push(after);
      return pages[after ?? 'first']!;
    });
    expect(items).toEqual(['a', 'b', 'c']);
    expect(asked).toEqual([undefined, 'b']);
  });
});
