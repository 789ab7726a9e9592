// `npm run demo`: a real PostgreSQL, the example service under the package's preload, and a load
// generator walking through scenarios while a live view reads the service's /metrics endpoint.
// Everything it starts is stopped by pid at the end, on error and on Ctrl-C.
import { parseArgs, USAGE, type Options } from './demo/args';
import { prepareDatabase } from './demo/database';
import { cleanup, handleSignals, isAlive, startedPids } from './demo/processes';
import { startPrometheus, type Prometheus } from './demo/prometheus';
import { runScenario } from './demo/run-scenario';
import { SCENARIOS } from './demo/scenarios';
import { COMMAND, preloadBuilt } from './demo/service';
import { summaryLines, type Result } from './demo/summary';
import { legendLines, LiveView } from './demo/view';
import { PostgresSetupError } from '../tools/embedded-postgres';

/** The package's settings for a short demo: report a leak after 2 s, sample the server every second. */
const PACKAGE_ENV = {
  PG_POOL_OTEL_LEAK_THRESHOLD_MS: '2000',
  PG_POOL_OTEL_LEAK_CHECK_INTERVAL_MS: '500',
  PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS: '1000',
};
/** Small enough that three copies of the service can fill it. */
const MAX_CONNECTIONS = 20;

const view = new LiveView(process.stdout, process.stdout.isTTY === true);
const log = (line: string) => view.log(line);

let finished: Promise<boolean> | undefined;
/** Stops everything (once), then says which pids it started and whether any is still alive. */
function finish(): Promise<boolean> {
  finished ??= stopEverything();
  return finished;
}

async function stopEverything(): Promise<boolean> {
  view.close();
  await cleanup();
  const pids = startedPids();
  const alive = pids.filter((p) => isAlive(p.pid));
  log(`pids: ${pids.map((p) => `${p.name}=${p.pid}`).join(' ') || '(none)'}`);
  log(alive.length === 0 ? 'stopped: every process the demo started is gone; temporary data removed' : `STILL RUNNING: ${alive.map((p) => p.pid).join(' ')}`);
  return alive.length === 0;
}

async function run(options: Options, signal: AbortSignal): Promise<Result[]> {
  const preload = !options.bare;
  if (preload && !preloadBuilt()) throw new Error('dist/register.js is missing: run `npm run build` first (`npm run demo` does)');
  log('pg-pool-otel demo: every number below is read from the service\'s own /metrics endpoint.');
  const db = await prepareDatabase(MAX_CONNECTIONS, log);
  log(`PostgreSQL: ${db.description}, max_connections ${db.maxConnections}, ${db.usableConnections} usable by the service's role`);
  log(`service:    ${preload ? COMMAND : COMMAND.replace(/--require \S+ /, '')}`);
  log(`            with DATABASE_URL, PORT, OTEL_SERVICE_NAME, OTEL_EXPORTER_PROMETHEUS_PORT and ${Object.entries(PACKAGE_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const line of legendLines({ bare: !preload, sampleIntervalMs: PACKAGE_ENV.PG_POOL_OTEL_SERVER_SAMPLE_INTERVAL_MS })) log(line);
  let scenarios = SCENARIOS.filter((s) => options.scenarios.includes(s.name));
  if (!db.embedded && !options.scenariosChosen) {
    scenarios = scenarios.filter((s) => s.name !== 'fleet');
    log('fleet skipped: it fills the server up to its connection limit; run it on your DATABASE_URL only with --scenario fleet');
  }
  let prometheus: Prometheus | undefined;
  if (options.withPrometheus) prometheus = await startPrometheus(log);
  const results: Result[] = [];
  for (const [i, scenario] of scenarios.entries()) {
    if (signal.aborted) break;
    const seconds = options.duration ?? scenario.seconds;
    const ctx = { view, databaseUrl: db.url, usableConnections: db.usableConnections, packageEnv: PACKAGE_ENV, preload, prometheus, signal };
    results.push(await runScenario(scenario, { index: i + 1, of: scenarios.length }, seconds, ctx));
  }
  return results;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (err) {
    console.error(`demo: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const interrupted = new AbortController();
  handleSignals(() => {
    interrupted.abort();
    view.close();
  }, finish);
  let code = 0;
  try {
    const results = await run(options, interrupted.signal);
    for (const line of summaryLines(results)) log(line);
  } catch (err) {
    // After Ctrl-C, whatever was in flight fails as things are stopped under it: not news.
    // A setup problem the user can fix is said in its own sentence; anything else keeps its stack.
    if (err instanceof PostgresSetupError) log(`demo stopped: ${err.message}`);
    else if (!interrupted.signal.aborted) log(`demo failed: ${(err as Error).stack ?? String(err)}`);
    code = 1;
  }
  const clean = await finish();
  if (interrupted.signal.aborted) return 130;
  return clean ? code : 1;
}

main().then((code) => process.exit(code));
