#!/usr/bin/env python3
"""Fails when a module of a crate imports a module that imports it back.

For every crate root of the workspace (src/lib.rs, src/main.rs) this walks the
module tree the way rustc does (`mod x;` -> x.rs or x/mod.rs, `#[path]`,
inline `mod x { ... }`), then collects, per module, every path that names
another module of the same crate:

* `use crate::...`, `use super::...`, `use self::...` and `use child::...`
  (with `{a, b::{c}}` groups expanded), and the same paths written inline
  in code (`crate::pipeline::Batch::new(...)`, `super::helper(x)`), since
  a qualified path couples two modules exactly as a `use` does;
* a path is resolved to the deepest module it names: `crate::config::Config`
  is an import of `config`, `crate::config::env::parse` of `config::env`.

Declaring a child with `mod` is not an import. Inline modules (`mod tests {}`)
count as part of the file that holds them (their `super::` is resolved
correctly); each file-backed module is one node. The check fails on every
strongly connected component of more than one module (test code such as
`#[cfg(test)] mod tests` counts: it is compiled into the crate too), printing the import
lines that close the cycle, so a cycle of eight files shows as one finding
with all its edges.

Comments, strings and char literals are stripped first, so intra-doc links
(`[`crate::x::Y`]`) and doc examples do not count.

The module tree itself is not a cycle: an edge between a module and one of
its ancestors (a child using `super::Config`, a parent re-exporting
`pub use child::Item`, everything using `crate::Error`) is how Rust modules
are written (axum, tower-http, tracing all do it) and is skipped. Every other
edge couples two siblings, the children of the two ends' lowest common
ancestor that hold them: `pipeline::batch -> config::otlp` makes `pipeline`
depend on `config`. A cycle is a strongly connected set of such siblings,
so `config -> install -> pipeline -> config` is found even when it runs
through submodules. Paths are followed through re-exports (`crate::Error`
is the `error` module, not the root), and `--strict` also counts the
ancestor edges, to see them.

Usage: scripts/check-module-cycles.py [--strict] [--known FILE] [crate_dir ...]
       scripts/check-module-cycles.py --self-test
(default: every workspace member with a src/ directory). Exit 1 when a cycle
exists that FILE does not list. FILE has one cycle per line,
`<crate root> <module> <module> ...` (`#` starts a comment): a cycle known and
scheduled for removal; one that no longer exists is reported so that its line
gets deleted.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------
# Lexing: blank out comments, strings and chars, keep line numbers.
# --------------------------------------------------------------------------


def strip_source(src: str) -> str:
    """Returns `src` with comments and literals replaced by spaces (newlines
    kept, so offsets map to the same line numbers)."""
    out = list(src)
    i, n = 0, len(src)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif (m := re.compile(r'b?r(#*)"').match(src, i)) and (
            i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")
        ):
            end = '"' + m.group(1)
            j = src.find(end, m.end())
            j = n if j < 0 else j + len(end)
            blank(i, j)
            i = j
        elif c == '"' or (c == "b" and src.startswith('b"', i)):
            j = i + (2 if c == "b" else 1)
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', b'x'), else a lifetime.
            m = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'").match(src, i)
            if m:
                blank(i, m.end())
                i = m.end()
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------
# The module tree.
# --------------------------------------------------------------------------


@dataclass(eq=False)  # identity: modules are graph nodes
class Module:
    path: tuple[str, ...]  # () is the crate root
    file: Path  # the file holding it (for inline modules: the enclosing file)
    inline: bool
    children: dict[str, "Module"] = field(default_factory=dict)
    parent: "Module | None" = None
    # Names bound by this module's `use` declarations -> the path they name.
    uses: dict[str, list[str]] = field(default_factory=dict)

    @property
    def file_module(self) -> "Module":
        """The file-backed module this one is part of (itself if file-backed)."""
        m = self
        while m.inline and m.parent is not None:
            m = m.parent
        return m

    def name(self) -> str:
        return "crate" if not self.path else "::".join(self.path)


MOD_DECL = re.compile(
    r"(?P<attrs>(?:#\s*\[[^\]]*\]\s*)*)"
    r"(?:pub(?:\s*\([^)]*\))?\s+)?(?<![A-Za-z0-9_])mod\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<end>[;{])"
)
PATH_ATTR = re.compile(r'#\s*\[\s*path\s*=\s*"([^"]+)"\s*\]')


def matching_brace(text: str, open_at: int) -> int:
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(text)


@dataclass
class Region:
    """A span of a stripped file that belongs to one module (an inline
    module's body is carved out of its parent's region)."""

    module: Module
    start: int
    end: int


class Crate:
    def __init__(self, root_file: Path):
        self.root_file = root_file
        self.root = Module((), root_file, inline=False)
        self.raw: dict[Path, str] = {}
        self.stripped: dict[Path, str] = {}
        self.regions: list[Region] = []
        self.missing: list[str] = []
        self._load_file(self.root, root_file, is_mod_rs=True)

    def _text(self, f: Path) -> str:
        if f not in self.stripped:
            self.raw[f] = f.read_text(encoding="utf-8")
            self.stripped[f] = strip_source(self.raw[f])
        return self.stripped[f]

    def _load_file(self, module: Module, f: Path, is_mod_rs: bool) -> None:
        text = self._text(f)
        # Directory in which `mod x;` of this file looks for x.rs / x/mod.rs.
        if is_mod_rs:
            child_dir = f.parent
        else:
            child_dir = f.parent / f.stem
        self._scan(module, f, text, 0, len(text), child_dir, f.parent)

    def _scan(self, module, f, text, start, end, child_dir, path_dir) -> None:
        """Finds the `mod` declarations of `text[start:end]` (skipping nested
        inline bodies, which are scanned recursively) and records the regions
        of code that belong to `module`."""
        pos = start
        region_start = start
        while True:
            m = MOD_DECL.search(text, pos, end)
            if not m:
                break
            name = m.group("name")
            # Literals are blanked in `text`: read the attribute from the raw source.
            raw_attrs = self.raw[f][m.start("attrs") : m.end("attrs")]
            path_attr = PATH_ATTR.search(raw_attrs)
            if m.group("end") == ";":
                child = Module(module.path + (name,), f, inline=False, parent=module)
                module.children[name] = child
                if path_attr:
                    cf = (path_dir / path_attr.group(1)).resolve()
                    candidates = [(cf, cf.name == "mod.rs")]
                else:
                    candidates = [
                        (child_dir / f"{name}.rs", False),
                        (child_dir / name / "mod.rs", True),
                    ]
                for cf, is_mod_rs in candidates:
                    if cf.is_file():
                        child.file = cf
                        self._load_file(child, cf, is_mod_rs)
                        break
                else:
                    self.missing.append(f"{f}: mod {name}; (no file found)")
                pos = m.end()
            else:
                brace = m.end() - 1
                close = matching_brace(text, brace)
                child = Module(module.path + (name,), f, inline=True, parent=module)
                module.children[name] = child
                self.regions.append(Region(module, region_start, m.start()))
                # An inline module's `mod x;` looks in <child_dir>/<name>/.
                self._scan(
                    child, f, text, brace + 1, close, child_dir / name, path_dir / name
                )
                region_start = pos = close + 1
        self.regions.append(Region(module, region_start, end))

    # ----------------------------------------------------------------------

    def collect_uses(self) -> None:
        """Fills every module's `uses` map (its `use` declarations, including
        those in function bodies: they bind names just the same)."""
        for region in self.regions:
            chunk = self.stripped[region.module.file][region.start : region.end]
            for m in USE_DECL.finditer(chunk):
                for path, name in expand_use_tree(m.group(1)):
                    if name is not None:
                        region.module.uses.setdefault(name, path)

    def resolve(self, segments: list[str], here: Module, depth: int = 0) -> Module | None:
        """The module that defines what a path used in `here` names, or None
        when the path leaves the crate (another crate, std) or names no module
        of it. Walks the module tree as far as the path goes; when the next
        segment is a name that module only imported (`pub use x::Item`), the
        path is followed to where that name comes from, so `crate::Error`
        resolves to the `error` module, not the root that re-exports it."""
        if not segments or depth > 16:
            return None
        first = segments[0]
        if first == "crate":
            cur, rest = self.root, segments[1:]
        elif first in ("self", "super"):
            cur, rest = here, segments
            while rest and rest[0] in ("self", "super"):
                if rest[0] == "super":
                    if cur.parent is None:
                        return None
                    cur = cur.parent
                rest = rest[1:]
        elif first in here.children:
            cur, rest = here, segments
        elif first in here.uses and here.uses[first][0] != first:
            return self.resolve(here.uses[first] + segments[1:], here, depth + 1)
        else:
            return None
        for i, seg in enumerate(rest):
            nxt = cur.children.get(seg)
            if nxt is not None:
                cur = nxt
                continue
            imported = cur.uses.get(seg)
            if imported is not None:
                via = self.resolve(imported + rest[i + 1 :], cur, depth + 1)
                if via is not None:
                    return via
            break
        return cur

    def all_modules(self):
        stack = [self.root]
        while stack:
            m = stack.pop()
            yield m
            stack.extend(m.children.values())


# --------------------------------------------------------------------------
# Paths in code.
# --------------------------------------------------------------------------

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
USE_DECL = re.compile(r"(?<![A-Za-z0-9_$])use\s+([^;]*);")
QUALIFIED = re.compile(rf"(?<![A-Za-z0-9_$:])((?:{IDENT}\s*::\s*)+{IDENT})")


def expand_use_tree(tree: str) -> list[tuple[list[str], str | None]]:
    """`crate::a::{b, c::{d, e as f}, self, g::*}` -> the imported paths, each
    with the name it binds in the importing module (None for a glob):
    ([crate,a,b], b), ([crate,a,c,d], d), ([crate,a,c,e], f), ([crate,a], a),
    ([crate,a,g], None)."""
    tokens = re.findall(rf"{IDENT}|::|[{{}},*]", tree)
    pos = 0

    def parse(prefix: list[str]) -> list[tuple[list[str], str | None]]:
        nonlocal pos
        out: list[tuple[list[str], str | None]] = []
        path = list(prefix)
        alias: str | None = None
        glob = False
        while pos < len(tokens):
            t = tokens[pos]
            if t == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    out.extend(parse(path))
                    if pos < len(tokens) and tokens[pos] == ",":
                        pos += 1
                pos += 1  # the closing brace
                return out
            if t in (",", "}"):
                break
            if t == "::":
                pass
            elif t == "as":
                pos += 1
                alias = tokens[pos] if pos < len(tokens) else None
            elif t == "*":
                glob = True
            elif t == "self" and path:
                pass  # `a::{self}` names `a` itself
            else:
                path.append(t)
            pos += 1
        if path:
            name = None if glob else (alias or path[-1])
            if name in ("self", "super", "crate"):
                name = None
            out.append((path, name))
        return out

    paths: list[tuple[list[str], str | None]] = []
    while pos < len(tokens):
        paths.extend(parse([]))
        pos += 1  # a separator, or a stray token
    return paths


@dataclass(frozen=True)
class Edge:
    src: Module
    dst: Module
    file: str
    line: int
    text: str

    def show(self) -> str:
        return f"{self.src.name()} -> {self.dst.name()}   ({self.file}:{self.line}: {self.text})"


def shown_path(f: Path) -> str:
    return str(f.relative_to(ROOT)) if f.is_relative_to(ROOT) else str(f)


def is_ancestor(a: Module, b: Module) -> bool:
    """Whether `a` is `b` or one of its ancestors."""
    m: Module | None = b
    while m is not None:
        if m is a:
            return True
        m = m.parent
    return False


def edges_of(crate: Crate) -> list[Edge]:
    """Every reference from one file-backed module to another."""
    edges: list[Edge] = []
    for region in crate.regions:
        f = region.module.file
        text = crate.stripped[f]
        raw_lines = crate.raw[f].splitlines()
        here = region.module
        src = here.file_module
        chunk = text[region.start : region.end]
        found: list[tuple[int, list[str]]] = []
        use_spans = []
        for m in USE_DECL.finditer(chunk):
            use_spans.append((m.start(), m.end()))
            for path, _ in expand_use_tree(m.group(1)):
                found.append((region.start + m.start(), path))
        for m in QUALIFIED.finditer(chunk):
            if any(a <= m.start() < b for a, b in use_spans):
                continue
            segs = [x.strip() for x in m.group(1).split("::")]
            found.append((region.start + m.start(), segs))
        for offset, segs in found:
            target = crate.resolve(segs, here)
            if target is None:
                continue
            dst = target.file_module
            if dst is src:
                continue
            line = text.count("\n", 0, offset) + 1
            shown = raw_lines[line - 1].strip() if line <= len(raw_lines) else ""
            edges.append(Edge(src, dst, shown_path(f), line, shown))
    return edges


def lifted(edge: Edge) -> tuple[Module, Module] | None:
    """The pair of sibling modules an edge couples: for `a::x::y -> a::z`,
    (`a::x`, `a::z`), the children of their lowest common ancestor that hold
    the two ends. None for an edge between a module and its own ancestor
    (the module tree itself, see the module docs)."""
    if is_ancestor(edge.src, edge.dst) or is_ancestor(edge.dst, edge.src):
        return None
    a, b = edge.src, edge.dst
    while not is_ancestor(a.parent, b):
        a = a.parent
    while b.parent is not a.parent:
        b = b.parent
    return a, b


def strongly_connected(nodes, adj) -> list[list]:
    """Tarjan's algorithm (iterative); nodes are hashable, `adj` maps a node
    to the nodes it points at."""
    index: dict = {}
    low: dict = {}
    on_stack: set = set()
    stack: list = []
    out: list[list] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(adj.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(adj.get(w, ()))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def crate_roots(dirs: list[Path]) -> list[Path]:
    roots = []
    for d in dirs:
        for name in ("lib.rs", "main.rs"):
            f = d / "src" / name
            if f.is_file():
                roots.append(f)
    return roots


def workspace_members() -> list[Path]:
    text = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    m = re.search(r"members\s*=\s*\[(.*?)\]", text, re.S)
    if not m:
        return []
    return [ROOT / p for p in re.findall(r'"([^"]+)"', m.group(1))]


def check(root_file: Path, strict: bool, known: set[tuple[str, ...]], seen_known: set) -> int:
    """Prints the cycles of one crate; returns how many are not known."""
    crate = Crate(root_file)
    crate.collect_uses()
    failures = 0
    for problem in crate.missing:
        print(f"error: {problem}")
        failures += 1
    edges = edges_of(crate)
    label = root_file.relative_to(ROOT)
    # Each coupling as a pair of siblings (or, with --strict, of modules).
    pairs: dict[tuple[Module, Module], list[Edge]] = {}
    for e in edges:
        pair = (e.src, e.dst) if strict else lifted(e)
        if pair is not None:
            same_pair = pairs.setdefault(pair, [])
            if not any((k.src, k.dst, k.line) == (e.src, e.dst, e.line) for k in same_pair):
                same_pair.append(e)
    adj: dict[Module, list[Module]] = {}
    for a, b in pairs:
        adj.setdefault(a, []).append(b)
    nodes = sorted({m for pair in pairs for m in pair}, key=Module.name)
    for comp in strongly_connected(nodes, adj):
        if len(comp) < 2:
            continue
        members = set(comp)
        names = sorted(m.name() for m in comp)
        key = (str(label), *names)
        if key in known:
            seen_known.add(key)
            print(f"known cycle (listed in the known file) in {label}: {' <-> '.join(names)}")
        else:
            failures += 1
            print(f"cycle in {label}: {' <-> '.join(names)}")
        for (a, b), es in sorted(pairs.items(), key=lambda kv: (kv[0][0].name(), kv[0][1].name())):
            if a in members and b in members:
                print(f"  {a.name()} uses {b.name()}:")
                for e in es[:3]:
                    print(f"    {e.show()}")
                if len(es) > 3:
                    print(f"    ... and {len(es) - 3} more")
    return failures


def main(argv: list[str]) -> int:
    if "--self-test" in argv:
        return self_test()
    args = list(argv)
    strict = "--strict" in args
    args = [a for a in args if a != "--strict"]
    known: set[tuple[str, ...]] = set()
    if "--known" in args:
        i = args.index("--known")
        for line in Path(args[i + 1]).read_text(encoding="utf-8").splitlines():
            fields = line.split("#", 1)[0].split()
            if fields:
                known.add((fields[0], *sorted(fields[1:])))
        del args[i : i + 2]
    dirs = [Path(a).resolve() for a in args] or workspace_members()
    roots = crate_roots(dirs)
    seen_known: set = set()
    failures = sum(check(r, strict, known, seen_known) for r in roots)
    for gone in sorted(known - seen_known):
        print(f"note: the known cycle `{' '.join(gone)}` no longer exists: delete its line")
    if failures:
        print(f"{failures} module cycle(s) found")
        return 1
    if seen_known:
        print(f"no module cycles in {len(roots)} crate roots besides the {len(seen_known)} known")
    else:
        print(f"no module cycles in {len(roots)} crate roots")
    return 0


def self_test() -> int:
    """Runs the check on small crates with and without cycles (CI runs this
    first, so a check that cannot fail would be caught)."""
    import contextlib
    import io
    import tempfile

    cases = {
        # name: (files, expected cycles as sets of module names)
        "clean tree": (
            {
                "lib.rs": "mod a; mod b; pub use a::A; pub use error::Error; mod error;\n",
                "error.rs": "pub struct Error;\n",
                "a.rs": "use crate::Error; use crate::b::B; pub struct A(B, Error);\n",
                "b.rs": "use super::Error; pub struct B(Error);\n"
                "#[cfg(test)] mod tests { use super::*; use crate::error::Error as E; }\n",
            },
            [],
        ),
        "sibling cycle through a re-export and a nested module": (
            {
                "lib.rs": "mod config; mod install;\n",
                "config/mod.rs": "mod env; pub use env::Env;\n"
                "pub fn go() { crate::install::run() } // crate::nothing::here\n",
                "config/env.rs": "pub struct Env;\n",
                "install.rs": "use crate::config::Env; pub fn run() { let s = \"crate::config\"; }\n",
            },
            [{"config", "install"}],
        ),
        "cycle between subtrees, through super:: and an inline path": (
            {
                "lib.rs": "mod p; mod q;\n",
                "p/mod.rs": "mod x;\n",
                "p/x.rs": "fn f() { super::super::q::y::g() }\n",
                "q/mod.rs": "pub mod y;\n",
                "q/y.rs": "use crate::p::x as _; pub fn g() {}\n",
            },
            [{"p", "q"}],
        ),
        "#[path] and a group import": (
            {
                "lib.rs": "mod a;\n#[path = \"other.rs\"]\nmod b;\n",
                "a.rs": "use crate::{b::{self, B}}; pub struct A;\n",
                "other.rs": "pub struct B; fn f(_: crate::a::A) {}\n",
            },
            [{"a", "b"}],
        ),
    }
    failed = 0
    for name, (files, expected) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / "src"
            for rel, text in files.items():
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                (src / rel).write_text(text, encoding="utf-8")
            crate = Crate(src / "lib.rs")
            crate.collect_uses()
            pairs = {lifted(e) for e in edges_of(crate)} - {None}
            adj: dict = {}
            for a, b in pairs:
                adj.setdefault(a, []).append(b)
            nodes = sorted({m for pair in pairs for m in pair}, key=Module.name)
            got = [
                {m.name() for m in comp}
                for comp in strongly_connected(nodes, adj)
                if len(comp) > 1
            ]
            if sorted(map(sorted, got)) != sorted(map(sorted, expected)) or crate.missing:
                failed += 1
                print(f"self-test `{name}`: expected {expected}, got {got} {crate.missing}")
    print(f"self-test: {len(cases) - failed} of {len(cases)} cases pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
