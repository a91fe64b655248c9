/**
 * No Markdown link may leave the repository, and every one resolves: each
 * Markdown file git knows (tracked, or new and not ignored) is checked with
 * test/support/markdown-links.ts. A clone has nothing outside the repository,
 * so a link there is a broken link.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { headingAnchors, linkProblems, linkTargets, type RepoView } from '../support/markdown-links.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const markdownFiles = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z', '--', '*.md'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter((f) => f !== '' && statOf(path.join(root, f)) === 'file')
  .sort();

function statOf(file: string): 'file' | 'dir' | undefined {
  try {
    const s = statSync(file);
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

const repo: RepoView = {
  kind: (p) => statOf(path.join(root, p)),
  read: (p) => readFileSync(path.join(root, p), 'utf8'),
};

/** A repository held in memory, for checking the checker. */
function memoryRepo(files: Record<string, string>): RepoView {
  const text = new Map(Object.entries(files));
  return {
    kind: (p) => (text.has(p) ? 'file' : [...text.keys()].some((f) => f.startsWith(`${p}/`)) ? 'dir' : undefined),
    read: (p) => {
      const t = text.get(p);
      if (t === undefined) throw new Error(`no ${p}`);
      return t;
    },
  };
}

describe('Markdown link rules', () => {
  const problemsOf = (doc: string, others: Record<string, string> = {}): string[] =>
    linkProblems('docs/page.md', memoryRepo({ 'docs/page.md': doc, ...others })).map((p) => `${p.href}: ${p.problem}`);

  it('accepts links that resolve inside the repository, with or without an anchor', () => {
    const others = { 'README.md': '# Event platform\n## Set up\n', 'etl/README.md': '# ETL\n' };
    expect(problemsOf('# Page\n[a](../README.md) [b](../README.md#set-up) [c](#page) [d](../etl) [e](../etl/README.md)', others)).toEqual([]);
  });

  it('refuses links that leave the repository', () => {
    expect(problemsOf('[a](https://example.com/x) [b](../../shared/DESIGN.md) [c](/etc/passwd) [d](//host/x) [e](mailto:someone)')).toEqual([
      'https://example.com/x: leaves the repository (a URL)',
      '../../shared/DESIGN.md: leaves the repository (above its root)',
      '/etc/passwd: leaves the repository (an absolute path)',
      '//host/x: leaves the repository (a URL)',
      'mailto:someone: leaves the repository (a URL)',
    ]);
  });

  it('refuses paths that do not resolve and anchors without a heading', () => {
    expect(problemsOf('# Page\n[a](missing.md) [b](#nowhere) [c](other.md#gone) [d](other.md#) [e](../etl#x)', { 'docs/other.md': '# Other\n', 'etl/main.ts': '' })).toEqual([
      'missing.md: does not resolve: no docs/missing.md',
      '#nowhere: has no heading for #nowhere in docs/page.md',
      'other.md#gone: has no heading for #gone in docs/other.md',
      'other.md#: has an empty anchor',
      '../etl#x: has an anchor, but etl is not a Markdown file',
    ]);
  });

  it('ignores link syntax inside code, and finds links in tables, lists and reference definitions', () => {
    const doc = '`[a](../../x)`\n\n```\n[b](https://example.com)\n```\n\n| c |\n|---|\n| [t](t.md) |\n\n- [l](l.md)\n\nsee [r][ref]\n\n[ref]: r.md\n';
    expect(linkTargets(doc)).toEqual(['t.md', 'l.md', 'r.md']);
  });

  it("names heading anchors as GitHub does: markup dropped, punctuation removed, duplicates numbered", () => {
    expect([...headingAnchors('# `npm start`\n## Late events (contract)\n## Late events (contract)\n### What a hard kill loses: `_SUCCESS`\n')]).toEqual([
      'npm-start',
      'late-events-contract',
      'late-events-contract-1',
      'what-a-hard-kill-loses-_success',
    ]);
  });
});

describe('Markdown links of the repository', () => {
  it('finds the Markdown files', () => {
    expect(markdownFiles).toContain('README.md');
    expect(markdownFiles).toContain('docs/README.md');
  });

  it.each(markdownFiles)('%s: every link stays inside the repository and resolves', (file) => {
    expect(linkProblems(file, repo)).toEqual([]);
  });
});
