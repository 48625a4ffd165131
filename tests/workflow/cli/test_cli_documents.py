"""`gongmo documents` (add, list, get, verify), `gongmo answers` (set, show), and `apply
--document/--answers/--answer`, through workflow.cli.run() on a SQLite file in tmp_path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.workflow import cli
from gongmo.workflow.core import samples
from gongmo.workflow.core.models import BLOB_CHUNK, DOCUMENT
from tests.conftest import SAMPLE_CSV, config_copy

TRACK = "strong-small-2024"
OPEN = "2024-05-28T10:00:00+09:00"
CLOSE = "2024-05-29T18:00:00+09:00"
LIVING_LAB = "living-lab-2022"
LAB_OPEN = "2022-02-22T10:00:00+09:00"
EIGHT_BN = "8000000000"
CODE = "41190"  # 부천시 in examples/applicants.csv


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Gongmo = Callable[..., Result]


@pytest.fixture
def gongmo(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Gongmo:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = config_copy(tmp_path)

    def invoke(*args: str, now: str | None = None) -> Result:
        argv = ["--config", str(config), *(["--now", now] if now else []), *args]
        capsys.readouterr()
        try:
            code = cli.run(argv)
        finally:
            if cli.state._app is not None:
                cli.state._app.db.dispose()
                cli.state._app = None
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err, err
        return Result(code, out, err)

    assert invoke("init").code == 0
    assert invoke("applicants", "import", str(SAMPLE_CSV)).code == 0
    return invoke


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "plan": ("사업계획서.pdf", samples.pdf("plan")),
        "plan2": ("사업계획서 수정.hwpx", samples.hwpx()),
        "budget": ("예산서.xlsx", samples.xlsx()),
        "exe": ("setup.pdf", b"MZ\x90\x00" + b"\x00" * 200),
        "empty": ("빈 파일.pdf", b""),
    }
    out = {}
    for key, (name, data) in made.items():
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        out[key] = path
    return out


def one_error(result: Result) -> str:
    """A refusal: exit 1, one line on stderr, nothing on stdout."""
    assert result.code == 1, (result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    return lines[0]


def db(tmp_path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{tmp_path / 'gongmo.db'}")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_apply_uploads_the_documents_then_submits_the_plan(gongmo: Gongmo, files: dict[str, Path]) -> None:
    applied = gongmo(
        "apply", TRACK, CODE, "--national", EIGHT_BN, "--local", EIGHT_BN, "--type", "climate_crisis",
        "--document", f"plan={files['plan']}", "--document", f"budget={files['budget']}", "--json",
        now=OPEN,
    )  # fmt: skip
    assert applied.code == 0, applied.err
    data = applied.json()
    assert data["to_state"] == "receipt" and data["receipt_no"] == "STRONG-SMALL-2024-0001"
    assert [(d["kind"], d["file_name"], d["sha256"]) for d in data["documents"]] == [
        ("plan", "사업계획서.pdf", sha(files["plan"])),
        ("budget", "예산서.xlsx", sha(files["budget"])),
    ]
    shown = gongmo("show", "STRONG-SMALL-2024-0001")
    assert shown.code == 0
    assert "plan v1: 사업계획서.pdf" in shown.out and sha(files["plan"]) in shown.out
    assert sha(files["budget"]) in shown.out


def test_a_refused_document_stops_apply_before_the_submit(
    gongmo: Gongmo, files: dict[str, Path], tmp_path: Path
) -> None:
    refused = gongmo(
        "apply", TRACK, CODE, "--national", EIGHT_BN, "--local", EIGHT_BN, "--type", "climate_crisis",
        "--document", f"plan={files['exe']}", "--document", f"budget={files['budget']}",
        now=OPEN,
    )  # fmt: skip
    line = one_error(refused)
    assert "setup.pdf is not an accepted type" in line and "Windows executable" in line
    with db(tmp_path).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(DOCUMENT)).scalar_one() == 0
    missing = gongmo("apply", TRACK, CODE, "--national", EIGHT_BN, "--local", EIGHT_BN, now=OPEN)
    assert "plan, budget missing" in one_error(missing)
    bad_pair = gongmo("apply", TRACK, CODE, "--national", EIGHT_BN, "--local", EIGHT_BN, "--document", "plan", now=OPEN)
    assert "--document 'plan': write KIND=FILE" in one_error(bad_pair)
    nowhere = gongmo(
        "apply", TRACK, CODE, "--national", EIGHT_BN, "--local", EIGHT_BN, "--document", "plan=nowhere.pdf", now=OPEN
    )
    assert "nowhere.pdf" in one_error(nowhere) and "no such file" in nowhere.err


def test_add_list_get_and_replace(gongmo: Gongmo, files: dict[str, Path], tmp_path: Path) -> None:
    started = gongmo("start", TRACK, CODE, now=OPEN)
    assert started.code == 0, started.err
    added = gongmo("documents", "add", "1", "plan", str(files["plan"]), "--actor", "office-kim", now=OPEN)
    assert added.code == 0, added.err
    assert "plan v1: 사업계획서.pdf (" in added.out and sha(files["plan"]) in added.out
    again = gongmo("documents", "add", "1", "plan", str(files["plan2"]), "--json", now=OPEN)
    assert again.json()["version"] == 2 and again.json()["replaced_version"] == 1
    assert again.json()["sha256"] == sha(files["plan2"])

    listed = gongmo("documents", "list", "1")  # a table folded at 80 columns: its headers, then JSON
    assert listed.code == 0 and "sha256" in listed.out and "current" in listed.out
    rows = gongmo("documents", "list", "1", "--json").json()
    assert [(r["version"], r["current"], r["sha256"], r["actor"]) for r in rows] == [
        (1, False, sha(files["plan"]), "office-kim"),
        (2, True, sha(files["plan2"]), "admin"),
    ]

    out = tmp_path / "out" / "계획서.hwpx"
    out.parent.mkdir()
    got = gongmo("documents", "get", "1", "plan", "--out", str(out))
    assert got.code == 0, got.err
    assert out.read_bytes() == files["plan2"].read_bytes() and sha(files["plan2"]) in got.out
    assert not out.with_name(out.name + ".part").exists()
    old = gongmo("documents", "get", "1", "plan", "--version", "1", "--out", str(out), "--json")
    assert "exists" in one_error(old) and "--force" in old.err
    forced = gongmo("documents", "get", "1", "plan", "--version", "1", "--out", str(out), "--force", "--json")
    assert forced.code == 0 and forced.json()["sha256"] == sha(files["plan"]) == sha(out)
    assert "no plan version 7" in one_error(
        gongmo("documents", "get", "1", "plan", "--version", "7", "--out", str(tmp_path / "x"))
    )
    assert not (tmp_path / "x").exists()


def test_each_refused_upload_is_one_line_and_stores_nothing(
    gongmo: Gongmo, files: dict[str, Path], tmp_path: Path
) -> None:
    assert gongmo("start", TRACK, CODE, now=OPEN).code == 0
    cases = {
        ("plan", files["exe"], OPEN): "not an accepted type",
        ("plan", files["empty"], OPEN): "empty",
        ("slides", files["plan"], OPEN): "KIND 'slides' is not a document kind",
        ("plan", files["plan"], CLOSE): "clos",
        ("plan", tmp_path / "in", OPEN): "a directory",
    }
    for (kind, path, now), words in cases.items():
        line = one_error(gongmo("documents", "add", "1", kind, str(path), now=now))
        assert words in line, line
    assert "no application 99" in one_error(gongmo("documents", "add", "99", "plan", str(files["plan"]), now=OPEN))
    with db(tmp_path).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(DOCUMENT)).scalar_one() == 0


def test_verify_finds_a_changed_byte_and_names_the_document(
    gongmo: Gongmo, files: dict[str, Path], tmp_path: Path
) -> None:
    assert gongmo("start", TRACK, CODE, now=OPEN).code == 0
    for kind in ("plan", "budget"):
        assert gongmo("documents", "add", "1", kind, str(files[kind]), now=OPEN).code == 0
    clean = gongmo("documents", "verify")
    assert clean.code == 0 and clean.out.strip() == "2 files, all match their SHA-256"
    engine = db(tmp_path)
    with engine.begin() as conn:
        data = conn.execute(sa.select(BLOB_CHUNK.c.data).where(BLOB_CHUNK.c.sha256 == sha(files["plan"]))).scalar_one()
        changed = bytes(data[:100]) + bytes([data[100] ^ 1]) + bytes(data[101:])
        conn.execute(sa.update(BLOB_CHUNK).where(BLOB_CHUNK.c.sha256 == sha(files["plan"])).values(data=changed))
    engine.dispose()
    found = gongmo("documents", "verify")
    assert found.code == 1
    lines = found.out.strip().splitlines()
    assert len(lines) == 2, found.out
    assert lines[0].startswith(sha(files["plan"]) + ": its bytes hash to " + hashlib.sha256(changed).hexdigest())
    assert "application 1 plan v1 사업계획서.pdf" in lines[0]
    assert lines[1] == "2 files, 1 differ from their SHA-256"
    report = gongmo("documents", "verify", "--json")
    assert report.code == 1 and report.json()["differ"] == 1
    assert report.json()["findings"][0]["documents"][0]["kind"] == "plan"
    # get refuses to write bytes that do not match, and leaves nothing behind
    out = tmp_path / "plan.pdf"
    assert "run `gongmo documents verify`" in one_error(gongmo("documents", "get", "1", "plan", "--out", str(out)))
    assert not out.exists() and not out.with_name("plan.pdf.part").exists()


# -- answers ----------------------------------------------------------------------------------


@pytest.fixture
def lab(gongmo: Gongmo, files: dict[str, Path]) -> Gongmo:
    """부천's application in the living-lab side call, started, inside its window."""
    assert gongmo("start", LIVING_LAB, CODE, now=LAB_OPEN).code == 0
    return gongmo


