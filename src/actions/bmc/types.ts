/**
 * Layer: executor. What every BMC power method (ipmi, redfish, command)
 * offers the fence: one action and a power-state read, each bounded in
 * time and never throwing. `unknown` is never `off`.
 */

/** A power state as read from a BMC; anything not clearly on or off is unknown. */
export type PowerState = 'on' | 'off' | 'unknown';

/** The power actions the fence and the roles' operator verbs use. */
export type PowerAction = 'off' | 'on' | 'cycle';

/**
 * Why a read or an action gave no answer, for alarms and evidence:
 * EBMCTIMEOUT (no answer within the bound), EBMCUNREACHABLE (no route, port
 * closed), EBMCSESSION (ipmitool could not open an RMCP+ session: wrong
 * credentials, wrong cipher suite, or a BMC that stays silent), EBMCAUTH
 * (HTTP 401/403), EBMCTLS (certificate not the pinned one), EBMCREFUSED (the
 * BMC answered with an error), EBMCSPAWN (the program could not start),
 * EBMCOUTPUT (an answer that does not parse), EBMCNOCONFIRM (nothing
 * configured that can read the power state).
 */
export type BmcFailureCode = 'EBMCTIMEOUT' | 'EBMCUNREACHABLE' | 'EBMCSESSION' | 'EBMCAUTH' | 'EBMCTLS' | 'EBMCREFUSED' | 'EBMCSPAWN' | 'EBMCOUTPUT' | 'EBMCNOCONFIRM';

/** One power-state read. */
export interface PowerReading {
  state: PowerState;
  /** What the BMC said, for the evidence (never a secret). */
  detail: string;
  durationMs: number;
  /** Set when state is unknown. */
  code?: BmcFailureCode;
}

/** One power action. `ok` means the BMC accepted it, not that the host is off. */
export interface ActionOutcome {
  ok: boolean;
  detail: string;
  durationMs: number;
  /** Set when not ok. */
  code?: BmcFailureCode;
}

/** A BMC as the fence sees it. */
export interface PowerDriver {
  /** `ipmi`, `redfish` or `command`, for the evidence. */
  readonly method: string;
  /** The BMC or command it talks to, for the evidence (no secret). */
  readonly target: string;
  power(action: PowerAction): Promise<ActionOutcome>;
  powerStatus(): Promise<PowerReading>;
  /** Release what the driver holds between calls (a Redfish session). Never throws. */
  close?(): Promise<void>;
}
