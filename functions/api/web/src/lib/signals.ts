// A signal's name as the console writes it, in URLs and chart labels:
// "Message.Signal".

import type { SignalRef } from '../api/types';

export const signalKey = (s: SignalRef): string => `${s.message_name}.${s.signal_name}`;

export function parseSignalKey(key: string): SignalRef | null {
  const dot = key.indexOf('.');
  if (dot <= 0 || dot === key.length - 1) return null;
  return { message_name: key.slice(0, dot), signal_name: key.slice(dot + 1) };
}
