import type { SagaContext } from '../../machines/saga.js';
import type { SagaStep } from './definition.js';

/** What each step returned, by step name, typed from the steps' `run` (a signal's payload is `any`, a sleep's undefined). */
export type SagaResults<TSteps extends readonly SagaStep[]> = {
  // A parallel group's branches stand in its place (each result is under the branch's name).
  [S in TSteps[number] extends infer U ? (U extends { parallel: readonly (infer B)[] } ? B : U) : never as S extends {
    name: infer N extends string;
  }
    ? N
    : never]: S extends { run: (...args: any[]) => infer R }
    ? Awaited<R>
    : S extends { waitFor: string }
      ? any
      : undefined;
};

/** How `execute` ends. */
export type SagaResult<TSteps extends readonly SagaStep[] = readonly SagaStep[]> =
  | { status: 'completed'; sagaId: string; results: SagaResults<TSteps> }
  | {
      status: 'compensated';
      sagaId: string;
      results: Partial<SagaResults<TSteps>>;
      failedStep: string;
      error: unknown;
      /** The steps undone, in the order they were undone (reverse of completion). */
      compensated: string[];
    }
  | {
      status: 'failed';
      sagaId: string;
      results: Partial<SagaResults<TSteps>>;
      failedStep: string;
      error: unknown;
      compensationError: unknown;
      compensated: string[];
    }
  | {
      /** Cancelled by `saga.cancel`: what had completed was undone. */
      status: 'cancelled';
      sagaId: string;
      results: Partial<SagaResults<TSteps>>;
      /** The step that was running (or waiting) when the cancel arrived. */
      failedStep: string;
      /** The `CANCELLED` error the running step's signal aborted with. */
      error: unknown;
      /** The reason given to `cancel`. */
      reason: string | undefined;
      compensated: string[];
    };

/** The result of a saga that reached the final state `status`. */
export function resultOf(status: string, c: SagaContext): SagaResult<any> {
  if (status === 'completed') return { status, sagaId: c.sagaId, results: c.results };
  const base = {
    sagaId: c.sagaId,
    results: c.results,
    failedStep: c.failedStep as string,
    error: c.error,
    compensated: c.compensated,
  };
  if (status === 'compensated') return { status, ...base };
  if (status === 'cancelled') return { status, ...base, reason: c.reason };
  return { status: 'failed', ...base, compensationError: c.compensationError };
}
