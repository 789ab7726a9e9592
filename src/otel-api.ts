// The OpenTelemetry API's singletons as plain constants, for the per-checkout and per-query paths:
// each read of an export of '@opentelemetry/api' is a getter call (tsc's re-exports in the
// package's build, esbuild's namespace getters in the preload bundle). The API hands out the same
// objects for the life of the process, so reading them once is safe.
import { context as contextApi, trace as traceApi, ProxyTracer as ProxyTracerClass } from '@opentelemetry/api';

export const context = contextApi;
export const trace = traceApi;
export const ProxyTracer = ProxyTracerClass;
