// Picks the package's log reports out of a service's stderr. A report is a `[pg-pool-otel] LEVEL`
// line, possibly followed by a stack; of the stack the service's own frames are kept, since they
// point at the code that took the connection, and so is the `at pool.query (SQL)` line that stands
// for a pool.query() checkout. A report whose frames are all elsewhere keeps its first one, so
// that no report ends with an empty "Taken at:".

const PACKAGE_LINE = /^\[pg-pool-otel\] (ERROR|WARN|INFO|DEBUG) /;
const FRAME = /^\s+at /;
const QUERY_SITE = /^\s+at pool\.query \(/;
const FRAMES_SHOWN = 2;

export class ReportFilter {
  private inReport = false;
  private framesShown = 0;

  constructor(
    private readonly root: string,
    private readonly emit: (line: string, isReport: boolean) => void
  ) {}

  line(text: string): void {
    if (PACKAGE_LINE.test(text)) {
      this.inReport = true;
      this.framesShown = 0;
      this.emit(text, true);
    } else if (FRAME.test(text)) {
      if (!this.inReport || this.framesShown >= FRAMES_SHOWN) return;
      const wanted = text.includes('examples/service') || QUERY_SITE.test(text) || this.framesShown === 0;
      if (!wanted) return;
      this.framesShown++;
      this.emit(`    ${text.trim().split(this.root + '/').join('')}`, true);
    } else if (this.inReport && /^\s/.test(text)) {
      // other indented detail of the report (e.g. a pool name line): keep it
      this.emit(text, true);
    } else if (text.trim() !== '') {
      // the service's own stderr (an unexpected 500, a crash): always worth seeing
      this.inReport = false;
      this.emit(text, false);
    }
  }
}
