/** `POST /tasks/{name}`: publish any registered task over HTTP. */
import { runtime } from '../src/demo/app.js';
import { createHttpProducerHandler } from '../src/lambda/producer-handlers.js';

export const handler = createHttpProducerHandler(runtime);
