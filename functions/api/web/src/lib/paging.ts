// The API's listings come in pages of at most 100, each naming the next.

export interface Page<T> {
  items: T[];
  next: string | null | undefined;
}

/** Every item of a listing, reading page after page until one names no next. */
export async function allPages<T>(read: (after: string | undefined) => Promise<Page<T>>): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  // A bound, so that a server naming pages forever cannot hang the console.
  for (let page = 0; page < 1000; page++) {
    const answer = await read(after);
    out.push(...answer.items);
    if (!answer.next) break;
    after = answer.next;
  }
  return out;
}
