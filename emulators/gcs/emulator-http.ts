/**
 * What every emulator of ours serves the same way: the admin API
 * (`/_emulator/health`, run-time fault rules under `/_emulator/faults`).
 * Listening and shutdown come from the shared HTTP toolkit (lib/http).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { validateFaultRule, type FaultController } from './faults.ts';
import { readJson, sendEmpty, sendJson } from './http-util.ts';

/**
 * Answers one admin request; throws `invalid(message)` (the emulator's own
 * "invalid" error) for an unknown one or an unknown fault rule.
 */
export async function answerAdmin(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  faults: FaultController,
  invalid: (message: string) => Error,
): Promise<void> {
  if (path === '/_emulator/health') return sendJson(res, 200, { status: 'ok' });
  if (path === '/_emulator/faults') {
    if (req.method === 'GET') return sendJson(res, 200, { rules: faults.list() });
    if (req.method === 'POST') return sendJson(res, 200, { id: faults.add(validateFaultRule(await readJson(req))) });
    if (req.method === 'DELETE') {
      faults.clear();
      return sendEmpty(res, 204);
    }
  }
  const m = /^\/_emulator\/faults\/([^/]+)$/.exec(path);
  if (m !== null && req.method === 'DELETE') {
    if (!faults.remove(decodeURIComponent(m[1]!))) throw invalid('No such fault rule.');
    return sendEmpty(res, 204);
  }
  throw invalid(`Unknown admin request: ${req.method ?? ''} ${path}`);
}
