"""The one settings tree. Sources, strongest first: explicit values, `SPECVOICE_*` environment
variables (nested with `__`, e.g. `SPECVOICE_LLM__BASE_URL`), a TOML file, the defaults below."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from agent.prompt import PromptStyle
from agent.worker import AgentConfig, Mode

PRESETS = Path(__file__).parent / "presets"


# The LoRA adapter that teaches the embedded model the protocol (training/), versioned with the project.
SHIPPED_ADAPTER = Path(__file__).resolve().parent.parent / "training" / "adapter"


def shipped_adapter() -> Path | None:
    return SHIPPED_ADAPTER if (SHIPPED_ADAPTER / "adapter_model.safetensors").is_file() else None


def default_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "specvoice"


class LLMSettings(BaseModel):
    base_url: str | None = Field(default=None, description="an OpenAI-compatible server; unset = the embedded vLLM")
    model: str = "smollm2-135m-instruct"
    api_key: str | None = None
    backend: Literal["vllm", "openai"] = Field(
        default="vllm", description="vllm: continue the assistant message and constrain decoding; openai: neither"
    )
    temperature: float = 0.0
    timeout_s: float = 30.0


class EmbeddedLLMSettings(BaseModel):
    home: Path = Field(default_factory=default_home, description="the vLLM environment and converted model")
    host: str = "127.0.0.1"
    port: int = 8011
    max_model_len: int = 4096
    kv_cache_gib: int = 1
    startup_timeout_s: float = 600.0
    nice: int = Field(default=19, ge=0, le=19, description="CPU niceness of the vLLM process (speech stages first)")
    adapter: bool = Field(default=True, description="serve the model fine-tuned on the protocol (training/adapter), "
                                                    "merged at setup; false: the untrained model")


class AgentSettings(BaseModel):
    mode: Mode = "speculative"
    catalog: str = "configs.catalogs.demo"
    constrained: bool = True
    max_protocol_errors: int = 3
    max_llm_retries: int = 2
    max_step_tokens: int = 1024  # a bound, not a target: covers the longest step the action regex admits
    history_chars: int = 6000
    tool_timeout_s: float = 10.0
    tool_latency_s: tuple[float, float] = (0.5, 1.0)
    partial_updates: Literal["interrupt", "at_boundary"] = "at_boundary"
    prompt: Literal["auto", "full", "trained"] = "auto"  # auto: "trained" for the fine-tuned embedded model

    def config(self, prompt: PromptStyle = "full") -> AgentConfig:
        return AgentConfig(
            mode=self.mode,
            constrained=self.constrained,
            max_protocol_errors=self.max_protocol_errors,
            max_llm_retries=self.max_llm_retries,
            max_step_tokens=self.max_step_tokens,
            history_chars=self.history_chars,
            partial_updates=self.partial_updates,
            prompt=prompt if self.prompt == "auto" else self.prompt,
        )


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: list[str] = Field(default_factory=list, description="Bearer keys; none = loopback clients only")
    max_sessions: int = 16
    max_message_bytes: int = 4 * 1024 * 1024  # one client event (an audio append of ~60 s fits)
    idle_timeout_s: float = 300.0  # a session that sends nothing this long is closed
    audio_lead_s: float = 0.3  # how far answer audio runs ahead of real time on the wire
    turns_kept: int = 100  # ledgers served at /v1/turns


class SpeechSettings(BaseModel):
    asr_model: Literal["tiny.en", "base"] = "tiny.en"
    asr_threads: int = 2
    partial_interval_ms: int = 250
    tts_chunk_ms: int = 40
    preload: bool = True  # load the speech models at start-up rather than on the first audio session


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPECVOICE_", env_nested_delimiter="__", extra="forbid")

    llm: LLMSettings = LLMSettings()
    embedded: EmbeddedLLMSettings = EmbeddedLLMSettings()
    agent: AgentSettings = AgentSettings()
    server: ServerSettings = ServerSettings()
    speech: SpeechSettings = SpeechSettings()

    def uses_trained_model(self) -> bool:
        """The agent talks to the embedded model with the shipped adapter merged in."""
        return self.llm.base_url is None and self.embedded.adapter and shipped_adapter() is not None

    def agent_config(self) -> AgentConfig:
        return self.agent.config(prompt="trained" if self.uses_trained_model() else "full")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @classmethod
    def load(cls, config: str | None = None, **overrides: Any) -> Settings:
        """Settings with a TOML file (a path, or a preset name from configs/presets) under the env."""
        config = config or os.environ.get("SPECVOICE_CONFIG")
        if not config:
            return cls(**overrides)
        path = _preset_or_path(config)
        if not path.is_file():
            raise FileNotFoundError(f"no settings file or preset named {config!r}")

        class FromFile(cls):  # type: ignore[valid-type,misc]  # a subclass is how pydantic-settings takes a file
            model_config = SettingsConfigDict(**{**cls.model_config, "toml_file": path})

        return FromFile(**overrides)


def _preset_or_path(name: str) -> Path:
    preset = PRESETS / f"{name}.toml"
    return preset if preset.is_file() else Path(name)
