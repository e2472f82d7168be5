"""The pure pieces behind real stores: nested runs, LoggedModel metrics, several holders of a
stage, versions sharing a run, the policy's `archive_existing_versions`, the schema message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app import analysis, run_tree
from app.entities import LoggedModelInfo, LoggedModelMetric
from app.mlflow_gateway._store_check import StoreCheck, mlflow_migrations, scheme
from governance.errors import PolicyError
from governance.evidence import capture, current_holders
from governance.policy import parse_policy
from tests.unit.fakes import World, make_world, open_request, vote
from tests.unit.test_analysis import run, version

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def child(run_id: str, parent: str, name: str) -> object:
    return run(run_id, name, tags={run_tree.PARENT_TAG: parent})


def test_children_follow_their_parent_indented_with_the_parent_named() -> None:
    # The server's order: newest first, so children come before their parent.
    runs = [
        child("c2", "p", "fold-2"),
        run("x", "lonely"),
        child("c1", "p", "fold-1"),
        child("g", "c1", "fold-1a"),
        run("p", "sweep"),
        child("o", "elsewhere", "orphan"),
    ]
    frame = run_tree.nested(analysis.runs_frame(runs), runs)
    assert frame["run_name"].tolist() == [
        "lonely", "sweep", "↳ fold-2", "↳ fold-1", "↳ ↳ fold-1a", "↳ orphan",
    ]  # fmt: skip
    assert frame["parent run"].tolist() == ["", "", "sweep", "sweep", "fold-1", "elsewher"]


def test_the_collapsed_view_asks_for_top_level_runs_and_counts_children() -> None:
    assert run_tree.top_level_filter("") == "tags.mlflow.parentRunId IS NULL"
    assert (
        run_tree.top_level_filter(" metrics.rmse < 1 ")
        == "metrics.rmse < 1 and tags.mlflow.parentRunId IS NULL"
    )
    runs = [run("p", "sweep"), run("q", "single")]
    frame = run_tree.nested(analysis.runs_frame(runs), runs, {"p": 12})
    assert frame["child runs"].tolist() == [12, 0]


def test_a_cycle_of_parent_tags_shows_every_run_once() -> None:
    runs = [child("a", "b", "a"), child("b", "a", "b")]
    frame = run_tree.nested(analysis.runs_frame(runs), runs)
    assert sorted(frame["run_id"]) == ["a", "b"]


def metric(key: str, value: float, seconds: int, dataset: str = "") -> LoggedModelMetric:
    return LoggedModelMetric(key, value, 0, T0 + timedelta(seconds=seconds), dataset, "", "r9")


def logged(model_id: str, *metrics: LoggedModelMetric, **params: str) -> LoggedModelInfo:
    return LoggedModelInfo(model_id, "m", "1", "", "READY", "", params, metrics, {})


def test_the_latest_metric_of_a_logged_model_wins_across_data_sets() -> None:
    lm = logged("m-1", metric("acc", 0.5, 1, "train"), metric("acc", 0.9, 3, "eval"))
    assert lm.latest_metrics() == {"acc": 0.9}


def test_versions_from_one_run_keep_their_own_model_metrics_and_share_the_run_label() -> None:
    versions = [
        replace(version("1", "r1"), model_id="m-a"),
        replace(version("2", "r1"), model_id="m-b"),
        replace(version("3"), model_id="m-c"),  # logged outside any run
    ]
    runs = {"r1": run("r1", params={"depth": "3"}, metrics={"acc": 0.83, "loss": 0.4})}
    models = {
        "1": logged("m-a", metric("acc", 0.80, 1)),
        "2": logged("m-b", metric("acc", 0.83, 2)),
        "3": logged("m-c", metric("acc", 0.91, 3, "eval-set"), lr="0.05"),
    }
    review = analysis.version_review(
        versions, runs, {}, {"1": [], "2": [], "3": []}, ("loss",), logged=models
    )
    assert review.metrics == {
        "v1": {"acc": 0.80, "loss": 0.4},
        "v2": {"acc": 0.83, "loss": 0.4},
        "v3": {"acc": 0.91},
    }
    assert review.params.loc["lr"].tolist() == [None, None, "0.05"]
    assert review.run_labels == {"r1": "v1 / v2"}
    assert review.summary["logged_model"].tolist() == ["m-a", "m-b", "m-c"]
    sets = review.datasets
    assert sets[sets["context"] == "model metrics"]["name"].tolist() == ["eval-set"]


@pytest.fixture
def world() -> World:
    return make_world()


def test_a_stage_held_by_three_versions_lists_them_all_in_the_evidence(world: World) -> None:
    for number in ("1", "2", "3", "4"):
        world.registry.add("housing", number, author="bob", metrics={"rmse": 5.0})
    for number in ("1", "2", "3"):
        world.registry.stages[("housing", number)] = "Production"
    assert current_holders(world.registry, "housing", "Production", "stage") == ("1", "2", "3")
    policy = world.ctx.policy
    evidence = capture(
        world.registry,
        policy,
        policy.rule_for("housing", "Production"),
        model="housing",
        version="4",
        target="Production",
        target_kind="stage",
    )
    assert evidence.data["current_holders"] == ["1", "2", "3"]
    assert evidence.data["current"]["version"] == "3"  # compared with the newest holder
    assert evidence.data["archive_existing_versions"] is True
    assert evidence.data["schema"] == 2


@pytest.mark.parametrize(
    ("rule", "archived"),
    [
        ("{archive_existing_versions: true}", True),
        ("{archive_existing_versions: false}", False),
        ("{archive_existing: false}", False),  # the older spelling still works
    ],
)
def test_executing_a_stage_promotion_archives_every_holder_or_none_per_the_policy(
    world: World, rule: str, archived: bool
) -> None:
    world.with_policy(f"version: 1\ndefaults: {{quorum: 1}}\ntargets: {{Production: {rule}}}")
    for number in ("1", "2", "3", "4"):
        world.registry.add("housing", number, author="bob", metrics={"rmse": 5.0})
    for number in ("1", "2", "3"):
        world.registry.stages[("housing", number)] = "Production"
    request = open_request(world, version="4", target="Production", model="housing")
    assert vote(world, request, "carol").request.state == "executed"
    stages = [world.registry.stages[("housing", n)] for n in ("1", "2", "3", "4")]
    expected = "Archived" if archived else "Production"
    assert stages == [expected, expected, expected, "Production"]


def test_a_later_level_overrides_archiving_whatever_the_spelling() -> None:
    policy = parse_policy(
        "version: 1\ndefaults: {archive_existing: true}\n"
        "targets: {Production: {archive_existing_versions: false}}\n"
        "models: {'credit-*': {targets: {Production: {archive_existing: true}}}}\n"
    )
    assert policy.rule_for("fraud", "Production").archive_existing is False
    assert policy.rule_for("credit-a", "Production").archive_existing is True
    assert policy.rule_for("fraud", "Staging").archive_existing is True


def test_one_rule_may_not_spell_archiving_twice() -> None:
    with pytest.raises(PolicyError, match=r"targets\.Production\.archive_existing and"):
        parse_policy(
            "version: 1\ntargets: {Production: "
            "{archive_existing: true, archive_existing_versions: false}}\n"
        )


def test_the_expected_revision_is_the_installed_mlflows_migration_head() -> None:
    from mlflow.store.db.utils import _get_latest_schema_revision

    chain = mlflow_migrations()
    assert chain[0] == _get_latest_schema_revision()
    assert "bd07f7e963c5" in chain
    assert chain[-1] == "451aebb31d03"  # MLflow's first migration


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("sqlite:////x/mlflow.db", "sqlite"),
        ("postgresql+psycopg://u@h/db", "postgresql"),
        ("file:///srv/mlruns", "file"),
        ("/srv/mlruns", "file"),
        ("./mlruns", "file"),
        ("C:\\mlruns", "file"),
        ("http://mlflow:5000", "http"),
        ("databricks", "databricks"),
        ("databricks://profile", "databricks"),
    ],
)
def test_a_plain_path_is_a_file_store(uri: str, kind: str) -> None:
    assert scheme(uri) == kind


@pytest.mark.parametrize(
    ("state", "readable", "says", "never"),
    [
        ("older", True, ["mlflow db upgrade sqlite:///s.db", "take a backup", "mlflow server",
                         "Experiments and Compare runs read this store read-only"], []),
        ("older", False, ["no page can read this store"], ["Experiments and Compare"]),
        ("unknown", True, ["does not know", "a newer MLflow wrote the store", "mlflow server"],
         ["mlflow db upgrade"]),
        ("empty", False, ["is not an MLflow store", "never creates one"], ["mlflow db upgrade"]),
    ],
)  # fmt: skip
def test_the_schema_message_names_both_revisions_and_the_ways_forward(
    state: str, readable: bool, says: list[str], never: list[str]
) -> None:
    check = StoreCheck("sqlite:///s.db", "bd07f7e963c5", "dc11669786a5", state, readable)
    text = check.message()
    for part in says:
        assert part in text
    for part in never:
        assert part not in text
    if state != "empty":
        assert "bd07f7e963c5" in text
        assert "dc11669786a5" in text
    page = check.message(on_page=True)
    assert "s.db" not in page
    assert "MLFLOW_TRACKING_URI" in page
