// A soak, not part of `npm test` (it takes minutes): `npm run bench:soak`. Resident memory of
// the server stays flat over 5,000 inspections of the demo model: what it holds after 5,000 is
// within 10% of what it held after the first 500; the ratio is printed.
import { startTestServer, type TestServer } from '../support/test-server';
import {
  activateModel,
  createCategory,
  createClients,
  generateSamples,
  INSPECT,
  readDemoModel,
  registerModel,
  uploadImages,
  type Clients,
} from '../inspection/helpers';

const FIRST = 500;
const TOTAL = 5000;
const CONCURRENCY = 4;
/** Readings every SAMPLE_EVERY inspections over the last WINDOW before each point. */
const WINDOW = 250;
const SAMPLE_EVERY = 25;

let server: TestServer;
let clients: Clients;

beforeAll(async () => {
  server = await startTestServer();
  clients = await createClients(server);
});

afterAll(async () => {
  await server?.stop();
});

async function residentBytes(): Promise<number> {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  const match = /^process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  if (!match?.[1]) throw new Error('no process_resident_memory_bytes in /metrics');
  return Number(match[1]);
}

test(
  `resident memory after ${TOTAL} inspections is within 10% of that after the first ${FIRST}`,
  async () => {
    const modelBytes = await readDemoModel();
    const samples = await generateSamples(modelBytes, { trainCount: 0, testGoodCount: 4, testDefectCount: 1 });
    const { categoryId } = await createCategory(clients.labeler, 'memory', samples.category);
    const imageIds = await uploadImages(clients.labeler, categoryId, samples.files.slice(0, 8));
    await activateModel(clients.admin, (await registerModel(clients.admin, categoryId, 'demo', modelBytes)).id);

    let done = 0;
    let failures = 0;
    const runUntil = async (count: number): Promise<void> => {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (done < count) {
            const imageId = imageIds[done % imageIds.length];
            done += 1;
            const result = await clients.labeler.request<{ inspect: { id: string } }>(INSPECT, {
              input: { categoryId, imageId },
            });
            if (result.errors?.length) failures += 1;
          }
        }),
      );
    };
    // The JS heap follows a garbage-collection sawtooth of tens of MiB, so one reading at one
    // moment says little: each point is the median of readings over the last WINDOW inspections.
    const medianResidentUpTo = async (count: number): Promise<number> => {
      const readings: number[] = [];
      for (let reached = count - WINDOW + SAMPLE_EVERY; reached <= count; reached += SAMPLE_EVERY) {
        await runUntil(reached);
        readings.push(await residentBytes());
      }
      readings.sort((a, b) => a - b);
      return readings[Math.floor(readings.length / 2)] as number;
    };

    await runUntil(FIRST - WINDOW);
    const afterFirst = await medianResidentUpTo(FIRST);
    await runUntil(TOTAL - WINDOW);
    const afterAll = await medianResidentUpTo(TOTAL);
    process.stdout.write(
      `memory: RSS after ${FIRST} inspections ${(afterFirst / 2 ** 20).toFixed(1)} MiB, after ${TOTAL} ${(afterAll / 2 ** 20).toFixed(1)} MiB (ratio ${(afterAll / afterFirst).toFixed(3)})\n`,
    );
    expect(failures).toBe(0);
    expect(afterAll).toBeLessThanOrEqual(afterFirst * 1.1);
  },
  60 * 60 * 1000,
);
