"""Rules of engagement as pure rules over a command as it will run (arguments filled in, cleanup
included): is it destructive, does it reach for elevated privileges, does it write outside its
sandbox, and how an argument value is quoted for its executor so it stays data.

Text rules cannot prove what a script does (it can build a command at run time); they are the
first line. The executor adds the ones that hold regardless of the text: an unprivileged user,
its own HOME and working folder, and its whole process tree killed at the end.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dcoflow.core.errors import ValidationError
from dcoflow.models.procedures import PLACEHOLDER

# Techniques whose purpose is damage or the removal of evidence: the whole family of each id.
DESTRUCTIVE_TECHNIQUES: dict[str, str] = {
    "T1070": "indicator removal (deletes logs, history or files)",
    "T1485": "data destruction",
    "T1486": "data encrypted for impact",
    "T1490": "inhibit system recovery",
    "T1561": "disk wipe",
    "T1529": "system shutdown/reboot",
}
IMPACT_TACTIC = "impact"

# Ways to run something with other privileges. Matched as whole words anywhere in the command with
# quotes and backslashes removed (``S=sudo; $S id``, ``su""do``, ``'sudo'`` as an argument all count).
ELEVATION = re.compile(
    r"(?<![\w.-])(sudo|sudoedit|su|doas|pkexec|runas|run0|gosu|su-exec|setpriv|capsh|chroot|nsenter|"
    r"start-process\s[^\n]*-verb\s+runas)(?![\w-])",
    re.IGNORECASE,
)

# Command patterns that destroy, overwrite, stop or remove recovery, whatever the technique says.
_DESTRUCTIVE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(rx, re.IGNORECASE)) for label, rx in (
        ("secure delete or wipe", r"\b(shred|wipefs|srm|sdelete)\b"),
        ("file system creation", r"\bmkfs(\.\w+)?\b"),
        ("raw disk write", r"\bdd\b[^\n]*\bof="),
        ("truncation", r"\btruncate\b"),
        ("free-space wipe", r"\bcipher(\.exe)?\s+/w"),
        ("disk format", r"\bformat(\.com)?\s+[a-z]:"),
        ("shadow copy removal", r"\bvssadmin(\.exe)?\s+(delete|resize)\s+shadow|shadowcopy[^\n]*\bdelete\b|"
                                r"win32_shadowcopy[^\n]*(delete|remove)"),
        ("backup catalogue removal", r"\bwbadmin(\.exe)?\s+delete"),
        ("boot configuration change", r"\bbcdedit\b"),
        ("shutdown or reboot", r"\b(shutdown|reboot|halt|poweroff)\b|\binit\s+[06]\b|"
                               r"\b(restart|stop)-computer\b"),
        ("service stop", r"\bsystemctl\s+(stop|disable|mask|kill|isolate)\b|\bservice\s+\S+\s+stop\b|"
                         r"\bsc(\.exe)?\s+(stop|delete|config)\b|\bnet(\.exe)?\s+stop\b|\bstop-service\b|"
                         r"\bset-service\b[^\n]*disabled"),
        ("log clearing", r"\bwevtutil(\.exe)?\s+(cl|clear-log)\b|\b(clear|remove)-eventlog\b|\bhistory\s+-c\b|"
                         r"\bjournalctl\b[^\n]*--vacuum"),
        ("registry deletion", r"\breg(\.exe)?\s+delete\b|\bremove-itemproperty\b"),
        ("account removal", r"\b(userdel|deluser)\b|\bnet(\.exe)?\s+user\s+\S+\s+/del"),
        ("file deletion (Windows)", r"\b(remove-item|clear-content)\b|(^|[\s;&|(])(del|erase)\s|"
                                    r"\b(rd|rmdir)\s+/s\b"),
        ("process killing", r"\b(killall|pkill)\b|\bkill\s+-9\s+(-1|1)\b|\btaskkill\b"),
    )
)

_DELETES = {"rm", "unlink", "rmdir"}
_WRITES_ALL = {"tee", "touch", "mkdir", "truncate"}
_WRITES_LAST = {"cp", "mv", "ln", "install", "rsync"}
_SAFE_WRITES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/", "/proc/self/fd/")


@dataclass(frozen=True, slots=True)
class PathUse:
    """A path a command deletes or writes, and whether it is a delete or a (over)write."""

    path: str
    kind: str  # delete, overwrite, write


def _lines(script: str) -> Iterable[list[str]]:
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            yield list(lexer)
        except ValueError:  # unbalanced quotes: fall back to plain words (conservative enough)
            yield line.split()


def _commands(tokens: list[str]) -> Iterable[list[str]]:
    """Split a line's tokens into simple commands at ; && || | & and shell keywords."""
    current: list[str] = []
    for tok in tokens:
        if tok in (";", "&&", "||", "|", "&", "(", ")", ";;") or tok in ("then", "do", "else", "elif", "if",
                                                                          "while", "until", "!", "{", "}"):
            if current:
                yield current
            current = []
            continue
        current.append(tok)
    if current:
        yield current


