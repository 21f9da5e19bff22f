/**
 * Layer: executor. What every BMC power method (ipmi, redfish, command)
 * offers the fence: one action and a power-state read, each bounded in
 * time and never throwing. `unknown` is never `off`.
 */

/** A power state as read from a BMC; anything not clearly on or off is unknown. */
export type PowerState = 'on' | 'off' | 'unknown';

/** The power actions the fence and the roles' operator verbs use. */
export type PowerAction = 'off' | 'on' | 'cycle';

/** One power-state read. */
export interface PowerReading {
  state: PowerState;
  /** What the BMC said, for the evidence (never a secret). */
  detail: string;
  durationMs: number;
}

/** One power action. `ok` means the BMC accepted it, not that the host is off. */
export interface ActionOutcome {
  ok: boolean;
  detail: string;
  durationMs: number;
}

/** A BMC as the fence sees it. */
export interface PowerDriver {
  /** `ipmi`, `redfish` or `command`, for the evidence. */
  readonly method: string;
  /** The BMC or command it talks to, for the evidence (no secret). */
  readonly target: string;
  power(action: PowerAction): Promise<ActionOutcome>;
  powerStatus(): Promise<PowerReading>;
}
