/**
 * What every emulator of ours serves the same way: the admin API
 * (`/_emulator/health`, run-time fault rules under `/_emulator/faults`) and
 * listening on a host and port (0 picks one) with the URL clients should use.
 */
import type { Server, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/** Listens on `host` (127.0.0.1 by default) and `port` (0: a free one); resolves the port and the URL to give clients. */
export async function listen(server: Server, host = '127.0.0.1', port = 0): Promise<{ port: number; url: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return { port: bound, url: `http://${urlHost}:${bound}` };
}
