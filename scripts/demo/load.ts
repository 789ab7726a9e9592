// Load generator: a few HTTP "streams", each a number of concurrent workers that send requests
// back to back (optionally in bursts with gaps) until stopped. Every loop is bounded by the
// scenario's deadline and only ever targets the local service.
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';

export interface Request {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
}

export interface Stream {
  /** Base URL of the service this stream targets. */
  baseUrl: string;
  concurrency: number;
  next(): Request;
  /** Pause after each request, per worker. */
  pauseMs?: number;
  /** Send only during `onMs`, then stay silent for `offMs`, repeatedly. */
  burst?: { onMs: number; offMs: number };
  /** Stop after this many requests in total (e.g. a few planted bad requests). */
  limit?: number;
}

export class LoadStats {
  total = 0;
  byStatus = new Map<string, number>();
  private window: number[] = [];

  record(status: string): void {
    this.total++;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    this.window.push(Date.now());
  }

  /** Requests completed per second over the last few seconds. */
  rate(): number {
    const since = Date.now() - 3000;
    this.window = this.window.filter((t) => t >= since);
    return this.window.length / 3;
  }

  describe(): string {
    const parts = [...this.byStatus.entries()].sort().map(([s, n]) => `${s}: ${n}`);
    return `${this.total} requests (${parts.join(', ') || 'none yet'})`;
  }
}

/** Waits `ms`, or less if `signal` aborts first; never rejects. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return delay(Math.max(0, ms), undefined, { signal }).catch(() => undefined);
}

async function send(stream: Stream, stats: LoadStats, signal: AbortSignal): Promise<void> {
  const req = stream.next();
  try {
    const res = await fetch(stream.baseUrl + req.path, {
      method: req.method,
      headers: req.body === undefined ? {} : { 'content-type': 'application/json' },
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
    });
    await res.arrayBuffer();
    stats.record(String(res.status));
  } catch {
    if (!signal.aborted) stats.record('network error');
  }
}

async function worker(stream: Stream, stats: LoadStats, signal: AbortSignal, sent: { n: number }): Promise<void> {
  const started = Date.now();
  while (!signal.aborted && (stream.limit === undefined || sent.n < stream.limit)) {
    if (stream.burst) {
      const phase = (Date.now() - started) % (stream.burst.onMs + stream.burst.offMs);
      if (phase >= stream.burst.onMs) {
        await pause(stream.burst.onMs + stream.burst.offMs - phase, signal);
        continue;
      }
    }
    sent.n++;
    await send(stream, stats, signal);
    if (stream.pauseMs) await pause(stream.pauseMs, signal);
  }
}

/** Runs the streams until `signal` aborts; resolves when every worker has stopped. */
export async function runLoad(streams: Stream[], stats: LoadStats, signal: AbortSignal): Promise<void> {
  setMaxListeners(0, signal); // every request in flight listens to it
  const workers: Promise<void>[] = [];
  for (const stream of streams) {
    const sent = { n: 0 };
    for (let i = 0; i < stream.concurrency; i++) workers.push(worker(stream, stats, signal, sent));
  }
  await Promise.all(workers);
}
