/** The breaker every process of the fleet-breaker test runs (both scopes). */
export const FLEET_TEST_OPTIONS = {
  failureThreshold: 3,
  halfOpenMaxCalls: 1,
  callTimeoutMs: 200,
  resetTimeoutMs: 300,
  fleetSyncMs: 20,
} as const;
