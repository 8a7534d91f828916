#!/usr/bin/env python3
"""Writes a man page made of sections of README.md (scripts/build-deb uses it).

README.md is the one source of the documentation: the man pages hapair(8) and hapair.conf(5)
are cut from it when the package is built, so they cannot say something README does not.
This script knows only the Markdown that README uses: headings, paragraphs, `code`, **bold**,
*emphasis*, [links](url), "- " lists, pipe tables, indented and fenced code blocks. A table
becomes a list of tagged paragraphs (.TP), its first column the tag, so that no page needs
tbl and none is wider than the terminal.

Usage:
  md2man.py README.md --name NAME --section N --summary TEXT --version TEXT --date YYYY-MM-DD
            [--synopsis FILE] [--see-also TEXT] SECTION=HEADING ...

Each SECTION=HEADING puts the README part under HEADING (a "##" or "###" heading, or the
"#" title for the text before the first "##") into the page as the man section SECTION;
its "###" subsections become subsections. A HEADING that README does not have is an error,
so renaming a README section breaks the build instead of emptying a page.
"""

import argparse
import re
import sys

GLYPHS = {
    "\u00d7": r"\(mu",
    "\u2264": r"\(<=",
    "\u2265": r"\(>=",
    "\u2014": r"\(em",
    "\u2013": r"\(en",
    "\u2192": r"\(->",
    "\u00b0": r"\(de",
    "\u00a7": r"\(sc",
    "\u2026": r"\&...",
}


def escape(text):
    """Plain text to roff: backslashes, and characters outside ASCII as glyphs."""
    out = []
    for ch in text.replace("\\", r"\e"):
        if ord(ch) < 128:
            out.append(ch)
        else:
            out.append(GLYPHS.get(ch, r"\[u%04X]" % ord(ch)))
    return "".join(out)


def code(text):
    """A code span: bold, with hyphens as minus signs (options, commands)."""
    return r"\fB" + escape(text).replace("-", r"\-") + r"\fR"


INLINE = re.compile(
    r"`(?P<code>[^`]+)`"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^*\s][^*]*?)\*(?![\w*])"
    r"|\[(?P<link>[^\]]+)\]\((?P<url>[^)]+)\)"
)


def inline(text):
    """Inline Markdown to roff."""
    out, pos = [], 0
    for m in INLINE.finditer(text):
        out.append(escape(text[pos : m.start()]))
        if m.group("code") is not None:
            out.append(code(m.group("code")))
        elif m.group("bold") is not None:
            out.append(r"\fB" + inline(m.group("bold")) + r"\fR")
        elif m.group("em") is not None:
            out.append(r"\fI" + inline(m.group("em")) + r"\fR")
        else:
            out.append(inline(m.group("link")) + " <" + escape(m.group("url")) + ">")
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def text_line(line):
    """One line of filled text; a leading dot or quote would be a roff request."""
    line = inline(line.strip())
    return r"\&" + line if line[:1] in (".", "'") else line


def cells(row):
    """The cells of a pipe-table row; `\\|` is a literal bar."""
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    parts = re.split(r"(?<!\\)\|", row)
    return [p.strip().replace("\\|", "|") for p in parts]


def table(rows):
    """A pipe table as tagged paragraphs: the first cell is the tag and the last the body;
    the cells between follow the body, each after its column's header ("Default: 1s.")."""
    header = cells(rows[0])
    out = []
    for row in rows[2:]:
        c = cells(row) + [""] * len(header)
        body = [c[len(header) - 1]] if len(header) > 1 else []
        for name, value in zip(header[1:-1], c[1 : len(header) - 1]):
            if value not in ("", "\u2014", "-"):
                body.append("%s: %s." % (name, value.rstrip(".")))
        out += [".TP", text_line(c[0]), text_line(" ".join(body)) if any(body) else r"\&"]
    return out


def verbatim(lines):
    out = [".RS 4", ".nf"]
    for line in lines:
        line = escape(line)
        out.append(r"\&" + line if line[:1] in (".", "'") else line)
    out += [".fi", ".RE"]
    return out


def blocks(lines):
    """Markdown lines to roff lines (headings below "##" become .SS)."""
    out, i, n = [], 0, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < n and not lines[j].startswith("```"):
                j += 1
            out += verbatim(lines[i + 1 : j])
            i = j + 1
        elif line.startswith("    "):
            j = i
            while j < n and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            while not lines[j - 1].strip():
                j -= 1
            out += verbatim([l[4:] for l in lines[i:j]])
            i = j
        elif line.startswith("#"):
            out.append('.SS "%s"' % text_line(line.lstrip("#").strip()))
            i += 1
        elif line.startswith("|"):
            j = i
            while j < n and lines[j].startswith("|"):
                j += 1
            out += table(lines[i:j])
            i = j
        elif re.match(r"- ", line):
            out.append(r".IP \(bu 2")
            out.append(text_line(line[2:]))
            i += 1
            while i < n and lines[i].startswith("  ") and lines[i].strip():
                out.append(text_line(lines[i]))
                i += 1
        else:
            out.append(".PP")
            while i < n and lines[i].strip() and not lines[i].startswith(("|", "```", "#", "- ")):
                out.append(text_line(lines[i]))
                i += 1
    return out


def headings(readme):
    """(index, level, title) of every heading; a "#" inside a fenced block is a comment."""
    fenced = False
    for i, line in enumerate(readme):
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#+) (.*)$", line)
        if m:
            yield i, len(m.group(1)), m.group(2).strip()


def section(readme, title):
    """The lines under the heading `title` up to the next heading of its level or above
    (for the "#" title: up to the first heading)."""
    found = None
    for i, level, text in headings(readme):
        if found is not None and (level <= found[1] or found[1] == 1):
            return readme[found[0] + 1 : i]
        if found is None and text == title:
            found = (i, level)
    if found is None:
        sys.exit("md2man: README.md has no section %r" % title)
    return readme[found[0] + 1 :]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("readme")
    ap.add_argument("--name", required=True)
    ap.add_argument("--section", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--synopsis")
    ap.add_argument("--see-also")
    ap.add_argument("parts", nargs="+", metavar="SECTION=HEADING")
    args = ap.parse_args()
    with open(args.readme, encoding="utf-8") as f:
        readme = f.read().splitlines()
    out = [
        '.\\" Generated by scripts/lib/md2man.py from README.md: edit README.md, not this.',
        '.TH "%s" "%s" "%s" "hapair %s" "hapair"'
        % (args.name.upper(), args.section, args.date, args.version),
        ".SH NAME",
        "%s \\- %s" % (escape(args.name).replace("-", r"\-"), escape(args.summary)),
    ]
    if args.synopsis:
        with open(args.synopsis, encoding="utf-8") as f:
            out += [".SH SYNOPSIS"] + verbatim(f.read().rstrip("\n").splitlines())
    for part in args.parts:
        name, _, heading = part.partition("=")
        out += ['.SH "%s"' % name.upper()] + blocks(section(readme, heading))
    if args.see_also:
        out += [".SH \"SEE ALSO\"", text_line(args.see_also)]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
