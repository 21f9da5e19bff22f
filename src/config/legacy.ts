/**
 * Layer: config, pure. What the legacy importers share: the old tools kept
 * their settings in shell files they `source`d as root (vzhaipd.conf,
 * hostha's defaults), so any shell code in them ran. Here such a file is
 * only read: a line is a comment, a blank, or `KEY=VALUE` / `KEY="VALUE"` /
 * `KEY='VALUE'` (an optional trailing `# comment`); every other line is
 * skipped and reported with its number, never run. `$NAME` and `${NAME}`
 * in unquoted or double-quoted values are replaced from keys assigned
 * earlier and from the given initial variables; anything else that would
 * make the shell do work (`$(…)`, backquotes, backslashes, `;`, `|`,
 * unknown variables) makes the line skipped. Each importer lives in its
 * role's folder and maps the assignments to that role's section.
 */

/** One `KEY=VALUE` read from the file. */
export interface ShellAssignment { key: string; value: string; line: number }

/** A line that was not data, and why it was skipped. */
export interface SkippedLine { line: number; text: string; reason: string }

/** The file as data: assignments in order (a later one wins) and the lines skipped. */
export interface ShellParse { assignments: ShellAssignment[]; skipped: SkippedLine[] }

const NAME = '[A-Za-z_][A-Za-z0-9_]*';
const ASSIGN_RE = new RegExp(`^\\s*(${NAME})=(.*)$`);

/**
 * Expand `$NAME` / `${NAME}` from `vars`. Returns undefined with a reason
 * when the text holds anything the shell would do more with.
 */
function expand(text: string, vars: ReadonlyMap<string, string>, unsetHint: string | undefined): { value?: string; reason?: string } {
  if (/[`\\]/.test(text)) return { reason: 'uses backquotes or backslashes (shell code is never run)' };
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') { out += c; i++; continue; }
    const m = new RegExp(`^\\$(?:\\{(${NAME})\\}|(${NAME}))`).exec(text.slice(i));
    if (!m) return { reason: 'uses $ for something other than a plain variable (shell code is never run)' };
    const name = m[1] ?? m[2]!;
    const v = vars.get(name);
    if (v === undefined) return { reason: `refers to $${name}, which is not set earlier in the file${unsetHint !== undefined ? ` (${unsetHint})` : ''}` };
    out += v;
    i += m[0].length;
  }
  return { value: out };
}

/** Parse the value part of `KEY=…`: one word, optionally quoted, then an optional comment. */
function parseValue(rest: string, vars: ReadonlyMap<string, string>, unsetHint: string | undefined): { value?: string; reason?: string } {
  // A comment needs whitespace before '#': `a#b` is one word to the shell.
  let m: RegExpExecArray | null;
  if ((m = /^'([^']*)'(?:\s+#.*|\s*)$/.exec(rest))) return { value: m[1]! };
  if ((m = /^"([^"]*)"(?:\s+#.*|\s*)$/.exec(rest))) return expand(m[1]!, vars, unsetHint);
  // Unquoted: no quoting, no operators, no braces except ${NAME}, no '#' or '~' (tilde expands in assignments).
  if ((m = /^((?:[^\s'"`\\;&|<>(){}#~]|\$\{[A-Za-z_][A-Za-z0-9_]*\})*)(?:\s+#.*|\s*)$/.exec(rest))) return expand(m[1]!, vars, unsetHint);
  return { reason: 'is not a single KEY=VALUE assignment (shell code is never run)' };
}

/** What the skipped shell code around a line leaves open: blocks, a quote, a here-document. */
interface ShellState { depth: number; quote: '' | "'" | '"'; heredoc?: string }

const OPENERS = new Set(['if', 'case', 'for', 'while', 'until', 'select', '{']);
const CLOSERS = new Set(['fi', 'esac', 'done', '}']);

/**
 * Follow a skipped line just far enough to know whether the lines after it
 * are still inside an `if`/`for`/`case`/function block, a quoted string or
 * a here-document: an assignment there is not unconditional data, so it is
 * skipped too. This reads words; it never evaluates anything.
 */
function scanShell(line: string, st: ShellState): void {
  let word = '';
  const endWord = () => {
    if (OPENERS.has(word)) st.depth++;
    else if (CLOSERS.has(word)) st.depth = Math.max(0, st.depth - 1);
    word = '';
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (st.quote === "'") { if (c === "'") st.quote = ''; continue; }
    if (st.quote === '"') { if (c === '\\') i++; else if (c === '"') st.quote = ''; continue; }
    if (c === '\\') { i++; word += '\\'; continue; }
    if (c === "'" || c === '"') { st.quote = c; word += c; continue; }
    if (c === '#' && word === '') break;
    if (c === '<' && line[i + 1] === '<' && line[i + 2] !== '<') {
      const m = /^<<-?\s*(['"]?)([A-Za-z0-9_]+)\1/.exec(line.slice(i));
      if (m) { st.heredoc = m[2]!; endWord(); i += m[0].length - 1; continue; }
    }
    if (/[\s;&|()]/.test(c)) { endWord(); continue; }
    word += c;
  }
  endWord();
}

/**
 * Read a shell-variable config file as data. Never executes anything;
 * `initial` seeds the variables `$NAME` may refer to; `unsetHint` is added
 * to the message for a variable that is not set. An assignment inside
 * shell code that is skipped (a block, a multi-line string, a
 * here-document) is skipped as well, since whether and how it would apply
 * depends on that code.
 */
export function parseShellAssignments(text: string, initial: ReadonlyMap<string, string> = new Map(), opts: { unsetHint?: string } = {}): ShellParse {
  const vars = new Map(initial);
  const assignments: ShellAssignment[] = [];
  const skipped: SkippedLine[] = [];
  const st: ShellState = { depth: 0, quote: '' };
  text.split('\n').forEach((rawLine, idx) => {
    const line = rawLine.replace(/\r$/, '');
    const skip = (reason: string) => {
      skipped.push({ line: idx + 1, text: line, reason });
      scanShell(line, st);
    };
    if (st.heredoc !== undefined) {
      skipped.push({ line: idx + 1, text: line, reason: 'is inside a here-document (shell code is never run)' });
      if (line.trim() === st.heredoc) st.heredoc = undefined;
      return;
    }
    if (st.quote !== '') { skip('is inside a quoted string that a skipped line opened'); return; }
    if (/^\s*(#.*)?$/.test(line)) return;
    const m = ASSIGN_RE.exec(line);
    if (!m) { skip('is not a KEY=VALUE line (shell code is never run)'); return; }
    if (st.depth > 0) { skip('is inside an if/for/while/case block or function that is never run'); return; }
    const r = parseValue(m[2]!, vars, opts.unsetHint);
    if (r.value === undefined) { skip(r.reason!); return; }
    vars.set(m[1]!, r.value);
    assignments.push({ key: m[1]!, value: r.value, line: idx + 1 });
  });
  return { assignments, skipped };
}

