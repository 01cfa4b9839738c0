/**
 * How long a rotation of an account of any size takes: a closed-form estimate (the throughput is the smallest of
 * the limits a rotation runs into) and a discrete-event simulation of the engine's pipeline that checks it
 * (docs/SCALE.md). Pure and deterministic; used by bench/rotationScale.bench.ts and its test.
 *
 * The pipeline, as shared/rotation runs it: per container (or table) one sweep chain lists pages one after the
 * other (a continuation token cannot be split); each page becomes a work item after one progress transaction;
 * workers on every instance take work items (the Functions host runs up to batchSize + newBatchThreshold = 24
 * per instance), re-wrap their objects CSE_ROTATION_CONCURRENCY at a time (Get Properties, Key Vault call(s),
 * Set Metadata), with at most CSE_ROTATION_CONCURRENCY Key Vault calls in flight per instance (keyCallLimit.ts),
 * and record each item's result in one more progress transaction. Progress transactions all update one record
 * entity under If-Match, so they are serialized. Key Vault admits `vaultOpsPer10s` calls per vault in any 10 s
 * window and answers 429 with Retry-After (whole seconds) beyond; the instance then waits that long before its
 * next call to that vault (throttle.ts), still holding the call's slot.
 */

export interface ScaleParams {
  readonly objects: number;
  /** Containers and tables in scope: sweep chains that list in parallel. */
  readonly units: number;
  /** Objects per listing page and work item (RotationTuning.pageSize, 200). */
  readonly pageSize: number;
  /** Seconds to list one page with metadata. */
  readonly listPageSeconds: number;
  /** Key Vault: calls admitted per vault in any 10 s window (the published limit for the key type). */
  readonly vaultOpsPer10s: number;
  /** Vaults the objects' keys are spread over (evenly). */
  readonly vaults: number;
  /** Subscription-wide cap per region, calls per 10 s (5 × the per-vault limit); undefined: none. */
  readonly subscriptionOpsPer10s?: number;
  /** Key Vault calls per object: 1 for RSA (remote unwrap, local wrap), 2 for Managed HSM AES-KW (both remote). */
  readonly keyCallsPerObject: number;
  readonly instances: number;
  /** CSE_ROTATION_CONCURRENCY. */
  readonly concurrency: number;
  /** Work items one instance runs at once (host.json batchSize + newBatchThreshold). */
  readonly itemsPerInstance: number;
  /** Seconds of one Get Blob Properties or Set Blob Metadata. */
  readonly storageSeconds: number;
  /** Seconds of one Key Vault call. */
  readonly keyCallSeconds: number;
  /** Storage account request rate target (20,000 requests/s for a standard account). */
  readonly storageRequestsPerSecond: number;
  /** Seconds of one progress transaction (read the record, submit the entity-group transaction). */
  readonly progressTxnSeconds: number;
}

/** Storage requests per work item besides the two per object (listing, queue, progress rows). */
export const REQUESTS_PER_WORK_ITEM = 12;
/** Progress transactions per work item (its creation with the page, its result). */
export const PROGRESS_TXNS_PER_ITEM = 2;

export type Bottleneck = 'keyVault' | 'keyCallSlots' | 'storageAccount' | 'listing' | 'progressRecord';

export interface Estimate {
  /** Objects per second in the steady state. */
  readonly objectsPerSecond: number;
  readonly seconds: number;
  readonly bottleneck: Bottleneck;
  /** Each limit, objects per second. */
  readonly limits: Readonly<Record<Bottleneck, number>>;
}

export function estimate(p: ScaleParams): Estimate {
  const vaultCalls = Math.min(p.vaults * p.vaultOpsPer10s, p.subscriptionOpsPer10s ?? Infinity) / 10;
  const limits: Record<Bottleneck, number> = {
    keyVault: vaultCalls / p.keyCallsPerObject,
    keyCallSlots: (p.instances * p.concurrency) / (p.keyCallSeconds * p.keyCallsPerObject),
    storageAccount: p.storageRequestsPerSecond / (2 + REQUESTS_PER_WORK_ITEM / p.pageSize),
    listing: (p.units * p.pageSize) / (p.listPageSeconds + p.progressTxnSeconds),
    progressRecord: p.pageSize / (PROGRESS_TXNS_PER_ITEM * p.progressTxnSeconds),
  };
  let bottleneck: Bottleneck = 'keyVault';
  for (const [name, rate] of Object.entries(limits) as [Bottleneck, number][]) {
    if (rate < limits[bottleneck]) bottleneck = name;
  }
  const rate = limits[bottleneck];
  // Ramp: the first page is listed and created before any re-wrap starts; the last item finishes one object later.
  const ramp = p.listPageSeconds + p.progressTxnSeconds + 2 * p.storageSeconds + p.keyCallSeconds;
  return { objectsPerSecond: rate, seconds: ramp + p.objects / rate, bottleneck, limits };
}

// -----------------------------------------------------------------------------------------------------------------
// Simulation

export interface SimulationResult {
  readonly seconds: number;
  readonly objectsPerSecond: number;
  readonly keyCalls: number;
  readonly throttled: number;
  /** Most Key Vault calls in flight at once on one instance. */
  readonly peakCallsPerInstance: number;
}

/** A binary min-heap of timed events (ties in insertion order, so the simulation is deterministic). */
class EventQueue {
  readonly #heap: { at: number; seq: number; run: () => void }[] = [];
  #seq = 0;