def test_answers_set_with_pairs_and_a_file_and_show(lab: Gongmo, tmp_path: Path) -> None:
    set_ = lab("answers", "set", "1", "living_lab=yes", "residents=1,500", now=LAB_OPEN)
    assert set_.code == 0, set_.err
    assert "2 answers stored" in set_.out and "1,500" in set_.out
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"living_lab_plan": "시민 참여 리빙랩", "residents": None}), encoding="utf-8")
    by_file = lab("answers", "set", "1", "--file", str(answers), "--json", now=LAB_OPEN)
    assert by_file.json()["answers"] == {"living_lab": True, "living_lab_plan": "시민 참여 리빙랩"}
    shown = lab("answers", "show", "1", "--json")
    assert shown.json() == {"living_lab": True, "living_lab_plan": "시민 참여 리빙랩"}
    table = lab("answers", "show", "1")
    assert "living_lab" in table.out and "yes" in table.out and "(no answer)" in table.out
    removed = lab("answers", "set", "1", "living_lab_plan=", "--json", now=LAB_OPEN)
    assert removed.json()["answers"] == {"living_lab": True}


def test_a_bad_answer_is_one_line_naming_the_question(lab: Gongmo, tmp_path: Path) -> None:
    assert "answer 'living_lab'" in one_error(lab("answers", "set", "1", "living_lab=maybe", now=LAB_OPEN))
    assert "answer 'colour' is not a question" in one_error(lab("answers", "set", "1", "colour=red", now=LAB_OPEN))
    assert "KEY=VALUE" in one_error(lab("answers", "set", "1", "living_lab", now=LAB_OPEN))
    assert "no answers" in one_error(lab("answers", "set", "1", now=LAB_OPEN))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    assert "not valid JSON" in one_error(lab("answers", "set", "1", "--file", str(broken), now=LAB_OPEN))
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    assert "one JSON object" in one_error(lab("answers", "set", "1", "--file", str(listed), now=LAB_OPEN))
    late = lab("answers", "set", "1", "living_lab=yes", now="2022-02-23T18:00:00+09:00")
    assert "clos" in one_error(late)
    assert lab("answers", "show", "1", "--json").json() == {}


