// Without the producer on the reader (an app that did not pass metricProducer()), the same
// measurements reach the reader through ordinary SDK instruments, with the same values.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instrument } from './support/telemetry';
import { usePostgres } from './support/server';
import { scriptedPoolWorkload } from './support/metric-scenario';

const t = instrument({ leakThresholdMs: 0, configAdvice: false, serverSampleIntervalMs: 0 }, { metrics: 'sdk' });
const server = usePostgres();
after(() => t.shutdown());

describe('metrics through SDK instruments (no producer)', () => {
  it('exports the scripted workload with the same values as the producer', async () => {
    await scriptedPoolWorkload(t, server.current.url, 'scripted-sdk');
  });

  it('exports each metric once, under the package scope', async () => {
    const names = (await t.collect()).map((m) => m.descriptor.name);
    assert.ok(names.includes('db.client.connection.wait_time'));
    assert.equal(new Set(names).size, names.length, `a metric exported twice: ${names.join(', ')}`);
  });
});
