"""One bad plugin, or one broken distribution, never breaks the registry.

Each test installs real distributions (``*.dist-info`` folders, as pip
writes them) into a folder on ``sys.path`` of a fresh interpreter, and runs
lookups and the command line there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatproviders import Provider
from tests.constants import ROOT

CROMICLE_AND_ERRORS = (
    "import chatproviders as c\n"
    "print(c.get_provider('cromicle').__name__)\n"
    "print(len(c.list_providers()) >= 5, sorted(c._registry.plugin_errors()))\n"
    "print(c._registry.plugin_errors())\n"
)


def distribution(site: Path, name: str, entry_points: str, **modules: str) -> None:
    """Write distribution ``name`` into ``site``: its metadata, its
    ``entry_points.txt`` as given, and modules (name to source)."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        # the tree under test, not whatever chatproviders is installed
        env={
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            "PATH": "",
            "NO_COLOR": "1",
        },
        timeout=60,
        check=False,
    )


def test_a_malformed_entry_points_txt_elsewhere_is_skipped(tmp_path: Path) -> None:
    """A distribution whose entry_points.txt has a line without '=' (in any
    group) is skipped with a warning naming it; lookups and `list` work."""
    distribution(tmp_path, "mangled", "[console_scripts]\nno equals sign here\n")
    done = run(tmp_path, "-c", CROMICLE_AND_ERRORS)
    assert done.returncode == 0, done.stderr
    named = "True ['mangled (distribution)']"
    assert done.stdout.split("\n")[:2] == ["Cromicle", named]
    listing = run(tmp_path, "-m", "chatproviders", "list")
    assert listing.returncode == 0, listing.stderr
    assert "Cromicle" in listing.stdout
    assert "distribution 'mangled' skipped" in listing.stderr
    assert "entry_points.txt" in listing.stderr


NO_URL = """\
    from chatproviders import Provider

    class NoUrl(Provider):
        url = None
        path = "/chat"
        default_model = "m"

        def payload(self, messages, model, **params):
            return {"messages": messages}
"""


