#!/usr/bin/env node
// Package bin for the composer CLI (`npx composer …`): composer/main.ts through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../composer/main.ts');
