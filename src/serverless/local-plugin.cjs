/**
 * The plugin from its TypeScript source, for this repository's serverless.yml
 * (`plugins: [./src/serverless/local-plugin.cjs]`): no build needed before `osls package` or
 * `npm start`. The framework requires plugins synchronously, so this goes through tsx's
 * CommonJS API. Services that install the package list `serverless-celery` instead.
 */
const { require: tsxRequire } = require('tsx/cjs/api');

module.exports = tsxRequire('./plugin.ts', __filename).default;
