/** `composer describe <name>`: a type's record as JSON. */
import type { CommandSpec } from '../../lib/command-line.ts';
import { registryCommandHelp, withNamedType, type CliIo } from './shared.ts';

export const help: CommandSpec = registryCommandHelp('describe <name>', "Prints a type's record (settings, schema versions, provisioning) as JSON; exit 1 if it is not registered.", {}, 1);

export function run(argv: readonly string[], io: CliIo): Promise<number> {
  return withNamedType(argv, help, io, async ({ composer }, name) => {
    io.out(JSON.stringify(await composer.get(name), null, 2));
    return 0;
  });
}
