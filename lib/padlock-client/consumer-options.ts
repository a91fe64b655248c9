/**
 * The command-line options of a padlock consumer (decrypt, keys-table): where
 * padlock is, which service calls it, and the environment variable holding
 * that service's secret, which is read from the environment so it never
 * appears in a process listing.
 */
import { z } from 'zod';
import type { OptionSpec } from '../command-line.ts';
import { urlListVar, type Env } from '../config.ts';
import { AppError } from '../errors.ts';

export const consumerOptions: Readonly<Record<string, OptionSpec>> = {
  padlock: { type: 'string', value: '<url[,url…]>', description: "padlock's deployment groups, primary first (required)" },
  service: { type: 'string', value: '<name>', description: 'the consumer service padlock knows (required)' },
  'secret-env': { type: 'string', value: '<VAR>', description: "environment variable holding the service's secret (required)" },
};

/** The variables of `consumerOptions` in a flags-and-environment schema. */
export const consumerShape = {
  PADLOCK: urlListVar,
  SERVICE: z.string().trim().min(1, 'expected the consumer service name'),
  SECRET_ENV: z.string().trim().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of an environment variable'),
};

/** The secret from the variable `--secret-env` names; CONFIG_INVALID naming it if unset. */
export function consumerSecret(variable: string, env: Env): string {
  const secret = env[variable];
  if (secret === undefined || secret === '') {
    throw new AppError('CONFIG_INVALID', { message: `Invalid configuration: ${variable} (from --secret-env) is not set`, details: { variables: [variable] } });
  }
  return secret;
}
