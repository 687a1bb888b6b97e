//! The go.mod tokenizer and the syntax tree it builds (`modfile/read.go`): lines, blocks and
//! the comments attached to them.

use super::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) line: usize,
    /// 1-based, in runes (an invalid UTF-8 byte counts as one).
    pub(super) col: usize,
    pub(super) byte: usize,
}

impl Pos {
    /// The position after a one-byte token starting here (`Position.add(")")`).
    pub(super) fn after_paren(self) -> Pos {
        Pos {
            line: self.line,
            col: self.col + 1,
            byte: self.byte + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Eof,
    /// A comment after other tokens on its line.
    EolComment,
    Ident,
    Str,
    /// A comment alone on its line.
    Comment,
    /// `\n ( ) [ ] { } ,`
    Punct(u8),
}

impl Kind {
    pub(super) fn is_eol(self) -> bool {
        matches!(self, Kind::Eof | Kind::EolComment | Kind::Punct(b'\n'))
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    pub(super) kind: Kind,
    pub(super) pos: Pos,
    pub(super) end: Pos,
    pub(super) text: &'a [u8],
}

/// A `//` comment (text without the line end), or an empty marker for a blank line in a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Comment<'a> {
    pub(super) start: Pos,
    pub(super) text: &'a [u8],
}

#[derive(Debug, Default)]
pub(super) struct Comments<'a> {
    pub(super) before: Vec<Comment<'a>>,
    pub(super) suffix: Vec<Comment<'a>>,
}

#[derive(Debug)]
pub(super) struct Line<'a> {
    pub(super) comments: Comments<'a>,
    pub(super) start: Pos,
    pub(super) tokens: Vec<&'a [u8]>,
    pub(super) end: Pos,
}

#[derive(Debug)]
pub(super) struct Paren<'a> {
    pub(super) comments: Comments<'a>,
    pub(super) pos: Pos,
}

#[derive(Debug)]
pub(super) struct LineBlock<'a> {
    pub(super) comments: Comments<'a>,
    pub(super) start: Pos,
    pub(super) tokens: Vec<&'a [u8]>,
    pub(super) lparen: Paren<'a>,
    pub(super) lines: Vec<Line<'a>>,
    pub(super) rparen: Paren<'a>,
}

