"""Presets, config files and their precedence: preset < file < flags."""

from __future__ import annotations

import dataclasses
import json

import pytest

from samplerbench.cli import build_parser, config_from_args
from samplerbench.config import PRESETS, RunConfig, SyntheticConfig, build_config, load_config_file
from samplerbench.errors import UserError


def test_every_preset_builds():
    for name in PRESETS:
        cfg = build_config(name)
        assert cfg.preset == name and cfg.main_budget in cfg.budgets and max(cfg.budgets) <= cfg.frames


def test_toml_and_yaml_files(tmp_path):
    toml = 'preset = "tiny"\nbudgets = [1, 3]\nrec-epochs = 2\n[synthetic]\nnum_classes = 3\n'
    (tmp_path / "a.toml").write_text(toml)
    cfg = build_config(file_values=load_config_file(tmp_path / "a.toml"))
    assert cfg.preset == "tiny" and cfg.budgets == (1, 3) and cfg.rec_epochs == 2
    assert cfg.synthetic == SyntheticConfig(num_classes=3)  # a [synthetic] table replaces the preset's whole
    (tmp_path / "b.yaml").write_text("frames: 12\nsamplers: [uniform, nsnet]\n")
    cfg = build_config(file_values=load_config_file(tmp_path / "b.yaml"))
    assert cfg.preset == "default" and cfg.frames == 12 and cfg.samplers == ("uniform", "nsnet")


def test_flags_override_the_file_which_overrides_the_preset(tmp_path):
    (tmp_path / "c.toml").write_text('preset = "tiny"\nseed = 5\nframes = 6\n')
    args = build_parser().parse_args(["--config", str(tmp_path / "c.toml"), "--seed", "7", "--device", "cpu"])
    cfg = config_from_args(args)
    assert (cfg.preset, cfg.seed, cfg.frames, cfg.rec_res) == ("tiny", 7, 6, PRESETS["tiny"]["rec_res"])


def test_every_flag_has_a_config_file_form(tmp_path):
    """Output settings and --weights come from the file too; weights are part of the config (and run.json)."""
    (tmp_path / "d.toml").write_text('preset = "tiny"\nout = "elsewhere"\ncache_dir = "cache"\nquiet = true\n'
                                     '[weights]\nfem = "fem.pt"\n')
    args = build_parser().parse_args(["--config", str(tmp_path / "d.toml"), "--device", "cpu"])
    cfg = config_from_args(args)
    assert (args.out, args.cache_dir, args.quiet) == ("elsewhere", "cache", True)
    assert cfg.weights == {"fem": "fem.pt"}
    flags = build_parser().parse_args(["--config", str(tmp_path / "d.toml"), "--out", "here",
                                       "--weights", "recognizer=r.pt", "--device", "cpu"])
    assert config_from_args(flags).weights == {"recognizer": "r.pt"} and flags.out == "here"  # flags win
    with pytest.raises(UserError, match=r"weights for unknown role\(s\) \['backbone'\]"):
        build_config("tiny", weights={"backbone": "x.pt"})


def test_run_json_round_trips_to_the_same_config(tmp_path):
    cfg = build_config("tiny", seed=3, budgets=(2, 3), weights={"recognizer": "r.pt"})
    (tmp_path / "run.json").write_text(json.dumps({"config": dataclasses.asdict(cfg), "seed": 3}))
    assert build_config(file_values=load_config_file(tmp_path / "run.json")) == cfg


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "budgets = [1,", "not valid TOML"),
        ("bad.json", "{", "not valid JSON"),
        ("typo.toml", "rec_epoch = 3", "unknown setting 'rec_epoch'"),
        ("nested.toml", "[synthetic]\nclasses = 3", "[synthetic]: unknown setting 'classes'"),
        ("list.yaml", "- 1\n- 2", "expected a table of settings"),
        ("conf.ini", "x=1", "expected a .toml, .yaml, .yml or .json file"),
    ],
)
def test_bad_config_files_name_the_file_and_the_problem(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError) as err:
        load_config_file(tmp_path / name)
    assert name in str(err.value) and message in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="No such file"):
        load_config_file(tmp_path / "nope.toml")


def test_unknown_table_is_rejected_wherever_it_comes_from():
    with pytest.raises(UserError, match=r"unknown table\(s\) \['bogus'\]"):
        RunConfig(tables=("main", "bogus"))


