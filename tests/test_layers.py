"""The import graph of ``bot/`` (``tests/layers.py``): the layers hold and no modules import one
another in a circle. The checker itself is proven on small packages written here."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests import layers

ROOT = Path(__file__).resolve().parents[1]


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    for folder in {p.parent for p in root.rglob("*.py")}:
        (folder / "__init__.py").touch()
    return root


def test_bot_keeps_its_layers_and_has_no_import_cycle():
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "layers.py")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok: ")


def test_the_checker_finds_a_layer_violation_even_inside_a_function(tmp_path):
    root = write_package(tmp_path, {
        "bot/domain/models.py": """
            import re
            from dataclasses import dataclass
            import phonenumbers
            from . import states

            def later():
                import httpx
        """,
        "bot/domain/states.py": "import enum\n",
        "bot/slack/listeners/actions.py": "from bot.store.db import Store\n",
        "bot/slack/render/kit.py": "from bot.config import Settings\nfrom bot.services import Services\n",
        "bot/store/db.py": "def f():\n    from bot.slack import listeners\n",
        "bot/providers/acs.py": "from ..services import Services\n",
        "bot/services.py": "from bot.store.db import Store\nfrom bot.domain import models\n",
        "bot/config.py": "",
    })
    found = layers.problems(root)
    layer_lines = sorted(line.split(" (line")[0] for line in found if line.startswith("layer:"))
    assert layer_lines == [
        "layer: bot.domain.models imports httpx",
        "layer: bot.providers.acs imports bot.services",
        "layer: bot.slack.listeners.actions imports bot.store.db",
        "layer: bot.slack.render.kit imports bot.config",
        "layer: bot.slack.render.kit imports bot.services",
        "layer: bot.store.db imports bot.slack.listeners",
    ], found
    assert not [line for line in found if line.startswith("cycle:")]  # services → store is one way


def test_the_checker_finds_a_cycle_hidden_by_a_function_level_import(tmp_path):
    root = write_package(tmp_path, {
        "bot/slack/failures.py": "from bot.slack.origin import origin_of\n",
        "bot/slack/origin.py": "from bot.slack import home\n",
        "bot/slack/home.py": "def report():\n    from bot.slack.failures import report\n",
        "bot/slack/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.slack.uses_typed import X\n",
        "bot/slack/uses_typed.py": "from bot.slack.typed import Y\n",
    })
    found = layers.problems(root)
    assert found == ["cycle: bot.slack.failures -> bot.slack.origin -> bot.slack.home -> bot.slack.failures"]


def test_a_clean_package_passes_and_a_broken_one_exits_non_zero(tmp_path):
    clean = write_package(tmp_path / "clean", {"bot/domain/a.py": "import json\n", "bot/services.py": "from bot.domain import a\n"})
    broken = write_package(tmp_path / "broken", {"bot/a.py": "import bot.b\n", "bot/b.py": "from bot import a\n"})
    ok = subprocess.run([sys.executable, str(ROOT / "tests" / "layers.py"), str(clean)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 4 modules, 2 imports"), ok.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "tests" / "layers.py"), str(broken)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == ["cycle: bot.a -> bot.b -> bot.a", f"1 problem(s) in the import graph of {broken / 'bot'}"]


def test_the_graph_between_parts_counts_imports_across_them(tmp_path):
    root = write_package(tmp_path, {
        "bot/slack/render/kit.py": "from bot.domain import a\n",
        "bot/slack/render/__init__.py": "from bot.domain.a import X\n",
        "bot/slack/app.py": "from bot.slack.render import kit\nimport bot.services\n",
        "bot/domain/a.py": "",
        "bot/services.py": "",
    })
    assert layers.part_graph(root) == [
        "bot.slack -> bot.services (1)",
        "bot.slack -> bot.slack.render (1)",
        "bot.slack.render -> bot.domain (2)",
    ]
