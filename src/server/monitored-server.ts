// The two things server headroom keeps: a server (what answers, known by what it says of itself,
// with its last sample) and a target (what the application dials, with how to open a monitoring
// connection to it). The feature that drives them is server-headroom.ts.
import type { Attributes } from '@opentelemetry/api';
import type { TrackedPool } from '../pool/tracked-pool';
import type { CounterSeries } from '../telemetry/series';
import type { MonitorSettings } from './monitor-connection';
import type { ActivitySample, ServerLimits } from './server-sample';

/** One server, whichever targets reach it. */
export class MonitoredServer {
  limits: ServerLimits | undefined;
  activity: ActivitySample | undefined;
  /** Unix time in seconds of the last sample (a refusal for lack of slots included). */
  sampledAt: number | undefined;
  /** The last attempt was refused with 53300: the server is full. */
  full = false;
  /** Last sampled through a pooler: its backends' owner is unknown. */
  viaPooler = false;
  /** The interval in which a target last sampled it: one sample per server per interval. */
  round = -1;
  readonly targets = new Set<ServerTarget>();

  constructor(
    readonly identity: string,
    /** server.address and server.port: the address a direct target dials, else the server's own. */
    readonly attributes: Attributes
  ) {}
}

/** One address, database and role the application connects to. */
export class ServerTarget {
  readonly pools = new Set<TrackedPool>();
  server: MonitoredServer | undefined;
  viaPooler = false;
  /** The other end refused the sample for good (a pooler's admin console): left alone. */
  refused = false;
  running = false;
  /** Intervals since a pool or bare client last used it; sampled only while 0. */
  unusedRounds = 0;
  /** Date.now() before which it is not sampled: its application's first queries go first. */
  notBefore = 0;

  constructor(
    readonly key: string,
    /** server.address and server.port as dialled. */
    readonly attributes: Attributes,
    readonly settings: MonitorSettings,
    readonly failures: CounterSeries
  ) {}
}

