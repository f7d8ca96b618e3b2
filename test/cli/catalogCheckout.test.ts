import { describe, expect, it } from 'vitest';
import { checkoutWithWebhookSteps, inProcess } from '../../src/cli/scenarios/checkout/saga.js';
import { createShop } from '../../src/cli/scenarios/checkout/services.js';
import { catalogEntry } from '../../src/diagram/catalog.js';
import { machineGraph } from '../../src/diagram/graph.js';
import { createRuntime } from '../../src/index.js';

describe('the catalog saga is the checkout the demo and the example run', () => {
  it('has the machine rt.saga builds from checkoutWithWebhookSteps', async () => {
    const rt = createRuntime();
    const steps = checkoutWithWebhookSteps(inProcess(createShop({ keyboard: 1 })), { paymentTimeoutMs: 100 });
    const saga = rt.saga('checkout', { steps });
    const drawn = catalogEntry('saga')?.machine;
    expect(drawn).toBeDefined();
    expect(machineGraph(drawn!)).toEqual(machineGraph(saga.machine));
    // The states the README and the demo talk about.
    const ids = JSON.stringify(machineGraph(drawn!));
    for (const id of ['reserveAndAuthorise', 'paymentConfirmed', 'compensating']) expect(ids).toContain(id);
    await rt.stop();
  });
});
