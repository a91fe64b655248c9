/**
 * The error catalogue: every error that crosses a component boundary has a
 * stable `code` from this table, an HTTP status and whether retrying can help.
 * Codes are a contract (clients branch on them); messages are for humans.
 */
export const errorCatalogue = {
  // general
  INTERNAL: { status: 500, retryable: true, message: 'Internal error' },
  CONFIG_INVALID: { status: 500, retryable: false, message: 'Invalid configuration' },
  BAD_REQUEST: { status: 400, retryable: false, message: 'Bad request' },
  USAGE_INVALID: { status: 400, retryable: false, message: 'Invalid command line' },
  BODY_INVALID: { status: 400, retryable: false, message: 'Request body is not valid' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, message: 'Unsupported content type' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, message: 'Request body too large' },
  NOT_FOUND: { status: 404, retryable: false, message: 'Not found' },
  CONFLICT: { status: 409, retryable: false, message: 'Conflict' },
  PRECONDITION_FAILED: { status: 412, retryable: false, message: 'Precondition failed' },
  UNAUTHENTICATED: { status: 401, retryable: false, message: 'Missing or invalid credentials' },
  FORBIDDEN: { status: 403, retryable: false, message: 'Not allowed' },
  OVERLOADED: { status: 429, retryable: true, message: 'Too many requests, retry later' },
  UNAVAILABLE: { status: 503, retryable: true, message: 'Service unavailable, retry later' },
  DEADLINE_EXCEEDED: { status: 504, retryable: true, message: 'Deadline exceeded' },
  RANGE_NOT_SATISFIABLE: { status: 416, retryable: false, message: 'Requested range not satisfiable' },

  // composer
  SPEC_INVALID: { status: 400, retryable: false, message: 'Event-type spec is not valid' },
  SCHEMA_INVALID: { status: 400, retryable: false, message: 'Avro schema is not valid' },
  SCHEMA_INCOMPATIBLE: { status: 409, retryable: false, message: 'Schema change is not compatible' },
  EVENT_TYPE_NOT_FOUND: { status: 404, retryable: false, message: 'Unknown event type' },
  EVENT_TYPE_EXISTS: { status: 409, retryable: false, message: 'Event type already exists' },
  EVENT_TYPE_DEPRECATED: { status: 409, retryable: false, message: 'Event type is deprecated' },
  CONCURRENT_UPDATE: { status: 409, retryable: true, message: 'Event type changed concurrently, retry' },
  NOT_OWNER: { status: 403, retryable: false, message: 'Only the owning team may change this event type' },
  PROVISIONING_FAILED: { status: 502, retryable: true, message: 'Provisioning failed' },
  REGISTRY_UNAVAILABLE: { status: 503, retryable: true, message: 'Registry store unavailable' },

  // event service (per event)
  EVENT_INVALID: { status: 400, retryable: false, message: 'Event does not match its schema' },
  EVENT_TOO_LARGE: { status: 413, retryable: false, message: 'Event too large' },
  BATCH_TOO_LARGE: { status: 413, retryable: false, message: 'Too many events in one batch' },
  UNKNOWN_EVENT_TYPE: { status: 400, retryable: false, message: 'Unknown event type' },
  DEPRECATED_EVENT_TYPE: { status: 400, retryable: false, message: 'Event type is deprecated' },
  UNKNOWN_SCHEMA_FINGERPRINT: { status: 400, retryable: false, message: 'Unknown schema fingerprint' },
  PUBLISH_FAILED: { status: 503, retryable: true, message: 'Publishing to Pub/Sub failed' },

  // etl
  DECODE_FAILED: { status: 422, retryable: false, message: 'Record cannot be decoded' },
  STORAGE_FAILED: { status: 503, retryable: true, message: 'Storage write failed' },
  BIGQUERY_UNAVAILABLE: { status: 503, retryable: true, message: 'BigQuery failed, retry later' },
  BIGQUERY_LOAD_REJECTED: { status: 422, retryable: false, message: 'BigQuery rejected the load' },

  // padlock and crypto
  SERVICE_UNKNOWN: { status: 401, retryable: false, message: 'Unknown service or wrong secret' },
  CONTEXT_FORBIDDEN: { status: 403, retryable: false, message: 'Service is not authorised for this key context' },
  KEY_STORE_UNAVAILABLE: { status: 503, retryable: true, message: 'Key store unavailable' },
  KEK_UNAVAILABLE: { status: 503, retryable: true, message: 'Key-encryption key unavailable' },
  KEY_UNREADABLE: { status: 500, retryable: false, message: "A user's stored root key does not unwrap under the key-encryption key" },
  KEYCHAIN_DELETED: { status: 410, retryable: false, message: 'Keychain deleted' },
  CATEGORY_UNKNOWN: { status: 400, retryable: false, message: 'Unknown data category' },
  DECRYPT_FAILED: { status: 422, retryable: false, message: 'Value cannot be decrypted' },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export interface AppErrorOptions {
  /** Overrides the catalogue's message; must never contain personal data or key material. */
  message?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** The one error type of the platform. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    const entry = errorCatalogue[code];
    super(options.message ?? entry.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = entry.status;
    this.retryable = entry.retryable;
    this.details = options.details;
  }

  /** The HTTP body shape shared by every service: `{code, message, details}`. */
  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** Wraps anything thrown into an AppError, keeping AppErrors as they are. */
export function toAppError(err: unknown, fallback: ErrorCode = 'INTERNAL'): AppError {
  if (err instanceof AppError) return err;
  return new AppError(fallback, { cause: err });
}
