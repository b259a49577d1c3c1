/** Direct invoke `{ task, args?, kwargs?, … }`: publish any registered task from an app. */
import { runtime } from '../src/demo/app.js';
import { createInvokeProducerHandler } from '../src/lambda/producer-handlers.js';

export const handler = createInvokeProducerHandler(runtime);
