"""A tool runner: the model's function calls answered by Python functions, concurrently.

``s.run_tools({"get_weather": get_weather})`` registers the functions on a stream. From then on
every :class:`~gemini_ws.ToolCall` the stream delivers starts one task per call in the
stream's own nursery (so none outlives the ``async with``): an ``async def`` function is
awaited, a plain one runs in a worker thread, both with the call's arguments as keyword
arguments. Each result goes back as a :class:`~gemini_ws.FunctionResponse` carrying the call's
id, as soon as that call is done (calls answer independently, in the order they finish).

- A function that raises is answered with ``{"error": "<Type>: <message>"}``, so the model
  hears about it; the stream goes on. An unknown function name is answered the same way.
- ``toolCallCancellation`` cancels the calls it names; an interruption (``interrupted``)
  cancels the running calls of *blocking* functions (a non-blocking function's call goes on:
  the model did not wait for it). A cancelled call is not answered.
- A resume cancels the calls it withdrew (``SessionResumed.withdrawn_calls``: made after the
  handle the session resumed with, so the resumed session never made them); the model calls
  again if it still needs the tool.
- A function may return a :class:`~gemini_ws.FunctionResponse` for full control (its
  ``scheduling``, ``will_continue``); its id and name are filled in when missing.
- Streamed arguments (a call sent in parts with ``willContinue`` and ``partialArgs``) are
  assembled first; the function runs once, with the whole arguments.

The ToolCall message itself is still delivered to the application, which may show it.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._errors import ConfigurationError, GeminiWSError
from ._models import blocking_function
from ._session import SessionResumed
from ._types import (
    FunctionCall,
    FunctionResponse,
    PartialArg,
    Scheduling,
    ServerContent,
    ToolCall,
    ToolCallCancellation,
    ToolResponse,
)
from ._validate import validated

if TYPE_CHECKING:
    from ._stream import LiveStream

__all__ = ["ToolRunner", "ToolRunnerStatistics"]

logger = logging.getLogger("gemini_ws")

#: A tool: called with the function call's arguments as keyword arguments.
Tool = Callable[..., Any]


@validated
@attrs.frozen
class ToolRunnerStatistics:
    """A snapshot of a :class:`ToolRunner`'s counters."""

    #: calls started (one per complete function call delivered)
    started: int
    #: calls answered with the function's result
    answered: int
    #: calls answered with an error (the function raised, or no such function)
    failed: int
    #: calls cancelled (by toolCallCancellation, an interruption or the end of the stream)
    cancelled: int
    #: ids of the calls running now
    running: tuple[str, ...]


