// Optional: a real Prometheus on loopback that scrapes the services every second and evaluates the
// package's shipped alert rules, so the live view can show which alerts are pending or firing.
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { tmpdir } from 'node:os';
import { freePort } from '../../tools/embedded-postgres';
import { onCleanup, spawnTracked } from './processes';
import { ROOT } from './service';

export const RULES = join(ROOT, 'alerts/pg-pool-otel.rules.yml');

export interface Alert {
  name: string;
  state: 'pending' | 'firing';
  labels: Record<string, string>;
  /** When it became pending: alerts from an earlier scenario can still be active. */
  activeAt: number;
}

export interface Prometheus {
  url: string;
  pid: number;
  rulesLoaded: boolean;
  setTargets(targets: { name: string; metricsPort: number }[]): void;
  alerts(): Promise<Alert[] | undefined>;
}

export function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

export async function startPrometheus(log: (line: string) => void): Promise<Prometheus | undefined> {
  const binary = findOnPath('prometheus');
  if (!binary) {
    log('--with-prometheus: `prometheus` is not on PATH; going on without it (Debian: apt-get install prometheus)');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pg-pool-otel-prom-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const rulesLoaded = existsSync(RULES);
  if (!rulesLoaded) log(`--with-prometheus: ${RULES} does not exist yet; Prometheus runs without alert rules`);
  const targetsFile = join(dir, 'targets.json');
  const setTargets: Prometheus['setTargets'] = (targets) => {
    const groups = targets.map((t) => ({ targets: [`127.0.0.1:${t.metricsPort}`], labels: { service: t.name } }));
    if (!existsSync(dir)) return; // already cleaned up (Ctrl-C)
    writeFileSync(`${targetsFile}.tmp`, JSON.stringify(groups));
    renameSync(`${targetsFile}.tmp`, targetsFile); // Prometheus never reads half a file
  };
  setTargets([]);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      rulesLoaded ? `rule_files: [${JSON.stringify(RULES)}]` : '',
      'scrape_configs:',
      '  - job_name: pg-pool-otel-demo',
      `    file_sd_configs: [{ files: [${JSON.stringify(targetsFile)}], refresh_interval: 1s }]`,
    ].join('\n')
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawnTracked('prometheus', binary, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ], { cwd: dir });
  child.stdout!.resume();
  child.stderr!.resume();
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      // starting
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      log('--with-prometheus: Prometheus did not become ready; going on without it');
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  log(`started Prometheus on ${url} pid=${child.pid} (rules: ${rulesLoaded ? RULES : 'none'})`);
  return {
    url,
    pid: child.pid!,
    rulesLoaded,
    setTargets,
    async alerts() {
      try {
        const res = await fetch(`${url}/api/v1/alerts`, { signal: AbortSignal.timeout(1000) });
        type Raw = { labels: Record<string, string>; state: string; activeAt: string };
        const body = (await res.json()) as { data: { alerts: Raw[] } };
        return body.data.alerts
          .filter((a) => a.state === 'pending' || a.state === 'firing')
          .map((a) => ({
            name: a.labels.alertname ?? '?',
            state: a.state as Alert['state'],
            labels: a.labels,
            activeAt: Date.parse(a.activeAt),
          }));
      } catch {
        return undefined;
      }
    },
  };
}
