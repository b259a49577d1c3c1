/**
 * What `require('serverless-celery')` yields: the Serverless Framework plugin as the default
 * export, beside everything `import … from 'serverless-celery'` yields.
 *
 * osls and Serverless v4 load `plugins: [serverless-celery]` with `require.resolve` and
 * `require`, taking `.default` when there is one (an `import()` on Node versions without
 * `require(esm)`), so the `require` condition of package.json's `"."` export points here. An app
 * in CommonJS that requires the package still gets the library's names. Like the whole package,
 * this module graph must stay free of top-level `await`: `require(esm)` refuses one.
 */
export * from './index.js';
export { default } from './serverless/plugin.js';
