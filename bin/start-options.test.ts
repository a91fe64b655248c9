import { describe, expect, it } from 'vitest';
import { helpText, readCommandLine } from '../lib/command-line.ts';
import { parseStartOptions, startCommand } from './start-options.ts';

describe('npm start options', () => {
  it('takes flags over the environment, in both spellings', () => {
    const o = parseStartOptions(['--gcs-port', '0', '--data-dir=/tmp/x'], { GCS_PORT: '5', PADLOCK_PORT: '7' });
    expect(o).toMatchObject({ gcsPort: 0, padlockPort: 7, dataDir: '/tmp/x', pubsubPort: 8085 });
  });

  it('names an unknown flag, a flag without its value and a bad value', () => {
    expect(() => parseStartOptions(['--gcs-prot', '1'], {})).toThrow(/^unknown option --gcs-prot \(known: --pubsub-port, /);
    expect(() => parseStartOptions(['--gcs-port'], {})).toThrow('option --gcs-port needs a value');
    expect(() => parseStartOptions(['stray'], {})).toThrow("unexpected argument 'stray'");
    expect(() => parseStartOptions(['--gcs-port', 'x'], {})).toThrow(/GCS_PORT: expected a port number/);
  });

  it('--help lists every flag', () => {
    const line = readCommandLine(['--help'], startCommand, (argv) => parseStartOptions(argv, {}));
    expect(line).toEqual({ kind: 'help', text: helpText(startCommand), exitCode: 0 });
    for (const flag of ['--pubsub-port', '--gcs-port', '--bigquery-port', '--padlock-port', '--composer-port', '--event-service-port', '--data-dir', '--gcp-project', '--drain-timeout-seconds']) {
      expect(helpText(startCommand)).toContain(flag);
    }
  });
});
