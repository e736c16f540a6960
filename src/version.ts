import { readFileSync } from 'node:fs';
import path from 'node:path';

function readVersion(): string {
  // Compiled to dist/src/version.js; package.json sits two levels above either way.
  for (const candidate of [
    path.join(__dirname, '..', 'package.json'),
    path.join(__dirname, '..', '..', 'package.json'),
  ]) {
    try {
      const parsed = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (parsed.name === 'inspection-service' && parsed.version) return parsed.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

export const SERVICE_VERSION = readVersion();
