// An HTTP server on 127.0.0.1 (port 0) standing in for the container engine's API in the
// container layer's unit tests: it records every request and answers what the test says,
// so requests and error mapping are checked on the wire without Podman.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly contentType: string | undefined;
  readonly body: string;
}

export interface EngineStandIn {
  /** Where to point a client: `new Docker({ host: '127.0.0.1', port, protocol: 'http' })`. */
  readonly port: number;
  /** Every request so far, in order. */
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/** Starts the stand-in; `answer` gives the status and JSON body of each request. */
export async function startEngineStandIn(
  answer: (request: SeenRequest) => { readonly status: number; readonly body: unknown },
): Promise<EngineStandIn> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const request = {
        method: req.method ?? '',
        url: req.url ?? '',
        contentType: req.headers['content-type'],
        body,
      };
      seen.push(request);
      const { status, body: reply } = answer(request);
      res.setHeader('content-type', 'application/json');
      res.writeHead(status).end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
