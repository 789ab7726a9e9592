// A small typed subset of Grafana's dashboard JSON model, with builders. Plain objects rather than
// @grafana/grafana-foundation-sdk: the generator ships in the package and runs from the CLI, and
// the SDK would have to become a large runtime dependency for a few hundred lines of JSON.

export type Unit = 'short' | 's' | 'cps' | 'ops' | 'percentunit';

export interface DataSourceRef {
  type: 'prometheus';
  uid: string;
}

export interface Target {
  refId: string;
  expr: string;
  legendFormat: string;
  datasource: DataSourceRef;
  format?: 'time_series' | 'heatmap' | 'table';
  instant?: boolean;
  range?: boolean;
}

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Threshold {
  color: string;
  value: number | null;
}

export interface Panel {
  id: number;
  type: 'timeseries' | 'heatmap' | 'stat' | 'table' | 'row';
  title: string;
  description?: string;
  gridPos: GridPos;
  datasource?: DataSourceRef;
  targets?: Target[];
  fieldConfig?: {
    defaults: { unit: Unit; min?: number; custom?: Record<string, unknown>; thresholds?: { mode: 'absolute'; steps: Threshold[] } };
    overrides: unknown[];
  };
  options?: Record<string, unknown>;
  transformations?: unknown[];
  collapsed?: boolean;
  panels?: Panel[];
}

export interface Variable {
  name: string;
  label: string;
  type: 'datasource' | 'query';
  query: string | { query: string; refId: string };
  definition?: string;
  datasource?: DataSourceRef;
  current: Record<string, unknown>;
  hide: 0;
  refresh: 1 | 2;
  includeAll?: boolean;
  multi?: boolean;
  allValue?: string;
  sort?: number;
  regex: string;
}

export interface Dashboard {
  __inputs: { name: string; label: string; description: string; type: 'datasource'; pluginId: 'prometheus'; pluginName: 'Prometheus' }[];
  __requires: { type: string; id: string; name: string; version: string }[];
  annotations: { list: unknown[] };
  description: string;
  editable: boolean;
  graphTooltip: 1;
  id: null;
  links: unknown[];
  panels: Panel[];
  refresh: string;
  schemaVersion: number;
  tags: string[];
  templating: { list: Variable[] };
  time: { from: string; to: string };
  timepicker: Record<string, never>;
  timezone: string;
  title: string;
  uid: string;
  version: number;
}

/** Panels refer to the datasource variable, so the dashboard works when provisioned from a file
 * (the variable picks the default Prometheus) as well as when imported through the UI. */
export const DS: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

export interface Query {
  expr: string;
  legend: string;
}

type PanelSpec = Omit<Panel, 'id' | 'gridPos'> & { w: number; h: number };

const targets = (qs: Query[], extra: Partial<Target> = {}): Target[] =>
  qs.map((q, i) => ({ refId: String.fromCharCode(65 + i), expr: q.expr, legendFormat: q.legend, datasource: DS, ...extra }));

