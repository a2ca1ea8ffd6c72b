"""requirements.txt and environment.yml of a version, from its recorded packages."""

import yaml

from app.domain.lockfiles import environment_yml, requirements_txt
from app.domain.requirements import PackageManager
from app.domain.versions import Package

CONDA, PIP = PackageManager.CONDA, PackageManager.PIP
MIXED = [
    Package("yardc-alpha", "1.0", CONDA, "pyh_0"),
    Package("python", "3.11.7", CONDA, "h_envyard_0"),
    Package("Yard_Beta", "1.0", PIP),
    Package("yard-alpha", "2.0", PIP),
]


def test_requirements_txt_lists_the_pip_packages():
    assert requirements_txt(MIXED) == "yard-alpha==2.0\nYard_Beta==1.0\n"
    assert requirements_txt([]) == ""


def test_environment_yml_pins_conda_exactly_and_lists_pip():
    text = environment_yml("ml", ["http://127.0.0.1:8/channel"], MIXED, "3.11")
    assert yaml.safe_load(text) == {
        "name": "ml",
        "channels": ["http://127.0.0.1:8/channel"],
        "dependencies": [
            "python=3.11.7=h_envyard_0",
            "yardc-alpha=1.0=pyh_0",
            {"pip": ["yard-alpha==2.0", "Yard_Beta==1.0"]},
        ],
    }


def test_environment_yml_of_a_pip_only_version_names_its_python():
    text = environment_yml("web", [], [Package("yard-alpha", "2.0", PIP)], "3.12")
    assert yaml.safe_load(text) == {
        "name": "web",
        "channels": [],
        "dependencies": ["python=3.12", {"pip": ["yard-alpha==2.0"]}],
    }
    assert yaml.safe_load(environment_yml("x", [], [], "3.11"))["dependencies"] == ["python=3.11"]
