/**
 * The HTTP toolkit every service and emulator shares (node:http, no
 * framework): bodies read under a byte limit with a polite 413, JSON bodies,
 * error answers from the catalogue, health endpoints, listening and graceful shutdown.
 */
export { ABORTED, bodyOf, collectBody, readBody, requireMediaType, type BodyListener, type BodyOutcome } from './body.ts';
export { answerHealth, type NotReady } from './health.ts';
export { JSON_MEDIA_TYPE, parseJsonBody, readJsonBody } from './json.ts';
export { sendAsciiJson, sendEmpty, sendError, sendJson, type ErrorAnswerOptions } from './respond.ts';
export { closeOnSignals, closeServer, listen } from './server.ts';
