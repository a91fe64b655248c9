/**
 * Entry point of the composer CLI: `npm run composer -- <command> [options]`
 * (and the package bin, bin/composer.js). Runs cli.ts with the process's
 * argv, environment and console; the only place that exits the process.
 */
import { runCli } from './cli.ts';

process.env.METADATA_SERVER_DETECTION ??= 'none';
const code = await runCli(process.argv.slice(2), process.env, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
process.exit(code);
