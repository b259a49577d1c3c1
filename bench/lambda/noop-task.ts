/** The no-op app's task function, as serverless-offline runs it (bench/lambda/serverless.yml). */
import { createTaskHandler } from '../../src/lambda/task-handler.js';
import { registry } from './noop-app.js';

export const handler = createTaskHandler(registry, 'bench.noop');
