/**
 * Structured logging in Cloud Logging's JSON shape (one object per line with
 * `severity`, `message`, `time` and `logging.googleapis.com/labels`).
 * Never pass personal data or key material in messages or fields.
 */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

const rank: Record<Severity, number> = { DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose entries carry these labels too (e.g. `{eventType}`). */
  child(labels: Record<string, string>): Logger;
}

export interface LoggerOptions {
  /** Component name, put in the `component` label. */
  component: string;
  level?: Severity;
  labels?: Record<string, string>;
  /** Where lines go; stdout by default. Tests capture lines here. */
  sink?: (line: string) => void;
}

const defaultSink = (line: string): void => {
  process.stdout.write(line + '\n');
};

export function createLogger(options: LoggerOptions): Logger {
  const level = rank[options.level ?? 'INFO'];
  const labels = { component: options.component, ...options.labels };
  const sink = options.sink ?? defaultSink;

  const write = (severity: Severity, message: string, fields?: LogFields): void => {
    if (rank[severity] < level) return;
    const entry: Record<string, unknown> = {
      severity,
      message,
      time: new Date().toISOString(),
      'logging.googleapis.com/labels': labels,
      ...(fields === undefined ? {} : serialiseFields(fields)),
    };
    sink(JSON.stringify(entry));
  };

  return {
    debug: (m, f) => write('DEBUG', m, f),
    info: (m, f) => write('INFO', m, f),
    warn: (m, f) => write('WARNING', m, f),
    error: (m, f) => write('ERROR', m, f),
    child: (more) => createLogger({ ...options, labels: { ...options.labels, ...more } }),
  };
}

/** Errors become `{name, code, message}`; stacks are kept out of the entry's top level. */
function serialiseFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? describeError(value) : value;
  }
  return out;
}

function describeError(err: Error): Record<string, unknown> {
  const code = (err as { code?: unknown }).code;
  return { name: err.name, message: err.message, ...(code === undefined ? {} : { code }), stack: err.stack };
}

/** A logger that drops everything, for tests and benchmarks that don't inspect logs. */
export const silentLogger: Logger = createLogger({ component: 'silent', sink: () => {} });
