"""Budgets for templates that come from the network: time, value sizes, output size.

Jinja's sandbox stops attribute escapes but not work: a nested `range` loop runs for
minutes and `{{ value * 20000000 }}` builds 20 MB from one byte. A Python thread cannot be
killed, so the budget is enforced from inside the render:

- **time**: a watchdog thread raises `BudgetExceeded` inside a render that passes its
  deadline (`PyThreadState_SetAsyncExc`); that stops any loop written in Python, in the
  template or in a filter, and costs nothing while renders are quick;
- **sizes**: the operations that can grow a value in one C call (`*`, `**`, `+`, `%`,
  `~`, `str.format` widths, `center`/`ljust`/..., `join`, `replace`, `batch`) are checked
  before they run, so no single step allocates more than `MAX_VALUE_CHARS`;
- **output**: the render is streamed and stops once it passes `MAX_OUTPUT_CHARS`.

`BudgetExceeded` says which limit was hit; the caller marks the entity unavailable.
"""

from __future__ import annotations

import ctypes
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.sandbox import ImmutableSandboxedEnvironment

BUDGET_S = 0.05  # CPU seconds; a real firmware template renders in well under 1 ms
MAX_OUTPUT_CHARS = 65_536
MAX_VALUE_CHARS = 1 << 20  # any one intermediate string or list
MAX_INT_BITS = 4096  # big-int arithmetic is one uninterruptible C call; sensors need 64 bits
_WIDTH = re.compile(r"\d{6,}|\*")  # a %-width or precision of 100000+ (or from the args)
_DIGITS = re.compile(r"\d{6,}")  # in str.format, "*" is a fill character
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_SIZING_FILTERS = frozenset({"center", "indent", "wordwrap", "batch", "slice"})
_CONTAINERS = (list, tuple, dict, set, frozenset)


class BudgetExceeded(Exception):
    """A template went over its time or size budget (the message says which)."""


def _size(value: Any) -> int:
    """A size in the units that matter for memory: characters, items, or int digits."""
    if isinstance(value, str | bytes | list | tuple | dict | set):
        return len(value)
    return 1


def rendered_size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters str(value) makes, stopping once past `limit`: a list of
    a million references to one long string is small in memory but not when printed."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if not isinstance(value, list | tuple | set | frozenset):
        return 8
    total = 2
    for item in value:
        total += 2 + rendered_size(item, limit - total)
        if total > limit:
            break
    return total


def _check_containers(values: Iterable[Any], what: str) -> None:
    for value in values:
        if isinstance(value, list | tuple | dict | set | frozenset):
            _check(rendered_size(value), what)


