/**
 * The Markdown link rules of the repository (checked by test/repo/docs-links.test.ts):
 * every link stays inside the repository and resolves. Parsing is marked's
 * (so links in code are not links), heading anchors are github-slugger's
 * (GitHub's own rule, duplicates numbered `-1`, `-2`…).
 */
import path from 'node:path';
import GithubSlugger from 'github-slugger';
import { marked, type Token, type Tokens } from 'marked';

/** What the checker may ask about the repository; paths are relative to its root, `/`-separated. */
export interface RepoView {
  /** `file` if a file, `dir` if a folder, undefined if nothing is there. */
  kind(repoPath: string): 'file' | 'dir' | undefined;
  /** The text of a Markdown file of the repository. */
  read(repoPath: string): string;
}

/** One broken rule: the file, the link as written, and what is wrong. */
export interface LinkProblem {
  file: string;
  href: string;
  problem: string;
}

/** Every link and image target of a Markdown text, in order (none from code spans or blocks). */
export function linkTargets(markdown: string): string[] {
  const out: string[] = [];
  walk(marked.lexer(markdown), (t) => {
    if (t.type === 'link' || t.type === 'image') out.push((t as Tokens.Link | Tokens.Image).href);
  });
  return out;
}

/** The anchors GitHub gives the headings of a Markdown text. */
export function headingAnchors(markdown: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  walk(marked.lexer(markdown), (t) => {
    if (t.type === 'heading') anchors.add(slugger.slug(plainText((t as Tokens.Heading).tokens)));
  });
  return anchors;
}

/** The problems of the links of one Markdown file (`file` relative to the root). */
export function linkProblems(file: string, repo: RepoView): LinkProblem[] {
  const problems: LinkProblem[] = [];
  const anchorsCache = new Map<string, Set<string>>();
  const anchorsOf = (target: string): Set<string> => {
    let anchors = anchorsCache.get(target);
    if (anchors === undefined) anchorsCache.set(target, (anchors = headingAnchors(repo.read(target))));
    return anchors;
  };
  for (const href of linkTargets(repo.read(file))) {
    const problem = problemOf(file, href, repo, anchorsOf);
    if (problem !== undefined) problems.push({ file, href, problem });
  }
  return problems;
}

function problemOf(file: string, href: string, repo: RepoView, anchorsOf: (target: string) => Set<string>): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//')) return 'leaves the repository (a URL)';
  if (href.startsWith('/')) return 'leaves the repository (an absolute path)';
  const hash = href.indexOf('#');
  const rawPath = hash < 0 ? href : href.slice(0, hash);
  const anchor = hash < 0 ? undefined : decode(href.slice(hash + 1));
  let target = file;
  if (rawPath !== '') {
    const decoded = decode(rawPath);
    if (decoded === undefined) return 'is not a valid percent-encoded path';
    target = path.posix.normalize(path.posix.join(path.posix.dirname(file), decoded)).replace(/\/$/, '');
    if (target === '..' || target.startsWith('../')) return 'leaves the repository (above its root)';
    if (target === '.') target = '';
    if (repo.kind(target) === undefined && target !== '') return `does not resolve: no ${target}`;
  }
  if (anchor === undefined) return undefined;
  if (anchor === '') return 'has an empty anchor';
  if (repo.kind(target) !== 'file' || !target.endsWith('.md')) return `has an anchor, but ${target || '(root)'} is not a Markdown file`;
  if (!anchorsOf(target).has(anchor)) return `has no heading for #${anchor} in ${target}`;
  return undefined;
}

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** A heading's text as GitHub renders it (markup dropped, code kept). */
function plainText(tokens: readonly Token[]): string {
  let out = '';
  for (const t of tokens) {
    if ('tokens' in t && Array.isArray(t.tokens) && t.type !== 'codespan') out += plainText(t.tokens);
    else if (t.type === 'text' || t.type === 'codespan' || t.type === 'escape') out += (t as Tokens.Text).text;
  }
  return out;
}

/** Visits every token: block and inline, list items, table cells. */
function walk(tokens: readonly Token[], visit: (t: Token) => void): void {
  for (const t of tokens) {
    visit(t);
    if ('tokens' in t && Array.isArray(t.tokens)) walk(t.tokens, visit);
    if (t.type === 'list') walk((t as Tokens.List).items, visit);
    if (t.type === 'table') {
      const table = t as Tokens.Table;
      for (const cell of [...table.header, ...table.rows.flat()]) walk(cell.tokens, visit);
    }
  }
}