def test_a_plugin_with_url_none_is_skipped_and_named(tmp_path: Path) -> None:
    """A plugin class with url = None is refused at registration: a warning
    names it, and `list`, `list -v` and lookups work for the rest."""
    distribution(
        tmp_path,
        "nourl_plugin",
        "[chatproviders.providers]\nnourl = nourl:NoUrl\n",
        nourl=NO_URL,
    )
    done = run(tmp_path, "-c", CROMICLE_AND_ERRORS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["Cromicle", "True ['nourl']"]
    assert "url = None" in done.stdout
    for args in (["list"], ["list", "-v"]):
        listing = run(tmp_path, "-m", "chatproviders", *args)
        assert listing.returncode == 0, listing.stderr
        assert "Cromicle" in listing.stdout and "NoUrl" not in listing.stdout
        assert "plugin 'nourl'" in listing.stderr


def test_a_plugin_listing_providers_at_import_is_not_failed(tmp_path: Path) -> None:
    """A plugin module that calls list_providers() while it is imported
    (the registry is loading it) loads, and is not reported as failed."""
    source = NO_URL.replace("url = None", 'url = ""').replace("NoUrl", "Lister")
    source = source.replace(
        "import Provider\n",
        "import Provider, list_providers\n\n"
        "    SEEN = [cls.__name__ for cls in list_providers()]  # before Lister\n",
    )
    distribution(
        tmp_path,
        "lister_plugin",
        "[chatproviders.providers]\nlister = lister:Lister\n",
        lister=source,
    )
    code = CROMICLE_AND_ERRORS + (
        "import lister\n"
        "print(c.get_provider('lister').__name__, 'Cromicle' in lister.SEEN)\n"
    )
    done = run(tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["Cromicle", "True []"]
    assert done.stdout.split("\n")[3] == "Lister True"
    assert "did not load" not in done.stderr


def test_aliases_given_as_a_string_are_refused_at_definition() -> None:
    """aliases = "wx" would register the names w and x: the class statement
    itself fails, saying what to write."""
    with pytest.raises(TypeError, match=r"aliases.*\('wx',\)"):

        class Wx(Provider):
            url = ""
            path = "/chat"
            default_model = "m"
            aliases = "wx"  # type: ignore[assignment]


def test_aliases_as_a_tuple_of_names_are_fine() -> None:
    """The right spelling still defines."""

    class Wy(Provider):
        url = ""
        path = "/chat"
        default_model = "m"
        aliases = ("wy",)

    assert Wy.aliases == ("wy",)


def test_plugin_errors_alone_loads_the_plugins(tmp_path: Path) -> None:
    """plugin_errors() as the first call names a broken distribution by its
    normalised name, once, however many lookups follow; a plugin in a folder
    later on the path still loads."""
    broken, later = tmp_path / "broken", tmp_path / "later"
    distribution(broken, "Mangled_Dist", "[console_scripts]\nno equals sign\n")
    distribution(
        later,
        "later_plugin",
        "[chatproviders.providers]\nlater = later:Later\n",
        later="from chatproviders import Cromicle\nclass Later(Cromicle):\n    pass\n",
    )
    code = (
        "import logging\n"
        "logging.basicConfig(format='%(message)s')\n"
        "import chatproviders as c\n"
        "print(sorted(c._registry.plugin_errors()))\n"
        "c.list_providers(); print(c.get_provider('later').__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": os.pathsep.join([str(broken), str(later), str(ROOT)])},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "['mangled_dist (distribution)']\nLater\n"
    assert done.stderr.count("its entry points are skipped") == 1


FLAKY = """\
    import os

    MARK = os.path.join(os.path.dirname(__file__), "tried")
    if not os.path.exists(MARK):  # the first import is interrupted (Ctrl-C)
        open(MARK, "w").close()
        raise KeyboardInterrupt
    from chatproviders import Cromicle

    class Flaky(Cromicle):
        pass
"""


def test_a_load_of_the_plugins_cut_short_by_ctrl_c_is_tried_again(
    tmp_path: Path,
) -> None:
    """Ctrl-C while a plugin imports ends that lookup; the next lookup loads
    the plugins again and finds it, past one that failed the first time."""
    distribution(
        tmp_path,
        "flaky_plugin",
        "[chatproviders.providers]\nbroken = no_such_module:X\nflaky = flaky:Flaky\n",
        flaky=FLAKY,
    )
    code = (
        "import chatproviders as c\n"
        "try:\n"
        "    c.list_providers()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
        "print(c.get_provider('flaky').__name__, sorted(c._registry.plugin_errors()))\n"
    )
    done = run(tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "interrupted\nFlaky ['broken']\n"


DUPLICATE = """\
    from chatproviders import Cromicle

    class Dup(Cromicle):
        SITE = {site!r}
"""


def test_a_distribution_twice_on_the_path_is_read_from_the_first(
    tmp_path: Path,
) -> None:
    """The same distribution in two folders of the path (names compared as
    pip does): only the first one's entry points load, no conflict is
    reported, and the folders after both are still read."""
    sites = [tmp_path / name for name in ("first", "second", "third")]
    for site, name in zip(sites[:2], ("Dup_Plugin", "dup_plugin")):
        module = f"dup_{site.name}"
        distribution(
            site,
            name,
            f"[chatproviders.providers]\ndup = {module}:Dup\n",
            **{module: DUPLICATE.format(site=site.name)},
        )
    distribution(
        sites[2],
        "other_plugin",
        "[chatproviders.providers]\nother = other:Other\n",
        other="from chatproviders import Cromicle\nclass Other(Cromicle):\n    pass\n",
    )
    code = (
        "import chatproviders as c\n"
        "print(c.get_provider('dup').SITE, c.get_provider('other').__name__)\n"
        "print(c._registry.plugin_errors())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": os.pathsep.join([*map(str, sites), str(ROOT)])},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "first Other\n{}\n"


def test_an_egg_without_metadata_on_the_path_breaks_nothing(tmp_path: Path) -> None:
    """An egg folder on the path whose EGG-INFO has no PKG-INFO (importlib's
    own entry_points() raises TypeError on it): lookups and listings work."""
    egg = tmp_path / "foo-1.0-py3.11.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", CROMICLE_AND_ERRORS],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": os.pathsep.join([str(egg), str(ROOT)])},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["Cromicle", "True []"]
