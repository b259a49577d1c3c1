"""The shared interop app (`interop_app.app`) with kombu's `global_keyprefix`, as Celery users of
ElastiCache Serverless and other Redis Clusters set it: every key under one hash tag, so that a
plain Redis client can use a cluster whose slots one node holds (no MOVED replies).

Imported by a worker started with `worker.py ... -- -I keyprefix_app` (test/helpers/celery.ts
`include` option), and by `keyprefix_send.py`. Celery imports `-I` modules when the worker is
set up, before its consumer opens a broker connection: that is when kombu reads
`broker_transport_options`, so the prefix set here is the one every connection uses.

  INTEROP_GLOBAL_KEYPREFIX  the prefix (required), e.g. {celery}:

Kept next to what interop_app already put in `broker_transport_options` (its
`visibility_timeout`, from INTEROP_VISIBILITY_TIMEOUT).
"""

from __future__ import annotations

import os

from interop_app import app

GLOBAL_KEYPREFIX = os.environ['INTEROP_GLOBAL_KEYPREFIX']

app.conf.broker_transport_options = {
    **(app.conf.broker_transport_options or {}),
    'global_keyprefix': GLOBAL_KEYPREFIX,
}
