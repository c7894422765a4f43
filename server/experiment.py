"""A scenario in a headless run (`hamlet sim --scenario FILE`): its script
joins the tick as an agents system, its measures are sampled after every
tick, and at the end every NPC is interviewed about every seeded fact.
Writes experiment.json (the measures), interviews.json (each answer and its
verdict) and experiment.png (diffusion over game time, density before and
after); the flat figures (`flat_measures`) are what sweeps aggregate."""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agents.interview import run_interviews
from agents.measures import ExperimentRecord
from agents.minds import MindsSystem
from agents.scenario import Scenario
from agents.scenario_script import ScenarioScript
from server.game import Game
from server.world.world import World


class Experiment:
    def __init__(self, scenario: Scenario, game: Game, minds: MindsSystem) -> None:
        self.scenario = scenario
        self.script = ScenarioScript(scenario)
        game.agent_systems.append(self.script)   # after the spawner and the minds: its NPCs are in the world
        self.record = ExperimentRecord(scenario.facts, minds.minds.values())

    def tick(self, world: World) -> None:
        self.record.tick(world)

    def finish(self, out: Path, llm: Any, world: World, minds: MindsSystem, stopped: bool,
               inline: bool, wall_s: float) -> dict[str, Any]:
        """Interview (unless the run was stopped early), measure, write the files."""
        sc = self.scenario
        interviews = None
        if sc.interview and sc.facts and not stopped and "hallucination" in sc.measures:
            people = [(m.persona, m.memory) for m in minds.minds.values()]
            interviews = run_interviews(llm, people, sc.facts, world.game_minutes, world.clock(),
                                        step=llm.step if inline else None)
            (out / "interviews.json").write_text(json.dumps(interviews, indent=2) + "\n", encoding="utf-8")
        measures = self.record.summary(world, interviews)
        measures.update({
            "scenario": sc.name, "stopped_early": stopped, "seeded": self.script.seeded(),
            "hallucination_rate": interviews["hallucination_rate"] if interviews else None,
            "interview_answers": interviews["asked"] if interviews else 0,
            "conversations": sum(1 for c in minds.transcripts if c.lines and not c.with_player and len(c.lines) >= 2),
            "plans": dict(minds.talk.plans),
            "plans_changed": minds.talk.plans["changed"] + minds.talk.plans["event"],
            "game_to_wall": round((world.tick * world.rules.game_seconds_per_tick) / max(wall_s, 1e-9), 2),
        })
        (out / "experiment.json").write_text(json.dumps(measures, indent=2) + "\n", encoding="utf-8")
        measures["plot"] = plot_experiment(out, measures)
        return measures


def save_inputs(out: Path, scenario: Scenario) -> None:
    """The scenario file and its population beside the run: `hamlet
    interview` rebuilds the NPCs from them."""
    shutil.copyfile(scenario.path, out / "scenario.toml")
    write_population(out, scenario.personas)


def write_population(out: Path, personas) -> None:
    rows = [asdict(p) for p in personas]
    (out / "population.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def flat_measures(measures: dict[str, Any]) -> dict[str, float]:
    """One number per measure (per fact where it is per fact), for tables across seeds."""
    out: dict[str, float] = {}
    for key in ("density_before", "density_after", "hallucination_rate", "conversations", "plans_changed",
                "game_to_wall"):
        if measures.get(key) is not None:
            out[key] = float(measures[key])
    for fid, row in measures.get("facts", {}).items():
        for key in ("knew_share", "knew_memory_share", "attended_of_invited", "invited",
                    "attended_of_invited_share", "uninvited_present"):
            if row.get(key) is not None:
                out[f"{key}.{fid}"] = float(row[key])
    return out


def plot_experiment(out: Path, measures: dict[str, Any]) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    n = max(1, measures["npcs"])
    for fid, row in measures["facts"].items():
        xs = [t / 60.0 for t, _ in row["timeline"]]
        left.plot(xs, [c / n for _, c in row["timeline"]], drawstyle="steps-post", label=fid)
    left.set_xlabel("game hours since day 0 00:00")
    left.set_ylabel("share of NPCs who know (memories)")
    left.set_ylim(0, 1.05)
    if measures["facts"]:
        left.legend()
    left.set_title("Diffusion of the seeded facts")
    right.bar(["before", "after"], [measures["density_before"], measures["density_after"]], color=["#999", "#36c"])
    right.set_ylim(0, 1.0)
    right.set_title("Who can name whom (density)")
    fig.tight_layout()
    fig.savefig(out / "experiment.png", dpi=90)
    plt.close(fig)
    return "experiment.png"
