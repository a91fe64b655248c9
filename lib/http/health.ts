/**
 * `GET /healthz` (the process serves) and `GET /readyz` (it can do its job:
 * 200 `{status: "ready"}`, else 503 `{status: <why not>}`), the same on every service.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, sendJson } from './respond.ts';

/**
 * Why the service cannot serve yet (undefined: ready). May throw an AppError
 * (a store that does not answer), which is answered as it is.
 */
export type NotReady = () => string | undefined | Promise<string | undefined>;

/** Answers a health request and returns true; false for any other request. */
export function answerHealth(req: IncomingMessage, res: ServerResponse, path: string, notReady: NotReady): boolean {
  if (req.method !== 'GET') return false;
  if (path === '/healthz') {
    sendJson(res, 200, { status: 'ok' });
    return true;
  }
  if (path !== '/readyz') return false;
  Promise.resolve()
    .then(notReady)
    .then(
      (reason) => sendJson(res, reason === undefined ? 200 : 503, { status: reason ?? 'ready' }),
      (err: unknown) => sendError(req, res, err),
    );
  return true;
}
