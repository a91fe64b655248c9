/**
 * One HTTP request written by hand on a raw socket, with a body of
 * `bodyBytes` pumped after the head: what a client still sending sees when a
 * server answers early (a polite close ends with 'end', a reset with 'error').
 */
import net from 'node:net';

export interface RawAnswer {
  /** Everything the server sent, as latin1. */
  response: string;
  /** How the connection ended: the server's FIN ('end') or a reset ('error'). */
  ending: 'end' | 'error';
  sentBytes: number;
}

export function rawRequest(port: number, head: string, bodyBytes: number): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let response = '';
    let sentBytes = 0;
    let finished = false;
    const finish = (ending: 'end' | 'error'): void => {
      if (finished) return;
      finished = true;
      socket.destroy();
      resolve({ response, ending, sentBytes });
    };
    socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
    socket.on('end', () => finish('end'));
    socket.on('error', () => finish('error'));
    socket.on('connect', () => {
      socket.write(head);
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      const pump = (): void => {
        while (sentBytes < bodyBytes && !finished) {
          sentBytes += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}

/** The JSON body of a raw answer. */
export function rawJson(answer: RawAnswer): unknown {
  return JSON.parse(answer.response.slice(answer.response.indexOf('\r\n\r\n') + 4));
}
