/**
 * Errors of the BigQuery emulator, as AppErrors carrying BigQuery's `reason`,
 * and their wire shape:
 * `{error: {code, message, errors: [{message, domain, reason}], status}}`.
 */
import { AppError, type ErrorCode } from '../../lib/errors.ts';

/** One entry of `errors[]` (also a job's `status.errorResult`). */
export interface BqErrorProto {
  message: string;
  reason: string;
  domain?: string;
  location?: string;
}

/** The JSON body BigQuery answers errors with. */
export interface BqErrorBody {
  error: { code: number; message: string; errors: BqErrorProto[]; status: string };
}

const defaultReason: ReadonlyMap<number, string> = new Map([
  [400, 'invalid'],
  [403, 'accessDenied'],
  [404, 'notFound'],
  [409, 'duplicate'],
  [412, 'conditionNotMet'],
  [429, 'rateLimitExceeded'],
  [500, 'backendError'],
  [503, 'backendError'],
]);

const statusName: ReadonlyMap<number, string> = new Map([
  [400, 'INVALID_ARGUMENT'],
  [403, 'PERMISSION_DENIED'],
  [404, 'NOT_FOUND'],
  [409, 'ALREADY_EXISTS'],
  [412, 'FAILED_PRECONDITION'],
  [429, 'RESOURCE_EXHAUSTED'],
  [500, 'INTERNAL'],
  [503, 'UNAVAILABLE'],
]);

/** An AppError whose wire form is BigQuery's error JSON with this `reason`. */
export function bqError(code: ErrorCode, message: string, reason: string): AppError {
  return new AppError(code, { message, details: { reason } });
}

export const errors = {
  invalid: (message: string): AppError => bqError('BAD_REQUEST', message, 'invalid'),
  required: (message: string): AppError => bqError('BAD_REQUEST', message, 'required'),
  notFound: (what: string): AppError => bqError('NOT_FOUND', `Not found: ${what}`, 'notFound'),
  duplicate: (what: string): AppError => bqError('CONFLICT', `Already Exists: ${what}`, 'duplicate'),
  resourceInUse: (message: string): AppError => bqError('BAD_REQUEST', message, 'resourceInUse'),
  invalidQuery: (message: string): AppError => bqError('BAD_REQUEST', message, 'invalidQuery'),
  backendError: (message: string): AppError => bqError('UNAVAILABLE', message, 'backendError'),
  stopped: (jobId: string): AppError => bqError('CONFLICT', `Job ${jobId} was cancelled.`, 'stopped'),
};

/** The reason an AppError carries, or the default one for its status. */
export function reasonOf(err: AppError): string {
  const r = err.details?.reason;
  return typeof r === 'string' ? r : (defaultReason.get(err.status) ?? 'backendError');
}

/** BigQuery's error body for a status and message (also used for injected faults). */
export function errorBody(status: number, message: string, reason?: string): BqErrorBody {
  return {
    error: {
      code: status,
      message,
      errors: [{ message, domain: 'global', reason: reason ?? defaultReason.get(status) ?? 'backendError' }],
      status: statusName.get(status) ?? 'UNKNOWN',
    },
  };
}

/** Maps anything thrown by a handler to a status and BigQuery error body. */
export function toErrorResponse(err: unknown): { status: number; body: BqErrorBody } {
  if (err instanceof AppError) return { status: err.status, body: errorBody(err.status, err.message, reasonOf(err)) };
  return { status: 500, body: errorBody(500, 'Internal error in the BigQuery emulator.') };
}

/** The `errorResult` of a failed job, from what its run threw. */
export function jobError(err: unknown): BqErrorProto {
  if (err instanceof AppError) return { reason: reasonOf(err), message: err.message };
  return { reason: 'internalError', message: 'Internal error in the BigQuery emulator.' };
}
