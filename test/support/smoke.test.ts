import pg from 'pg';

test('the test PostgreSQL answers', async () => {
  const client = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await client.connect();
  const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
  await client.end();
  expect(rows[0]?.one).toBe(1);
});