def test_dtype_is_checked_and_reaches_the_config(tmp_path):
    with pytest.raises(UserError, match="--dtype float16: valid: float32, float64"):
        RunConfig(dtype="float16")
    args = build_parser().parse_args(["--preset", "tiny", "--dtype", "float64", "--device", "cpu"])
    assert config_from_args(args).dtype == "float64" and build_config("tiny").dtype == "float32"


def test_workers_default_to_this_process_share_of_the_cores(monkeypatch):
    """The cores this process may use, divided among torchrun's processes on the node; a flag still wins."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert build_config("paper").workers == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert build_config("paper").workers == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert build_config("paper").workers == 1
    args = build_parser().parse_args(["--workers", "3", "--device", "cpu"])
    assert config_from_args(args).workers == 3


def test_sampler_options_from_toml_yaml_json_and_flags(tmp_path):
    """``[sampler_options.<name>]`` in any config format and ``--sampler-option`` flags, merged field by field:
    the file over the preset, the flags over the file."""
    (tmp_path / "o.toml").write_text('preset = "tiny"\n[sampler_options.nsnet]\nd = 256\nheads = 8\n'
                                     '[sampler_options.scsampler]\nloss = "rank"\n')
    (tmp_path / "o.yaml").write_text("sampler_options:\n  nsnet: {d: 256, heads: 8}\n  scsampler: {loss: rank}\n")
    (tmp_path / "o.json").write_text(json.dumps({"sampler_options": {"nsnet": {"d": 256, "heads": 8},
                                                                     "scsampler": {"loss": "rank"}}}))
    expected = {"nsnet": {"d": 256, "heads": 8}, "scsampler": {"loss": "rank"}}
    for name in ("o.toml", "o.yaml", "o.json"):
        assert build_config(file_values=load_config_file(tmp_path / name)).sampler_options == expected
    args = build_parser().parse_args(["--config", str(tmp_path / "o.toml"), "--device", "cpu",
                                      "--sampler-option", "nsnet.heads=2", "--sampler-option", "nsnet.fusion=add",
                                      "--sampler-option", "nsnet.lr=1e-3", "--sampler-option", "nsnet.no-ns=true"])
    assert config_from_args(args).sampler_options == {
        "nsnet": {"d": 256, "heads": 2, "fusion": "add", "lr": 0.001, "no_ns": True}, "scsampler": {"loss": "rank"}}
    # the paper preset's NSNet width survives an option set on top of it
    assert build_config("paper", sampler_options={"nsnet": {"heads": 8}}).sampler_options["nsnet"] == {
        **PRESETS["paper"]["sampler_options"]["nsnet"], "heads": 8}


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("nsnet.dd=3", "sampler_options.nsnet: unknown option 'dd'; valid: seed, epochs, patience, "
                       "holdout_fraction, batch_size, lr, temporal_shift, d, heads"),
        ("nsnet.heads=four", "sampler_options.nsnet.heads = 'four': expected an integer"),
        ("nsnet.fusion=unoin", "sampler_options.nsnet: unknown fusion 'unoin'"),
        ("uniform.seed=1", "sampler_options.uniform: unknown option 'seed'; valid: none (it takes no options)"),
        ("nssnet.d=3", "unknown sampler 'nssnet'"),
        ("nsnet.device=cuda", "sampler_options.nsnet: unknown option 'device'"),
    ],
)
def test_bad_sampler_options_are_one_line_errors(flag, message):
    args = build_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--sampler-option", flag])
    with pytest.raises(UserError) as err:
        config_from_args(args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_malformed_sampler_option_flag_is_rejected():
    with pytest.raises(UserError, match=r"expected SAMPLER\.FIELD=VALUE"):
        build_parser().parse_args(["--sampler-option", "nsnet-d=3"])


def test_aggregation_from_a_flag_or_a_file_is_checked(tmp_path):
    args = build_parser().parse_args(["--preset", "tiny", "--device", "cpu", "--aggregation", "mean_logits"])
    assert config_from_args(args).aggregation == "mean_logits" and build_config("tiny").aggregation == "mean_softmax"
    with pytest.raises(UserError, match="invalid choice: 'median'"):
        build_parser().parse_args(["--aggregation", "median"])
    (tmp_path / "a.toml").write_text('preset = "tiny"\naggregation = "median"\n')
    with pytest.raises(UserError, match="aggregation = 'median': valid: mean_softmax, mean_logits, max_features"):
        config_from_args(build_parser().parse_args(["--config", str(tmp_path / "a.toml"), "--device", "cpu"]))
