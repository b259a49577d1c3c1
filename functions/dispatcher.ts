/** Amazon MQ for RabbitMQ event source: hands each batch to the task functions. */
import { runtime } from '../src/demo/app.js';
import { createAmazonMqDispatcher } from '../src/lambda/amazon-mq-dispatcher.js';

export const handler = createAmazonMqDispatcher(runtime);
