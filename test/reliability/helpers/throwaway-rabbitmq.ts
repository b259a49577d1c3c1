/**
 * A second RabbitMQ node of the test's own (`sc-test-<uuid>@localhost`), on free AMQP and
 * distribution ports, with its database, logs, config, plugins file and Erlang cookie in a
 * temporary directory: a broker the test may stop and start again without touching the shared
 * node on 5672.
 *
 * It runs Debian's launcher `/usr/lib/rabbitmq/bin/rabbitmq-server` in the foreground as the
 * current user (the `/usr/sbin` wrapper would switch to the `rabbitmq` user and drop the
 * environment). The launcher turns SIGTERM into a clean node stop. The node registers with the
 * `epmd` the shared node already started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import { freePort } from '../../helpers/redis.js';

/** Debian's launcher; `SC_RABBITMQ_SERVER` points elsewhere. */
const LAUNCHER = process.env.SC_RABBITMQ_SERVER ?? '/usr/lib/rabbitmq/bin/rabbitmq-server';
/** Longest wait for the node to accept AMQP connections. */
const READY_WITHIN_MS = 60_000;
/** Longest wait for a clean stop before the node's process group is killed. */
const STOP_WITHIN_MS = 30_000;

/** A restartable RabbitMQ node. */
export interface ThrowawayRabbitMq {
  readonly nodeName: string;
  readonly port: number;
  /** `amqp://guest:guest@127.0.0.1:<port>/` (the default vhost). */
  readonly url: string;
  readonly running: boolean;
  /** Stops the node: cleanly (SIGTERM to its launcher) or at once (SIGKILL to its process group). */
  stop(how: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again with the same ports and database; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops the node if it runs and removes its directory. */
  remove(): Promise<void>;
}

/** Starts a node; resolves once an AMQP connection to it succeeds. */
export async function startThrowawayRabbitMq(): Promise<ThrowawayRabbitMq> {
  const port = await freePort();
  const distPort = await freePort();
  const nodeName = `sc-test-${randomUUID()}@localhost`;
  const dir = await mkdtemp(path.join(tmpdir(), 'sc-rabbitmq-'));
  await mkdir(path.join(dir, 'mnesia'));
  await mkdir(path.join(dir, 'log'));
  await writeFile(path.join(dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${port}\n`);
  await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
  // An empty env file: /etc/rabbitmq/rabbitmq-env.conf names the shared node.
  await writeFile(path.join(dir, 'rabbitmq-env.conf'), '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir, // the Erlang cookie
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const url = `amqp://guest:guest@127.0.0.1:${port}/`;
  let child: ChildProcess | undefined;
  let output = '';
  const isRunning = () => child !== undefined && child.exitCode === null && !child.signalCode;

  const start = async () => {
    if (isRunning()) throw new Error(`${nodeName} is already running`);
    output = '';
    // Its own process group: the launcher, the Erlang VM and its helpers can be killed together.
    child = spawn(LAUNCHER, [], {
      cwd: dir,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-16_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const started = child;
    const deadline = Date.now() + READY_WITHIN_MS;
    for (;;) {
      if (!isRunning() || started !== child) {
        throw new Error(`RabbitMQ node ${nodeName} exited while starting:\n${output}`);
      }
      try {
        const connection = await connect(url, { timeout: 2000 });
        await connection.close();
        return;
      } catch {
        // Not listening yet (the AMQP listener starts last): try again until the deadline.
      }
      if (Date.now() > deadline) {
        await stop('SIGKILL');
        throw new Error(`RabbitMQ node ${nodeName} not ready within 60 s:\n${output}`);
      }
      await sleep(250);
    }
  };

  const stop = async (how: 'SIGTERM' | 'SIGKILL') => {
    const running = child;
    if (!running || !isRunning()) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    const killGroup = () => {
      try {
        // The group this helper created (detached), by its leader's pid.
        process.kill(-(running.pid as number), 'SIGKILL');
      } catch {
        // The group is gone already.
      }
    };
    if (how === 'SIGKILL') killGroup();
    else running.kill('SIGTERM');
    const timer = setTimeout(killGroup, STOP_WITHIN_MS);
    await exited;
    clearTimeout(timer);
    // The launcher exits after the VM; whatever of its group is left (it should be nothing) goes.
    if (groupAlive(running.pid as number)) killGroup();
  };

  await start();
  return {
    nodeName,
    port,
    url,
    get running() {
      return isRunning();
    },
    stop,
    start,
    async remove() {
      await stop('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Whether any process of the group led by `pid` is still there. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    // ESRCH: no process left in the group.
    return false;
  }
}