  push(at: number, run: () => void): void {
    const heap = this.#heap;
    heap.push({ at, seq: this.#seq++, run });
    for (let i = heap.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  pop(): { at: number; run: () => void } | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Key Vault's limit: at most `limit` calls admitted in any 10 s window. */
class SlidingWindow {
  readonly #admitted: number[] = [];
  #head = 0;

  constructor(readonly limit: number) {}

  /** Admits a call at `now`, or answers the Retry-After (whole seconds, at least 1) of a 429. */
  tryAdmit(now: number): { ok: true } | { ok: false; retryAfter: number } {
    while (this.#head < this.#admitted.length && this.#admitted[this.#head]! <= now - 10) this.#head++;
    if (this.#admitted.length - this.#head < this.limit) {
      this.#admitted.push(now);
      return { ok: true };
    }
    const oldest = this.#admitted[this.#head]!;
    return { ok: false, retryAfter: Math.max(1, Math.ceil(oldest + 10 - now)) };
  }
}

/** A FIFO resource with `slots` concurrent holders. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(slots: number) {
    this.#free = slots;
  }
  acquire(then: () => void): void {
    if (this.#free > 0) {
      this.#free--;
      then();
    } else this.#waiting.push(then);
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#free++;
  }
}

/**
 * Simulates a rotation of `p.objects` objects (keep it to a few hundred thousand: every object is a handful of
 * events). The subscription cap is applied by lowering the per-vault limit accordingly.
 */
export function simulate(p: ScaleParams): SimulationResult {
  const events = new EventQueue();
  let now = 0;
  const at = (delay: number, run: () => void): void => events.push(now + delay, run);

  const perVault = Math.min(p.vaultOpsPer10s, (p.subscriptionOpsPer10s ?? Infinity) / p.vaults);
  const vaults = Array.from({ length: p.vaults }, () => new SlidingWindow(Math.floor(perVault)));
  const progress = new Slots(1);
  const pending: number[] = []; // work items waiting for a worker: their object counts
  let keyCalls = 0;
  let throttled = 0;
  let done = 0;
  let finishedAt = 0;
  let peak = 0;
  let objectSeq = 0;

  const progressTxn = (then: () => void): void =>
    progress.acquire(() =>
      at(p.progressTxnSeconds, () => {
        progress.release();
        then();
      }),
    );

  interface Instance {
    items: number;
    calls: Slots;
    inFlight: number;
    /** Per vault: no call before this time (the throttle gate). */
    gate: number[];
  }
  const instances: Instance[] = Array.from({ length: p.instances }, () => ({
    items: 0,
    calls: new Slots(p.concurrency),
    inFlight: 0,
    gate: vaults.map(() => 0),
  }));

  /** One Key Vault call from `instance`, holding one of its call slots for its whole duration (waits included). */
  const keyCall = (instance: Instance, vault: number, then: () => void): void => {
    instance.calls.acquire(() => {
      instance.inFlight++;
      peak = Math.max(peak, instance.inFlight);
      const attempt = (): void => {
        const wait = (instance.gate[vault] ?? 0) - now;
        if (wait > 0) return at(wait, attempt);
        const admitted = (vaults[vault] as SlidingWindow).tryAdmit(now);
        if (!admitted.ok) {
          throttled++;
          instance.gate[vault] = Math.max(instance.gate[vault] ?? 0, now + admitted.retryAfter);
          return at(admitted.retryAfter, attempt);
        }
        keyCalls++;
        at(p.keyCallSeconds, () => {
          instance.inFlight--;
          instance.calls.release();
          then();
        });
      };
      attempt();
    });
  };

  const runItem = (instance: Instance, objects: number): void => {
    let next = 0;
    let finished = 0;
    const lane = (): void => {
      if (next >= objects) return;
      next++;
      const vault = objectSeq++ % p.vaults;
      at(p.storageSeconds, () => {
        let calls = 0;
        const afterCall = (): void => {
          if (++calls < p.keyCallsPerObject) return keyCall(instance, vault, afterCall);
          at(p.storageSeconds, () => {
            finished++;
            if (finished === objects) {
              progressTxn(() => {
                done += objects;
                finishedAt = now;
                instance.items--;
                dispatch();
              });
            } else lane();
          });
        };
        keyCall(instance, vault, afterCall);
      });
    };
    for (let i = 0; i < Math.min(p.concurrency, objects); i++) lane();
  };

  const dispatch = (): void => {
    for (const instance of instances) {
      while (instance.items < p.itemsPerInstance && pending.length > 0) {
        instance.items++;
        runItem(instance, pending.shift() as number);
      }
    }
  };

  // Sweep chains: objects spread evenly over the units; each lists its pages one after the other.
  const perUnit = Math.ceil(p.objects / p.units);
  for (let u = 0; u < p.units; u++) {
    let left = Math.min(perUnit, Math.max(0, p.objects - u * perUnit));
    const listNext = (): void => {
      if (left <= 0) return;
      const page = Math.min(p.pageSize, left);
      left -= page;
      at(p.listPageSeconds, () =>
        progressTxn(() => {
          pending.push(page);
          dispatch();
          listNext();
        }),
      );
    };
    listNext();
  }

  for (let e = events.pop(); e !== undefined; e = events.pop()) {
    now = e.at;
    e.run();
  }
  if (done !== p.objects) throw new Error(`simulation lost objects: ${done} of ${p.objects}`);
  return {
    seconds: finishedAt,
    objectsPerSecond: p.objects / finishedAt,
    keyCalls,
    throttled,
    peakCallsPerInstance: peak,
  };
}
