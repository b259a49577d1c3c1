/** The demo's `POST /events` and `GET /events/{id}`. */
import { runtime } from '../src/demo/app.js';
import { createEventsApi } from '../src/demo/events-api.js';
import { store } from '../src/demo/tasks.js';

export const handler = createEventsApi(runtime, store);
