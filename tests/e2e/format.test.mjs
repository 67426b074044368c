// The formatting rules of web/js/format.js (README, "Formatting"): links,
// bold, italic, code, code blocks, mentions and escapes, and how they meet.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { mentionMatcher, mentionsSelf, parse } from '../../web/js/format.js';

const text = (t) => ({ type: 'text', text: t });
const bold = (...children) => ({ type: 'bold', children });
const italic = (...children) => ({ type: 'italic', children });
const code = (t) => ({ type: 'code', text: t });
const block = (t) => ({ type: 'block', text: t });
const link = (t, href = t) => ({ type: 'link', href, text: t });

test('plain text is one text node, line breaks kept', () => {
  assert.deepEqual(parse('hello\nworld'), [text('hello\nworld')]);
  assert.deepEqual(parse(''), []);
});

test('bold and italic need a single delimiter at word edges, on one line', () => {
  assert.deepEqual(parse('a *bold* and _it_'), [text('a '), bold(text('bold')), text(' and '), italic(text('it'))]);
  assert.deepEqual(parse('*two words*.'), [bold(text('two words')), text('.')]);
  assert.deepEqual(parse('(_x_)'), [text('('), italic(text('x')), text(')')]);
  // Inside words, around spaces, doubled, empty, across lines: as written.
  for (const literal of ['snake_case_name', '2*3*4', 'a * b * c', '**not bold**', '__init__', '**', '* x*', '*x *', '*a\nb*']) {
    assert.deepEqual(parse(literal), [text(literal)], literal);
  }
  // Nested either way; a crossing pair leaves the crossing delimiter literal.
  assert.deepEqual(parse('*a _b_ c*'), [bold(text('a '), italic(text('b')), text(' c'))]);
  assert.deepEqual(parse('_a *b* c_'), [italic(text('a '), bold(text('b')), text(' c'))]);
  assert.deepEqual(parse('*a _b* c_'), [bold(text('a _b')), text(' c_')]);
  assert.deepEqual(parse('*unclosed'), [text('*unclosed')]);
  assert.deepEqual(parse('*a* *b*'), [bold(text('a')), text(' '), bold(text('b'))]);
  // Non-Latin letters count as letters.
  assert.deepEqual(parse('я_б_в'), [text('я_б_в')]);
});

test('code spans are verbatim: no formatting, links or escapes inside', () => {
  assert.deepEqual(parse('run `ls *.txt` now'), [text('run '), code('ls *.txt'), text(' now')]);
  assert.deepEqual(parse('`https://example.com` `a\\b`'), [code('https://example.com'), text(' '), code('a\\b')]);
  assert.deepEqual(parse('``a`b``'), [code('a`b')]);
  assert.deepEqual(parse('*see `x`*'), [bold(text('see '), code('x'))]);
  // Unclosed, empty, or closed on another line: as written.
  assert.deepEqual(parse('a `b'), [text('a `b')]);
  assert.deepEqual(parse('``'), [text('``')]);
  assert.deepEqual(parse('`a\nb`'), [text('`a\nb`')]);
});

test('code blocks are fenced by lines of three backticks; unclosed ones are text', () => {
  assert.deepEqual(parse('look:\n```js\nlet *a* = 1;\n  <b>\n```\nnice'), [
    text('look:'),
    block('let *a* = 1;\n  <b>'),
    text('nice'),
  ]);
  assert.deepEqual(parse('```\n```'), [block('')]);
  assert.deepEqual(parse('```\nx\n  ```  '), [block('x')]);
  assert.deepEqual(parse('```\nnever closed *b*'), [text('```\nnever closed '), bold(text('b'))]);
  assert.deepEqual(parse('```\na\n```\n```\nb\n```'), [block('a'), block('b')]);
});

test('links: http and https only, trailing punctuation left out, balanced parentheses kept', () => {
  assert.deepEqual(parse('see https://example.com/a_b_c.'), [text('see '), link('https://example.com/a_b_c'), text('.')]);
  assert.deepEqual(parse('(https://en.wikipedia.org/wiki/Rust_(language))'), [
    text('('),
    link('https://en.wikipedia.org/wiki/Rust_(language)'),
    text(')'),
  ]);
  assert.deepEqual(parse('HTTP://Example.COM'), [link('HTTP://Example.COM', 'http://example.com/')]);
  assert.deepEqual(parse('*https://x.org/*'), [bold(link('https://x.org/'))]);
  assert.deepEqual(parse('_see http://a.b/c_d_'), [italic(text('see '), link('http://a.b/c_d'))]);
  assert.deepEqual(parse('<https://a.example>'), [text('<'), link('https://a.example', 'https://a.example/'), text('>')]);
  // Not links: other schemes, no host, inside a word, a backslash ends one.
  for (const literal of ['javascript:alert(1)', 'ftp://x.org', 'https://', 'xhttps://a.org', 'data:text/html,<b>']) {
    assert.deepEqual(parse(literal), [text(literal)], literal);
  }
  assert.deepEqual(parse('https://a.org\\@x'), [link('https://a.org', 'https://a.org/'), text('@x')]);
  const [only] = parse('https://a.org/"onclick=alert(1)');
  assert.deepEqual(only, link('https://a.org/'));
});

test('escapes show the character as written', () => {
  assert.deepEqual(parse('\\*not bold\\*'), [text('*not bold*')]);
  assert.deepEqual(parse('\\`x\\` \\_y\\_ \\\\ \\n'), [text('`x` _y_ \\ \\n')]);
  // An escaped delimiter next to a real one does not make a run.
  assert.deepEqual(parse('\\**b*'), [text('*'), bold(text('b'))]);
  assert.deepEqual(parse('\\@alice', mentionMatcher(['alice'])), [text('@alice')]);
});

test('mentions: members only, compared as nicknames are, longest first, not inside words', () => {
  const mentions = mentionMatcher(['alice', 'Bob', 'bob smith', 'dora'], 'dora');
  const mention = (t, nick, self = false) => ({ type: 'mention', text: t, nick, self });
  assert.deepEqual(parse('hi @alice, @BOB and @bob smith!', mentions), [
    text('hi '),
    mention('@alice', 'alice'),
    text(', '),
    mention('@BOB', 'Bob'),
    text(' and '),
    mention('@bob smith', 'bob smith'),
    text('!'),
  ]);
  // Look-alike letters compare equal, as the server compares nicknames.
  assert.deepEqual(parse('@аlice', mentions), [mention('@аlice', 'alice')]);
  const own = parse('*@dora* look', mentions);
  assert.deepEqual(own, [bold(mention('@dora', 'dora', true)), text(' look')]);
  assert.ok(mentionsSelf(own));
  assert.ok(!mentionsSelf(parse('@alice', mentions)));
  for (const literal of ['mail alice@example.com', '@alicette', '@carol', '`@dora`']) {
    assert.ok(!mentionsSelf(parse(literal, mentions)), literal);
    assert.ok(!parse(literal, mentions).some((n) => n.type === 'mention'), literal);
  }
});
