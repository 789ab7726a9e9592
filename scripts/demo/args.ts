// Command-line options of `npm run demo -- ...`.
import { SCENARIO_NAMES, type ScenarioName } from './scenarios';

export interface Options {
  scenarios: ScenarioName[];
  /** True when --scenario was given (a DATABASE_URL run then includes fleet too). */
  scenariosChosen: boolean;
  /** Seconds per scenario; undefined keeps each scenario's own length. */
  duration?: number;
  withPrometheus: boolean;
  /** Run the service on bare pg (without the preload), to compare. */
  bare: boolean;
}

export const USAGE = `usage: npm run demo -- [--scenario NAME[,NAME...]] [--duration SECONDS] [--with-prometheus] [--bare]

  --scenario         one or more of: ${SCENARIO_NAMES.join(', ')} (default: all, in that order)
  --duration         length of each scenario in seconds (default: each scenario's own, about 70 s in all)
  --with-prometheus  also run \`prometheus\` (from PATH) with the shipped alert rules and show its alerts
  --bare             run the service without the preload, to see what you would have without the package

Set DATABASE_URL to use your own PostgreSQL instead of the embedded one.`;

export function parseArgs(argv: string[]): Options {
  const options: Options = { scenarios: [...SCENARIO_NAMES], scenariosChosen: false, withPrometheus: false, bare: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--scenario') {
      const names = value().split(',');
      for (const n of names) {
        if (!(SCENARIO_NAMES as readonly string[]).includes(n)) throw new Error(`unknown scenario ${n}`);
      }
      options.scenarios = names as ScenarioName[];
      options.scenariosChosen = true;
    } else if (flag === '--duration') {
      const n = Number(value());
      if (!(n > 0 && n <= 3600)) throw new Error('--duration takes a number of seconds from 1 to 3600');
      options.duration = n;
    } else if (flag === '--with-prometheus') options.withPrometheus = true;
    else if (flag === '--bare') options.bare = true;
    else throw new Error(`unknown option ${flag}`);
  }
  return options;
}