/** Series whose legend starts with "limit" or "max" are drawn as dashed, unstacked lines. */
const LIMIT_OVERRIDE = {
  matcher: { id: 'byRegexp', options: '^(limit|max).*' },
  properties: [
    { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
    { id: 'custom.stacking', value: { mode: 'none', group: 'A' } },
    { id: 'custom.fillOpacity', value: 0 },
    { id: 'color', value: { mode: 'fixed', fixedColor: 'red' } },
  ],
};

export function timeseries(title: string, description: string, unit: Unit, qs: Query[], opts: { stack?: boolean; w?: number } = {}): PanelSpec {
  return {
    type: 'timeseries',
    title,
    description,
    datasource: DS,
    targets: targets(qs),
    fieldConfig: {
      defaults: {
        unit,
        min: 0,
        custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: opts.stack ? 30 : 10, showPoints: 'never', stacking: { mode: opts.stack ? 'normal' : 'none', group: 'A' } },
      },
      overrides: [LIMIT_OVERRIDE],
    },
    options: { legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['lastNotNull', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
    w: opts.w ?? 12,
    h: 8,
  };
}

export function heatmap(title: string, description: string, yUnit: Unit, q: Query): PanelSpec {
  return {
    type: 'heatmap',
    title,
    description,
    datasource: DS,
    targets: targets([q], { format: 'heatmap' }),
    // Cell values are counts of observations; the y axis carries the histogram's unit.
    fieldConfig: { defaults: { unit: 'short' }, overrides: [] },
    options: {
      calculate: false,
      yAxis: { unit: yUnit, axisPlacement: 'left' },
      color: { mode: 'scheme', scheme: 'Oranges', fill: 'dark-orange', scale: 'exponential', exponent: 0.5, steps: 64 },
      cellGap: 1,
      tooltip: { show: true, yHistogram: true },
      legend: { show: true },
      rowsFrame: { layout: 'auto' },
    },
    w: 12,
    h: 8,
  };
}

export function stat(title: string, description: string, unit: Unit, q: Query, steps: Threshold[], w = 6): PanelSpec {
  return {
    type: 'stat',
    title,
    description,
    datasource: DS,
    targets: targets([q]),
    fieldConfig: { defaults: { unit, thresholds: { mode: 'absolute', steps } }, overrides: [] },
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'area', textMode: 'value_and_name', justifyMode: 'auto', orientation: 'auto' },
    w,
    h: 8,
  };
}

export function table(title: string, description: string, unit: Unit, q: Query, w = 12): PanelSpec {
  return {
    type: 'table',
    title,
    description,
    datasource: DS,
    targets: targets([q], { format: 'table', instant: true, range: false }),
    fieldConfig: { defaults: { unit }, overrides: [] },
    options: { showHeader: true, sortBy: [{ displayName: 'Value', desc: true }] },
    transformations: [{ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'connections' } } }],
    w,
    h: 8,
  };
}

export interface Row {
  title: string;
  panels: PanelSpec[];
}

/** Lays rows out top to bottom, panels left to right (wrapping at 24 columns), numbering ids. */
export function layout(rows: Row[]): Panel[] {
  const out: Panel[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    out.push({ id: id++, type: 'row', title: row.title, collapsed: false, panels: [], gridPos: { x: 0, y, w: 24, h: 1 } });
    y += 1;
    let x = 0;
    let lineHeight = 0;
    for (const { w, h, ...p } of row.panels) {
      if (x + w > 24) {
        y += lineHeight;
        x = 0;
        lineHeight = 0;
      }
      out.push({ ...p, id: id++, gridPos: { x, y, w, h } });
      x += w;
      lineHeight = Math.max(lineHeight, h);
    }
    y += lineHeight;
  }
  return out;
}

export function queryVariable(name: string, label: string, query: string): Variable {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    query: { query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    definition: query,
    current: {},
    hide: 0,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    sort: 1,
    regex: '',
  };
}

export function dashboard(uid: string, title: string, description: string, variables: Variable[], rows: Row[]): Dashboard {
  const panelTypes = [...new Set(rows.flatMap((r) => r.panels.map((p) => p.type)))].sort();
  return {
    __inputs: [
      { name: 'DS_PROMETHEUS', label: 'Prometheus', description: 'The Prometheus that scrapes the services instrumented with pg-pool-otel', type: 'datasource', pluginId: 'prometheus', pluginName: 'Prometheus' },
    ],
    __requires: [
      { type: 'grafana', id: 'grafana', name: 'Grafana', version: '10.0.0' },
      { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
      ...panelTypes.map((t) => ({ type: 'panel', id: t, name: t, version: '' })),
    ],
    annotations: { list: [] },
    description,
    editable: true,
    graphTooltip: 1,
    id: null,
    links: [],
    panels: layout(rows),
    refresh: '30s',
    schemaVersion: 39,
    tags: ['postgresql', 'pg-pool-otel', 'node-postgres'],
    templating: {
      list: [
        // On UI import, Grafana replaces ${DS_PROMETHEUS} with the chosen datasource; when
        // provisioned from a file the value matches nothing and Grafana falls back to the default.
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: { text: '${DS_PROMETHEUS}', value: '${DS_PROMETHEUS}' }, hide: 0, refresh: 1, regex: '' },
        ...variables,
      ],
    },
    time: { from: 'now-1h', to: 'now' },
    timepicker: {},
    timezone: 'browser',
    title,
    uid,
    version: 1,
  };
}