def _is_redirect(tok: str) -> bool:
    return bool(tok) and set(tok) <= set("<>&|") and ("<" in tok or ">" in tok)


def path_uses(script: str) -> list[PathUse]:
    """Paths an sh/bash script deletes or writes: redirections, rm/unlink/rmdir, tee/touch/mkdir/…,
    the target of cp/mv/ln, dd's ``of=``. Relative paths after a ``cd`` are taken from where it went."""
    uses: list[PathUse] = []
    cwd = ""  # "": the working folder (the sandbox); else where a cd went (absolute, ~ or a variable)

    def at(path: str) -> str:
        return path if not cwd or path.startswith(("/", "~", "$")) else posixpath.join(cwd, path)

    for tokens in _lines(script):
        for cmd in _commands(tokens):
            plain: list[str] = []  # the command without its redirections (operator, target, fd number)
            skip = False
            for i, tok in enumerate(cmd):
                if skip:
                    skip = False
                    continue
                if _is_redirect(tok):
                    if plain and plain[-1].isdigit():
                        plain.pop()
                    nxt = cmd[i + 1] if i + 1 < len(cmd) else ""
                    fd_dup = tok.endswith("&") and (nxt.isdigit() or nxt == "-")
                    if ">" in tok and nxt and not nxt.startswith("&") and not fd_dup:
                        uses.append(PathUse(at(nxt), "write" if ">>" in tok else "overwrite"))
                    skip = bool(nxt) and not nxt.startswith("&")
                    continue
                plain.append(tok)
            words = [w for w in plain if "=" not in w or w.startswith("-")] or plain
            name = posixpath.basename(words[0]) if words else ""
            args = [w for w in words[1:] if not w.startswith("-")]
            if name in ("cd", "pushd"):
                target = args[0] if args else "~"
                cwd = "$OLDPWD" if target == "-" else target if target.startswith(("/", "~", "$")) \
                    else posixpath.join(cwd, target) if cwd else target
            elif name in _DELETES:
                uses += [PathUse(at(a), "delete") for a in args]
            elif name in _WRITES_ALL:
                uses += [PathUse(at(a), "write") for a in args]
            elif name in _WRITES_LAST and len(args) >= 2:
                uses.append(PathUse(at(args[-1]), "write"))
            elif name == "dd":
                uses += [PathUse(at(w[3:]), "overwrite") for w in plain if w.startswith("of=")]
            elif name == "sed" and any(w == "-i" or w.startswith("-i") for w in plain) and args:
                uses.append(PathUse(at(args[-1]), "overwrite"))
    return uses


# HOME and TMPDIR point into the sandbox when a step runs (see the local executor).
_SANDBOX_VARS = ("~/", "$HOME/", "${HOME}/", "$TMPDIR/", "${TMPDIR}/", "$PWD/", "${PWD}/")


def inside(path: str, sandbox: str) -> bool:
    """Whether ``path`` (as the script names it, run with the sandbox as working folder, HOME and TMPDIR
    inside it) stays in it. Other variables, ``~user`` and command substitutions are outside: they name
    places chosen at run time."""
    for prefix in _SANDBOX_VARS:
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    if not path or path.startswith(("~", "$")) or "$" in path or "`" in path:
        return False
    full = posixpath.normpath(path if path.startswith("/") else posixpath.join(sandbox, path))
    root = posixpath.normpath(sandbox)
    return full == root or full.startswith(root + "/")


def outside_writes(script: str, sandbox: str) -> list[PathUse]:
    """Deletes and writes of an sh/bash script that land outside ``sandbox`` (devices like /dev/null excepted)."""
    return [u for u in path_uses(script)
            if not inside(u.path, sandbox) and not (u.kind != "delete" and u.path.startswith(_SAFE_WRITES))]


