"""The held-out evaluation's scoring, checked with the one model whose answers are known: the teacher."""

from configs.settings import Settings
from training.evaluate import episode_set, evaluate_teacher, summarize


def test_the_teacher_as_the_model_scores_full_marks_on_the_held_out_set():
    # Every kind, chains, withdrawals and corrections included, at the embedded model's speed: a turn
    # the teacher loses is a scoring (or worker) fault, not something a model could learn.
    episodes = episode_set(40)
    scores = evaluate_teacher(Settings(), episodes, wpm=150.0)
    report = summarize(scores)
    assert {s.kind for s in scores} >= {"changed_mind", "correction", "calendar_then_message", "bfcl_math"}
    lost = [(s.kind, s.calls, s.gold) for s in scores
            if not (s.well_formed and s.first_call_right and s.sequence_exact)]
    assert not lost
    assert report["unsafe_issued_early"] == report["unsafe_started_early"] == 0
