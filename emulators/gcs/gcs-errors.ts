/**
 * Errors of the emulator, as AppErrors carrying the GCS `reason`, and their
 * wire shape: `{error: {code, message, errors: [{message, domain, reason}]}}`.
 */
import { AppError, type ErrorCode } from '../../lib/errors.ts';

/** The JSON body Cloud Storage answers errors with. */
export interface GcsErrorBody {
  error: { code: number; message: string; errors: { message: string; domain: string; reason: string }[] };
}

const defaultReason: Record<number, string> = {
  400: 'invalid',
  404: 'notFound',
  409: 'conflict',
  412: 'conditionNotMet',
  416: 'requestedRangeNotSatisfiable',
  429: 'rateLimitExceeded',
  500: 'backendError',
  503: 'backendError',
};

/** An AppError whose wire form is GCS's error JSON with this `reason`. */
export function gcsError(code: ErrorCode, message: string, reason?: string): AppError {
  return new AppError(code, { message, details: reason === undefined ? undefined : { reason } });
}

export const errors = {
  noSuchBucket: (): AppError => gcsError('NOT_FOUND', 'The specified bucket does not exist.', 'notFound'),
  noSuchObject: (bucket: string, name: string): AppError =>
    gcsError('NOT_FOUND', `No such object: ${bucket}/${name}`, 'notFound'),
  preconditionFailed: (): AppError =>
    gcsError('PRECONDITION_FAILED', 'At least one of the pre-conditions you specified did not hold.', 'conditionNotMet'),
  bucketExists: (): AppError =>
    gcsError(
      'CONFLICT',
      'Your previous request to create the named bucket succeeded and you already own it.',
      'conflict',
    ),
  bucketNotEmpty: (): AppError => gcsError('CONFLICT', 'The bucket you tried to delete is not empty.', 'conflict'),
  invalid: (message: string): AppError => gcsError('BAD_REQUEST', message, 'invalid'),
  required: (message: string): AppError => gcsError('BAD_REQUEST', message, 'required'),
};

/** The GCS error body for a status and message (also used for injected faults). */
export function errorBody(status: number, message: string, reason?: string): GcsErrorBody {
  return {
    error: {
      code: status,
      message,
      errors: [{ message, domain: 'global', reason: reason ?? defaultReason[status] ?? 'backendError' }],
    },
  };
}

/** Maps anything thrown by a handler to a status and GCS error body. */
export function toErrorResponse(err: unknown): { status: number; body: GcsErrorBody } {
  if (err instanceof AppError) {
    const reason = typeof err.details?.reason === 'string' ? err.details.reason : undefined;
    return { status: err.status, body: errorBody(err.status, err.message, reason) };
  }
  return { status: 500, body: errorBody(500, 'Internal error in the storage emulator.') };
}
