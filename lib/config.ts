/**
 * Building blocks for each runnable's `loadConfig(env = process.env)`:
 * a zod schema over environment variables, validated once at start, with an
 * error that names the offending variable. Only `main` entry points exit.
 */
import { z } from 'zod';
import { AppError } from './errors.ts';

export type Env = Record<string, string | undefined>;

/** A TCP port given as a decimal string, 0 (pick a free one) to 65535. */
export const portVar = z
  .string()
  .trim()
  .regex(/^\d{1,5}$/, 'expected a port number 0-65535')
  .transform(Number)
  .refine((n) => n <= 65535, 'expected a port number 0-65535');

/** `host:port`, as in PUBSUB_EMULATOR_HOST. */
export const hostPortVar = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'expected host:port (e.g. 127.0.0.1:8085)');

/** An absolute http(s) URL. */
export const urlVar = z
  .string()
  .trim()
  .refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'expected an http(s) URL (e.g. http://127.0.0.1:4443)');

/** One or more absolute http(s) URLs, comma-separated (e.g. a service's deployment groups, primary first). */
export const urlListVar = z
  .string()
  .trim()
  .transform((s) => s.split(',').map((u) => u.trim()))
  .refine((urls) => urls.every((u) => urlVar.safeParse(u).success), 'expected comma-separated http(s) URLs (e.g. https://a.example,https://b.example)');

/** A positive integer given as a decimal string. */
export const positiveIntVar = z
  .string()
  .trim()
  .regex(/^\d+$/, 'expected a positive integer')
  .transform(Number)
  .refine((n) => n > 0 && Number.isSafeInteger(n), 'expected a positive integer');

export const booleanVar = z
  .enum(['true', 'false', '1', '0'], { message: 'expected true or false' })
  .transform((s) => s === 'true' || s === '1');

/**
 * Validates `env` against `shape` (keys are variable names). Throws an
 * AppError(CONFIG_INVALID) whose message names every bad variable and its value's problem.
 */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: Env): z.infer<z.ZodObject<S>> {
  const result = z.object(shape).safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const variable = issue.path.join('.') || '(environment)';
    return `${variable}: ${issue.message}`;
  });
  throw new AppError('CONFIG_INVALID', {
    message: `Invalid configuration: ${problems.join('; ')}`,
    details: { variables: result.error.issues.map((i) => i.path.join('.')) },
  });
}
