/**
 * serverless-celery: Celery-style named tasks on AWS Lambda, speaking real Celery protocol v2 on
 * Redis and RabbitMQ. This file is the public surface; everything not exported here is internal.
 */
export * from './core/index.js';
