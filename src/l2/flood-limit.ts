/**
 * A per-port budget for the frames a bridge floods (broadcast, multicast, unknown unicast):
 * one pod sending an ARP or broadcast storm must not make every other pod's port carry
 * it. A token bucket per port, refilled at `ratePerSecond` up to a burst of as many; a
 * frame over budget is not flooded (the caller counts it). The kernel bridge has no such
 * limit by default; switches call it storm control.
 *
 * Time is passed in (ns). Typed arrays, nothing allocated per frame.
 */
export class FloodLimiter {
  private readonly tokens: Float64Array;
  private readonly refilledAt: Float64Array;

  constructor(
    readonly ports: number,
    readonly ratePerSecond: number,
    readonly burst = ratePerSecond,
    /** Where the owner writes the time (ns) once per batch; read when `allow` is not given it. */
    private readonly clock = new Float64Array(1),
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) throw new RangeError('flood limit: rate and burst must be positive');
    this.tokens = new Float64Array(ports).fill(burst);
    this.refilledAt = new Float64Array(ports);
  }

  /** True when `port` may flood one more frame now (and takes the token). */
  allow(port: number, nowNs: number = this.clock[0]): boolean {
    if (port < 0 || port >= this.ports) return true;
    const elapsed = nowNs - this.refilledAt[port];
    let tokens = this.tokens[port];
    if (elapsed > 0) {
      tokens = Math.min(this.burst, tokens + (elapsed * this.ratePerSecond) / 1e9);
      this.refilledAt[port] = nowNs;
    }
    if (tokens < 1) {
      this.tokens[port] = tokens;
      return false;
    }
    this.tokens[port] = tokens - 1;
    return true;
  }

  /** A port handed to a new pod starts with a full budget. */
  reset(port: number, nowNs: number): void {
    if (port < 0 || port >= this.ports) return;
    this.tokens[port] = this.burst;
    this.refilledAt[port] = nowNs;
  }
}