def _check(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise BudgetExceeded(f"{what} would make a value of ~{size:,} (limit {MAX_VALUE_CHARS:,})")


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise BudgetExceeded(f"{what} would make an integer of ~{bits:,} bits")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse, before it runs, an operation whose result would exceed MAX_VALUE_CHARS."""
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(count, int):
                _check(len(seq) * max(count, 0), "'*'")
        if isinstance(left, int) and isinstance(right, int):
            _check_bits(left.bit_length() + right.bit_length(), "'*'")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _check_bits(abs(left).bit_length() * right, "'**'")
    elif operator == "+":
        if isinstance(left, str | bytes | list | tuple) and isinstance(right, type(left)):
            _check(len(left) + len(right), "'+'")
    elif operator == "%" and isinstance(left, str):
        if "%" in left and any(_WIDTH.search(spec) for spec in re.findall(r"%[^a-zA-Z%]*", left)):
            raise BudgetExceeded("'%' format with a width of 100000 or more")
        _check(len(left) + rendered_size(right), "'%'")


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse the str methods whose result size is set by an argument."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _WIDTH_METHODS:
        per = owner.count("\t") + 1 if name == "expandtabs" else 1  # each tab grows to `arg`
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int):
                _check(len(owner) + arg * per, f"str.{name}")
    elif name == "replace" and len(args) >= 2 and isinstance(args[1], str):
        old, new = str(args[0]), args[1]
        hits = owner.count(old) if old else len(owner) + 1
        _check(len(owner) + hits * max(len(new) - len(old), 0), "str.replace")


def _joined(separator: str, items: list[Any]) -> None:
    size = len(separator) * max(len(items) - 1, 0)
    _check(size + rendered_size(items, MAX_VALUE_CHARS - size), "join")


class _GuardedCodeGenerator(CodeGenerator):
    """`a ~ b` (Concat) goes through `environment.concat_checked` so its size is checked."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.concat_checked((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus size checks on everything that can grow a value."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        # lipsum(10**9) is a Python loop that also allocates; no firmware template uses it.
        self.globals.pop("lipsum", None)
        self.guard_filters()

    def guard_filters(self) -> None:
        """Wrap every filter (call again after adding filters): most turn their input into
        a string first, which for a huge container is one long C call."""
        for name, original in list(self.filters.items()):
            if not getattr(original, "_guarded", False):
                self.filters[name] = _guard_filter(name, original)

    @staticmethod
    def _finalize(value: Any) -> Any:
        """Every `{{ ... }}` result, before str() runs on it in one C call."""
        if isinstance(value, list | tuple | dict | set | frozenset):
            _check(rendered_size(value), "printing a value")
        return value

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_call(__obj, args, kwargs)
        _check_containers((*args, *kwargs.values()), "call")
        owner = getattr(__obj, "__self__", None)
        if getattr(__obj, "__name__", "") == "join" and isinstance(owner, str) and args:
            items = list(args[0])  # a generator must be measured before str.join runs it
            _joined(owner, items)
            return super().call(__context, __obj, items, *args[1:], **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        owner = value.__self__
        if any(_DIGITS.search(spec) for spec in re.findall(r"\{[^{}]*\}", owner)):
            raise BudgetExceeded("str.format with a width of 100000 or more")
        nested = re.search(r"\{[^{}]*\{", owner) is not None  # a width taken from the args

        def checked(*args: Any, **kwargs: Any) -> str:
            values = [*args, *kwargs.values()]
            _check(len(owner) + rendered_size(values), "str.format")
            if nested and any(isinstance(v, int) and v > MAX_VALUE_CHARS for v in values):
                raise BudgetExceeded("str.format with a width taken from a huge argument")
            return wrapped(*args, **kwargs)

        return checked

    def concat_checked(self, parts: Iterable[Any]) -> str:
        parts = list(parts)
        _check(rendered_size(parts), "'~'")
        return "".join(str(p) for p in parts)


def _guard_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that checks the size its arguments ask for before running `original`."""
    special = name in _SIZING_FILTERS or name in ("join", "replace", "sum", "format")

    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):  # the quick part, for every filter call
            if isinstance(value, _CONTAINERS):
                _check(rendered_size(value), name)
        if special:
            args = _check_filter(name, args, kwargs)
        return original(*args, **kwargs)

    if hasattr(original, "jinja_pass_arg"):  # keep @pass_environment / @pass_eval_context
        guarded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    guarded._guarded = True  # type: ignore[attr-defined]
    return guarded


def _check_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The size checks of the filters whose arguments set the size of their result; the
    arguments to call the filter with (a generator given to `join` is read once, here)."""
    # Context/environment-taking filters get it first: skip to the filtered value.
    values = [a for a in args if not isinstance(a, GuardedEnvironment)]
    values = [v for v in values if type(v).__name__ not in ("EvalContext", "Context")]
    subject, rest = (values[0], values[1:]) if values else ("", [])
    if name == "join":
        items = list(subject)
        sep = rest[0] if rest else kwargs.get("d", "")
        _joined(str(sep), items)
        return tuple(items if a is subject else a for a in args)
    if name == "replace" and len(rest) >= 2:
        text, old, new = str(subject), str(rest[0]), str(rest[1])
        hits = text.count(old) if old else len(text) + 1
        _check(len(text) + hits * max(len(new) - len(old), 0), "replace")
    elif name == "sum":
        start = kwargs.get("start", rest[1] if len(rest) > 1 else 0)
        if not isinstance(start, int | float):  # quadratic copying inside one C call
            raise BudgetExceeded("sum() of strings or lists is not supported")
    elif name == "format":
        if isinstance(subject, str) and _WIDTH.search(subject):
            raise BudgetExceeded("format with a width of 100000 or more")
        _check(_size(subject) + rendered_size([*rest, *kwargs.values()]), "format")
    elif name in _SIZING_FILTERS:  # an int argument sets the size (per line for indent)
        base = _size(subject)
        lines = subject.count("\n") + 1 if isinstance(subject, str) else 1
        for arg in (*rest, *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool):
                _check(base + arg * lines, name)
            elif isinstance(arg, str):  # indent's width may be a string
                _check(base + len(arg) * lines, name)
    return args


def _cpu_seconds(ident: int) -> float:
    """The CPU time of thread `ident`: on a busy machine a render that waits for a core
    must not count as slow. (OSError when the thread has ended.)"""
    return time.clock_gettime(time.pthread_getcpuclockid(ident))


_PER_THREAD_CLOCK = hasattr(time, "pthread_getcpuclockid")


@dataclass
class _Slot:
    deadline: float  # in the thread's CPU time (thread_time), or monotonic without one
    fired: bool = False


class _Watchdog:
    """Raises BudgetExceeded inside threads whose render is past its CPU-time budget.

    `PyThreadState_SetAsyncExc` delivers the exception at the thread's next bytecode, so a
    runaway loop stops without any per-render cost (a trace function made every render
    2-3x slower). It is re-sent every tick while the render lasts, in case some code
    swallows it. Work inside one C call is not interrupted: the size checks cover that.
    """

    TICK_S = 0.01

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, _Slot] = {}
        self._thread: threading.Thread | None = None

    def enter(self, budget_s: float) -> _Slot:
        now = time.thread_time() if _PER_THREAD_CLOCK else time.monotonic()
        slot = _Slot(now + budget_s)
        with self._lock:
            self._active[threading.get_ident()] = slot
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="template-watchdog")
                self._thread.daemon = True  # holds nothing; ends with the process
                self._thread.start()
        return slot

    def leave(self) -> None:
        with self._lock:
            self._active.pop(threading.get_ident(), None)

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK_S)
            with self._lock:  # leave() takes it too: no exception after a render ended
                for ident, slot in self._active.items():
                    try:
                        now = _cpu_seconds(ident) if _PER_THREAD_CLOCK else time.monotonic()
                    except OSError:  # the thread ended without leave() (cannot happen)
                        continue
                    if now > slot.deadline:
                        slot.fired = True
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(ident), ctypes.py_object(BudgetExceeded)
                        )


_watchdog = _Watchdog()


def _absorb() -> None:
    """Let an exception the watchdog sent just as the render ended land here."""
    for _ in range(100_000):  # a backward jump is where a pending async exception lands
        pass
    raise BudgetExceeded()


def render_budgeted(generate: Callable[[], Iterable[str]], budget_s: float = BUDGET_S) -> str:
    """Run a template's `generate()` within `budget_s` seconds and MAX_OUTPUT_CHARS."""
    slot = _watchdog.enter(budget_s)
    try:
        try:
            out: list[str] = []
            size = 0
            for chunk in generate():
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise BudgetExceeded(f"output longer than {MAX_OUTPUT_CHARS:,} characters")
                out.append(chunk)
        finally:
            _watchdog.leave()
            if slot.fired:
                _absorb()
    except BudgetExceeded as exc:
        if exc.args:
            raise
        raise BudgetExceeded(f"rendering took more than {budget_s * 1000:.0f} ms of CPU") from None
    return "".join(out)
