/**
 * The execution log of the reliability worker (`reliability-worker.ts`): one Redis list entry per
 * execution of a task, written by the worker and read back by the test.
 */

/** One execution of a task, as the worker recorded it. */
export interface Execution {
  readonly id: string;
  /** The broker flagged the delivery as delivered before. */
  readonly redelivered: boolean;
  /** Worker process that ran it. */
  readonly pid: number;
}

/** `<task id> <1 if redelivered, else 0> <pid>`. */
export function formatExecution(id: string, redelivered: boolean, pid: number): string {
  return `${id} ${redelivered ? 1 : 0} ${pid}`;
}

/** The reverse of {@link formatExecution}. @throws Error on an entry it did not write */
export function parseExecution(entry: string): Execution {
  const [id, redelivered, pid] = entry.split(' ');
  if (!id || (redelivered !== '0' && redelivered !== '1') || !pid) {
    throw new Error(`not an execution record: ${entry}`);
  }
  return { id, redelivered: redelivered === '1', pid: Number(pid) };
}
