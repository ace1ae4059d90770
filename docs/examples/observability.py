"""Metrics and traces of a session: a callback gets a TurnMetrics at the end of each model turn
and a SessionMetrics at the end of the block; with opentelemetry-sdk installed, the same session
is traced too and its span tree printed.

The session has two turns, the first with a tool call, and a goAway handover between them.
Against the built-in fake Live server (no key needed): ``python3 docs/examples/observability.py``.
"""

from __future__ import annotations

from typing import Any

import trio

from gemini_ws import (
    Client,
    LiveConfig,
    SessionMetrics,
    SessionResumed,
    ToolCall,
    TurnMetrics,
    telemetry,
)
from gemini_ws.testing import open_fake_server

MODEL = "gemini-3.1-flash-live-preview"
CONFIG = LiveConfig(
    response_modalities=["TEXT"],
    tools=[{"function_declarations": [{"name": "get_time"}]}],
)


def on_metrics(m: TurnMetrics | SessionMetrics) -> None:
    """Called inline by the stream: keep it quick (an ``async def`` is awaited in a task)."""
    if isinstance(m, TurnMetrics):
        first = m.time_to_first_chunk
        print(
            f"turn {m.index}: tokens in/out {m.prompt_tokens}/{m.response_tokens} "
            f"{m.prompt_tokens_by_modality}, tool calls {[c.name for c in m.tool_calls]}, "
            f"first chunk after {first * 1000 if first is not None else 0:.1f} ms, "
            f"{m.duration * 1000:.1f} ms in all"
        )
    else:
        print(
            f"session: {m.turns} turns, {m.total_tokens} tokens, {m.handovers} handover(s), "
            f"warm={m.warm}, ended with {m.error.__name__ if m.error else None}; "
            f"connection in {(m.acquire_time or 0) * 1000:.1f} ms, "
            f"setup in {(m.setup_time or 0) * 1000:.1f} ms"
        )


async def session(server: Any, client: Client, metrics: Any = None) -> None:
    async with client.stream(MODEL, CONFIG, reconnect=True, metrics=metrics) as s:
        await s.send_text("call get_time")
        async for msg in s.turn():
            if isinstance(msg, ToolCall):
                await s.send_tool_response(msg, {"get_time": "noon"})
        # the server will close this connection soon: the stream moves to a new one
        [c for c in server.connections if c.setup is not None][-1].go_away(0.5)
        async for msg in s:
            if isinstance(msg, SessionResumed):
                break
        await s.send_text("thanks")
        await s.receive_turn()


def print_tree(spans: Any) -> None:
    children: dict[Any, list[Any]] = {}
    for span in sorted(spans, key=lambda s: s.start_time):
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent, []).append(span)
    shown = (
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.tool.name",
        "gemini_ws.handover.reason",
        "gemini_ws.warm",
    )

    def show(span: Any, depth: int, inherited: dict[str, Any]) -> None:
        attributes = {
            k: v for k, v in span.attributes.items() if k in shown and inherited.get(k) != v
        }
        events = [e.name for e in span.events]
        print(f"  {'    ' * depth}{span.name} {attributes}{f' events={events}' if events else ''}")
        for child in children.get(span.context.span_id, []):
            show(child, depth + 1, {**inherited, **span.attributes})

    for root in children.get(None, []):
        show(root, 0, {})


async def main() -> None:
    async with open_fake_server(chunk_count=3) as server:
        print(f"using the built-in fake Live server at {server.url} (no key needed)")
        async with Client(api_key=server.api_key, base_url=server.url) as client:
            print("metrics:")
            await session(server, client, metrics=on_metrics)
            try:
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor
                from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                    InMemorySpanExporter,
                )
            except ImportError:
                print("traces: skipped, opentelemetry-sdk is not installed")
                return
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            telemetry.instrument(provider)  # streams opened from now on are traced
            try:
                await session(server, client)
            finally:
                telemetry.uninstrument()
            print("traces:")
            print_tree(exporter.get_finished_spans())


if __name__ == "__main__":
    trio.run(main)
