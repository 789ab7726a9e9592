// Runs one scenario: starts its service processes (the fleet one at a time), drives their load,
// scrapes /metrics about once a second for the live view, then stops them and judges what was seen.
import { LoadStats, pause, runLoad } from './load';
import { Scraper } from './metrics';
import { Tracker } from './observe';
import type { Prometheus } from './prometheus';
import { ReportFilter } from './reports';
import type { Scenario } from './scenarios';
import { ROOT, startService, type Service } from './service';
import type { Result } from './summary';
import type { LiveView } from './view';

export interface RunContext {
  view: LiveView;
  databaseUrl: string;
  usableConnections: number;
  /** Environment every service process gets: the package's settings for a short demo. */
  packageEnv: Record<string, string>;
  preload: boolean;
  prometheus?: Prometheus;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

export async function runScenario(
  scenario: Scenario,
  position: { index: number; of: number },
  seconds: number,
  ctx: RunContext
): Promise<Result> {
  const { view } = ctx;
  const stats = new LoadStats();
  const tracker = new Tracker();
  const scraper = new Scraper();
  const load = new AbortController();
  ctx.signal.addEventListener('abort', () => load.abort(), { once: true });
  const services: Service[] = [];
  const loads: Promise<void>[] = [];

  view.log('');
  view.log(`▶ ${position.index}/${position.of} ${scenario.name}: ${scenario.title}`);

  const start = async (plan: ReturnType<Scenario['services']>[number]) => {
    const filter = new ReportFilter(ROOT, (line, isReport) => {
      if (ctx.signal.aborted) return; // Ctrl-C: the server is going away under the service
      view.log(`  ${plan.name} | ${line}`);
      if (isReport) tracker.reports.push(line);
    });
    const service = await startService({
      name: plan.name,
      databaseUrl: ctx.databaseUrl,
      env: { ...ctx.packageEnv, ...plan.env },
      preload: ctx.preload,
      onStderr: (_name, line) => filter.line(line),
    });
    services.push(service);
    ctx.prometheus?.setTargets(services);
    const settings = Object.entries(plan.env).map(([k, v]) => ` ${k}=${v}`).join('');
    view.log(`  started ${service.name} pid=${service.pid} on ${service.baseUrl}, metrics ${service.metricsUrl}${settings}`);
    loads.push(runLoad(scenario.load(service.baseUrl, plan), stats, load.signal));
  };

  const started = Date.now();
  const [first, ...rest] = scenario.services(ctx.usableConnections, seconds);
  await start(first!);
  const t0 = Date.now();
  const deadline = t0 + seconds * 1000;
  const starting = (async () => {
    for (const plan of rest) {
      await pause(t0 + plan.delayMs - Date.now(), load.signal);
      if (load.signal.aborted) return;
      await start(plan);
    }
  })();
  starting.catch(() => load.abort()); // surfaced below, when awaited

  try {
    while (Date.now() < deadline && !load.signal.aborted) {
      const tick = Date.now();
      const frame = await scraper.scrape(services);
      tracker.add(frame);
      // Only alerts raised since this scenario began belong to it.
      const alerts = (await ctx.prometheus?.alerts())?.filter((a) => a.activeAt >= started);
      if (alerts) tracker.addAlerts(alerts);
      view.update(
        {
          ...position,
          name: scenario.name,
          title: scenario.title,
          watch: scenario.watch,
          elapsedS: (Date.now() - t0) / 1000,
          totalS: seconds,
          load: stats.describe(),
          reqPerSec: stats.rate(),
        },
        frame,
        alerts
      );
      await pause(1000 - (Date.now() - tick), load.signal);
    }
  } finally {
    load.abort();
    await Promise.allSettled([starting, ...loads]);
  }
  await starting;
  // One last look, so the summary counts everything up to the end of the load.
  tracker.add(await scraper.scrape(services));
  view.close();
  await Promise.all(services.map((s) => s.stop()));
  ctx.prometheus?.setTargets([]);
  const observed = tracker.observed(stats);
  return { scenario, observed, verdict: scenario.verdict(observed) };
}
