// What the server accepts, learnt from its `welcome` (docs/PROTOCOL.md), so
// that the page can refuse what would be refused before sending it, and say
// why in words. A server that does not send `limits` gets the defaults,
// which are the server's own defaults.

export const DEFAULT_LIMITS = Object.freeze({
  text: 4096, // longest message text, in bytes of UTF-8
  file: 16 * 1024 * 1024, // largest file, in bytes
  message: 65536, // largest text frame, in bytes
  rate: 20, // frames per second, sustained
  burst: 60, // frames above the rate
});

/** The limits a `welcome` event announces, each one falling back to its default. */
export function limitsFrom(welcome) {
  const given = welcome && typeof welcome.limits === 'object' && welcome.limits ? welcome.limits : {};
  const out = {};
  for (const [key, fallback] of Object.entries(DEFAULT_LIMITS)) {
    const v = given[key];
    out[key] = Number.isFinite(v) && v > 0 ? v : fallback;
  }
  return out;
}

/**
 * The server's rate limit as seen from here: a token bucket of `burst`
 * frames refilled at `rate` per second, like the server's. It is kept a
 * little under the server's so that network jitter cannot push a frame over.
 */
export class FrameBudget {
  constructor(limits) {
    this.capacity = Math.max(1, Math.floor(limits.burst * 0.9));
    this.rate = Math.max(0.1, limits.rate * 0.9);
    this.tokens = this.capacity;
    this.last = performance.now();
  }

  refill() {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  /** Whether `n` frames may go now (and if so, counts them as sent). */
  take(n = 1) {
    const need = Math.min(n, this.capacity);
    this.refill();
    if (this.tokens < need) return false;
    this.tokens -= need;
    return true;
  }

  /** Milliseconds until `n` frames may go. */
  wait(n = 1) {
    const need = Math.min(n, this.capacity);
    this.refill();
    return this.tokens >= need ? 0 : Math.ceil(((need - this.tokens) / this.rate) * 1000);
  }
}
