"""Python Celery's side of the benchmarks, run as a child process with Debian's python3
(Celery 5.2.6 / kombu 5.2.4):

  celery_bench.py publish --broker URL --queue Q --n N         time N send_task calls
  celery_bench.py send    --broker URL --queue Q --n N --interval-ms 5
  celery_bench.py worker  --broker URL --queue Q --n N [--pool solo|prefork] [--concurrency C]
                          [--prefetch M]

Reports are lines on stdout that start with '@@bench ' and hold JSON, as the TypeScript peers
print them. The task `bench.noop` does nothing; a latency run stamps `sent` (unix ms) in its
kwargs. A prefork pool's processes share one counter (allocated before the pool forks), so the
N-th task to finish reports, whichever process runs it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time

from celery import Celery, signals

MARK = '@@bench '
NOOP = 'bench.noop'

# Shared across the prefork pool's processes (created before the pool forks).
COUNT = multiprocessing.Value('l', 0)
FIRST = multiprocessing.Value('d', 0.0)
LATENCIES: list[float] = []
N = 0


def report(**value) -> None:
    # fd 1 directly: Celery replaces sys.stdout with a logger in the worker.
    os.write(1, (MARK + json.dumps(value) + '\n').encode())


app = Celery('bench', broker=os.environ.get('BENCH_BROKER', 'redis://127.0.0.1:6379/13'))
app.conf.update(
    task_serializer='json',
    accept_content=['json'],
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name=NOOP)
def noop(*args, **kwargs):
    started = time.time() * 1000
    sent = kwargs.get('sent')
    if isinstance(sent, (int, float)):
        LATENCIES.append(started - sent)
    with COUNT.get_lock():
        if FIRST.value == 0:
            FIRST.value = started
        COUNT.value += 1
        count = COUNT.value
    if count == N:
        last = time.time() * 1000
        first = FIRST.value
        report(event='done', count=count, first=first, last=last,
               rate=(count - 1) / ((last - first) / 1000),
               latencies=LATENCIES or None)


@signals.worker_ready.connect
def _ready(**_):
    report(event='ready')


def queued(queue: str) -> int:
    """Messages waiting in `queue`, asked of the broker."""
    with app.connection_for_write() as connection:
        if connection.transport_cls in ('redis', 'rediss'):
            return connection.default_channel.client.llen(queue)
        return connection.default_channel.queue_declare(queue=queue, passive=True).message_count


def publish(opts) -> None:
    app.send_task(NOOP, queue=opts.queue)
    while queued(opts.queue) < 1:
        time.sleep(0.005)
    report(event='ready')
    started = time.perf_counter()
    for _ in range(opts.n):
        app.send_task(NOOP, queue=opts.queue)
    calls = time.perf_counter() - started
    # Without publisher confirms (Celery's default on AMQP) the broker may not hold them all yet.
    while queued(opts.queue) < opts.n + 1:
        time.sleep(0.002)
    seconds = time.perf_counter() - started
    report(event='result', rate=opts.n / seconds, seconds=seconds, callsSeconds=calls)


def send(opts) -> None:
    with app.connection_for_write() as connection:
        connection.ensure_connection()
    report(event='ready')
    started = time.perf_counter()
    for index in range(opts.n):
        wait = started + index * opts.interval_ms / 1000 - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        app.send_task(NOOP, queue=opts.queue, kwargs={'sent': time.time() * 1000})
    report(event='result', sent=opts.n)


def worker(opts) -> None:
    global N
    N = opts.n
    if opts.prefetch:
        app.conf.worker_prefetch_multiplier = opts.prefetch
    app.worker_main([
        'worker', '-Q', opts.queue, '-P', opts.pool, '-c', str(opts.concurrency),
        '-l', 'WARNING', '-n', f'bench{os.getpid()}@%h',
    ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('command', choices=['publish', 'send', 'worker'])
    parser.add_argument('--broker', required=True)
    parser.add_argument('--queue', required=True)
    parser.add_argument('--n', type=int, required=True)
    parser.add_argument('--interval-ms', type=float, default=5)
    parser.add_argument('--pool', default='solo')
    parser.add_argument('--concurrency', type=int, default=1)
    parser.add_argument('--prefetch', type=int, default=0,
                        help='worker_prefetch_multiplier (0: Celery\'s default, 4)')
    opts = parser.parse_args()
    app.conf.broker_url = opts.broker
    {'publish': publish, 'send': send, 'worker': worker}[opts.command](opts)


if __name__ == '__main__':
    sys.exit(main())