class ToolRunner:
    """Answers a stream's function calls with Python functions; see
    :meth:`LiveStream.run_tools <gemini_ws.LiveStream.run_tools>`."""

    def __init__(
        self,
        stream: LiveStream,
        functions: Mapping[str, Tool],
        *,
        scheduling: Scheduling | str | None = None,
        nursery: trio.Nursery,
    ) -> None:
        if not isinstance(functions, Mapping):
            raise ConfigurationError(
                f"run_tools() takes a dict of function name -> function, got "
                f"{type(functions).__name__}"
            )
        for name, function in functions.items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"tool names must be non-empty str, got {name!r:.40}")
            if not callable(function):
                raise ConfigurationError(
                    f"the tool {name!r} is not callable: {type(function).__name__}"
                )
        self._stream = stream
        self._functions = dict(functions)
        self._scheduling = None if scheduling is None else Scheduling(scheduling)
        self._nursery = nursery
        self._running: dict[str, tuple[trio.CancelScope, bool]] = {}
        self._partial: dict[str, list[FunctionCall]] = {}
        self._stopped = False
        self._started = self._answered = self._failed = self._cancelled = 0

    def __repr__(self) -> str:
        return f"<ToolRunner {sorted(self._functions)} running={len(self._running)}>"

    @property
    def functions(self) -> Mapping[str, Tool]:
        """The functions this runner answers calls with, by name."""
        return dict(self._functions)

    def statistics(self) -> ToolRunnerStatistics:
        """Counters of the calls seen so far."""
        return ToolRunnerStatistics(
            started=self._started,
            answered=self._answered,
            failed=self._failed,
            cancelled=self._cancelled,
            running=tuple(self._running),
        )

    def stop(self) -> None:
        """Cancel the running calls and answer no more (the stream goes on)."""
        self._stopped = True
        for call_id in list(self._running):
            self._cancel(call_id)

    # --- driven by LiveStream.receive --------------------------------------------------------
    def observe(self, message: object) -> None:
        """Act on a message the stream is delivering."""
        if self._stopped:
            return
        if isinstance(message, ToolCall):
            for call in message.function_calls:
                whole = self._assemble(call)
                if whole is not None:
                    self._start(whole)
        elif isinstance(message, ToolCallCancellation):
            for call_id in message.ids:
                self._partial.pop(call_id, None)
                self._cancel(call_id)
        elif isinstance(message, SessionResumed):
            # calls the resumed session never made: their answers would not be sent
            for call_id in message.withdrawn_calls:
                self._partial.pop(call_id, None)
                self._cancel(call_id)
        elif isinstance(message, ServerContent) and message.interrupted:
            for call_id, (_, blocking) in list(self._running.items()):
                if blocking:
                    self._cancel(call_id)

    def _assemble(self, call: FunctionCall) -> FunctionCall | None:
        """The whole call once its last part came (None while parts are still due)."""
        key = call.id or call.name
        parts = self._partial.get(key)
        if call.will_continue:
            self._partial.setdefault(key, []).append(call)
            return None
        if parts is None and not call.partial_args:
            return call
        parts = self._partial.pop(key, [])
        parts.append(call)
        args: dict[str, Any] = {}
        for part in parts:
            args.update(part.args)
            for partial in part.partial_args:
                _apply_partial(args, partial)
        name = next((part.name for part in parts if part.name), "")
        return attrs.evolve(call, name=name, args=args, will_continue=None, partial_args=())

    def _start(self, call: FunctionCall) -> None:
        call_id = call.id or ""
        if not call_id:
            logger.warning("function call %r has no id; it cannot be answered", call.name)
            return
        if call_id in self._running:
            return  # the same call delivered twice: it is answered once
        scope = trio.CancelScope()
        self._running[call_id] = (scope, self._blocking(call.name))
        self._started += 1
        self._nursery.start_soon(self._run, call, scope, name=f"gemini_ws tool {call.name}")

    def _cancel(self, call_id: str) -> None:
        entry = self._running.get(call_id)
        if entry is not None:
            entry[0].cancel()

    def _blocking(self, name: str) -> bool:
        """Whether the model waits for this function (so an interruption ends its call)."""
        return blocking_function(self._stream.setup, name)

    async def _run(self, call: FunctionCall, scope: trio.CancelScope) -> None:
        call_id = call.id or ""
        response: FunctionResponse | None = None
        try:
            with scope:
                response = await self._call(call)
        finally:
            del self._running[call_id]
        if response is None:
            self._cancelled += 1
            return
        try:
            await self._stream.send_tool_response(ToolResponse(function_responses=(response,)))
        except GeminiWSError as exc:
            # the stream is ending: its own error reaches the application there
            logger.debug("the answer to %s (%s) was not sent: %s", call.name, call_id, exc)

    async def _call(self, call: FunctionCall) -> FunctionResponse | None:
        """Run the function; the response to send (None if cancelled before it ended)."""
        function = self._functions.get(call.name)
        if function is None:
            self._failed += 1
            known = ", ".join(sorted(self._functions)) or "none"
            return self._response(call, {"error": f"no function {call.name!r} (known: {known})"})
        try:
            if inspect.iscoroutinefunction(function):
                value = await function(**call.args)
            else:
                value = await trio.to_thread.run_sync(
                    _call_sync, function, call.args, abandon_on_cancel=True
                )
                if inspect.isawaitable(value):  # a plain function that returned an awaitable
                    value = await value
        except Exception as exc:
            self._failed += 1
            logger.info("tool %s (%s) failed: %s: %s", call.name, call.id, type(exc).__name__, exc)
            return self._response(call, {"error": f"{type(exc).__name__}: {exc}"})
        self._answered += 1
        if isinstance(value, FunctionResponse):
            return attrs.evolve(value, id=value.id or call.id, name=value.name or call.name)
        return self._response(call, value)

    def _response(self, call: FunctionCall, value: Any) -> FunctionResponse:
        response = dict(value) if isinstance(value, Mapping) else {"result": value}
        return FunctionResponse(
            id=call.id, name=call.name, response=response, scheduling=self._scheduling
        )


def _call_sync(function: Tool, args: Mapping[str, Any]) -> Any:
    return function(**args)


#: One step of an RFC 9535 JSON path: .name, [3], ['name'] or ["name"].
_PATH_STEP = re.compile(
    r"\.([A-Za-z_][\w-]*)"
    r"|\[(\d+)\]"
    r"|\['((?:[^'\\]|\\.)*)'\]"
    r'|\["((?:[^"\\]|\\.)*)"\]'
)


def _apply_partial(args: dict[str, Any], partial: PartialArg) -> None:
    """Set (or, for a streamed string, extend) the argument a PartialArg's JSON path names."""
    path = partial.json_path
    if not isinstance(path, str) or not path.startswith("$"):
        return
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _PATH_STEP.match(path, pos)
        if match is None:
            logger.warning("a partial argument has a JSON path we cannot follow: %r", path)
            return
        name, index, quoted, dquoted = match.groups()
        steps.append(int(index) if index is not None else (name or quoted or dquoted or ""))
        pos = match.end()
    if not steps:
        return
    value: Any = None  # (null_value, or no value at all)
    if partial.string_value is not None:
        value = partial.string_value
    elif partial.number_value is not None:
        number = partial.number_value
        value = int(number) if math.isfinite(number) and number == int(number) else number
    elif partial.bool_value is not None:
        value = partial.bool_value
    target: Any = args
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        if following is None:
            break
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(step, int):
            while len(target) <= step:
                target.append(None)
            if target[step] is None:
                target[step] = empty
            target = target[step]
        else:
            target = target.setdefault(step, empty)
    last = steps[-1]
    if isinstance(last, int):
        while len(target) <= last:
            target.append(None)
        old = target[last]
    else:
        old = target.get(last)
    if isinstance(value, str) and isinstance(old, str):
        value = old + value  # a string streamed in pieces
    if isinstance(last, int):
        target[last] = value
    else:
        target[last] = value
