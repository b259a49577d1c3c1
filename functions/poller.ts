/** Redis has no Lambda event source: this scheduled drain pulls batches and invokes task functions. */
import { runtime } from '../src/demo/app.js';
import { createPollerHandler } from '../src/lambda/poller-handler.js';

export const handler = createPollerHandler(runtime);
