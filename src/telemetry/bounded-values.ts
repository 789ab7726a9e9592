// Caps the distinct values an attribute may take on metrics: the first `limit` values are kept,
// later new ones become `other`, so a dynamic table name cannot explode series cardinality.
export const OTHER = 'other';

export class BoundedValues {
  private readonly seen = new Set<string>();
  constructor(private limit: number) {}

  setLimit(limit: number): void {
    this.limit = limit;
  }

  admit(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.limit) return OTHER;
    this.seen.add(value);
    return value;
  }
}
