/** Runs `ingest.save_event`. */
import { registry } from '../src/demo/registry.js';
import { createTaskHandler } from '../src/lambda/task-handler.js';

export const handler = createTaskHandler(registry, 'ingest.save_event');
