"""Workflow tasks for the issue #19 interop tests, on the shared interop app.

Imported by a worker started with `worker.py ... -- -I workflow_app` (PYTHONPATH must include
this folder; test/helpers/celery.ts `include` option does both). It registers its tasks on
`interop_app.app`, so they share its broker, queue (INTEROP_QUEUE), result backend and record
file, and every run is recorded exactly like `sentry.tasks.do_work`'s: one `run` record from
`interop_app._record`, one `outcome` record from its signal handlers.

Tasks (all on INTEROP_QUEUE; keep them off the queues the TypeScript worker consumes, a Celery
worker discards names it does not know):

  wf.add(x, y)        returns x + y
  wf.tsum(values)     returns sum(values) (a chord body)
  wf.fail(*args)      raises interop_app.FatalError (task FAILURE, errbacks called)
  wf.errback(task_id) returns task_id; the old-style errback signature, so a Celery worker
                      sends it as a message with args (failed_task_id, ...)
  wf.flaky(x, fail_times=1)  retries (countdown 0) until it has run fail_times times, then
                      returns x; each run records the `traceparent` header it saw
"""

from __future__ import annotations

from interop_app import QUEUE, FatalError, _record, app

app.conf.task_routes = {'sentry.tasks.*': {'queue': QUEUE}, 'wf.*': {'queue': QUEUE}}


@app.task(name='wf.add', bind=True, queue=QUEUE)
def add(self, x, y):
    _record(self, (x, y), {})
    return x + y


@app.task(name='wf.tsum', bind=True, queue=QUEUE)
def tsum(self, values):
    _record(self, (values,), {})
    return sum(values)


@app.task(name='wf.fail', bind=True, queue=QUEUE)
def fail(self, *args):
    _record(self, args, {})
    raise FatalError(f'wf.fail{args!r} on purpose')


@app.task(name='wf.errback', bind=True, queue=QUEUE)
def errback(self, task_id):
    # bind=True makes Celery (`_call_task_errbacks`) treat it as an old-style errback: it is
    # published as a message with the failed task's id, never called in-process, so a Python
    # worker and ours handle it the same way.
    _record(self, (task_id,), {})
    return task_id


@app.task(name='wf.flaky', bind=True, queue=QUEUE, max_retries=3)
def flaky(self, x, fail_times=1):
    # Records the trace header its message carried at the top level, where producers put it, to
    # show what Celery's retry() keeps of headers it does not know.
    _record(self, (x,), {'traceparent': getattr(self.request, 'traceparent', None)})
    if self.request.retries < fail_times:
        raise self.retry(countdown=0)
    return x
