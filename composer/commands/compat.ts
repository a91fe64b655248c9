/** `composer compat <reader.avsc> <writer.avsc> [--mode MODE]`: can data written with writer be read with reader? */
import { readFile } from 'node:fs/promises';
import { parseSchema, SchemaError } from '../../lib/avro/schema.ts';
import { AppError } from '../../lib/errors.ts';
import { stringValue, usageError, type CommandSpec } from '../../lib/command-line.ts';
import type { CompatibilityMode } from '../../lib/registry/types.ts';
import { checkCompatibility, checkMode, compatibilityModes } from '../compatibility.ts';
import { commandLine, formatReasons, type CliIo } from './shared.ts';

export const help: CommandSpec = {
  usage: 'npm run composer -- compat <reader.avsc> <writer.avsc> [--mode MODE]',
  summary: 'Can data written with writer be read with reader? BACKWARD (default): reader reads writer; FORWARD: writer reads reader; FULL: both.',
  maxPositionals: 2,
  options: {
    mode: { type: 'string', value: '<MODE>', description: `one of ${compatibilityModes.join(', ')} (default BACKWARD)` },
  },
};

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 2, '<reader.avsc> <writer.avsc>');
  const [readerFile, writerFile] = line.positionals as [string, string];
  const mode = (stringValue(line, 'mode') ?? 'BACKWARD') as CompatibilityMode;
  if (!compatibilityModes.includes(mode)) throw usageError(`--mode must be one of ${compatibilityModes.join(', ')}`);
  const reader = await readSchemaFile(readerFile);
  const writer = await readSchemaFile(writerFile);
  // The reader plays the new schema, the writer the previous one.
  const result = mode === 'BACKWARD' ? checkCompatibility(reader, writer) : checkMode(mode, reader, [writer]);
  if (result.compatible) {
    io.out('compatible');
    return 0;
  }
  io.out('incompatible');
  for (const text of formatReasons(result.reasons)) io.out(text);
  return 1;
}

/** A schema file: USAGE_INVALID if it cannot be read, SCHEMA_INVALID if it is not an Avro schema. */
async function readSchemaFile(file: string): Promise<unknown> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw usageError(`cannot read schema ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    parseSchema(json);
  } catch (err) {
    if (!(err instanceof SchemaError)) throw err;
    throw new AppError('SCHEMA_INVALID', { message: `${file} is not a valid Avro schema: ${err.message}` });
  }
  return json;
}
