"""The demo's governance history: three weeks of promotions on the demo store, as steps.

The story explains the registry `seed_demo` builds, so that reconcile finds nothing out of band:

- diabetes-progression v2 -> Production, signed by erin and frank, executed (v1 archived);
- tumor-classifier v2 -> champion by break-glass (the champion drift gate refuses every
  tumor-classifier version on its drifted batch), reviewed afterwards by erin and frank;
- diabetes-progression v2 -> champion, signed by nobody, expired;
- diabetes-progression v3 -> Production, approved by frank and rejected by erin (Staging first);
- diabetes-progression v3 -> Staging, signed by erin, executed;
- tumor-classifier v3 -> challenger, signed by frank, executed;
- tumor-classifier@champion moved to v3 with MLflow's client (out of band), flagged by the
  reconcile job, put back on v2 by admin;
- diabetes-progression v3 -> champion, waiting for erin and frank, its drift gate passed.

Meanwhile the daily monitoring job (`monitoring.DAILY_MONITORING`) scores each day's production
batches of the versions these steps put in production or in shadow, and opens a drift alert on
tumor-classifier's champion v2 in the last week.

Run dates in the demo store: tumor-classifier v1/v2/v3 21/14/3 days ago, diabetes-progression
v1/v2/v3 30/18/5 days ago; every step comes after the run it promotes. A step appended here must
come after the last one in time; something that recurs is a job.
"""

from __future__ import annotations

from app.demo_history.clock import ago, on
from app.demo_history.story import Before, Story, StoryStep
from app.demo_users import DEMO_USERS
from governance.domain import CLI_OPERATOR, AuditAction, RequestKind, State

TUMOR = "tumor-classifier"
DIABETES = "diabetes-progression"
NORMAL, BREAK_GLASS, FOLLOW_UP = RequestKind.NORMAL, RequestKind.BREAK_GLASS, RequestKind.FOLLOW_UP


def _setup(story: Story) -> None:
    story.ensure_users()


def _diabetes_v2_production(story: Story) -> None:
    def why() -> str:
        v1, v2 = (story.metric(DIABETES, v, "rmse") for v in ("1", "2"))
        return (
            "v2 (deeper trees, more iterations) passed validation, which the baseline v1 never "
            f"went through. Its evaluation rmse is {v2:.1f} against {v1:.1f} for v1, within "
            "what the Production gate allows."
        )

    before = Before(stages={"1": "Production", "2": "None", "3": "None"})
    request = story.request("alice", DIABETES, "2", "Production", why, before)
    story.at(on(16, "09:40"))
    story.sign(
        "erin",
        request,
        "approve",
        "Deltas checked: rmse slightly worse, inside the gate, mae about the same. A "
        "validated model in Production is worth that.",
    )
    story.at(on(16, "14:20"))
    story.sign(
        "frank",
        request,
        "approve",
        "Agreed. Params diff reviewed. Let's watch rmse on the next batches.",
    )


def _tumor_break_glass(story: Story) -> None:
    def why() -> str:
        share = story.drift_share(TUMOR, "2")
        a1, a2 = (story.metric(TUMOR, v, "accuracy") for v in ("1", "2"))
        return (
            f"The referral clinic's batches from the new scanner drift on {share:.0%} of the "
            "columns, so the champion gate refuses every tumor-classifier version until the "
            f"reference data is rebuilt. v2 is validated and more accurate ({a2:.3f} against "
            f"{a1:.3f} for v1): it replaces the baseline now, and the approvers review it after."
        )

    before = Before(aliases={"champion": "1", "challenger": None})
    follow_up = story.break_glass("admin", TUMOR, "2", "champion", why, before)
    story.at(on(12, "10:00"))
    story.sign(
        "erin",
        follow_up,
        "approve",
        "Reviewed after the fact: v2 is validated and beats v1 on accuracy; the drift is in the "
        "data, not in the model. The break-glass was justified.",
    )
    story.at(on(12, "11:45"))
    story.sign(
        "frank",
        follow_up,
        "approve",
        "Agreed. Until the reference is rebuilt from the new scanner's data, champion moves on "
        "this model need break-glass.",
    )


def _diabetes_v2_champion_expires(story: Story) -> None:
    def why() -> str:
        return (
            "First step of moving diabetes-progression from stages to aliases, like "
            "tumor-classifier: the Production version v2 becomes its champion."
        )

    before = Before(aliases={"champion": None})
    request = story.request("alice", DIABETES, "2", "champion", why, before)
    story.expire(request)


def _diabetes_v3_production_rejected(story: Story) -> None:
    def why() -> str:
        v2, v3 = (story.metric(DIABETES, v, "rmse") for v in ("2", "3"))
        return (
            "v3 (stochastic boosting, shallow trees) has the lowest evaluation rmse of the "
            f"three: {v3:.1f} against {v2:.1f} for v2 in Production."
        )

    before = Before(stages={"1": "Archived", "2": "Production", "3": "None"})
    request = story.request("alice", DIABETES, "3", "Production", why, before)
    story.at(on(4, "13:15"))
    story.sign("frank", request, "approve", "The rmse gain is clear and every gate passes.")
    story.at(on(4, "16:30"))
    story.sign(
        "erin",
        request,
        "reject",
        "v3 is a few days old and has never run in Staging. Put it through Staging first, "
        "then ask again.",
    )


