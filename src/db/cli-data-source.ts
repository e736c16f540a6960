// Entry point for the TypeORM CLI (npm run migration:generate / migration:run),
// e.g. `DATABASE_URL=postgres://... npm run migration:generate -- migrations/AddThing`.
import 'reflect-metadata';
import { createDataSource } from './data-source';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL must be set to run TypeORM migrations from the CLI');

export default createDataSource({ url, poolSize: 2 });
