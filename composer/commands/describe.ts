/** `composer describe <name>`: a type's record as JSON. */
import type { CommandSpec } from '../../lib/command-line.ts';
import { commandLine, ENVIRONMENT, registryDirOption, withParts, type CliIo } from './shared.ts';

export const help: CommandSpec = {
  usage: 'npm run composer -- describe <name>',
  summary: "Prints a type's record (settings, schema versions, provisioning) as JSON; exit 1 if it is not registered.",
  maxPositionals: 1,
  options: { 'registry-dir': registryDirOption },
  epilog: ENVIRONMENT,
};

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = commandLine(argv, help, 1, 'an event-type name');
  const name = line.positionals[0]!;
  return withParts(line, io.env, async ({ composer }) => {
    io.out(JSON.stringify(await composer.get(name), null, 2));
    return 0;
  });
}