def destructive_reasons(
    technique_id: str,
    tactics: Iterable[str],
    scripts: Iterable[str | None],
    *,
    sandbox: str | None = None,
    shell: bool = True,
) -> list[str]:
    """Why a procedure counts as destructive (empty: it does not): its technique, or what its own
    commands do (deleting or overwriting outside its sandbox, wiping, stopping services, removing
    shadow copies, changing boot configuration, shutting down…)."""
    reasons: list[str] = []
    tid = technique_id.strip().upper()
    family = tid.split(".")[0]
    if family in DESTRUCTIVE_TECHNIQUES:
        reasons.append(f"technique {tid} is {DESTRUCTIVE_TECHNIQUES[family]}")
    if any(t.strip().lower().replace("_", "-") == IMPACT_TACTIC for t in tactics):
        reasons.append(f"technique {tid} belongs to the Impact tactic")
    for script in scripts:
        if not script:
            continue
        for label, rx in _DESTRUCTIVE_PATTERNS:
            m = rx.search(script)
            if m:
                reasons.append(f"its command does {label} ({m.group(0).strip()!r})")
        if shell and sandbox is not None:
            for use in path_uses(script):
                if use.kind in ("delete", "overwrite") and not inside(use.path, sandbox) \
                        and not (use.kind == "overwrite" and use.path.startswith(_SAFE_WRITES)):
                    reasons.append(f"its command {'deletes' if use.kind == 'delete' else 'overwrites'} "
                                   f"{use.path!r} outside its sandbox")
    return list(dict.fromkeys(reasons))


def command_only(reasons: Iterable[str]) -> list[str]:
    """The reasons that come from a command's text (an operator may overrule those for one step)."""
    return [r for r in reasons if r.startswith("its command")]


def elevation_means(scripts: Iterable[str | None]) -> list[str]:
    """Every way to gain privileges a script names, looked for with quotes and backslashes removed."""
    found: list[str] = []
    for script in scripts:
        if not script:
            continue
        for text in (script, re.sub(r"[\"'\\]", "", script)):
            found += [m.group(1).lower().split()[0] for m in ELEVATION.finditer(text)]
    return list(dict.fromkeys(found))


# -- quoting arguments for their executor ---------------------------------------------------------------------

_CMD_META = re.compile(r"[&|<>^%!\"()\r\n]")


def _quote_state(template: str, executor: str) -> list[str]:
    """For each placeholder in ``template``, the quoting context it sits in: '', "'" or '"'."""
    contexts: list[str] = []
    state = ""
    i = 0
    ps = executor == "powershell"
    while i < len(template):
        m = PLACEHOLDER.match(template, i)
        if m:
            contexts.append(state)
            i = m.end()
            continue
        c = template[i]
        if state == "'":
            if c == "'":
                if ps and template.startswith("''", i):
                    i += 2
                    continue
                state = ""
        elif state == '"':
            if c == ("`" if ps else "\\"):
                i += 2
                continue
            if c == '"':
                state = ""
        else:
            if c == ("`" if ps else "\\"):
                i += 2
                continue
            if c in ("'", '"'):
                state = c
        i += 1
    return contexts


def quote_value(value: str, executor: str, context: str, name: str) -> str:
    """``value`` as data for ``executor`` in the quoting ``context`` it is substituted into."""
    ex = executor.lower()
    if ex in ("sh", "bash", "manual"):
        if context == "'":
            return value.replace("'", "'\\''")
        if context == '"':
            return re.sub(r'([\\"$`])', r"\\\1", value)
        for home in ("~/", "$HOME/"):  # keep a leading home reference meaning the (sandbox) home
            if value.startswith(home) and len(value) > len(home):
                return home + shlex.quote(value[len(home):])
        return shlex.quote(value)
    if ex in ("powershell", "pwsh"):
        if context == "'":
            return value.replace("'", "''")
        if context == '"':
            return re.sub(r'([`"$])', r"`\1", value)
        return "'" + value.replace("'", "''") + "'"
    if ex in ("command_prompt", "cmd"):
        if _CMD_META.search(value):
            raise ValidationError(f"argument {name!r} holds a cmd metacharacter (one of & | < > ^ % ! \" ( ))",
                                  field=name, hint="cmd has no safe quoting for these; change the value")
        return value
    return shlex.quote(value)


def fill_quoted(template: str | None, values: Mapping[str, str], executor: str) -> str | None:
    """``template`` with each ``#{name}`` that has a value replaced by that value quoted for ``executor``."""
    if template is None:
        return None
    contexts = iter(_quote_state(template, executor.lower()))

    def sub(m: re.Match[str]) -> str:
        context = next(contexts, "")
        name = m.group(1)
        return quote_value(values[name], executor, context, name) if name in values else m.group(0)

    return PLACEHOLDER.sub(sub, template)
