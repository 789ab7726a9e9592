// A loopback OTLP/HTTP trace receiver, run by run.ts in a process of its own (so that its CPU is
// never counted as the measured worker's, and can be reported separately). It decodes every
// export request (OTLP JSON, as @opentelemetry/exporter-trace-otlp-http sends it; gzip if asked)
// and counts spans per job: workers export to `/<job id>/v1/traces`.
//
//   GET /stats  ->  { cpuMs, jobs: { [job id]: Tally } }
//
// It prints `LISTENING <port>` once ready and exits when its parent goes (stdin closes).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface Tally {
  spans: number;
  requests: number;
  /** request bodies as received (compressed if they were) */
  bytes: number;
  /** requests that could not be decoded as an OTLP trace export (answered 400) */
  rejected: number;
  /** fewest and most attributes seen on one span */
  minAttributes: number;
  maxAttributes: number;
}

export interface ReceiverStats {
  /** user + system CPU of the receiver process since it started */
  cpuMs: number;
  jobs: Record<string, Tally>;
}

interface OtlpSpan {
  attributes?: unknown[];
}
interface OtlpExport {
  resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

const jobs = new Map<string, Tally>();

function tallyOf(job: string): Tally {
  let t = jobs.get(job);
  if (!t) {
    t = { spans: 0, requests: 0, bytes: 0, rejected: 0, minAttributes: 0, maxAttributes: 0 };
    jobs.set(job, t);
  }
  return t;
}

/** Counts the spans of one decoded export request; throws when it is not one. */
function count(body: OtlpExport, tally: Tally): void {
  if (!Array.isArray(body.resourceSpans)) throw new Error('no resourceSpans');
  let spans = 0;
  for (const rs of body.resourceSpans) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        const n = span.attributes?.length ?? 0;
        if (tally.spans + spans === 0 || n < tally.minAttributes) tally.minAttributes = n;
        if (n > tally.maxAttributes) tally.maxAttributes = n;
        spans++;
      }
    }
  }
  tally.spans += spans;
}

function receive(job: string, req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const tally = tallyOf(job);
    tally.requests++;
    let raw = Buffer.concat(chunks);
    tally.bytes += raw.length;
    try {
      if (!String(req.headers['content-type']).startsWith('application/json')) {
        throw new Error(`content-type ${req.headers['content-type']} (this receiver decodes OTLP JSON)`);
      }
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      count(JSON.parse(raw.toString('utf8')) as OtlpExport, tally);
    } catch (err) {
      tally.rejected++;
      res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
}

const server = createServer((req, res) => {
  const url = req.url ?? '';
  if (req.method === 'GET' && url === '/stats') {
    const cpu = process.cpuUsage();
    const stats: ReceiverStats = { cpuMs: (cpu.user + cpu.system) / 1000, jobs: Object.fromEntries(jobs) };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  const job = /^\/([\w.-]+)\/v1\/traces$/.exec(url)?.[1];
  if (req.method === 'POST' && job) {
    receive(job, req, res);
    return;
  }
  req.resume();
  res.writeHead(404).end();
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${(server.address() as AddressInfo).port}\n`);
});
// The bench owns this process: when the bench goes, so does the receiver.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
