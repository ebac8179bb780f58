import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import type { ConsoleConfig } from './api/types';
import { App } from './App';
import { ensureSignedIn, token } from './lib/auth';
import { startLive } from './lib/live';
import './styles.css';

/**
 * GET /config.json, before sign-in and so outside the API client: a server
 * that has none asks for no sign-in.
 */
async function getConfig(): Promise<ConsoleConfig> {
  const response = await fetch('/config.json');
  // Typed as the document declares /config.json's answer.
  return response.ok ? ((await response.json()) as ConsoleConfig) : { auth: null };
}

async function start(root: HTMLElement) {
  const view = createRoot(root);
  let config: ConsoleConfig;
  try {
    config = await getConfig();
    if (!(await ensureSignedIn(config))) return;
  } catch (e) {
    view.render(
      <div className="error" role="alert">
        <strong>The console could not start.</strong> {e instanceof Error ? e.message : String(e)}
      </div>,
    );
    return;
  }
  startLive(config, () => token());
  view.render(
    <StrictMode>
      <App config={config} />
    </StrictMode>,
  );
}

const root = document.getElementById('root');
if (root) void start(root);
