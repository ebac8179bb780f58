import { useEffect, useState } from 'react';

/** The time now, ticking every second: for "… ago" cells that age while nothing is fetched. */
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, []);
  return now;
}
