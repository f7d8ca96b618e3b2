import type { SagaContext } from '../../machines/saga.js';
import type { SagaStep } from './definition.js';

/** What each step returned, by step name, typed from the steps' `run`. */
export type SagaResults<TSteps extends readonly SagaStep[]> = {
  [S in TSteps[number] as S['name']]: Awaited<ReturnType<S['run']>>;
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
  return { status: 'failed', ...base, compensationError: c.compensationError };
}