def _diabetes_v3_staging(story: Story) -> None:
    def why() -> str:
        return "As erin asked: v3 runs in Staging before anyone asks for Production again."

    before = Before(stages={"1": "Archived", "2": "Production", "3": "None"})
    request = story.request("alice", DIABETES, "3", "Staging", why, before)
    story.at(on(3, "11:00"))
    story.sign("erin", request, "approve", "Staging first, as agreed.")


def _tumor_v3_challenger(story: Story) -> None:
    def why() -> str:
        a2, a3 = (story.metric(TUMOR, v, "accuracy") for v in ("2", "3"))
        return (
            "carol's v3 (stochastic boosting) should run in shadow next to the champion. Its "
            f"accuracy is {a3:.3f} against {a2:.3f} for the champion v2, so it is a challenger "
            "only, to compare the two on live cases."
        )

    before = Before(aliases={"champion": "2", "challenger": None})
    request = story.request("alice", TUMOR, "3", "challenger", why, before)
    story.at(on(2, "14:00"))
    story.sign("frank", request, "approve", "Fine as a challenger, shadow traffic only.")


def _champion_moved_out_of_band(story: Story) -> None:
    # Someone with edit rights in MLflow points @champion at v3 with MLflow's own client,
    # skipping the request the drift gate would refuse; the ledger never granted it.
    story.set_registry(TUMOR, Before(aliases={"champion": "3"}))
    story.at(on(1, "16:30"))
    story.facade.reconcile(CLI_OPERATOR)  # the reconcile job (every 10 minutes) flags it
    story.at(on(1, "16:45"))
    story.sign_in("admin")
    story.facade.put_back("admin", TUMOR, "champion")


def _diabetes_v3_champion_pending(story: Story) -> None:
    def why() -> str:
        v2, v3 = (story.metric(DIABETES, v, "rmse") for v in ("2", "3"))
        share = story.drift_share(DIABETES, "3")
        return (
            "Moving diabetes-progression to aliases again, now with v3: it runs in Staging, has "
            f"the lowest rmse of the three ({v3:.1f} against {v2:.1f} for v2 in Production), and "
            f"{share:.0%} of the columns drift on the current batch, which the champion gate "
            "allows."
        )

    before = Before(
        aliases={"champion": None}, stages={"1": "Archived", "2": "Production", "3": "Staging"}
    )
    story.request("alice", DIABETES, "3", "champion", why, before)


DEMO_STORY: tuple[StoryStep, ...] = (
    StoryStep(
        "the demo users (Countersign set up)",
        on(20, "09:00"),
        _setup,
        done=lambda ledger: len(ledger.users) == len(DEMO_USERS),
    ),
    StoryStep(
        "diabetes-progression v2 -> Production, signed by erin and frank, executed",
        on(17, "10:05"),
        _diabetes_v2_production,
        requests=(((DIABETES, "2", "Production", NORMAL), State.EXECUTED),),
    ),
    StoryStep(
        "tumor-classifier v2 -> champion by break-glass, reviewed by erin and frank",
        on(13, "08:10"),
        _tumor_break_glass,
        requests=(
            ((TUMOR, "2", "champion", BREAK_GLASS), State.EXECUTED),
            ((TUMOR, "2", "champion", FOLLOW_UP), State.APPROVED),
        ),
    ),
    StoryStep(
        "diabetes-progression v2 -> champion, unsigned, expired",
        on(12, "15:30"),
        _diabetes_v2_champion_expires,
        requests=(((DIABETES, "2", "champion", NORMAL), State.EXPIRED),),
    ),
    StoryStep(
        "diabetes-progression v3 -> Production, rejected by erin",
        on(4, "10:00"),
        _diabetes_v3_production_rejected,
        requests=(((DIABETES, "3", "Production", NORMAL), State.REJECTED),),
    ),
    StoryStep(
        "diabetes-progression v3 -> Staging, signed by erin, executed",
        on(3, "09:15"),
        _diabetes_v3_staging,
        requests=(((DIABETES, "3", "Staging", NORMAL), State.EXECUTED),),
    ),
    StoryStep(
        "tumor-classifier v3 -> challenger, signed by frank, executed",
        on(2, "10:00"),
        _tumor_v3_challenger,
        requests=(((TUMOR, "3", "challenger", NORMAL), State.EXECUTED),),
    ),
    StoryStep(
        "tumor-classifier@champion moved to v3 outside Countersign, flagged, put back by admin",
        on(1, "16:20"),
        _champion_moved_out_of_band,
        events=(AuditAction.OUT_OF_BAND_REVERTED,),
    ),
    StoryStep(
        "diabetes-progression v3 -> champion, waiting for erin and frank",
        ago(hours=3),
        _diabetes_v3_champion_pending,
        requests=(((DIABETES, "3", "champion", NORMAL), State.PENDING),),
    ),
)
