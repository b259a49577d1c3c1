"""Tasks for test/integration/result-extended.test.ts, on the shared interop app.

Imported by a worker started with `worker.py ... -- -I extended_app`. Importing it turns on
Celery's `result_extended` for the whole worker (Celery reads the setting each time it stores a
result), so the metas it writes carry name, args, kwargs, worker, retries and queue.

Tasks (on INTEROP_QUEUE):

  ext.add(x, y, **kwargs)  returns x + y
  ext.slow(seconds, **kw)  sleeps, then returns seconds; track_started, so STARTED is stored first
"""

from __future__ import annotations

import time

from interop_app import QUEUE, app

app.conf.result_extended = True
app.conf.task_routes = {'ext.*': {'queue': QUEUE}}


@app.task(name='ext.add', queue=QUEUE)
def add(x, y, **kwargs):
    return x + y


@app.task(name='ext.slow', queue=QUEUE, track_started=True)
def slow(seconds, **kwargs):
    time.sleep(seconds)
    return seconds
