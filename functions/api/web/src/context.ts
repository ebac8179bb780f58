import { createContext, useContext } from 'react';

import type { Client, ConsoleConfig } from './api';

export interface ConsoleContext {
  client: Client;
  config: ConsoleConfig;
}

export const Context = createContext<ConsoleContext | null>(null);

export function useConsole(): ConsoleContext {
  const value = useContext(Context);
  if (!value) throw new Error('useConsole outside the console');
  return value;
}
