"""Shared pieces for service tests: a three-step pipeline and a collector."""

from __future__ import annotations

import os
import threading
from typing import Any

from zocalo_nb.dispatch import StepContext
from zocalo_nb.recipe import Recipe, RecipeBuilder
from zocalo_nb.transport import Message, Transport


def pipeline(queues: tuple[str, str, str] = ("pipe.a", "pipe.b", "pipe.end")) -> Recipe:
    b = RecipeBuilder()
    first, second, end = (b.step(q) for q in queues)
    first.then(second).then(end)
    b.start(first, {"n": 0})
    return b.build()


def step_one(ctx: StepContext, payload: Any) -> None:
    """Forwards, unless told to fail ("poison") or to kill its process ("bomb")."""
    if payload.get("poison"):
        raise ValueError(f"poisoned payload {payload['poison']}")
    if payload.get("bomb"):
        os._exit(3)
    ctx.send({**payload, "n": payload.get("n", 0) + 1})


def step_two(ctx: StepContext, payload: Any) -> None:
    ctx.send({**payload, "n": payload.get("n", 0) + 1})


class Collector:
    """Acks and records everything arriving on a queue."""

    def __init__(self, transport: Transport, queue: str) -> None:
        self.transport = transport
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        transport.subscribe(queue, self._take, prefetch=100)

    def _take(self, message: Message) -> None:
        with self.lock:
            self.messages.append(message)
        self.transport.ack(message)

    def runs(self) -> list[str]:
        with self.lock:
            return [m.body["environment"]["ID"] for m in self.messages]
