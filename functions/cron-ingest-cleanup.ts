/** Publishes `ingest.cleanup` on its schedule (every minute). */
import { runtime } from '../src/demo/app.js';
import { createCronHandler } from '../src/lambda/cron-handler.js';

export const handler = createCronHandler(runtime, 'ingest.cleanup');