def test_a_members_answer_is_given_in_a_file(gongmo: Gongmo, tmp_path: Path) -> None:
    now = "2022-01-25T10:00:00+09:00"  # the public-private side call's window
    assert gongmo("start", "public-private-2022", CODE, now=now).code == 0
    as_pair = gongmo("answers", "set", "1", "consortium=부천시", now=now)
    assert "a list of members" in one_error(as_pair) and "--file" in as_pair.err
    members = [
        {"name": "부천시", "kind": "local_government", "brn": "130-83-00018"},
        {"name": "스마트시티(주)", "kind": "private_company", "brn": "220-81-62517"},
    ]
    path = tmp_path / "consortium.json"
    path.write_text(json.dumps({"consortium": members, "technology": "디지털 트윈"}), encoding="utf-8")
    given = gongmo("answers", "set", "1", "--file", str(path), "--json", now=now)
    assert given.code == 0, given.err
    assert [m["name"] for m in given.json()["answers"]["consortium"]] == ["부천시", "스마트시티(주)"]


def test_apply_with_answers_file_and_pairs(lab: Gongmo, files: dict[str, Path], tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"living_lab": False, "residents": 10}), encoding="utf-8")
    applied = lab(
        "apply", LIVING_LAB, CODE, "--national", "900000000", "--local", "900000000",
        "--document", f"plan={files['plan']}", "--document", f"budget={files['budget']}",
        "--answers", str(answers), "--answer", "living_lab=yes", "--json",
        now=LAB_OPEN,
    )  # fmt: skip
    assert applied.code == 0, applied.err
    assert applied.json()["to_state"] == "receipt"
    assert lab("answers", "show", "1", "--json").json() == {"living_lab": True, "residents": 10}
    shown = lab("show", "1")
    assert "living_lab" in shown.out and sha(files["plan"]) in shown.out
