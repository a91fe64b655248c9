/**
 * `npm run decrypt -- <partition> --padlock <url[,url…]> --service <name> --secret-env <VAR> [--storage-endpoint <url>]`
 *
 * Reads a closed partition (Cloud Storage or a local copy; refused without
 * `_SUCCESS`), decrypts what the service is entitled to and prints one JSON
 * line per event: `{"eventId", "receiveTime", "schemaFingerprint", "payload"}`.
 * Undecryptable values stay encrypted, marked `{"$encrypted", "reason"}`.
 * A summary goes to stderr. Exit 0 on success, 1 on bad options or any failure.
 */
import { createStorage } from '../lib/gcp/clients.ts';
import { googleIdTokens } from '../lib/padlock-client/google-id-token.ts';
import { createPadlockClient } from '../lib/padlock-client/index.ts';
import { decryptPartition, jsonLine } from '../lib/privacy/consumer.ts';
import { RecordDecryptor } from '../lib/privacy/decryptor.ts';
import { readCommandLine } from '../lib/command-line.ts';
import { decryptCommand, parseDecryptOptions, type DecryptOptions } from '../lib/privacy/decrypt-options.ts';
import { gcsPartitionSource, localPartitionSource } from '../lib/privacy/partition-reader.ts';

async function main(options: DecryptOptions): Promise<void> {
  const keys = createPadlockClient({
    url: options.padlockUrls,
    ...(options.idToken ? { idToken: googleIdTokens() } : {}),
    service: options.service,
    secret: options.secret,
    ...(options.context ? { context: options.context } : {}),
    ...(options.cacheTtlMs ? { cacheTtlMs: options.cacheTtlMs } : {}),
  });
  const source =
    options.partition.kind === 'gcs'
      ? gcsPartitionSource(createStorage({ projectId: options.projectId, apiEndpoint: options.storageEndpoint }), options.partition)
      : localPartitionSource(options.partition.dir);
  const decryptor = new RecordDecryptor({ keys, ...(options.context ? { context: options.context } : {}) });
  const { manifest, events, stats } = await decryptPartition(source, decryptor);
  for (const event of events) process.stdout.write(`${jsonLine(event)}\n`);
  process.stderr.write(
    `${manifest.eventType} ${manifest.period}: ${events.length} events, ${stats.decrypted} values decrypted, unreadable: ${JSON.stringify(stats.unreadable)}\n`,
  );
}

const commandLine = readCommandLine(process.argv.slice(2), decryptCommand, (argv) => parseDecryptOptions(argv, process.env));
if (commandLine.kind !== 'run') {
  (commandLine.kind === 'help' ? process.stdout : process.stderr).write(`${commandLine.text}\n`);
  process.exit(commandLine.exitCode);
}
const options: DecryptOptions = commandLine.options;

main(options).then(
  () => process.exit(0),
  (err: unknown) => {
    const code = (err as { code?: unknown }).code;
    process.stderr.write(`decrypt failed${typeof code === 'string' ? ` (${code})` : ''}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
