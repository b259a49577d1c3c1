"""Real Python Celery on the events side, for test/integration/celery-events.test.ts.

  capture --broker URL --seconds N [--transport-options JSON]
      Runs app.events.Receiver feeding app.events.State() for N seconds. Prints READY once the
      consumer is declared, then one JSON line: the State's tasks and workers, and the events.
  send --broker URL --hostname NAME
      Sends one task-succeeded and one worker-heartbeat with Celery's own EventDispatcher, so
      a test can compare its wire form with ours.
  repr --values JSON
      Prints one JSON line: repr() of every value of the JSON list.
"""

import argparse
import json
import sys
import threading

from celery import Celery

TASK_FIELDS = (
    'uuid', 'name', 'state', 'args', 'kwargs', 'result', 'exception', 'traceback', 'runtime',
    'retries', 'eta', 'expires', 'root_id', 'parent_id', 'client', 'exchange', 'routing_key',
    'sent', 'received', 'started', 'succeeded', 'failed', 'retried', 'rejected', 'revoked',
    'clock', 'timestamp',
)
WORKER_FIELDS = (
    'hostname', 'pid', 'freq', 'active', 'processed', 'loadavg', 'sw_ident', 'sw_ver', 'sw_sys',
    'clock',
)


def make_app(broker, transport_options):
    app = Celery('sc-events-probe', broker=broker)
    if transport_options:
        app.conf.broker_transport_options = transport_options
    return app


def capture(args):
    app = make_app(args.broker, json.loads(args.transport_options or '{}'))
    state = app.events.State()
    events = []

    def on_event(event):
        events.append({k: event.get(k) for k in ('type', 'hostname', 'clock', 'uuid')})
        state.event(event)

    with app.connection() as connection:
        receiver = app.events.Receiver(connection, handlers={'*': on_event})
        ready = receiver.on_consume_ready

        def announce(*a, **kw):
            print('READY', flush=True)
            return ready(*a, **kw)

        receiver.on_consume_ready = announce
        stop = threading.Timer(args.seconds, lambda: setattr(receiver, 'should_stop', True))
        stop.start()
        receiver.capture(limit=None, timeout=None, wakeup=False)

    tasks = {
        uuid: dict({k: getattr(task, k, None) for k in TASK_FIELDS},
                   worker=task.worker.hostname if task.worker else None)
        for uuid, task in state.tasks.items()
    }
    workers = {
        hostname: dict({k: getattr(worker, k, None) for k in WORKER_FIELDS},
                       alive=worker.alive, heartbeats=len(worker.heartbeats))
        for hostname, worker in state.workers.items()
    }
    print(json.dumps({'tasks': tasks, 'workers': workers, 'events': events,
                      'event_count': state.event_count}, default=repr), flush=True)


def send(args):
    app = make_app(args.broker, json.loads(args.transport_options or '{}'))
    with app.connection_for_write() as connection:
        dispatcher = app.events.Dispatcher(connection, hostname=args.hostname, enabled=True)
        dispatcher.send('task-succeeded', uuid='probe-task', result="'ok'", runtime=0.5)
        dispatcher.send('worker-heartbeat', freq=2.0, active=0, processed=3,
                        loadavg=(0.1, 0.2, 0.3), sw_ident='py-celery', sw_ver='5',
                        sw_sys='Linux')
        dispatcher.close()


def python_repr(args):
    print(json.dumps([repr(value) for value in json.loads(args.values)]), flush=True)


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest='command', required=True)
    capture_parser = commands.add_parser('capture')
    capture_parser.add_argument('--broker', required=True)
    capture_parser.add_argument('--seconds', type=float, required=True)
    capture_parser.add_argument('--transport-options')
    send_parser = commands.add_parser('send')
    send_parser.add_argument('--broker', required=True)
    send_parser.add_argument('--hostname', required=True)
    send_parser.add_argument('--transport-options')
    repr_parser = commands.add_parser('repr')
    repr_parser.add_argument('--values', required=True)
    args = parser.parse_args()
    {'capture': capture, 'send': send, 'repr': python_repr}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
