// What @neondatabase/serverless talks to, in front of the embedded PostgreSQL: a WebSocket-to-TCP
// bridge (the driver's Pool and Client speak the PostgreSQL protocol over a WebSocket, to the
// proxy named by neonConfig.wsProxy) and a stand-in for Neon's HTTP query endpoint (neon()'s
// queries: neonConfig.fetchEndpoint), which runs each query on the server with a plain pg.Client
// and answers in the JSON the driver parses (raw text values, array mode).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect as tcpConnect, type AddressInfo } from 'node:net';
import { WebSocketServer, type RawData } from 'ws';
import type { Client, QueryResult } from 'pg';

export interface NeonProxy {
  /** For neonConfig.wsProxy (no protocol): the driver appends `?address=host:port`. */
  wsProxyUrl: string;
  /** For neonConfig.fetchEndpoint. */
  fetchEndpoint: string;
  /** HTTP queries answered so far. */
  httpQueries: number;
  close(): Promise<void>;
}

interface HttpQuery {
  query: string;
  params: unknown[];
}

// Every value as the text PostgreSQL sent: the driver parses them with its own type parsers.
const RAW_TEXT = { getTypeParser: () => (value: string) => value };

/** `databasePort`: where a connection string without a port goes (Pool.query over fetch sends none). */
export async function startNeonProxy(databasePort: number): Promise<NeonProxy> {
  const http = createServer((req, res) => {
    void answer(req).then(
      (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      (err: Error & Record<string, unknown>) =>
        // As Neon answers a query that PostgreSQL rejected: 400 with the error's fields.
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: err.message, code: err.code, severity: err.severity }))
    );
  });
  const ws = new WebSocketServer({ server: http });
  ws.on('connection', (socket, req) => {
    const address = new URL(req.url ?? '/', 'http://x').searchParams.get('address') ?? '';
    const [host, port] = address.split(':');
    const tcp = tcpConnect(Number(port), host);
    const pending: Buffer[] = [];
    tcp.on('connect', () => pending.splice(0).forEach((b) => tcp.write(b)));
    socket.on('message', (data: RawData) => {
      const b = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      if (tcp.connecting) pending.push(b);
      else tcp.write(b);
    });
    tcp.on('data', (d) => socket.send(d));
    tcp.on('close', () => socket.close());
    tcp.on('error', () => socket.terminate());
    socket.on('close', () => tcp.destroy());
    socket.on('error', () => tcp.destroy());
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  const proxy: NeonProxy = {
    wsProxyUrl: `127.0.0.1:${port}/v2`,
    fetchEndpoint: `http://127.0.0.1:${port}/sql`,
    httpQueries: 0,
    close: () => close(http, ws),
  };

  async function answer(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as HttpQuery | { queries: HttpQuery[] };
    const url = new URL(String(req.headers['neon-connection-string']));
    if (!url.port) url.port = String(databasePort);
    // pg is loaded here, not at the top: a process that instruments pg (bench/neon.ts's workers)
    // must load it after the instrumentation.
    const { Client: PgClient } = require('pg') as typeof import('pg');
    const client = new PgClient({ connectionString: url.toString() });
    await client.connect();
    try {
      if (!('queries' in body)) return await run(client, body);
      await client.query('BEGIN');
      const results = [];
      for (const q of body.queries) results.push(await run(client, q));
      await client.query('COMMIT');
      return { results };
    } finally {
      await client.end();
    }
  }

  async function run(client: Client, q: HttpQuery): Promise<unknown> {
    proxy.httpQueries++;
    const r: QueryResult<unknown[]> = await client.query({ text: q.query, values: q.params, rowMode: 'array', types: RAW_TEXT });
    return { command: r.command, rowCount: r.rowCount, rows: r.rows, fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })) };
  }

  return proxy;
}

function close(http: Server, ws: WebSocketServer): Promise<void> {
  for (const c of ws.clients) c.terminate();
  ws.close();
  http.closeAllConnections();
  return new Promise((resolve) => http.close(() => resolve()));
}
