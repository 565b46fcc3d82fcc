"""The run config (emolog.config): nested groups from dicts, JSON and TOML files and --set, the
previous emolog's flat keys read with one deprecation warning per key, and a run directory
written by the previous emolog (flat config.json, flat checkpoint) read, reported and resumed."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from emolog.cli import main
from emolog.config.legacy import OLD_KEYS, DeprecatedKeyWarning
from emolog.config.run import ConfigError, RunConfig, parse_override
from emolog.data.artefacts import sha256_file
from emolog.errors import EXIT_INPUT
from emolog.runs.model import load_run
from emolog.runs.train import TrainingError, train_run
from emolog.simulate import SimConfig, simulate, write_simulation


def _deprecations(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DeprecatedKeyWarning)]


def test_config_refuses_unknown_keys_and_impossible_values(tmp_path):
    with pytest.raises(ConfigError, match="'learning_rate'"):
        RunConfig.from_dict({"data": "D", "learning_rate": 0.1})
    for key, value in [
        ("regime", "magic"),
        ("logic.lr", -1.0),
        ("train.imbalance", "oversample"),
        ("train.batch_size", 0),
        ("logic.fixed_weights", {"scene": 1.0}),
        ("train.patience", 0),
        ("logic.optimizer", "adam"),
    ]:  # projected (default) t() needs plain SGD
        with pytest.raises(ConfigError, match=f"'{key}'"):
            RunConfig.from_dict({"data": "D", key: value})
    with pytest.raises(ConfigError, match="'data'"):
        RunConfig.from_dict({})
    with pytest.raises(ConfigError, match="'colour'"):
        parse_override("colour=red")
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"data": "A", "train.epochs": 5, "train.imbalance": "class-weighted"}))
    cfg = RunConfig.load(
        cfg_file, ["train.epochs=7", "train.n_train=null", "logic.param=softmax", "logic.optimizer=adam"], data="B"
    )
    assert (cfg.data, cfg.train.epochs, cfg.train.n_train, cfg.train.imbalance, cfg.logic.optimizer) == (
        "B",
        7,
        None,
        "class-weighted",
        "adam",
    )


def test_nested_dotted_and_grouped_keys_are_one_config(tmp_path) -> None:
    nested = RunConfig.from_dict({"data": "D", "logic": {"lr": 0.1}, "train": {"epochs": 3}})
    dotted = RunConfig.from_dict({"data": "D", "logic.lr": 0.1, "train.epochs": 3})
    assert nested == dotted and nested.logic.lr == 0.1 and nested.train.epochs == 3
    assert nested.nets.lr == 3e-3  # the other keys of a group keep their defaults
    assert RunConfig.from_dict(nested.to_dict()) == nested  # config.json round-trips
    (tmp_path / "c.toml").write_text('data = "A"\n[logic]\nparam = "softmax"\noptimizer = "adam"\n[gate]\nhidden = 0\n')
    cfg = RunConfig.load(tmp_path / "c.toml", ["logic.lr=0.5", "train.n_train=null"], regime="joint")
    assert (cfg.data, cfg.regime, cfg.logic.optimizer, cfg.logic.lr, cfg.gate.hidden, cfg.train.n_train) == (
        "A",
        "joint",
        "adam",
        0.5,
        0,
        None,
    )
    with pytest.raises(AttributeError):
        cfg.logic.lr = 1.0  # frozen: a config is built once, validated once
    (tmp_path / "bad.toml").write_text("[logic\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        RunConfig.load(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match=r"'nets\.colour'"):
        RunConfig.from_dict({"data": "D", "nets": {"colour": "red"}})
    with pytest.raises(ConfigError, match=r"'logic': must be an object"):
        RunConfig.from_dict({"data": "D", "logic": 3})
    with pytest.raises(ConfigError, match=r"'nets\.dropout'"):
        RunConfig.load(None, ["nets.dropout=oops"], data="D")


def test_old_flat_keys_warn_once_each_naming_the_new_key(tmp_path) -> None:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        cfg = RunConfig.from_dict({"data": "D", "logic_lr": 0.1, "net_dropout": 0.2, "extra": {"gate": {"hidden": 4}}})
    assert (cfg.logic.lr, cfg.nets.dropout, cfg.gate.hidden, cfg.extra) == (0.1, 0.2, 4, {})
    assert sorted(_deprecations(rec)) == sorted(
        [
            "config key 'extra.gate' is deprecated and will be removed in the next release: use 'gate'",
            "config key 'logic_lr' is deprecated and will be removed in the next release: use 'logic.lr'",
            "config key 'net_dropout' is deprecated and will be removed in the next release: use 'nets.dropout'",
        ]
    )
    (tmp_path / "old.json").write_text(json.dumps({"data": "A", "epochs": 5, "pretrain_refit": 0}))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        cfg = RunConfig.load(tmp_path / "old.json", ["batch_size=4"])
    assert (cfg.train.epochs, cfg.pretrain.refit, cfg.train.batch_size) == (5, 0, 4)
    messages = _deprecations(rec)
    assert len(messages) == 3 and all(m.count("use '") == 1 for m in messages)
    assert {m.split("'")[1]: m.split("'")[3] for m in messages} == {
        "epochs": "train.epochs",
        "pretrain_refit": "pretrain.refit",
        "batch_size": "train.batch_size",
    }
    # every old key has a new home, and the new key is a setting of the config
    assert set(OLD_KEYS.values()) <= set(RunConfig().flat())


def test_the_command_line_takes_old_and_new_keys(tmp_path, capsys) -> None:
    with pytest.warns(DeprecatedKeyWarning, match="'logic_lr'.*'logic.lr'"):
        assert parse_override("logic_lr=0.2") == ("logic.lr", 0.2)
    assert (
        main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"), "--set", "train.epochs=oops"])
        == EXIT_INPUT
    )
    assert "'train.epochs'" in capsys.readouterr().err


# the exact config.json of a run written by the previous emolog (flat keys, its field order)
def _old_config(new: dict) -> dict:
    old = {
        "regime": new["regime"],
        "data": new["data"],
        "program": "seed",
        "spec": None,
        "semantics": "condition",
        "seed": 0,
        "epochs": 2,
        "em_iterations": 100,
        "batch_size": 64,
        "n_train": None,
        "logic_param": "projected",
        "logic_optimizer": "sgd",
        "logic_lr": 0.03,
        "logic_weight_decay": 0.0,
        "init_weights": None,
        "net_optimizer": "adam",
        "net_lr": 0.003,
        "net_weight_decay": 1e-05,
        "net_hidden": 64,
        "net_dropout": 0.5,
        "backbone_optimizer": "adam",
        "backbone_lr": 1e-05,
        "backbone_weight_decay": 1e-05,
        "backbone_weights": None,
        "recogniser_weights": None,
        "imbalance": "none",
        "logit_adjust_tau": 1.0,
        "patience": None,
        "strict": False,
        "fixed_weights": None,
        "scene_init": "auto",
        "pretrain_epochs": 3,
        "pretrain_batch_size": 64,
        "pretrain_patience": 3,
        "pretrain_folds": 2,
        "pretrain_refit": 0,
        "pretrain_cache": None,
        "grey_face_logits": None,
        "device": "auto",
        "threads": 1,
        "extra": {},
    }
    return {**old, "perception": new["perception"], "provenance": new["provenance"]}


RUN = {
    "regime": "logic-only",
    "train.epochs": 2,
    "train.patience": None,
    "pretrain.epochs": 3,
    "pretrain.folds": 2,
    "pretrain.refit": 0,
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "D"
    write_simulation(simulate(SimConfig(n=300, seed=1, scene_dim=16)), path)
    return path


def test_a_run_of_the_previous_emolog_loads_reports_and_resumes(sim, tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    train_run({**RUN, "data": str(sim)}, run_dir, progress=False)
    new = json.loads((run_dir / "config.json").read_text())
    assert new["logic"]["lr"] == 0.03 and "logic_lr" not in new  # written in the nested form
    old = _old_config(new)
    (run_dir / "config.json").write_text(json.dumps(old, indent=1))
    results = json.loads((run_dir / "results.json").read_text())
    results["files"]["config.json"] = sha256_file(run_dir / "config.json")
    (run_dir / "results.json").write_text(json.dumps(results, indent=1))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        run = load_run(run_dir)
        assert RunConfig.from_record(old) == RunConfig.from_record(new)
    assert _deprecations(rec) == []  # a record is read as it is: nothing for its user to fix
    assert run.model.network is not None  # rebuilt from the flat config
    assert main(["report", str(run_dir), "--out", str(tmp_path / "report")]) == 0

    part = tmp_path / "part"
    train_run({**RUN, "data": str(sim), "train.epochs": 1}, part, progress=False)
    blob = torch.load(part / "checkpoint.pt", weights_only=False)
    blob["config"] = {k: v for k, v in _old_config(new).items() if k not in ("perception", "provenance")}
    blob["config"]["epochs"] = 1
    torch.save(blob, part / "checkpoint.pt")
    resumed = train_run({**RUN, "data": str(sim)}, part, resume=True, progress=False)
    finished = json.loads((run_dir / "results.json").read_text())
    assert resumed["source_weights"] == pytest.approx(finished["source_weights"], abs=1e-6)
    torch.save(blob, part / "checkpoint.pt")
    with pytest.raises(TrainingError, match=r"logic\.lr"):  # a changed setting is still refused, by its new name
        train_run({**RUN, "data": str(sim), "logic.lr": 0.1}, part, resume=True, progress=False)


def test_an_experiment_sweep_over_an_old_key_keeps_its_run_names() -> None:
    from emolog.experiments.plan import RunSpec, parse_sweep, plan_runs, run_config

    with pytest.warns(DeprecatedKeyWarning, match="'logic_lr'.*'logic.lr'"):
        key, values = parse_sweep("logic_lr=0.03,0.1")
    assert (key, values) == ("logic_lr", [0.03, 0.1])  # as written: an old experiment's runs keep their names
    main, _ = plan_runs(["logic-only"], [0], [(key, values)], [], {"data": "D"})
    assert [s.name for s in main] == ["logic-only-s0", "logic-only-s0-logic_lr=0.1"]  # 0.03 is the default
    assert run_config(RunSpec("logic-only", 0, ("logic_lr", 0.1)), {"data": "D"}).logic.lr == 0.1
    assert run_config(RunSpec("joint", 0, ("n_train", 50)), {"data": "D"}).train.n_train == 50  # memorisation
