import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MIN_GARBAGE_BYTES,
  QUIET_CHECKS,
  idleCollectionDue,
  startIdleCollector,
} from '../../src/shared/idle-collector.js';
import { until } from '../helpers/until.js';

const MB = 1024 * 1024;

describe('collecting garbage when a daemon is idle', () => {
  it('collects only after enough quiet checks in a row and enough garbage', () => {
    assert.equal(idleCollectionDue(QUIET_CHECKS, 40 * MB, 40 * MB - MIN_GARBAGE_BYTES), true);
    assert.equal(
      idleCollectionDue(QUIET_CHECKS - 1, 40 * MB, 0),
      false,
      'not idle for long enough: a stop could delay work',
    );
    assert.equal(
      idleCollectionDue(QUIET_CHECKS, 40 * MB, 40 * MB - MIN_GARBAGE_BYTES + 1),
      false,
      'too little garbage to be worth a stop',
    );
  });

  it('asks for a collection once per spell of idleness with garbage, not while busy', async () => {
    let cpu = 0;
    let busy = true;
    let heap = 10 * MB;
    let collections = 0;
    const stop = startIdleCollector(5, {
      // Busy: every reading a second of CPU further on.
      cpuMicros: () => (busy ? (cpu += 1_000_000) : cpu),
      heapUsed: () => heap,
      collect: () => {
        collections++;
        heap = 10 * MB;
      },
    });
    try {
      // Busy, and garbage piling up.
      heap = 100 * MB;
      await sleep(50);
      assert.equal(collections, 0, 'not while busy');
      // Idle now: collected once, and not again while nothing new piles up.
      busy = false;
      await until('a collection', () => collections === 1, 1000, 5);
      await sleep(50);
      assert.equal(collections, 1);
    } finally {
      stop();
    }
  });

  it('does nothing in a process that cannot ask for a collection', async () => {
    let readings = 0;
    const stop = startIdleCollector(1, {
      cpuMicros: () => readings++,
      heapUsed: () => readings++,
      collect: undefined,
    });
    await sleep(20);
    stop();
    assert.equal(readings, 0, 'no checks without a way to collect');
  });
});
