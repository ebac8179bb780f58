import type { StationState } from '../../api/types';
import { num } from '../../lib/format';
import { slots } from './availability';

/** A station's slots as tiles: each battery's charge as a bar, and its temperature. */
export function Slots({ station }: { station: Pick<StationState, 'slot_soc_pct' | 'slot_temp_c'> }) {
  return (
    <ol className="slots" aria-label="Slots">
      {slots(station).map((slot) => (
        <li key={slot.index} className="slot" data-charged={slot.charged ? 'true' : 'false'} title={`Slot ${slot.index + 1}`}>
          <span className="bar" style={{ height: `${Math.max(0, Math.min(100, slot.soc_pct))}%` }} aria-hidden="true" />
          <span className="soc">{num(slot.soc_pct, 0)} %</span>
          <span className="muted">{num(slot.temp_c)} °C</span>
        </li>
      ))}
    </ol>
  );
}
