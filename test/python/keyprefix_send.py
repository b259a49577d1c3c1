"""Send `sentry.tasks.do_work` messages from real Python Celery with kombu's `global_keyprefix`.

The producer side of `keyprefix_app.py`: one process sends a whole list of tasks (a Python start
costs a second or more), each with `app.send_task` as `shared/celery-interop/send.py` does.

  python keyprefix_send.py --broker redis://127.0.0.1:7000/0 --queue q \\
      --global-keyprefix '{celery}:' --tasks '[{"args": [1], "kwargs": {}, "countdown": 2}]'

Each task: `args`, `kwargs`, and optionally `countdown` (seconds) or `eta` (ISO 8601 with an
offset). PYTHONPATH must hold this folder and `shared/celery-interop`. Prints one JSON document:
{"celery": version, "kombu": version, "transport_options": {...}, "sent": [{"id"}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--broker', required=True)
    parser.add_argument('--queue', required=True)
    parser.add_argument('--global-keyprefix', required=True)
    parser.add_argument('--tasks', required=True, help='JSON list of tasks')
    opts = parser.parse_args()

    # interop_app reads its configuration from the environment when first imported.
    os.environ['INTEROP_BROKER_URL'] = opts.broker
    os.environ['INTEROP_QUEUE'] = opts.queue
    os.environ['INTEROP_GLOBAL_KEYPREFIX'] = opts.global_keyprefix
    import celery
    import kombu
    from keyprefix_app import app  # noqa: E402  (env must be set first)

    sent = []
    for task in json.loads(opts.tasks):
        options = {'queue': opts.queue}
        if 'countdown' in task:
            options['countdown'] = task['countdown']
        if 'eta' in task:
            options['eta'] = datetime.fromisoformat(task['eta'])
        result = app.send_task('sentry.tasks.do_work', args=task.get('args', []),
                               kwargs=task.get('kwargs', {}), **options)
        sent.append({'id': result.id})
    print(json.dumps({
        'celery': celery.__version__,
        'kombu': kombu.__version__,
        'transport_options': app.conf.broker_transport_options,
        'sent': sent,
    }), flush=True)


if __name__ == '__main__':
    main()
