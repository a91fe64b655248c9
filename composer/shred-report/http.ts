/**
 * The shred report over HTTP, on the composer API:
 * `POST /v1/shred-reports` with `{"userId": "…"}` → the report (JSON, as
 * `--json` prints it). Only the privacy team's bearer token may ask (403
 * FORBIDDEN otherwise). The user id travels in the body, never in the URL, so
 * it stays out of access logs.
 *
 * It lives in the composer, not in padlock: the report reads the data bucket,
 * and padlock must never hold both the keys and the ciphertexts; the composer
 * already is the control plane with team authentication, and it asks padlock
 * for keys with its own entitled service credentials like any consumer.
 */
import type { Request, Response } from 'express';
import { AppError } from '../../lib/errors.ts';
import { userIdProblem } from '../../lib/user-id.ts';
import type { ShredReport } from './report.ts';

export interface ShredReportEndpoint {
  /** The team whose bearer token may ask (e.g. `privacy`). */
  team: string;
  /** Makes the report of a (validated) user id. */
  report(userId: string): Promise<ShredReport>;
}

/** The route handler; `team` is the authenticated caller's team. One report runs at a time (a report reads many objects); another request meanwhile gets 429 OVERLOADED. */
export function shredReportHandler(endpoint: ShredReportEndpoint, teamOf: (res: Response) => string) {
  let running = false;
  return async (req: Request, res: Response): Promise<void> => {
    if (teamOf(res) !== endpoint.team) {
      throw new AppError('FORBIDDEN', { message: `only the ${endpoint.team} team may ask for shred reports`, details: { team: teamOf(res) } });
    }
    const body: unknown = req.body;
    const userId = typeof body === 'object' && body !== null && Object.hasOwn(body, 'userId') ? (body as { userId: unknown }).userId : undefined;
    if (userId === undefined) throw new AppError('BODY_INVALID', { message: 'expected {"userId": "<user id>"}', details: { field: 'userId' } });
    const problem = userIdProblem(userId);
    if (problem !== undefined) throw new AppError('BODY_INVALID', { message: `userId is not a user id: ${problem}`, details: { field: 'userId' } });
    if (running) {
      res.set('Retry-After', '5');
      throw new AppError('OVERLOADED', { message: 'a shred report is already running; retry later' });
    }
    running = true;
    try {
      res.json(await endpoint.report(userId as string));
    } finally {
      running = false;
    }
  };
}
