// The connections a pool has handed out, in checkout order: an intrusive doubly linked list through
// the entries, so a checkout and a release cost two pointer writes (a Set would hash the entry
// twice per checkout). Oldest first, which lets the leak check stop at the first young one.
/** What the list needs of an element (a T): its links. */
export interface Linked<T> {
  prev: T | undefined;
  next: T | undefined;
  listed: boolean;
}

export class CheckoutList<T extends Linked<T>> implements Iterable<T> {
  private head: T | undefined;
  private tail: T | undefined;
  size = 0;

  /** Appends `entry` (the newest checkout); an entry already listed is moved to the end. */
  add(entry: T): void {
    if (entry.listed) this.delete(entry);
    entry.listed = true;
    entry.prev = this.tail;
    entry.next = undefined;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    this.size++;
  }

  delete(entry: T): boolean {
    if (!entry.listed) return false;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = undefined;
    entry.listed = false;
    this.size--;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    // The next pointer is read before yielding: a caller may release the entry it is given.
    for (let e = this.head; e; ) {
      const next = e.next;
      yield e;
      e = next;
    }
  }
}
