import pytest

from app.domain.errors import BadUserInput
from app.domain.requirements import PackageManager, parse_libraries, parse_library

PIP, CONDA = PackageManager.PIP, PackageManager.CONDA

ACCEPTED = [
    # manager, entry, pip requirement (or conda spec), extras
    (PIP, "pandas", "pandas", ()),
    (PIP, "pandas==1.5.3", "pandas==1.5.3", ()),
    (PIP, "pandas=1.5", "pandas==1.5.*", ()),
    (PIP, "pandas<=2.0", "pandas<=2.0", ()),
    (PIP, "pandas>=1.0rc1", "pandas>=1.0rc1", ()),
    (PIP, "  scikit-learn==1.3.0  ", "scikit-learn==1.3.0", ()),
    (PIP, "requests[socks,security]>=2.0", "requests[socks,security]>=2.0", ("socks", "security")),
    (PIP, "requests[socks]", "requests[socks]", ("socks",)),
    (PIP, "zope.interface==5.0", "zope.interface==5.0", ()),
    (PIP, "pkg >= 1.0", "pkg>=1.0", ()),
    (CONDA, "numpy", "numpy", ()),
    (CONDA, "numpy=1.26", "numpy=1.26", ()),
    (CONDA, "numpy==1.26.4", "numpy==1.26.4", ()),
    (CONDA, "openssl>=3.0.13", "openssl>=3.0.13", ()),
    (CONDA, "tzdata=2024a", "tzdata=2024a", ()),
    # Extras are rattler's optional dependencies, never dropped.
    (CONDA, "dask[complete]<=2024.1.0", "dask<=2024.1.0[extras=[complete]]", ("complete",)),
    (
        CONDA,
        "dask[complete, diagnostics]",
        "dask[extras=[complete,diagnostics]]",
        ("complete", "diagnostics"),
    ),
    (CONDA, "dask[complete]=2024.1", "dask=2024.1[extras=[complete]]", ("complete",)),
]


@pytest.mark.parametrize(("manager", "entry", "spec", "extras"), ACCEPTED)
def test_accepted_forms(manager, entry, spec, extras):
    library = parse_library(manager, entry)
    rendered = library.pip_requirement() if manager is PIP else library.conda_spec()
    assert rendered == spec
    assert library.extras == extras
    assert library.entry == entry.strip()


REFUSED = [
    (PIP, ""),
    (PIP, "   "),
    (PIP, "pandas~=1.0"),
    (PIP, "pandas!=1.0"),
    (PIP, "pandas<2"),
    (PIP, "pandas>1"),
    (PIP, "pandas===1.0"),
    (PIP, "pandas==1.0,<2"),
    (PIP, "pandas @ https://example.org/p.whl"),
    (PIP, "https://example.org/p.whl"),
    (PIP, "git+https://example.org/repo.git"),
    (PIP, "--index-url=http://evil/simple"),
    (PIP, "-e ."),
    (PIP, "./local/path"),
    (PIP, "/abs/path.whl"),
    (PIP, "pandas; python_version<'3.8'"),
    (PIP, "pandas\nnumpy"),
    (PIP, "pandas==1.0\rnumpy"),
    (PIP, "pandas==1.0 --hash=sha256:abc"),
    (PIP, "pandas[]"),
    (PIP, "pandas==not-a-version"),
    (PIP, "pandas==1.0.*"),
    (PIP, "pandas=1.0+local"),
    (PIP, "-pandas"),
    (PIP, "pan$das"),
    (PIP, "pandas==1.0;rm -rf /"),
    (PIP, "pandas==$(whoami)"),
    (PIP, "x" * 201),
    (CONDA, "numpy=1.2*"),
    (CONDA, "numpy>=1,<2"),
    (CONDA, "conda-forge::numpy"),
    (CONDA, "numpy 1.26"),
    (CONDA, "numpy==1.26|1.27"),
]


@pytest.mark.parametrize(("manager", "entry"), REFUSED)
def test_refused_forms(manager, entry):
    with pytest.raises(ValueError):
        parse_library(manager, entry)


def test_list_error_names_field_and_entry():
    with pytest.raises(BadUserInput) as caught:
        parse_libraries("pipLibraries", PIP, ["numpy", "pandas~=1.0"])
    assert caught.value.field == "pipLibraries"
    assert caught.value.extensions["index"] == 1
    assert "pandas~=1.0" in caught.value.message


def test_duplicates_compared_in_canonical_form():
    with pytest.raises(BadUserInput) as caught:
        parse_libraries("pipLibraries", PIP, ["Scikit_Learn==1.0", "scikit-learn>=1.1"])
    assert "already listed" in caught.value.message


def test_too_many_entries():
    with pytest.raises(BadUserInput):
        parse_libraries("condaLibraries", CONDA, [f"p{i}" for i in range(201)])
