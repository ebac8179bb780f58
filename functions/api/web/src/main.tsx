import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { createClient, type ConsoleConfig } from './api';
import { App } from './App';
import { ensureSignedIn, token } from './auth';
import { Context } from './context';
import { startLive } from './live';
import './styles.css';

async function start(root: HTMLElement) {
  const view = createRoot(root);
  let config: ConsoleConfig = { auth: null };
  try {
    const response = await fetch('/config.json');
    if (response.ok) config = (await response.json()) as ConsoleConfig;
    if (!(await ensureSignedIn(config))) return;
  } catch (e) {
    view.render(
      <div className="error" role="alert">
        <strong>The console could not start.</strong> {e instanceof Error ? e.message : String(e)}
      </div>,
    );
    return;
  }
  const client = createClient('', () => token());
  startLive(config, () => token());
  view.render(
    <StrictMode>
      <Context.Provider value={{ client, config }}>
        <App />
      </Context.Provider>
    </StrictMode>,
  );
}

const root = document.getElementById('root');
if (root) void start(root);