#[derive(Debug)]
pub(super) enum Stmt<'a> {
    Comments { comments: Comments<'a>, start: Pos },
    Line(Line<'a>),
    Block(LineBlock<'a>),
}

/// A tokenizer or parser error; it stops parsing.
#[derive(Debug)]
pub(super) struct SyntaxError {
    pub(super) pos: Pos,
    pub(super) msg: String,
}

pub(super) type Syn<T> = Result<T, SyntaxError>;

pub(super) struct Input<'a> {
    pub(super) name: &'a str,
    pub(super) data: &'a [u8],
    /// Offset of the remaining input.
    pub(super) off: usize,
    pub(super) pos: Pos,
    pub(super) token_start: usize,
    pub(super) token: Token<'a>,
    /// End-of-line comments, in order, for assignment to the syntax they follow.
    pub(super) comments: Vec<Comment<'a>>,
}

/// Decodes one rune as Go's `utf8.DecodeRune` does: an invalid byte is U+FFFD of size 1; the
/// empty input is 0 of size 0.
pub(super) fn decode_rune(b: &[u8]) -> (u32, usize) {
    match b.first() {
        None => (0, 0),
        Some(&c) if c < 0x80 => (u32::from(c), 1),
        Some(_) => {
            let head = &b[..b.len().min(4)];
            let valid = match std::str::from_utf8(head) {
                Ok(s) => s,
                Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
            };
            match valid.chars().next() {
                Some(c) => (u32::from(c), c.len_utf8()),
                None => (0xFFFD, 1),
            }
        }
    }
}

/// `unicode.IsSpace`.
pub(super) fn is_go_space(c: u32) -> bool {
    char::from_u32(c).is_some_and(char::is_whitespace)
}

/// `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
pub(super) fn is_go_print(c: u32) -> bool {
    if c < 0x80 {
        return (0x20..0x7f).contains(&c);
    }
    crate::in_ranges(print_table::PRINT, c)
}

/// Whether `c` can be part of an identifier token (`isIdent`).
pub(super) fn is_ident(c: u32) -> bool {
    !matches!(
        char::from_u32(c),
        Some(' ' | '(' | ')' | '[' | ']' | '{' | '}' | ',')
    ) && !is_go_space(c)
        && is_go_print(c)
}

/// `%q` of a rune, as Go's `strconv.QuoteRune` writes the non-printable characters the lexer
/// rejects.
pub(super) fn quote_rune(c: u32) -> String {
    match c {
        0x07 => r"'\a'".into(),
        0x08 => r"'\b'".into(),
        0x0c => r"'\f'".into(),
        0x0a => r"'\n'".into(),
        0x0d => r"'\r'".into(),
        0x09 => r"'\t'".into(),
        0x0b => r"'\v'".into(),
        _ if is_go_print(c) => format!("'{}'", char::from_u32(c).unwrap_or('\u{FFFD}')),
        _ if c < 0x80 => format!(r"'\x{c:02x}'"),
        _ if c < 0x10000 => format!(r"'\u{c:04x}'"),
        _ => format!(r"'\U{c:08x}'"),
    }
}

/// `%q` of a string as Go's `strconv.Quote` writes it (exactly for ASCII; other non-printable
/// characters are escaped as `\u`/`\U`), shortened first if very long.
pub(super) fn go_quote(s: &str) -> String {
    quote(&excerpt(s))
}

/// Go's `strconv.Quote` (`%q`): `"` and `\` escaped, printable characters (`unicode.IsPrint`)
/// kept, the rest as `\a`…`\v`, `\xNN`, `\uNNNN` or `\UNNNNNNNN`. Hashes the go command
/// computes over `%q` text (an `Origin`'s `TagSum` and `RepoSum`) need exactly this.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_print(u32::from(c)) => out.push(c),
            c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// A token from the file for an error message: lossily decoded, shortened, and on one line (a
/// quoted token can span lines with a backslash before the newline).
pub(super) fn show(b: &[u8]) -> String {
    one_line(String::from_utf8_lossy(b))
}

impl<'a> Input<'a> {
    pub(super) fn new(name: &'a str, data: &'a [u8]) -> Self {
        let start = Pos {
            line: 1,
            col: 1,
            byte: 0,
        };
        Input {
            name,
            data,
            off: 0,
            pos: start,
            token_start: 0,
            token: Token {
                kind: Kind::Eof,
                pos: start,
                end: start,
                text: b"",
            },
            comments: Vec::new(),
        }
    }

    pub(super) fn error<T>(&self, msg: impl Into<String>) -> Syn<T> {
        Err(SyntaxError {
            pos: self.pos,
            msg: msg.into(),
        })
    }

    pub(super) fn eof(&self) -> bool {
        self.off >= self.data.len()
    }

    pub(super) fn peek_rune(&self) -> u32 {
        decode_rune(&self.data[self.off..]).0
    }

    pub(super) fn peek_prefix(&self, prefix: &[u8]) -> bool {
        self.data[self.off..].starts_with(prefix)
    }

    pub(super) fn read_rune(&mut self) -> u32 {
        let (c, size) = decode_rune(&self.data[self.off..]);
        self.off += size;
        if c == u32::from(b'\n') {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        self.pos.byte += size;
        c
    }

    pub(super) fn start_token(&mut self) {
        self.token_start = self.off;
        self.token.pos = self.pos;
    }

    pub(super) fn end_token(&mut self, kind: Kind) {
        let mut text = &self.data[self.token_start..self.off];
        if matches!(kind, Kind::Comment | Kind::EolComment) {
            text = text
                .strip_suffix(b"\r\n")
                .or_else(|| text.strip_suffix(b"\n"))
                .unwrap_or(text);
        }
        self.token.kind = kind;
        self.token.text = text;
        self.token.end = self.pos;
    }

    pub(super) fn peek(&self) -> Kind {
        self.token.kind
    }

    pub(super) fn lex(&mut self) -> Syn<Token<'a>> {
        let tok = self.token;
        self.read_token()?;
        Ok(tok)
    }

    /// Reads the next token into `self.token` (`readToken`).
    pub(super) fn read_token(&mut self) -> Syn<()> {
        while !self.eof() {
            let c = self.peek_rune();
            if c == u32::from(b' ') || c == u32::from(b'\t') || c == u32::from(b'\r') {
                self.read_rune();
                continue;
            }
            if self.peek_prefix(b"//") {
                self.start_token();
                // A comment is a suffix if something other than space precedes it on its line.
                let line_start = self.data[..self.pos.byte]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let suffix = !String::from_utf8_lossy(&self.data[line_start..self.pos.byte])
                    .trim()
                    .is_empty();
                self.read_rune();
                self.read_rune();
                while !self.eof() && self.read_rune() != u32::from(b'\n') {}
                if !suffix {
                    self.end_token(Kind::Comment);
                    return Ok(());
                }
                self.end_token(Kind::EolComment);
                self.comments.push(Comment {
                    start: self.token.pos,
                    text: self.token.text,
                });
                return Ok(());
            }
            if self.peek_prefix(b"/*") {
                return self.error("mod files must use // comments (not /* */ comments)");
            }
            break;
        }

        self.start_token();
        if self.eof() {
            self.end_token(Kind::Eof);
            return Ok(());
        }

        let c = self.peek_rune();
        if let Ok(p @ (b'\n' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',')) = u8::try_from(c) {
            self.read_rune();
            self.end_token(Kind::Punct(p));
            return Ok(());
        }
        if c == u32::from(b'"') || c == u32::from(b'`') {
            let quote = c;
            self.read_rune();
            loop {
                if self.eof() {
                    self.pos = self.token.pos;
                    return self.error("unexpected EOF in string");
                }
                if self.peek_rune() == u32::from(b'\n') {
                    return self.error("unexpected newline in string");
                }
                let c = self.read_rune();
                if c == quote {
                    break;
                }
                if c == u32::from(b'\\') && quote != u32::from(b'`') {
                    if self.eof() {
                        self.pos = self.token.pos;
                        return self.error("unexpected EOF in string");
                    }
                    self.read_rune();
                }
            }
            self.end_token(Kind::Str);
            return Ok(());
        }

        if !is_ident(c) {
            return self.error(format!("unexpected input character {}", quote_rune(c)));
        }
        while is_ident(self.peek_rune()) {
            if self.peek_prefix(b"//") {
                break;
            }
            if self.peek_prefix(b"/*") {
                return self.error("mod files must use // comments (not /* */ comments)");
            }
            self.read_rune();
        }
        self.end_token(Kind::Ident);
        Ok(())
    }

    /// `parseFile`.
    pub(super) fn parse_file(&mut self) -> Syn<Vec<Stmt<'a>>> {
        let mut stmts = Vec::new();
        let mut cb: Option<(Pos, Vec<Comment<'a>>)> = None;
        loop {
            match self.peek() {
                Kind::Punct(b'\n') => {
                    self.lex()?;
                    if let Some((start, before)) = cb.take() {
                        stmts.push(Stmt::Comments {
                            comments: Comments {
                                before,
                                suffix: Vec::new(),
                            },
                            start,
                        });
                    }
                }
                Kind::Comment => {
                    let tok = self.lex()?;
                    let (_, before) = cb.get_or_insert_with(|| (tok.pos, Vec::new()));
                    before.push(Comment {
                        start: tok.pos,
                        text: tok.text,
                    });
                }
                Kind::Eof => {
                    if let Some((start, before)) = cb.take() {
                        stmts.push(Stmt::Comments {
                            comments: Comments {
                                before,
                                suffix: Vec::new(),
                            },
                            start,
                        });
                    }
                    return Ok(stmts);
                }
                _ => {
                    let mut stmt = self.parse_stmt()?;
                    if let Some((_, before)) = cb.take() {
                        match &mut stmt {
                            Stmt::Line(l) => l.comments.before = before,
                            Stmt::Block(b) => b.comments.before = before,
                            Stmt::Comments { .. } => unreachable!("parse_stmt makes no comments"),
                        }
                    }
                    stmts.push(stmt);
                }
            }
        }
    }

    /// `parseStmt`.
    pub(super) fn parse_stmt(&mut self) -> Syn<Stmt<'a>> {
        let tok = self.lex()?;
        let start = tok.pos;
        let mut end = tok.end;
        let mut tokens = vec![tok.text];
        loop {
            let tok = self.lex()?;
            if tok.kind.is_eol() {
                return Ok(Stmt::Line(Line {
                    comments: Comments::default(),
                    start,
                    tokens,
                    end,
                }));
            }
            if tok.kind == Kind::Punct(b'(') {
                let next = self.peek();
                if next.is_eol() {
                    return Ok(Stmt::Block(self.parse_line_block(start, tokens, tok)?));
                } else if next == Kind::Punct(b')') {
                    let rparen = self.lex()?;
                    if self.peek().is_eol() {
                        // Empty block.
                        self.lex()?;
                        return Ok(Stmt::Block(LineBlock {
                            comments: Comments::default(),
                            start,
                            tokens,
                            lparen: Paren {
                                comments: Comments::default(),
                                pos: tok.pos,
                            },
                            lines: Vec::new(),
                            rparen: Paren {
                                comments: Comments::default(),
                                pos: rparen.pos,
                            },
                        }));
                    }
                    // "( )" in the middle of a line is not a block (and does not move `end`).
                    tokens.push(tok.text);
                    tokens.push(rparen.text);
                } else {
                    tokens.push(tok.text);
                }
                continue;
            }
            tokens.push(tok.text);
            end = tok.end;
        }
    }

    /// `parseLineBlock`.
    pub(super) fn parse_line_block(
        &mut self,
        start: Pos,
        tokens: Vec<&'a [u8]>,
        lparen: Token<'a>,
    ) -> Syn<LineBlock<'a>> {
        let mut lines: Vec<Line<'a>> = Vec::new();
        let mut comments: Vec<Comment<'a>> = Vec::new();
        loop {
            match self.peek() {
                Kind::EolComment => {
                    self.lex()?;
                }
                Kind::Punct(b'\n') => {
                    self.lex()?;
                    // A blank line between lines of a block gives the next line an empty
                    // comment, so that it does not inherit the block's comments. (go also keeps
                    // blank lines after comments for reformatting; that changes no directive.)
                    if comments.is_empty() && !lines.is_empty() {
                        comments.push(Comment::default());
                    }
                }
                Kind::Comment => {
                    let tok = self.lex()?;
                    comments.push(Comment {
                        start: tok.pos,
                        text: tok.text,
                    });
                }
                Kind::Eof => {
                    return self.error(format!(
                        "syntax error (unterminated block started at {}:{}:{})",
                        self.name, start.line, start.col
                    ));
                }
                Kind::Punct(b')') => {
                    // Comments before the closing paren belong to no directive.
                    let rparen = self.lex()?;
                    if !self.peek().is_eol() {
                        return self.error("syntax error (expected newline after closing paren)");
                    }
                    self.lex()?;
                    return Ok(LineBlock {
                        comments: Comments::default(),
                        start,
                        tokens,
                        lparen: Paren {
                            comments: Comments::default(),
                            pos: lparen.pos,
                        },
                        lines,
                        rparen: Paren {
                            comments: Comments::default(),
                            pos: rparen.pos,
                        },
                    });
                }
                _ => {
                    let mut line = self.parse_line()?;
                    line.comments.before = std::mem::take(&mut comments);
                    lines.push(line);
                }
            }
        }
    }

    /// `parseLine`: one line inside a block.
    pub(super) fn parse_line(&mut self) -> Syn<Line<'a>> {
        let tok = self.lex()?;
        let start = tok.pos;
        let mut end = tok.end;
        let mut tokens = vec![tok.text];
        loop {
            let tok = self.lex()?;
            if tok.kind.is_eol() {
                return Ok(Line {
                    comments: Comments::default(),
                    start,
                    tokens,
                    end,
                });
            }
            tokens.push(tok.text);
            end = tok.end;
        }
    }
}

