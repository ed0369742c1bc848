"""What ``run.json`` says about training, for both reports: the plan, which step ``final/`` holds, and the points of
the loss and dev-metric curves. Reads only what the run record holds; a fact it lacks is left out, never guessed.
"""

from __future__ import annotations

from evaluate.report.wording import num

NOT_A_METRIC = ("eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second")


def dev_metric_key(run: dict) -> str | None:
    """The dev metric the run selected its best checkpoint by, else the first one its dev history records."""
    best = run.get("best_checkpoint") or {}
    if best.get("metric"):
        return best["metric"] if best["metric"].startswith("eval_") else f"eval_{best['metric']}"  # as logged
    keys = [k for entry in run.get("dev_history", []) for k in entry if k.startswith("eval_")]
    return next((k for k in keys if k not in NOT_A_METRIC), None)


def plan_facts(run: dict) -> dict:
    """What training did: run.json's ``plan`` when recorded, else what its ``train`` summary holds."""
    train = run.get("train") or {}
    facts = {"rows": train.get("rows"), "steps": train.get("steps"), "epochs": train.get("epoch")}
    return {**facts, **(run.get("plan") or {})}


PLAN_WORDS = (("rows", "{:,} training rows"), ("steps", "{:,} steps"), ("epochs", "{:g} epochs"),
              ("batch_size", "batch {}"), ("gradient_accumulation_steps", "gradient accumulation {}"),
              ("precision", "{} precision"), ("adapter", "adapter {}"))


def plan_text(run: dict) -> str:
    """'Plan: 740 training rows, 24 steps, 2 epochs, batch 64, fp32 precision.' from the facts recorded."""
    facts = plan_facts(run)
    words = [form.format(facts[key]) for key, form in PLAN_WORDS if facts.get(key) not in (None, "")]
    return "Plan: " + (", ".join(words) if words else "not recorded") + "."


def final_step(run: dict) -> int | None:
    """The step ``final/`` holds: the best dev checkpoint when one was selected, else the last step."""
    best = run.get("best_checkpoint") or {}
    return best.get("step") if best.get("step") is not None else plan_facts(run).get("steps")


def final_text(run: dict) -> str:
    best, step = run.get("best_checkpoint") or {}, final_step(run)
    if best.get("step") is not None:
        metric = str(best.get("metric") or "dev score").removeprefix("eval_")
        return (f"final/ is the checkpoint of step {best['step']}, the best {metric} "
                f"({num(best.get('dev_score'))}) on the dev split.")
    return f"final/ is the model after the last step ({step})." if step is not None else ""


def curves(run: dict) -> tuple[list[tuple[float, float]], list[tuple[float, float]], str]:
    """(loss points, dev-metric points, the dev metric's name) as (step, value), from the run's histories."""
    loss = [(e["step"], e["loss"]) for e in run.get("loss_history", []) if e.get("loss") is not None]
    key = dev_metric_key(run)
    dev = [(e["step"], e[key]) for e in run.get("dev_history", []) if key and e.get(key) is not None]
    return loss, dev, (key or "").removeprefix("eval_")


def base_dev_score(run: dict) -> float | None:
    """The base model's dev score, when run.json has it: a dev evaluation at step 0 (before any update)."""
    key = dev_metric_key(run)
    start = [e.get(key) for e in run.get("dev_history", []) if key and e.get("step") == 0]
    return start[0] if start and start[0] is not None else None


def dev_caption(run: dict, dev_name: str) -> str:
    """What the dev chart shows and, when the base model's dev score is missing, why its axis starts later."""
    said = (f"{dev_name} on the dev split (data held back from training) after each dev evaluation; the dashed "
            "final/ line marks the checkpoint kept.")
    if base_dev_score(run) is not None:
        return said + " The dashed horizontal line is the base model's score before training (step 0)."
    return (said + " The base model's dev score is not in run.json (training records no dev evaluation before its "
            "first update), so the chart cannot show where training started; the metrics table compares "
            "with the base model on the test data.")
