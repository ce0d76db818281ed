"""The bundled page in headless Debian Chromium with a fake microphone: one spoken turn, end to end.

The agent's LLM is the scripted fake (the browser, the gateway and the speech models are real): it
looks the weather up as soon as a partial transcript names the city, then answers.
"""

import asyncio
import os
import re
import shutil
import wave
from pathlib import Path

import pytest

from agent.protocol import Answer, Pause, ToolCall
from evals.fake_llm import Recorded, Reply
from tests.server.realtime_support import running
from tests.support import step

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def weather_policy(rec: Recorded) -> Reply:
    updates = re.findall(r"_query_update>([^<]*)</", rec.prefix)
    heard = updates[-1].lower() if updates else ""
    if "<tool_call>" not in rec.prefix and "paris" in heard:
        return Reply(step("weather in paris", ToolCall(1, "get_weather", {"city": "Paris"})))
    if "<tool_result" in rec.prefix and "<final_query_update>" in rec.prefix:
        return Reply(step("have it", Answer("It is fourteen degrees in Paris, with light rain.")))
    return Reply(step("listening", Pause()))


def microphone_file(path: Path) -> Path:
    from speech.tts import PIPER_RATE, TTS

    tts = TTS(deterministic=True)
    with tts._lock:
        speech = b"".join(c.audio_int16_bytes for c in tts.voice.synthesize("What is the weather in Paris today?",
                                                                            syn_config=tts.config))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(PIPER_RATE)
        w.writeframes(bytes(PIPER_RATE * 2) + speech + bytes(PIPER_RATE * 2 * 6))
    return path


@pytest.mark.browser
@pytest.mark.model
def test_a_voice_turn_in_the_browser(tmp_path):
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: apt-get install chromium (.ci/run does)")
    wav = microphone_file(tmp_path / "question.wav")

    async def main():
        async with running(weather_policy) as (url, _), async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}%noloop"])
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(url.removesuffix("/v1") + "/")
            await page.wait_for_function("window.specvoice && window.specvoice.connected")
            await page.click("#talk")
            try:
                await page.wait_for_function(
                    "[...document.querySelectorAll('.msg.user')].some(e => !e.classList.contains('partial')"
                    " && /weather/i.test(e.textContent))", timeout=30_000)
                await page.wait_for_function("document.querySelector('#calls tbody tr .state.completed') !== null",
                                             timeout=30_000)
                await page.wait_for_function("window.specvoice.turns.length > 0", timeout=30_000)
                await page.wait_for_function("window.specvoice.playedFrames > 24000", timeout=30_000)
            except Exception:
                await page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
                seen = await page.evaluate("JSON.stringify([window.specvoice.events.slice(0, 80), "
                                           "window.specvoice.playedFrames, window.specvoice.audioFrames])")
                raise AssertionError(f"page events: {seen}; errors: {errors}; screenshot {tmp_path}") from None
            user = await page.locator(".msg.user").last.text_content()
            answer = await page.locator(".msg.assistant").last.text_content()
            call = await page.locator("#calls tbody tr .call").first.text_content()
            bars = await page.locator("#timeline svg rect").count()
            shot = tmp_path / "browser.png"
            await page.screenshot(path=str(shot), full_page=True)
            await browser.close()
        assert "paris" in user.lower()
        assert answer == "It is fourteen degrees in Paris, with light rain."
        assert call.startswith("get_weather(") and "Paris" in call
        assert bars >= 3  # speech, final transcript, LLM and tool bars
        assert not errors, errors

    asyncio.run(main())
    if os.environ.get("SPECVOICE_ARTIFACTS"):  # CI keeps the screenshot
        Path(os.environ["SPECVOICE_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "browser.png", Path(os.environ["SPECVOICE_ARTIFACTS"]) / "browser.png")
