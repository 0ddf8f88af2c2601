import { defineErrorCodes } from '@tessera/core';

/** The error codes of @tessera/router-canary (listed in its README; a test keeps the two equal). */
export const CANARY_ERRORS = defineErrorCodes({
  CANARY_E_ACTION_CONFLICT: {
    status: 409,
    description: 'A routing action (`POST /v1/routing/{model}/{action}`) does not fit the rollout\'s state now, e.g. `resume` of a rollout that is not paused; the message gives the state and the actions that fit it.',
  },
  CANARY_E_ACTION_INVALID: {
    status: 400,
    description: "A routing action lacks what it needs or names a version the router does not route to, e.g. an A/B `promote` without a variant's `version`.",
  },
});
