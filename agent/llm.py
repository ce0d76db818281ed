"""A streaming client for OpenAI-compatible chat completion servers (vLLM first).

Interrupting a generation is cancelling the task that awaits `generate()`: leaving the `async with`
closes the HTTP response, and vLLM aborts a request whose client went away. Text is handed to a
callback rather than yielded, so a cancel unwinds every frame at once and leaves no half-iterated
async generator behind for the garbage collector to finalize. The trace of the current
turn is the final assistant message; with `continue_final_message` vLLM continues it in place, so a
restart after an injection re-uses the prefix cache instead of re-reading the whole trace.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

Backend = Literal["vllm", "openai"]


class LLMError(Exception):
    """The LLM server could not be reached or answered with an error."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def _status_error(status: int, detail: str) -> LLMError:
    # A request the server rejects (context too long, bad parameters) fails the same way again.
    retryable = status >= 500 or status in (408, 429)
    return LLMError(f"LLM server answered {status}: {detail}", retryable=retryable)


@dataclass(frozen=True, slots=True)
class Generation:
    """One request: the system prompt, the assistant text (the trace) to continue, an optional output regex."""

    system: str
    assistant_prefix: str
    regex: str | None = None
    max_tokens: int = 256
    stop: tuple[str, ...] = ()


class LLM(Protocol):
    async def generate(self, gen: Generation, on_text: Callable[[str], None]) -> None: ...

    async def complete(self, messages: list[dict[str, str]], max_tokens: int = 128) -> str: ...


class OpenAICompatibleLLM:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        backend: Backend = "vllm",
        temperature: float = 0.0,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self.backend = backend
        self.temperature = temperature
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _body(self, gen: Generation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "max_tokens": gen.max_tokens,
            "temperature": self.temperature,
        }
        if gen.stop:
            body["stop"] = list(gen.stop)
        system = {"role": "system", "content": gen.system}
        if self.backend == "vllm":
            body["messages"] = [system, {"role": "assistant", "content": gen.assistant_prefix}]
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
            if gen.regex is not None:
                body["structured_outputs"] = {"regex": gen.regex}
        else:
            # Hosted APIs cannot continue an assistant message: show the trace and ask for the next step.
            body["messages"] = [
                system,
                {"role": "user", "content": f"The current turn so far:\n{gen.assistant_prefix}\n"
                 "Write your next step: <think>...</think> and one action."},
            ]
        return body

    async def generate(self, gen: Generation, on_text: Callable[[str], None]) -> None:
        """Stream one generation into `on_text`; raise LLMError on any failure before or during it."""
        loop = asyncio.get_running_loop()
        try:
            # An idle deadline that every chunk pushes back: a server that stalls mid-stream fails too.
            async with asyncio.timeout(self.timeout_s) as idle, \
                    self._http.stream("POST", "/chat/completions", json=self._body(gen)) as response:
                if response.status_code != 200:
                    detail = (await response.aread())[:300].decode(errors="replace")
                    raise _status_error(response.status_code, detail)
                # Read to the end rather than returning at [DONE]: leaving the loop early would strand
                # httpx's chain of async generators for the garbage collector to close.
                async for line in response.aiter_lines():
                    idle.reschedule(loop.time() + self.timeout_s)
                    data = line[5:].strip() if line.startswith("data:") else "[DONE]"
                    if data == "[DONE]":
                        continue
                    text = _delta_text(data)
                    if text:
                        on_text(text)
        except httpx.HTTPError as e:
            raise LLMError(f"LLM request failed: {type(e).__name__}: {e}") from e
        except TimeoutError as e:
            raise LLMError(f"LLM server sent nothing for {self.timeout_s:g} s") from e

    async def complete(self, messages: list[dict[str, str]], max_tokens: int = 128) -> str:
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                "temperature": self.temperature}
        try:
            response = await self._http.post("/chat/completions", json=body)
        except httpx.HTTPError as e:
            raise LLMError(f"LLM request failed: {type(e).__name__}: {e}") from e
        if response.status_code != 200:
            raise _status_error(response.status_code, response.text[:300])
        try:
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise LLMError("LLM server sent a malformed completion") from e


def _delta_text(data: str) -> str:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as e:
        raise LLMError(f"LLM server sent a malformed stream chunk: {data[:80]!r}") from e
    if "error" in chunk:
        raise LLMError(f"LLM server error: {str(chunk['error'])[:300]}")
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    return str((choices[0].get("delta") or {}).get("content") or "")
