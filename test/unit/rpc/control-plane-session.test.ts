import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { ControlPlaneSession } from '../../../src/rpc/control-plane-session.js';

/** A logger that keeps the messages of its warnings. */
function warnings(): { logger: pino.Logger; messages: string[] } {
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const line = JSON.parse(chunk.toString()) as { level: number; msg: string };
      if (line.level === 40) messages.push(line.msg);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, sink), messages };
}

describe('control-plane session', () => {
  it('warns that the control plane is unreachable at the third failure in a row, not the first', async () => {
    const { logger, messages } = warnings();
    let attempts = 0;
    let warnedAfterTwo = -1;
    let thirdFailed!: () => void;
    const third = new Promise<void>((resolve) => (thirdFailed = resolve));
    const session = new ControlPlaneSession({
      logger,
      register: () => {
        attempts++;
        if (attempts === 3) warnedAfterTwo = messages.length;
        if (attempts === 4) thirdFailed();
        return Promise.reject(new Error('refused'));
      },
      heartbeat: () => Promise.resolve(true),
      deregister: () => Promise.resolve(),
    });
    session.start();
    try {
      // The fourth attempt starts after the third failure was handled (and logged).
      await third;
      assert.equal(warnedAfterTwo, 0);
      assert.deepEqual(messages, ['cannot reach the control plane']);
      assert.equal(session.registered, false);
    } finally {
      await session.close();
    }
  });

  it('registers and says nothing when the control plane answers', async () => {
    const { logger, messages } = warnings();
    let registered!: () => void;
    const done = new Promise<void>((resolve) => (registered = resolve));
    const session = new ControlPlaneSession({
      logger,
      register: () => {
        registered();
        return Promise.resolve(60_000);
      },
      heartbeat: () => Promise.resolve(true),
      deregister: () => Promise.resolve(),
    });
    session.start();
    await done;
    await session.registeredOnce;
    assert.equal(session.registered, true);
    await session.close();
    assert.deepEqual(messages, []);
  });
});

describe('control-plane session heartbeats', () => {
  /** A session on a 60 s interval whose jitter is `x`; resolves when its first heartbeat comes. */
  function firstBeat(x: number): { beat: Promise<void>; session: ControlPlaneSession } {
    let beaten!: () => void;
    const beat = new Promise<void>((resolve) => (beaten = resolve));
    const session = new ControlPlaneSession({
      logger: warnings().logger,
      register: () => Promise.resolve(60_000),
      heartbeat: () => {
        beaten();
        return Promise.resolve(true);
      },
      deregister: () => Promise.resolve(),
      random: () => x,
    });
    session.start();
    return { beat, session };
  }

  it('sends the first heartbeat after registering at a random point of the interval', async () => {
    // At the start of the interval: at once, not 60 s later.
    const early = firstBeat(0);
    const late = firstBeat(0.99);
    try {
      const first = await Promise.race([
        early.beat.then(() => 'early'),
        late.beat.then(() => 'late'),
        sleep(2000, 'none', { ref: false }),
      ]);
      assert.equal(first, 'early');
      // Near its end: not within the next moments.
      const lateBeat = await Promise.race([
        late.beat.then(() => true),
        sleep(200, false, { ref: false }),
      ]);
      assert.equal(lateBeat, false);
    } finally {
      await Promise.all([early.session.close(), late.session.close()]);
    }
  });
});
