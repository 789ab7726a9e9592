// Puts a report on the trace of the code it concerns. The span active at checkout usually ended
// long before a leak's threshold passed (the request was answered); an ended span takes no events,
// so the report then becomes a zero-length child span carrying the event.
import { ROOT_CONTEXT, trace, type Attributes, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import type { PoolEntry } from '../pool/pool-entry';

export const LEAK_EVENT = 'pg_pool.checkout.leaked';
export const LEAK_SPAN = 'pg_pool.checkout.leak';

export function recordLeakOnTrace(tracer: Tracer, entry: PoolEntry, attributes: Attributes): void {
  recordOnTrace(tracer, entry.span, entry.spanContext, LEAK_SPAN, LEAK_EVENT, attributes);
}

/** An event on `span` while it records, else on a child span `spanName` of `spanContext`. */
export function recordOnTrace(
  tracer: Tracer,
  span: Span | undefined,
  spanContext: SpanContext | undefined,
  spanName: string,
  eventName: string,
  attributes: Attributes
): void {
  if (span?.isRecording()) {
    span.addEvent(eventName, attributes);
    return;
  }
  if (!spanContext) return;
  const parent = trace.setSpanContext(ROOT_CONTEXT, spanContext);
  const child = tracer.startSpan(spanName, { attributes }, parent);
  child.addEvent(eventName, attributes);
  child.end();
}
