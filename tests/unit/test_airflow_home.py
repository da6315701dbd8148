"""The local Airflow home keeps its secrets to its owner: the JWT secret every process signs
task tokens with is in airflow.cfg and jwt_secret, and a token signed with it is admin."""

import stat

from pipeline.local import airflow_home


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_home_and_the_files_holding_its_jwt_secret_are_private(tmp_path, monkeypatch):
    home = tmp_path / "airflow"
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    assert airflow_home.configure() == home
    secret = (home / "jwt_secret").read_text()
    assert secret and secret in (home / "airflow.cfg").read_text()
    assert mode(home) == 0o700
    assert mode(home / "airflow.cfg") == 0o600 and mode(home / "jwt_secret") == 0o600
    (home / "airflow.cfg").chmod(0o644)  # written again: private again
    airflow_home.configure()
    assert mode(home / "airflow.cfg") == 0o600
