// The local stack with a short simulated fleet (`canopy-local demo`): the
// API, the console it serves, moto and the MQTT broker, on free ports.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, where canopy-local finds its kinds, DBCs and seeds. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The canopy-local binary, and beside it the tools it and the tests call (canopy-edge, device-keys). */
export const LOCAL = process.env.CANOPY_LOCAL ?? join(REPO, 'target/debug/canopy-local');

/** Vehicles the demo simulates; veh-001 overheats. */
export const VEHICLES = 3;

export interface Stack {
  /** The API's base URL, which also serves the console. */
  api: string;
  /** moto's endpoint, for the device-keys tool. */
  moto: string;
  stop(): Promise<void>;
}

/** The demo's stack: {@link VEHICLES} simulated vehicles through it. */
export const DEMO = ['demo', '--vehicles', String(VEHICLES), '--minutes', '10'];

/**
 * Starts a stack (`canopy-local` with `command`: the demo's, or `up` with its
 * options) on free ports, and resolves once its summary says it is up.
 */
export async function startStack(command: string[] = DEMO): Promise<Stack> {
  const work = mkdtempSync(join(tmpdir(), 'canopy-e2e-'));
  const child = spawn(LOCAL, [...command, '--mqtt-port', '0', '--api-port', '0', '--env-file', join(work, 'env')], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const summary = await new Promise<string>((resolveUp, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stack was not up in 8 minutes:\n${stdout}\n${stderr}`)), 8 * 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (/^API\s+http:\/\/\S+/m.test(stdout) && stdout.includes('Up until Ctrl-C')) {
        clearTimeout(timer);
        resolveUp(stdout);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${LOCAL} did not start (${e.message}): set CANOPY_LOCAL to the canopy-local binary`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`canopy-local exited with ${code}:\n${stdout}\n${stderr}`));
    });
  });
  const api = summary.match(/^API\s+(http:\/\/\S+)/m)?.[1];
  const moto = summary.match(/^moto \(.*\)\s+(http:\/\/\S+)/m)?.[1];
  if (!api || !moto) throw new Error(`the stack's summary names no API or moto:\n${summary}`);
  return { api, moto, stop: () => stop(child) };
}

/** Ctrl-C, as a person would, and the exit it leads to. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGINT');
  });
}
