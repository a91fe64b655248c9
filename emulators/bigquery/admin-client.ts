/**
 * A typed client for the emulator's admin endpoint, for tests in other
 * processes that reach the emulator only over HTTP:
 *
 *   await injectFault(url, { methods: ['POST'], path: '/jobs$', times: 2, status: 503 });
 *   await clearFaults(url);
 */
import type { ActiveFaultRule, FaultRule } from '../../lib/gcs-emulator/faults.ts';

export type { ActiveFaultRule, FaultRule };

async function call(url: string, method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(`${url.replace(/\/+$/, '')}/_emulator/${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });
  if (!res.ok) throw new Error(`BigQuery emulator admin ${method} ${path} failed: ${res.status} ${await res.text()}`);
  return res;
}

/** Adds a fault rule; returns its id. */
export async function injectFault(url: string, rule: FaultRule): Promise<string> {
  return ((await (await call(url, 'POST', 'faults', rule)).json()) as { id: string }).id;
}

export async function removeFault(url: string, id: string): Promise<void> {
  await call(url, 'DELETE', `faults/${encodeURIComponent(id)}`);
}

export async function clearFaults(url: string): Promise<void> {
  await call(url, 'DELETE', 'faults');
}

/** The active rules, each with how many times it fired. */
export async function listFaults(url: string): Promise<ActiveFaultRule[]> {
  return ((await (await call(url, 'GET', 'faults')).json()) as { rules: ActiveFaultRule[] }).rules;
}
