/**
 * A typed client for the admin endpoint our emulators share (GCS and BigQuery,
 * served by emulator-http.ts), for tests in other processes (vitest workers)
 * that reach an emulator only over HTTP:
 *
 *   const id = await injectFault(url, { methods: ['POST', 'PUT'], path: '^/upload/', probability: 0.05, status: 503 });
 *   ...
 *   await clearFaults(url);
 */
import type { ActiveFaultRule, FaultRule } from './faults.ts';

export type { ActiveFaultRule, FaultRule };

async function call(url: string, method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(`${url.replace(/\/+$/, '')}/_emulator/${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });
  if (!res.ok) throw new Error(`emulator admin ${method} ${url} ${path} failed: ${res.status} ${await res.text()}`);
  return res;
}

/** Adds a fault rule; returns its id. */
export async function injectFault(url: string, rule: FaultRule): Promise<string> {
  const res = await call(url, 'POST', 'faults', rule);
  return ((await res.json()) as { id: string }).id;
}

/** Removes one rule. */
export async function removeFault(url: string, id: string): Promise<void> {
  await call(url, 'DELETE', `faults/${encodeURIComponent(id)}`);
}

/** Removes every rule. */
export async function clearFaults(url: string): Promise<void> {
  await call(url, 'DELETE', 'faults');
}

/** The active rules, each with how many times it fired. */
export async function listFaults(url: string): Promise<ActiveFaultRule[]> {
  const res = await call(url, 'GET', 'faults');
  return ((await res.json()) as { rules: ActiveFaultRule[] }).rules;
}