/// A node of the syntax tree, for comment assignment.
#[derive(Clone, Copy)]
pub(super) enum Node {
    Comments(usize),
    Line(usize),
    BlockLine(usize, usize),
    LParen(usize),
    RParen(usize),
    Block(usize),
}

/// Attaches each end-of-line comment to the last single-line syntax node ending before it
/// (`assignComments`; whole-line comments were attached by the parser).
pub(super) fn assign_suffix_comments<'a>(stmts: &mut [Stmt<'a>], mut suffix: Vec<Comment<'a>>) {
    // Postorder: children before their block.
    let mut post = Vec::new();
    for (i, s) in stmts.iter().enumerate() {
        match s {
            Stmt::Comments { .. } => post.push(Node::Comments(i)),
            Stmt::Line(_) => post.push(Node::Line(i)),
            Stmt::Block(b) => {
                post.push(Node::LParen(i));
                post.extend((0..b.lines.len()).map(|j| Node::BlockLine(i, j)));
                post.push(Node::RParen(i));
                post.push(Node::Block(i));
            }
        }
    }
    let span = |stmts: &[Stmt<'a>], n: Node| -> (Pos, Pos) {
        match (n, &stmts[node_stmt(n)]) {
            (Node::Comments(_), Stmt::Comments { start, .. }) => (*start, *start),
            (Node::Line(_), Stmt::Line(l)) => (l.start, l.end),
            (Node::BlockLine(_, j), Stmt::Block(b)) => (b.lines[j].start, b.lines[j].end),
            (Node::LParen(_), Stmt::Block(b)) => (b.lparen.pos, b.lparen.pos.after_paren()),
            (Node::RParen(_), Stmt::Block(b)) => (b.rparen.pos, b.rparen.pos.after_paren()),
            (Node::Block(_), Stmt::Block(b)) => (b.start, b.rparen.pos.after_paren()),
            _ => unreachable!("node kind matches its statement"),
        }
    };
    let mut touched = Vec::new();
    for &n in post.iter().rev() {
        let (start, end) = span(stmts, n);
        // Never attach to something spanning lines: in `x ( y` / `z ) // c` the comment is z's.
        if start.line != end.line {
            continue;
        }
        while suffix.last().is_some_and(|c| end.byte <= c.start.byte) {
            let c = suffix.pop().expect("checked non-empty");
            let list = &mut node_comments(stmts, n).suffix;
            if list.is_empty() {
                touched.push(n);
            }
            list.push(c);
        }
    }
    // They were attached last first.
    for n in touched {
        node_comments(stmts, n).suffix.reverse();
    }
}

pub(super) fn node_stmt(n: Node) -> usize {
    match n {
        Node::Comments(i)
        | Node::Line(i)
        | Node::BlockLine(i, _)
        | Node::LParen(i)
        | Node::RParen(i)
        | Node::Block(i) => i,
    }
}

pub(super) fn node_comments<'s, 'a>(stmts: &'s mut [Stmt<'a>], n: Node) -> &'s mut Comments<'a> {
    match (n, &mut stmts[node_stmt(n)]) {
        (Node::Comments(_), Stmt::Comments { comments, .. }) => comments,
        (Node::Line(_), Stmt::Line(l)) => &mut l.comments,
        (Node::BlockLine(_, j), Stmt::Block(b)) => &mut b.lines[j].comments,
        (Node::LParen(_), Stmt::Block(b)) => &mut b.lparen.comments,
        (Node::RParen(_), Stmt::Block(b)) => &mut b.rparen.comments,
        (Node::Block(_), Stmt::Block(b)) => &mut b.comments,
        _ => unreachable!("node kind matches its statement"),
    }
}

// ---------------------------------------------------------------------------------------------
// Interpretation (x/mod/modfile rule.go).
