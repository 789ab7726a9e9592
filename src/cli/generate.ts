// Everything the generator writes, as relative path -> content, so the CLI, `npm run generate`
// and the "committed files are current" test share one code path.
import type { GeneratorConfig } from './config';
import { alertRules, renderRuleFile } from './alerts';
import { renderRunbooks } from './runbooks';
import { serviceDashboard } from './dashboards/service';
import { serverDashboard } from './dashboards/server';

export const RULES_PATH = 'alerts/pg-pool-otel.rules.yml';
export const SERVICE_DASHBOARD_PATH = 'dashboards/pg-pool-otel-service.json';
export const SERVER_DASHBOARD_PATH = 'dashboards/pg-pool-otel-server.json';
export const RUNBOOKS_PATH = 'docs/runbooks.md';

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

export function generateFiles(c: GeneratorConfig): Map<string, string> {
  return new Map([
    [RULES_PATH, renderRuleFile(c)],
    [SERVICE_DASHBOARD_PATH, json(serviceDashboard(c))],
    [SERVER_DASHBOARD_PATH, json(serverDashboard(c))],
    [RUNBOOKS_PATH, renderRunbooks(alertRules(c))],
  ]);
}
