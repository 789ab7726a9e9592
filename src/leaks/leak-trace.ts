// Puts a leak on the trace of the code that took the connection. The span active at checkout
// usually ended long before the threshold passed (the request was answered); an ended span
// takes no events, so the leak then becomes a zero-length child span carrying the event.
import { ROOT_CONTEXT, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import type { PoolEntry } from '../pool/pool-entry';

export const LEAK_EVENT = 'pg_pool.checkout.leaked';
export const LEAK_SPAN = 'pg_pool.checkout.leak';

export function recordLeakOnTrace(tracer: Tracer, entry: PoolEntry, attributes: Attributes): void {
  if (entry.span?.isRecording()) {
    entry.span.addEvent(LEAK_EVENT, attributes);
    return;
  }
  if (!entry.spanContext) return;
  const parent = trace.setSpanContext(ROOT_CONTEXT, entry.spanContext);
  const child = tracer.startSpan(LEAK_SPAN, { attributes }, parent);
  child.addEvent(LEAK_EVENT, attributes);
  child.end();
}
