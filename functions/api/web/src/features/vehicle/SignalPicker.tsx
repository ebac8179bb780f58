import { useState } from 'react';

import type { CatalogEntry } from '../../api/types';
import { MAX_CHARTS } from '../../lib/route';

interface Props {
  catalog: readonly CatalogEntry[];
  selected: readonly string[];
  onChange: (selected: string[]) => void;
}

/** The catalog with a search box; up to MAX_CHARTS signals ticked. */
export function SignalPicker({ catalog, selected, onChange }: Props) {
  const [search, setSearch] = useState('');
  const needle = search.trim().toLowerCase();
  const shown = catalog.filter(
    (e) => !needle || `${e.message}.${e.signal} ${e.comment ?? ''}`.toLowerCase().includes(needle),
  );
  const full = selected.length >= MAX_CHARTS;
  const toggle = (key: string) =>
    onChange(selected.includes(key) ? selected.filter((k) => k !== key) : [...selected, key]);
  return (
    <fieldset className="picker">
      <legend>
        Signals <span className="muted">({selected.length} of {MAX_CHARTS})</span>
      </legend>
      <input type="search" placeholder="Search signals" aria-label="Search signals" value={search} onChange={(e) => setSearch(e.target.value)} />
      <ul>
        {shown.map((e) => {
          const key = `${e.message}.${e.signal}`;
          const checked = selected.includes(key);
          return (
            <li key={key}>
              <label title={e.comment ?? undefined}>
                <input type="checkbox" checked={checked} disabled={!checked && full} onChange={() => toggle(key)} />
                <span className="signal">{e.signal}</span> <span className="muted">{e.message}{e.unit ? ` · ${e.unit}` : ''}</span>
              </label>
            </li>
          );
        })}
        {shown.length === 0 && <li className="muted">No signal matches.</li>}
      </ul>
    </fieldset>
  );
}
